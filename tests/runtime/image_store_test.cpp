// Decoding a task once: every kind of bad file is skipped with its reason,
// every supported kind of good file is decoded, meta-features add up.
#include "runtime/data/image_store.h"

#include <gtest/gtest.h>

#include <opencv2/imgcodecs.hpp>
#include <zlib.h>

#include <array>
#include <filesystem>
#include <map>
#include <tuple>

#include "nasoa/error.h"
#include "runtime/data/image_header.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"

namespace nasoa::runtime {
namespace {

using nasoa::testing::TempDir;

std::string encode(const std::string& ext, const cv::Mat& image) {
  std::vector<std::uint8_t> buffer;
  EXPECT_TRUE(cv::imencode(ext, image, buffer));
  return std::string(buffer.begin(), buffer.end());
}

// A PNG whose header announces 30000 x 30000 pixels; the rest is junk, which
// only matters if someone tries to decode it.
std::string huge_png_header() {
  std::string png = encode(".png", cv::Mat(1, 1, CV_8UC1, cv::Scalar(0)));
  const std::uint32_t side = 30000;
  for (int at : {16, 20})
    for (int b = 0; b < 4; ++b) png[std::size_t(at + b)] = char((side >> (24 - 8 * b)) & 0xFF);
  return png;
}

// A grey-and-alpha PNG (colour type 4), which OpenCV cannot write: every
// pixel has grey level `grey` and opacity `alpha`.
std::string grey_alpha_png(int width, int height, std::uint8_t grey, std::uint8_t alpha) {
  const auto be32 = [](std::uint32_t v) {
    return std::string{char(v >> 24), char((v >> 16) & 0xFF), char((v >> 8) & 0xFF), char(v & 0xFF)};
  };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string body = type + data;
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(body.data()), uInt(body.size()));
    return be32(std::uint32_t(data.size())) + body + be32(std::uint32_t(crc));
  };
  std::string raw;
  for (int y = 0; y < height; ++y) {
    raw += char(0);  // filter: none
    for (int x = 0; x < width; ++x) raw += std::string{char(grey), char(alpha)};
  }
  std::string packed(compressBound(uLong(raw.size())), '\0');
  uLongf packed_size = uLongf(packed.size());
  EXPECT_EQ(compress(reinterpret_cast<Bytef*>(packed.data()), &packed_size,
                     reinterpret_cast<const Bytef*>(raw.data()), uLong(raw.size())), Z_OK);
  packed.resize(packed_size);
  const std::string ihdr = be32(std::uint32_t(width)) + be32(std::uint32_t(height)) + std::string{8, 4, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", packed) + chunk("IEND", "");
}

// An uncompressed little-endian 4 x 4 TIFF of four 8-bit samples per pixel,
// every pixel (s0, s1, s2, s3) in RGB(A/X) order; `extra` is the
// ExtraSamples tag's value, -1 for no tag. OpenCV writes no such tag.
std::string rgbx_tiff(int extra, std::uint8_t s0, std::uint8_t s1, std::uint8_t s2, std::uint8_t s3) {
  const auto u16 = [](std::uint32_t v) { return std::string{char(v & 0xFF), char((v >> 8) & 0xFF)}; };
  const auto u32 = [&](std::uint32_t v) { return u16(v & 0xFFFF) + u16(v >> 16); };
  std::string pixels;
  for (int i = 0; i < 16; ++i) pixels += std::string{char(s0), char(s1), char(s2), char(s3)};
  const std::uint32_t bits_at = 8, pixels_at = 16, directory_at = pixels_at + std::uint32_t(pixels.size());
  std::vector<std::array<std::uint32_t, 4>> entries = {  // tag, type (3 SHORT, 4 LONG), count, value
      {256, 3, 1, 4}, {257, 3, 1, 4}, {258, 3, 4, bits_at}, {259, 3, 1, 1}, {262, 3, 1, 2},
      {273, 4, 1, pixels_at}, {277, 3, 1, 4}, {278, 3, 1, 4}, {279, 4, 1, std::uint32_t(pixels.size())},
      {284, 3, 1, 1}};
  if (extra >= 0) entries.push_back({338, 3, 1, std::uint32_t(extra)});
  std::string tiff = std::string("II*\0", 4) + u32(directory_at);
  for (int i = 0; i < 4; ++i) tiff += u16(8);
  tiff += pixels + u16(std::uint32_t(entries.size()));
  for (const auto& [tag, type, count, value] : entries)
    tiff += u16(tag) + u16(type) + u32(count) + (type == 3 && count == 1 ? u16(value) + u16(0) : u32(value));
  return tiff + u32(0);
}

// An uncompressed little-endian 4 x 4 TIFF of grey and alpha (8 bits each),
// every pixel (grey, alpha); `extra` is the ExtraSamples tag's value.
std::string grey_alpha_tiff(int extra, std::uint8_t grey, std::uint8_t alpha) {
  const auto u16 = [](std::uint32_t v) { return std::string{char(v & 0xFF), char((v >> 8) & 0xFF)}; };
  const auto u32 = [&](std::uint32_t v) { return u16(v & 0xFFFF) + u16(v >> 16); };
  std::string pixels;
  for (int i = 0; i < 16; ++i) pixels += std::string{char(grey), char(alpha)};
  const std::uint32_t pixels_at = 8, directory_at = pixels_at + std::uint32_t(pixels.size());
  const std::vector<std::array<std::uint32_t, 4>> entries = {  // tag, type, count, value
      {256, 3, 1, 4}, {257, 3, 1, 4}, {258, 3, 2, 8 | (8u << 16)}, {259, 3, 1, 1}, {262, 3, 1, 1},
      {273, 4, 1, pixels_at}, {277, 3, 1, 2}, {278, 3, 1, 4}, {279, 4, 1, std::uint32_t(pixels.size())},
      {284, 3, 1, 1}, {338, 3, 1, std::uint32_t(extra)}};
  std::string tiff = std::string("II*\0", 4) + u32(directory_at) + pixels + u16(std::uint32_t(entries.size()));
  for (const auto& [tag, type, count, value] : entries)
    tiff += u16(tag) + u16(type) + u32(count) + (type == 3 && count == 1 ? u16(value) + u16(0) : u32(value));
  return tiff + u32(0);
}

// A 4 x 4 32-bit BMP with a 40-byte header and BI_BITFIELDS masks (no alpha
// mask), every pixel stored as B, G, R, 0.
std::string xrgb_bmp(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  const auto u16 = [](std::uint32_t v) { return std::string{char(v & 0xFF), char((v >> 8) & 0xFF)}; };
  const auto u32 = [&](std::uint32_t v) { return u16(v & 0xFFFF) + u16(v >> 16); };
  const std::uint32_t pixels_at = 14 + 40 + 12, size = pixels_at + 16 * 4;
  std::string bmp = "BM" + u32(size) + u32(0) + u32(pixels_at);
  bmp += u32(40) + u32(4) + u32(4) + u16(1) + u16(32) + u32(3) + u32(16 * 4) + u32(2835) + u32(2835) + u32(0) + u32(0);
  bmp += u32(0x00FF0000) + u32(0x0000FF00) + u32(0x000000FF);
  for (int i = 0; i < 16; ++i) bmp += std::string{char(b), char(g), char(r), char(0)};
  return bmp;
}

std::string reason_for(const ImageStore& store, const std::string& file_name) {
  for (const SkippedFile& f : store.skipped())
    if (f.path.size() >= file_name.size() &&
        f.path.compare(f.path.size() - file_name.size(), file_name.size(), file_name) == 0)
      return f.reason;
  return "(not skipped)";
}

class ImageStoreTest : public ::testing::Test {
 protected:
  // Two good images per class in several colour layouts, plus every kind of bad file.
  void SetUp() override {
    t_.write("task/red/rgb.png", encode(".png", cv::Mat(40, 60, CV_8UC3, cv::Scalar(0, 0, 255))));  // BGR red
    t_.write("task/red/gray16.png", encode(".png", cv::Mat(30, 30, CV_16UC1, cv::Scalar(65535))));
    cv::Mat rgba(20, 20, CV_8UC4, cv::Scalar(0, 0, 0, 0));  // transparent but for a corner: the background shows
    rgba.at<cv::Vec4b>(0, 0) = cv::Vec4b(0, 0, 0, 255);
    t_.write("task/blue/clear-rgba.png", encode(".png", rgba));
    t_.write("task/blue/ñandú-青.jpg", encode(".jpg", cv::Mat(50, 50, CV_8UC3, cv::Scalar(255, 0, 0))));
    t_.write("task/blue/gray.bmp", encode(".bmp", cv::Mat(10, 20, CV_8UC1, cv::Scalar(0))));

    const std::string png = encode(".png", cv::Mat(64, 64, CV_8UC3, cv::Scalar(1, 2, 3)));
    std::string corrupt = png;
    for (std::size_t i = 60; i < 90; ++i) corrupt[i] = char(corrupt[i] ^ 0x55);
    t_.write("task/red/corrupt.png", corrupt);
    t_.write("task/red/truncated.png", png.substr(0, png.size() / 2));
    const std::string jpg = encode(".jpg", cv::Mat(64, 64, CV_8UC3, cv::Scalar(9, 9, 9)));
    t_.write("task/red/truncated.jpg", jpg.substr(0, jpg.size() / 2));
    t_.write("task/red/empty.png", "");
    t_.write("task/blue/text.jpg", "I am a text file with an image's name.");
    t_.write("task/blue/huge.png", huge_png_header());
  }

  TempDir t_;
};

TEST_F(ImageStoreTest, SkipsEveryBadFileWithItsReasonAndKeepsTheGoodOnes) {
  IngestOptions options;
  options.side = 16;
  options.max_pixels = 10'000'000;
  // The damaged PNGs are told apart before libpng sees them, which would
  // print its own error to the app's stderr.
  ::testing::internal::CaptureStderr();
  const ImageStore store(list_folder(t_ / "task"), options);
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(printed.find("libpng"), std::string::npos) << printed;
  EXPECT_EQ(store.size(), 5u);
  EXPECT_EQ(store.skipped().size(), 6u);
  EXPECT_EQ(reason_for(store, "corrupt.png"), "damaged PNG (CRC error in its IDAT chunk)");
  EXPECT_EQ(reason_for(store, "truncated.png"), "truncated PNG (its IDAT chunk is cut short)");
  EXPECT_NE(reason_for(store, "truncated.jpg").find("truncated JPEG"), std::string::npos);
  EXPECT_EQ(reason_for(store, "empty.png"), "zero-byte file");
  EXPECT_NE(reason_for(store, "text.jpg").find("not a recognised image"), std::string::npos);
  EXPECT_NE(reason_for(store, "huge.png").find("30000x30000 = 900000000 pixels, above the cap"), std::string::npos);
  for (std::size_t i = 0; i < store.size(); ++i) {
    const cv::Mat m = store.image(i);
    EXPECT_EQ(m.type(), CV_8UC3);
    EXPECT_EQ(m.rows, 16);
    EXPECT_EQ(m.cols, 16);
  }
}

// A file cut inside its header still starts with its format's signature:
// it is a damaged file of that format, not "not a recognised image".
TEST(ImageStoreHeaderTest, AFileCutInItsHeaderIsNamedByItsSignature) {
  IngestOptions options;
  options.side = 16;
  const std::vector<std::pair<std::string, std::string>> cut = {
      {std::string("II*\0\x08\0", 6), "TIFF"},
      {std::string("MM\0*", 4), "TIFF"},
      {std::string("\x89PNG\r\n\x1a\n\0\0", 10), "PNG"},
      {std::string("\xff\xd8\xff", 3), "JPEG"},
      {std::string("BM\x10\0", 4), "BMP"},
      {std::string("RIFF\x10\0\0\0WEBPVP", 14), "WebP"},
  };
  for (const auto& [bytes, format] : cut) {
    ImageRefusal refusal;
    EXPECT_TRUE(decode_to_square(bytes, options, &refusal).empty()) << format;
    EXPECT_EQ(refusal.kind, ImageRefusal::Kind::kDamaged) << format;
    EXPECT_EQ(refusal.reason, "damaged or truncated " + format + " (its header cannot be read)");
  }
  ImageRefusal text;
  EXPECT_TRUE(decode_to_square("plain text, not an image", options, &text).empty());
  EXPECT_NE(text.reason.find("not a recognised image"), std::string::npos) << text.reason;
}

TEST(ImageStoreHeaderTest, ATiffWhoseDirectoryFollowsItsPixelsIsRead) {
  // libtiff writes the image directory after the pixels: past the bytes
  // read first to check a header, in an uncompressed 400x400 image.
  TempDir t;
  cv::Mat noise(400, 400, CV_8UC3);
  cv::randu(noise, 0, 255);
  for (const char* cls : {"a", "b"}) {
    std::filesystem::create_directories(t.path() / "task" / cls);
    ASSERT_TRUE(cv::imwrite((t.path() / "task" / cls / "late.tif").string(), noise, {cv::IMWRITE_TIFF_COMPRESSION, 1}));
  }
  const std::string bytes = zoo::read_file(t / "task/a/late.tif");
  ASSERT_EQ(bytes.substr(0, 4), std::string("II*\0", 4));
  std::uint32_t directory = 0;
  for (int i = 3; i >= 0; --i) directory = (directory << 8) | std::uint8_t(bytes[std::size_t(4 + i)]);
  ASSERT_GT(directory, 256u * 1024) << "this TIFF does not test what it should";
  IngestOptions options;
  options.side = 16;
  const ImageStore store(list_folder(t / "task"), options);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_TRUE(store.skipped().empty()) << store.skipped().front().path << ": " << store.skipped().front().reason;

  // Read whole only when a TIFF or JPEG signature says the header may come
  // later, and only up to what an image within the pixel cap can take.
  const cv::Mat small(8, 8, CV_8UC3, cv::Scalar(10, 20, 30));
  for (const char* cls : {"a", "b"}) {
    std::filesystem::create_directories(t.path() / "strict" / cls);
    ASSERT_TRUE(cv::imwrite((t.path() / "strict" / cls / "small.png").string(), small));
  }
  t.write("strict/a/junk.tif", std::string(300 * 1024, 'j'));
  t.write("strict/b/huge.tif", std::string("II*\0", 4));
  std::filesystem::resize_file(t / "strict/b/huge.tif", 17u << 20);  // sparse
  options.max_pixels = 1000;  // a file of an image within it is at most 16 MiB + 8,000 bytes
  const ImageStore strict(list_folder(t / "strict"), options);
  EXPECT_EQ(strict.size(), 2u);
  std::map<std::string, std::string> reasons;
  for (const SkippedFile& f : strict.skipped()) reasons[std::filesystem::path(f.path).filename().string()] = f.reason;
  EXPECT_NE(reasons["junk.tif"].find("not a recognised image"), std::string::npos) << reasons["junk.tif"];
  EXPECT_NE(reasons["huge.tif"].find("more than an image within the pixel cap takes"), std::string::npos)
      << reasons["huge.tif"];
}

TEST(ImageStoreHeaderTest, AJpegIsJudgedByItsStructureAndAPaddedFileIsNotReadWhole) {
  TempDir t;
  // Small enough (under 4 KiB) that the comment's marker lies near the cut:
  // looking for the marker's bytes in the file's tail took it as complete.
  cv::Mat noise(24, 24, CV_8UC3);
  cv::randu(noise, 0, 255);
  const std::string jpg = encode(".jpg", noise);
  ASSERT_LT(jpg.size(), 4096u - 300) << "this JPEG does not test what it should";
  // End-of-image bytes inside a comment segment (as in an EXIF thumbnail)
  // do not make a file cut short look complete.
  const std::string with_comment =
      jpg.substr(0, 2) + std::string("\xFF\xFE\x00\x06\xFF\xD9\xFF\xD9", 8) + jpg.substr(2);
  t.write("task/a/cut-after-comment.jpg", with_comment.substr(0, with_comment.size() - 200));
  // Data after the image (a Motion Photo's video) does not make it incomplete.
  t.write("task/a/trailer.jpg", jpg + std::string(10 * 1024, 'v'));
  t.write("task/b/plain.jpg", jpg);
  t.write("task/b/with-comment.jpg", with_comment);
  // Stray bytes between two segments: libjpeg skips them and decodes.
  ASSERT_EQ(jpg.substr(2, 4), std::string("\xFF\xE0\x00\x10", 4)) << "expected a JFIF segment of 16 bytes first";
  t.write("task/b/stray-bytes.jpg", jpg.substr(0, 20) + std::string(2, '\0') + jpg.substr(20));
  // A small PNG padded to 40 MiB (sparse): refused from its size, not read.
  t.write("task/b/padded.png", encode(".png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3))));
  std::filesystem::resize_file(t / "task/b/padded.png", 40u << 20);
  IngestOptions options;
  options.side = 16;
  const ImageStore store(list_folder(t / "task"), options);
  std::map<std::string, std::string> reasons;
  for (const SkippedFile& f : store.skipped()) reasons[std::filesystem::path(f.path).filename().string()] = f.reason;
  EXPECT_EQ(store.size(), 4u);
  EXPECT_EQ(reasons.size(), 2u);
  EXPECT_EQ(reasons.count("stray-bytes.jpg"), 0u) << reasons["stray-bytes.jpg"];
  EXPECT_NE(reasons["cut-after-comment.jpg"].find("truncated JPEG"), std::string::npos)
      << reasons["cut-after-comment.jpg"];
  EXPECT_NE(reasons["padded.png"].find("more than a 8x8 image takes"), std::string::npos) << reasons["padded.png"];
}

TEST(ImageStoreHeaderTest, APngIsJudgedByItsChunks) {
  const std::string png = encode(".png", cv::Mat(8, 8, CV_8UC3, cv::Scalar(1, 2, 3)));
  ASSERT_EQ(png.substr(png.size() - 8, 4), "IEND");
  IngestOptions options;
  options.side = 8;
  ImageRefusal refusal;
  const std::string& reason = refusal.reason;
  const auto decodes = [&](const std::string& bytes) { return !decode_to_square(bytes, options, &refusal).empty(); };
  EXPECT_TRUE(decodes(png)) << reason;
  // Data after IEND is not the image's, and does not make it damaged.
  EXPECT_TRUE(decodes(png + "trailing bytes")) << reason;
  EXPECT_FALSE(decodes(png.substr(0, png.size() - 12)));
  EXPECT_EQ(reason, "truncated PNG (no IEND chunk)");
  EXPECT_EQ(refusal.kind, ImageRefusal::Kind::kDamaged);
  EXPECT_FALSE(decodes(png.substr(0, png.size() - 2)));
  EXPECT_EQ(reason, "truncated PNG (its IEND chunk is cut short)");
  // A damaged CRC of an ancillary chunk is libpng's warning, not an error:
  // the pixels are read.
  const std::string text_chunk = std::string("\0\0\0\x04tEXtabcd", 12) + std::string("\0\0\0\0", 4);
  EXPECT_TRUE(decodes(png.substr(0, 33) + text_chunk + png.substr(33))) << reason;
  std::string bad_length = png;
  bad_length[33] = char(0x80);  // the first chunk after IHDR claims 2 GiB
  EXPECT_FALSE(decodes(bad_length));
  EXPECT_NE(reason.find("damaged PNG (a chunk length of"), std::string::npos) << reason;
}

// `jpeg` with an EXIF APP1 segment holding only an orientation tag.
std::string with_exif_orientation(const std::string& jpeg, std::uint16_t orientation) {
  std::string tiff("II*\0\x08\0\0\0", 8);                   // little-endian, IFD0 at 8
  tiff += std::string("\x01\0", 2);                            // one entry
  tiff += std::string("\x12\x01\x03\0\x01\0\0\0", 8);          // Orientation, SHORT, count 1
  tiff += char(orientation & 0xFF);
  tiff += char(orientation >> 8);
  tiff += std::string("\0\0\0\0\0\0", 6);                      // padding, no next IFD
  const std::string data = std::string("Exif\0\0", 6) + tiff;
  const std::size_t length = data.size() + 2;
  return jpeg.substr(0, 2) + "\xFF\xE1" + char(length >> 8) + char(length & 0xFF) + data + jpeg.substr(2);
}

TEST(ImageStoreHeaderTest, APhonesPortraitPhotoIsTurnedUpright) {
  // 40 wide, 20 high: dark left half, bright right half. Orientation 6 says
  // "turn 90 degrees clockwise to view": dark on top, 20 wide and 40 high.
  cv::Mat landscape(20, 40, CV_8UC3, cv::Scalar(0, 0, 0));
  landscape(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(255, 255, 255));
  const std::string jpg = encode(".jpg", landscape);
  EXPECT_EQ(jpeg_exif_orientation(jpg), 1);
  const std::string portrait = with_exif_orientation(jpg, 6);
  EXPECT_EQ(jpeg_exif_orientation(portrait), 6);
  EXPECT_EQ(jpeg_exif_orientation(with_exif_orientation(jpg, 77)), 1) << "an impossible value is ignored";
  EXPECT_EQ(jpeg_exif_orientation(portrait.substr(0, 20)), 1) << "a cut segment is ignored";
  TempDir t;
  t.write("task/a/portrait.jpg", portrait);
  t.write("task/b/landscape.jpg", jpg);
  IngestOptions options;
  options.side = 16;
  const ImageStore store(list_folder(t / "task"), options);
  ASSERT_EQ(store.size(), 2u);
  EXPECT_EQ(store.meta().max_height, 40);  // the portrait, upright
  EXPECT_EQ(store.meta().min_width, 20);
  const cv::Mat upright = store.image(0);
  EXPECT_LT(upright.at<cv::Vec3b>(1, 14)[0], 60) << "the top is the dark half";
  EXPECT_GT(upright.at<cv::Vec3b>(14, 1)[0], 200) << "the bottom is the bright half";
}

TEST_F(ImageStoreTest, ConvertsColourLayoutsToRgb) {
  IngestOptions options;
  options.side = 8;
  options.background = {0, 255, 0};
  const ImageStore store(list_folder(t_ / "task"), options);
  std::map<std::string, cv::Vec3b> centre;
  for (std::size_t i = 0; i < store.size(); ++i)
    centre[std::filesystem::path(store.path(i)).filename().string()] = store.image(i).at<cv::Vec3b>(4, 4);
  // at(): an image that went missing must fail, not read as black.
  EXPECT_EQ(centre.at("rgb.png"), cv::Vec3b(255, 0, 0));           // red, as RGB
  EXPECT_EQ(centre.at("gray16.png"), cv::Vec3b(255, 255, 255));     // 16-bit white
  EXPECT_EQ(centre.at("clear-rgba.png"), cv::Vec3b(0, 255, 0));     // composited onto the background
  EXPECT_EQ(centre.at("gray.bmp"), cv::Vec3b(0, 0, 0));
  const cv::Vec3b blue = centre.at("ñandú-青.jpg");                   // non-ASCII name, lossy blue
  EXPECT_GT(blue[2], 240);
  EXPECT_LT(blue[0], 15);
}

TEST(ImageConversionTest, TiffsThatWouldDecodeWrongAreSkippedSayingWhy) {
  IngestOptions options;
  options.side = 8;
  // Each is an intact file of a kind not taken: refused, not damaged.
  const auto reason_of = [&](const std::string& bytes) {
    ImageRefusal refusal;
    const cv::Mat square = decode_to_square(bytes, options, &refusal);
    if (square.empty()) EXPECT_EQ(refusal.kind, ImageRefusal::Kind::kRefused) << refusal.reason;
    else EXPECT_TRUE(refusal.empty()) << refusal.reason;
    return square.empty() ? refusal.reason : std::string("(used)");
  };
  // A codec libtiff lacks reads as zeros, without an error: a black image.
  std::string jpeg2000 = rgbx_tiff(0, 200, 30, 10, 0);
  const std::string uncompressed("\x03\x01\x03\x00\x01\x00\x00\x00\x01\x00", 10);  // 259 SHORT 1: 1
  const std::size_t at = jpeg2000.find(uncompressed);
  ASSERT_NE(at, std::string::npos);
  jpeg2000[at + 8] = char(34712 & 0xFF);
  jpeg2000[at + 9] = char(34712 >> 8);
  EXPECT_EQ(reason_of(rgbx_tiff(0, 200, 30, 10, 0)), "(used)");
  EXPECT_NE(reason_of(jpeg2000).find("TIFF compression 34712 has no decoder here"), std::string::npos)
      << reason_of(jpeg2000);
  EXPECT_TRUE(tiff_compression_decodable(1));
  EXPECT_TRUE(tiff_compression_decodable(5));
  EXPECT_FALSE(tiff_compression_decodable(34712));
  // Grey and alpha decodes as grey alone; unspecified extra samples are padding.
  EXPECT_NE(reason_of(grey_alpha_tiff(2, 100, 0)).find("grey-and-alpha TIFF"), std::string::npos);
  EXPECT_NE(reason_of(grey_alpha_tiff(1, 100, 0)).find("grey-and-alpha TIFF"), std::string::npos);
  EXPECT_EQ(reason_of(grey_alpha_tiff(0, 100, 0)), "(used)");
  // Floats are read as [0, 1]: 0-255 floats have no known scale.
  cv::Mat floats(4, 4, CV_32FC1, cv::Scalar(200.0f));
  EXPECT_EQ(reason_of(encode(".tiff", floats)), "float pixels outside [0, 1] (or not finite): their scale is unknown");
  floats = cv::Scalar(0.5f);
  EXPECT_EQ(reason_of(encode(".tiff", floats)), "(used)");
  // A BigTIFF is named as what it is, not as an unknown file.
  EXPECT_EQ(reason_of(std::string("II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0", 16)),
            "BigTIFF, which is not read (save it as a classic TIFF or PNG)");
}

TEST(ImageConversionTest, ATiffsFourthChannelIsAlphaOnlyWhenItsTagSaysSoAndIsCompositedOnce) {
  IngestOptions options;
  options.side = 8;
  options.background = {255, 255, 255};
  const auto centre = [&](const std::string& bytes) {
    ImageRefusal refusal;
    const cv::Mat square = decode_to_square(bytes, options, &refusal);
    EXPECT_FALSE(square.empty()) << refusal.reason;
    return square.empty() ? cv::Vec3b() : square.at<cv::Vec3b>(4, 4);
  };
  // "Unspecified" is padding: the colour shows, however the padding reads.
  EXPECT_EQ(centre(rgbx_tiff(0, 200, 30, 10, 0)), cv::Vec3b(200, 30, 10));
  // Red 200 (green 30) at half opacity on white is 227 (142) whether the
  // file stores it unassociated (200, 30) or associated (100, 15): the
  // colour is composited once.
  for (const auto& [extra, red, green] : {std::tuple{2, 200, 30}, std::tuple{1, 100, 15}}) {
    const cv::Vec3b c = centre(rgbx_tiff(extra, std::uint8_t(red), std::uint8_t(green), 10, 128));
    EXPECT_NEAR(c[0], 227, 1) << "ExtraSamples " << extra;
    EXPECT_NEAR(c[1], 30 * 128 / 255 + 127, 1) << "ExtraSamples " << extra;
  }
  // Without the tag (as OpenCV writes RGBA TIFFs) the channels are read as
  // stored: straight alpha.
  EXPECT_NEAR(centre(encode(".tiff", cv::Mat(4, 4, CV_8UC4, cv::Scalar(10, 30, 200, 128))))[0], 227, 1);
}

TEST(ImageConversionTest, AlphaThatIsZeroEverywhereIsPaddingOnEveryPath) {
  // What an app's cv::imread(IMREAD_UNCHANGED) of an XRGB BMP hands the
  // classifier: red, with a fourth channel of zeros.
  const std::array<std::uint8_t, 3> white{255, 255, 255};
  const cv::Mat padded(4, 4, CV_8UC4, cv::Scalar(0, 0, 200, 0));
  EXPECT_EQ(to_rgb8(padded, white).at<cv::Vec3b>(1, 1), cv::Vec3b(200, 0, 0));
  const cv::Mat grey_padded(4, 4, CV_8UC2, cv::Scalar(90, 0));
  EXPECT_EQ(to_rgb8(grey_padded, white).at<cv::Vec3b>(1, 1), cv::Vec3b(90, 90, 90));
  // One pixel of any opacity and alpha is alpha.
  cv::Mat faded = padded.clone();
  faded.at<cv::Vec4b>(0, 0)[3] = 1;
  EXPECT_EQ(to_rgb8(faded, white).at<cv::Vec3b>(1, 1), cv::Vec3b(255, 255, 255));
}

TEST(ImageConversionTest, A32BitBmpWithoutAnAlphaMaskIsOpaque) {
  IngestOptions options;
  options.side = 8;
  options.background = {0, 255, 0};
  ImageRefusal refusal;
  const std::string& reason = refusal.reason;
  const cv::Mat square = decode_to_square(xrgb_bmp(200, 20, 30), options, &refusal);
  ASSERT_FALSE(square.empty()) << reason;
  EXPECT_EQ(square.at<cv::Vec3b>(4, 4), cv::Vec3b(200, 20, 30)) << "the padding byte was taken for transparency";
  // Decided by the header, not by the padding's values: a padding byte of 0
  // in one pixel and 255 elsewhere must not make that pixel transparent.
  std::string mixed = xrgb_bmp(200, 20, 30);
  for (std::size_t i = 14 + 40 + 12 + 3 + 4; i < mixed.size(); i += 4) mixed[i] = char(0xFF);
  const cv::Mat mixed_square = decode_to_square(mixed, options, &refusal);
  ASSERT_FALSE(mixed_square.empty()) << reason;
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) ASSERT_EQ(mixed_square.at<cv::Vec3b>(y, x), cv::Vec3b(200, 20, 30)) << y << "," << x;
}

TEST(ImageStoreHeaderTest, ARepeatedTiffSizeTagCannotShrinkWhatThePixelCapSees) {
  // libtiff takes the first of a repeated tag; so must the header check.
  std::string tiff = rgbx_tiff(-1, 1, 2, 3, 4);
  const std::optional<ImageHeader> plain = parse_image_header(tiff);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->width, 4);
  // Append a second ImageWidth entry of 1 to the directory (11 entries).
  std::uint32_t directory = 0;
  for (int i = 3; i >= 0; --i) directory = (directory << 8) | std::uint8_t(tiff[std::size_t(4 + i)]);
  const std::size_t count_at = directory, end = directory + 2 + 12 * std::size_t(std::uint8_t(tiff[count_at]));
  const std::string second_width{char(0), char(1), char(3), char(0), char(1), char(0), char(0), char(0),
                                 char(1), char(0), char(0), char(0)};
  tiff.insert(end, second_width);
  tiff[count_at] = char(std::uint8_t(tiff[count_at]) + 1);
  const std::optional<ImageHeader> repeated = parse_image_header(tiff);
  ASSERT_TRUE(repeated.has_value());
  EXPECT_EQ(repeated->width, 4);
}

TEST(ImageConversionTest, AThinStripIsCutToItsCentreBeforeItIsResized) {
  // A 2 KB PNG of 1 x 600,000 pixels: resized whole to a 128-pixel short
  // side it would need 29 GB, and the decoding thread died with the process.
  TempDir t;
  cv::Mat strip(1, 600000, CV_8UC3, cv::Scalar(10, 20, 30));
  t.write("task/a/strip.png", encode(".png", strip));
  t.write("task/a/ok.png", encode(".png", cv::Mat(40, 40, CV_8UC3, cv::Scalar(1, 2, 3))));
  t.write("task/b/ok.png", encode(".png", cv::Mat(40, 40, CV_8UC3, cv::Scalar(3, 2, 1))));
  IngestOptions options;
  options.side = 128;
  const ImageStore store(list_folder(t / "task"), options);
  ASSERT_EQ(store.size(), 3u) << reason_for(store, "strip.png");
  for (std::size_t i = 0; i < store.size(); ++i) {
    if (std::filesystem::path(store.path(i)).filename() != "strip.png") continue;
    const cv::Mat image = store.image(i);
    EXPECT_EQ(image.size(), cv::Size(128, 128));
    EXPECT_EQ(image.at<cv::Vec3b>(0, 0), cv::Vec3b(30, 20, 10));  // BGR in, RGB out
    EXPECT_EQ(image.at<cv::Vec3b>(127, 127), cv::Vec3b(30, 20, 10));
  }
  // The square is the image's centre, then resized: a wide image's left and
  // right thirds are cut, the rest halved.
  cv::Mat wide(20, 60, CV_8UC3, cv::Scalar(0, 0, 0));
  wide(cv::Rect(20, 0, 20, 20)).setTo(cv::Scalar(255, 255, 255));
  const cv::Mat square = fit_square(wide, 10);
  ASSERT_EQ(square.size(), cv::Size(10, 10));
  EXPECT_EQ(cv::countNonZero(square.reshape(1) == 255), 10 * 10 * 3);
}

TEST(ImageConversionTest, FloatDepthsAreScaledAndSignedDepthsRefusedNotGuessed) {
  const std::array<std::uint8_t, 3> white{255, 255, 255};
  cv::Mat half16f;
  cv::Mat(4, 4, CV_32FC1, cv::Scalar(0.5)).convertTo(half16f, CV_16F);
  const cv::Mat from16f = to_rgb8(half16f, white);
  ASSERT_FALSE(from16f.empty());
  EXPECT_NEAR(from16f.at<cv::Vec3b>(0, 0)[0], 128, 1);
  for (int depth : {CV_8S, CV_16S, CV_32S}) {
    const cv::Mat m(4, 4, CV_MAKETYPE(depth, 3), cv::Scalar(100, 100, 100));
    EXPECT_TRUE(to_rgb8(m, white).empty()) << depth;
    EXPECT_NE(unsupported_pixels(m).find("signed"), std::string::npos) << unsupported_pixels(m);
  }
  EXPECT_NE(unsupported_pixels(cv::Mat(2, 2, CV_8UC(5))).find("channel count 5"), std::string::npos);
  EXPECT_EQ(unsupported_pixels(cv::Mat(2, 2, CV_16UC4)), "");
}

TEST_F(ImageStoreTest, MetaFeaturesDescribeTheUsableImages) {
  IngestOptions options;
  options.side = 8;
  const ImageStore store(list_folder(t_ / "task"), options);
  const TaskMeta& m = store.meta();
  EXPECT_EQ(m.classes, 2);
  EXPECT_EQ(m.images, 5);
  EXPECT_EQ(m.min_per_class, 2);
  EXPECT_EQ(m.max_per_class, 3);
  EXPECT_DOUBLE_EQ(m.mean_per_class, 2.5);
  EXPECT_EQ(m.min_width, 20);
  EXPECT_EQ(m.max_width, 60);
  EXPECT_EQ(m.min_height, 10);
  EXPECT_EQ(m.max_height, 50);
  EXPECT_DOUBLE_EQ(m.grayscale_fraction, 2.0 / 5.0);  // the 16-bit and the BMP
  // Per channel over: red, white, white background, blue, black.
  EXPECT_NEAR(m.pixel_mean[0], (1 + 1 + 1 + 0 + 0) / 5.0, 0.02);
  EXPECT_NEAR(m.pixel_mean[2], (0 + 1 + 1 + 1 + 0) / 5.0, 0.02);
  EXPECT_NEAR(m.pixel_std[0], std::sqrt(0.6 - 0.36), 0.02);
}

TEST(ImageStoreGreyTest, AGreyAndAlphaPngCountsAsGreyAndIsComposited) {
  TempDir t;
  const std::string png = grey_alpha_png(6, 4, 200, 255);
  ImageRefusal refusal;
  const std::string& reason = refusal.reason;
  cv::Size original;
  int channels = 0;
  IngestOptions options;
  options.side = 8;
  const cv::Mat square = decode_to_square(png, options, &refusal, &original, &channels);
  ASSERT_FALSE(square.empty()) << reason;
  EXPECT_EQ(channels, 2);  // OpenCV hands it over as 4 channels
  EXPECT_EQ(original, cv::Size(6, 4));
  EXPECT_EQ(square.at<cv::Vec3b>(3, 3), cv::Vec3b(200, 200, 200));
  // Half transparent over the white background.
  const cv::Mat faded = decode_to_square(grey_alpha_png(6, 4, 0, 128), options, &refusal);
  ASSERT_FALSE(faded.empty()) << reason;
  EXPECT_NEAR(faded.at<cv::Vec3b>(3, 3)[0], 127, 1);

  t.write("task/a/ga.png", png);
  t.write("task/a/rgba.png", encode(".png", cv::Mat(4, 4, CV_8UC4, cv::Scalar(10, 20, 30, 255))));
  t.write("task/b/ga.png", grey_alpha_png(5, 5, 50, 255));
  t.write("task/b/rgb.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(10, 20, 30))));
  EXPECT_DOUBLE_EQ(ImageStore(list_folder(t / "task"), options).meta().grayscale_fraction, 0.5);
}

TEST_F(ImageStoreTest, StreamingGivesTheSameImagesAsTheCache) {
  IngestOptions cached;
  cached.side = 12;
  IngestOptions streamed = cached;
  streamed.memory_cap_bytes = 0;
  const ImageStore a(list_folder(t_ / "task"), cached), b(list_folder(t_ / "task"), streamed);
  EXPECT_FALSE(a.streaming());
  EXPECT_TRUE(b.streaming());
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(cv::norm(a.image(i), b.image(i), cv::NORM_INF), 0) << a.path(i);
}

TEST_F(ImageStoreTest, AClassWithoutUsableImagesIsAnErrorNamingIt) {
  t_.write("bad/good/ok.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(0))));
  t_.write("bad/broken/empty.jpg", "");
  t_.write("bad/broken/text.png", "text");
  // The caller gets no Task to ask for the skipped files: the error names them.
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { ImageStore(list_folder(t_ / "bad"), IngestOptions{}); }, ErrorCode::kInvalidArgument,
      {"class 'broken' has no usable image", "empty.jpg (zero-byte file)", "text.png (not a recognised image"}));
}

TEST_F(ImageStoreTest, AnEmptyClassFolderIsAnErrorNamingIt) {
  t_.write("task/cat/a.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(0))));
  t_.write("task/dog/b.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(255))));
  std::filesystem::create_directories(t_ / "task/empty");
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { ImageStore(list_folder(t_ / "task"), IngestOptions{}); },
                                                ErrorCode::kInvalidArgument, {"class 'empty' has no usable image"}));
}

TEST_F(ImageStoreTest, AClassOfFilesListingPassedOverNamesThem) {
  // No file of the class became a sample (GIFs are no image type the SDK
  // reads): the error still says what was in the folder.
  t_.write("gifs/good/ok.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(0))));
  t_.write("gifs/owl/a.gif", "GIF89a");
  t_.write("gifs/owl/.hidden.png", "x");
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { ImageStore(list_folder(t_ / "gifs"), IngestOptions{}); },
                                                ErrorCode::kInvalidArgument,
                                                {"class 'owl' has no usable image", "a.gif (not an image file type",
                                                 ".hidden.png (hidden file)"}));
}

TEST_F(ImageStoreTest, AMultiPageTiffIsUsedByItsFirstPageAndListedSayingSo) {
  const std::vector<cv::Mat> pages{cv::Mat(8, 8, CV_8UC3, cv::Scalar(0, 0, 255)),
                                   cv::Mat(8, 8, CV_8UC3, cv::Scalar(255, 0, 0))};
  std::filesystem::create_directories(t_ / "pages/red");
  ASSERT_TRUE(cv::imwritemulti(t_ / "pages/red/stack.tiff", pages));
  ASSERT_TRUE(cv::imwrite(t_ / "pages/red/one.tiff", pages[0]));
  t_.write("pages/blue/b.png", encode(".png", pages[1]));
  IngestOptions options;
  options.side = 8;
  const ImageStore store(list_folder(t_ / "pages"), options);
  EXPECT_EQ(store.size(), 3u) << "every file is used";
  EXPECT_EQ(reason_for(store, "stack.tiff"), "a multi-page TIFF: its first page is used, the pages after it are not");
  EXPECT_EQ(reason_for(store, "one.tiff"), "(not skipped)");
  EXPECT_EQ(store.skipped().size(), 1u);
}

TEST_F(ImageStoreTest, ReadingStopsAtItsTimeLimit) {
  IngestOptions options;
  options.side = 16;
  options.max_pixels = 10'000'000;
  options.time_limit_seconds = 1e-9;  // over before the first image
  EXPECT_TRUE(nasoa::testing::throws_error([&] { ImageStore(list_folder(t_ / "task"), options); },
                                           ErrorCode::kInvalidArgument, "took more than its limit of 1e-09 s"))
      << "reading ran past its limit";
  options.time_limit_seconds = 600;
  EXPECT_EQ(ImageStore(list_folder(t_ / "task"), options).size(), 5u);
  options.time_limit_seconds = -1;
  EXPECT_THROW(ImageStore(list_folder(t_ / "task"), options), Error);
}

TEST_F(ImageStoreTest, ANegativeThreadCountIsRefusedNamingIt) {
  t_.write("task/a/x.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(0))));
  t_.write("task/b/y.png", encode(".png", cv::Mat(4, 4, CV_8UC3, cv::Scalar(255))));
  IngestOptions options;
  options.threads = -1;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { ImageStore(list_folder(t_ / "task"), options); },
                                           ErrorCode::kInvalidArgument, "threads must be 0"));
}

TEST(ImageStoreIdxTest, DecodesFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  if (!std::filesystem::exists(dir + "t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  IngestOptions options;
  options.side = 32;
  const ImageStore store(list_idx(dir + "t10k-images-idx3-ubyte.gz", dir + "t10k-labels-idx1-ubyte.gz"), options);
  EXPECT_EQ(store.size(), 10000u);
  EXPECT_DOUBLE_EQ(store.meta().grayscale_fraction, 1.0);
  EXPECT_EQ(store.meta().max_width, 28);
  // Fashion-MNIST's published pixel mean is about 0.286.
  EXPECT_NEAR(store.meta().pixel_mean[0], 0.286, 0.01);
  EXPECT_EQ(store.meta().pixel_mean[0], store.meta().pixel_mean[1]);
}

}  // namespace
}  // namespace nasoa::runtime
