// Image sizes from headers alone, for every supported format.
#include "runtime/data/image_header.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>

namespace nasoa::runtime {
namespace {

std::string encode(const std::string& ext, const cv::Mat& image, const std::vector<int>& params = {}) {
  std::vector<std::uint8_t> buffer;
  EXPECT_TRUE(cv::imencode(ext, image, buffer, params)) << ext;
  return std::string(buffer.begin(), buffer.end());
}

TEST(ImageHeaderTest, ReadsTheSizeOfEveryFormat) {
  const cv::Mat image(23, 37, CV_8UC3, cv::Scalar(10, 20, 30));
  struct Case {
    const char* ext;
    ImageFormat format;
    std::vector<int> params;
  };
  const Case cases[] = {
      {".png", ImageFormat::kPng, {}},
      {".jpg", ImageFormat::kJpeg, {}},
      {".bmp", ImageFormat::kBmp, {}},
      {".webp", ImageFormat::kWebp, {cv::IMWRITE_WEBP_QUALITY, 80}},   // lossy: VP8
      {".webp", ImageFormat::kWebp, {cv::IMWRITE_WEBP_QUALITY, 101}},  // lossless: VP8L
      {".tiff", ImageFormat::kTiff, {}},
  };
  for (const Case& c : cases) {
    const auto header = parse_image_header(encode(c.ext, image, c.params));
    ASSERT_TRUE(header.has_value()) << c.ext;
    EXPECT_EQ(header->format, c.format) << c.ext;
    EXPECT_EQ(header->width, 37) << c.ext;
    EXPECT_EQ(header->height, 23) << c.ext;
  }
  const cv::Mat wide16(5, 300, CV_16UC1, cv::Scalar(40000));
  const auto header = parse_image_header(encode(".png", wide16));
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 300);
}

TEST(ImageHeaderTest, FindsTheJpegFrameBehindMetadata) {
  std::string jpeg = encode(".jpg", cv::Mat(40, 50, CV_8UC1, cv::Scalar(0)));
  // An APP1 segment of 30 KiB between SOI and the frame header.
  std::string app1 = "\xFF\xE1";
  const std::size_t length = 30000;
  app1 += char(length >> 8);
  app1 += char(length & 0xFF);
  app1 += std::string(length - 2, 'x');
  jpeg.insert(2, app1);
  const auto header = parse_image_header(jpeg);
  ASSERT_TRUE(header.has_value());
  EXPECT_EQ(header->width, 50);
  EXPECT_EQ(header->height, 40);
}

TEST(ImageHeaderTest, RefusesNonImagesAndCutHeaders) {
  EXPECT_FALSE(parse_image_header("").has_value());
  EXPECT_FALSE(parse_image_header("hello, this is a text file named cat.jpg").has_value());
  const std::string png = encode(".png", cv::Mat(4, 4, CV_8UC1, cv::Scalar(0)));
  EXPECT_FALSE(parse_image_header(png.substr(0, 20)).has_value());
  const std::string jpg = encode(".jpg", cv::Mat(4, 4, CV_8UC1, cv::Scalar(0)));
  EXPECT_FALSE(parse_image_header(jpg.substr(0, 10)).has_value());
  // A TIFF directory offset near 2^32 must not wrap past the bounds check.
  for (const char* tiff : {"II*\0\xfe\xff\xff\xff", "II*\0\xff\xff\xff\xff", "MM\0*\xff\xff\xff\xfe"})
    EXPECT_FALSE(parse_image_header(std::string(tiff, 8) + std::string(64, '\0')).has_value());
}

}  // namespace
}  // namespace nasoa::runtime
