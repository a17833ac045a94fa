// runtime/data/image_header.h: image dimensions from a file's header alone.
//
// Decoding an image to learn its size can cost gigabytes (real PNGs of 600+
// megapixels exist in public clip-art sets), so the pixel cap is checked
// against the header first. Reads at most a few KiB; never decodes pixels.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nasoa::runtime {

enum class ImageFormat { kPng, kJpeg, kBmp, kWebp, kTiff };

struct ImageHeader {
  ImageFormat format;
  std::int64_t width = 0;
  std::int64_t height = 0;
  // The file stores grey levels (PNG colour types 0 and 4). OpenCV decodes a
  // grey-and-alpha PNG as four BGRA channels, so the decoded channel count
  // alone would call it colour.
  bool stored_grey = false;
  // A TIFF's ExtraSamples tag, its first value: 0 unspecified (padding, not
  // alpha), 1 associated alpha (colour stored times alpha), 2 unassociated
  // alpha. -1: no such tag, or another format.
  int tiff_extra_sample = -1;
  // A fourth decoded channel is padding, not alpha: a TIFF's "unspecified"
  // extra sample, or a BMP whose header is too short to hold an alpha mask
  // (OpenCV decodes its 32-bit BI_BITFIELDS pixels as BGRA).
  bool fourth_channel_is_padding = false;
  // A TIFF whose first page (the one decoded) is followed by more.
  bool tiff_more_pages = false;
  // A TIFF's Compression (1: none) and SamplesPerPixel tags; 0 for other formats.
  int tiff_compression = 0;
  int tiff_samples = 0;
};

// Whether the libtiff that OpenCV decodes with has the codec of TIFF
// compression `code`. For one it lacks, OpenCV hands back an image of zeros
// without an error.
bool tiff_compression_decodable(int code);

// The format and size announced by `bytes` (the start of a file, or all of
// it), or std::nullopt when it is not a PNG, JPEG, BMP, WebP or TIFF, or the
// header is cut short. For JPEG the SOF segment may lie after large metadata,
// so pass enough bytes (the image store passes the first 256 KiB).
std::optional<ImageHeader> parse_image_header(std::string_view bytes);

const char* format_name(ImageFormat format);

// The EXIF orientation (1-8; 1: as stored) of a JPEG's APP1 segment, 1 when
// it has none or it cannot be read. Phones store a portrait photo as a
// landscape image with orientation 6; OpenCV applies it only when asked to
// convert the pixels, which the store cannot ask (it keeps alpha and depth).
int jpeg_exif_orientation(std::string_view bytes);

}  // namespace nasoa::runtime
