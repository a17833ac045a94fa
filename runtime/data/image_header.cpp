#include "runtime/data/image_header.h"

#include <dlfcn.h>

#include <cstring>

namespace nasoa::runtime {
namespace {

std::uint32_t be16(std::string_view b, std::size_t at) {
  return (std::uint32_t(std::uint8_t(b[at])) << 8) | std::uint8_t(b[at + 1]);
}
std::uint32_t be32(std::string_view b, std::size_t at) { return (be16(b, at) << 16) | be16(b, at + 2); }
std::uint32_t le16(std::string_view b, std::size_t at) {
  return std::uint8_t(b[at]) | (std::uint32_t(std::uint8_t(b[at + 1])) << 8);
}
std::uint32_t le24(std::string_view b, std::size_t at) { return le16(b, at) | (std::uint32_t(std::uint8_t(b[at + 2])) << 16); }
std::uint32_t le32(std::string_view b, std::size_t at) { return le16(b, at) | (le16(b, at + 2) << 16); }

std::optional<ImageHeader> png(std::string_view b) {
  // Signature, then the IHDR chunk: length, "IHDR", width, height (big-endian),
  // bit depth, colour type.
  if (b.size() < 24 || b.substr(12, 4) != "IHDR") return std::nullopt;
  ImageHeader header{ImageFormat::kPng, be32(b, 16), be32(b, 20)};
  if (b.size() > 25) header.stored_grey = b[25] == 0 || b[25] == 4;
  return header;
}

std::optional<ImageHeader> jpeg(std::string_view b) {
  std::size_t at = 2;
  while (at + 4 <= b.size()) {
    if (std::uint8_t(b[at]) != 0xFF) {
      // Stray bytes between segments: libjpeg skips to the next marker (with
      // a warning) and decodes the image, so this does too.
      at = b.find('\xFF', at);
      if (at == std::string_view::npos) return std::nullopt;
      continue;
    }
    const std::uint8_t marker = std::uint8_t(b[at + 1]);
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {
      at += 2;  // markers without a length
      continue;
    }
    const std::uint32_t length = be16(b, at + 2);
    // SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
      if (at + 9 > b.size()) return std::nullopt;
      return ImageHeader{ImageFormat::kJpeg, be16(b, at + 7), be16(b, at + 5)};
    }
    if (marker == 0xDA || length < 2) return std::nullopt;  // scan data before any frame header
    at += 2 + length;
  }
  return std::nullopt;
}

std::optional<ImageHeader> bmp(std::string_view b) {
  if (b.size() < 26) return std::nullopt;
  const std::uint32_t dib = le32(b, 14);
  if (dib == 12) return ImageHeader{ImageFormat::kBmp, le16(b, 18), le16(b, 20)};
  if (dib < 40) return std::nullopt;
  const auto width = static_cast<std::int32_t>(le32(b, 18));
  const auto height = static_cast<std::int32_t>(le32(b, 22));  // negative = top-down
  ImageHeader header{ImageFormat::kBmp, width < 0 ? -std::int64_t(width) : width,
                     height < 0 ? -std::int64_t(height) : height};
  header.fourth_channel_is_padding = dib < 56;  // the alpha mask is the 14th field of a V3 header
  return header;
}

std::optional<ImageHeader> webp(std::string_view b) {
  if (b.size() < 30) return std::nullopt;
  const std::string_view chunk = b.substr(12, 4);
  if (chunk == "VP8X") return ImageHeader{ImageFormat::kWebp, le24(b, 24) + 1, le24(b, 27) + 1};
  if (chunk == "VP8L") {
    if (std::uint8_t(b[20]) != 0x2F) return std::nullopt;
    const std::uint32_t bits = le32(b, 21);
    return ImageHeader{ImageFormat::kWebp, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (chunk == "VP8 ") {
    if (b.substr(23, 3) != "\x9d\x01\x2a") return std::nullopt;
    return ImageHeader{ImageFormat::kWebp, le16(b, 26) & 0x3FFF, le16(b, 28) & 0x3FFF};
  }
  return std::nullopt;
}

std::optional<ImageHeader> tiff(std::string_view b) {
  const bool little = b[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(b, at) : be16(b, at); };
  auto u32 = [&](std::size_t at) { return little ? le32(b, at) : be32(b, at); };
  const std::uint32_t ifd = u32(4);
  if (std::uint64_t(ifd) + 2 > b.size()) return std::nullopt;  // 64-bit: an offset near 2^32 wraps
  const std::uint32_t entries = u16(ifd);
  std::int64_t width = 0, height = 0;
  int extra_sample = -1, compression = 1, samples = 1;  // the tags' defaults
  for (std::uint32_t i = 0; i < entries; ++i) {
    const std::size_t e = ifd + 2 + 12 * std::size_t(i);
    if (e + 12 > b.size()) return std::nullopt;
    const std::uint32_t tag = u16(e), type = u16(e + 2);
    const std::uint32_t value = type == 3 ? u16(e + 8) : u32(e + 8);  // SHORT or LONG
    // The first of a repeated tag, as libtiff takes it: a later one must not
    // shrink the size the pixel cap sees.
    if (tag == 256 && width == 0) width = value;
    if (tag == 257 && height == 0) height = value;
    // SHORTs; the first of up to two lies in the entry itself.
    if (tag == 338 && extra_sample == -1 && type == 3 && u32(e + 4) >= 1 && u32(e + 4) <= 2)
      extra_sample = int(u16(e + 8));
    if (tag == 259 && type == 3) compression = int(value);
    if (tag == 277 && type == 3) samples = int(value);
  }
  if (width == 0 || height == 0) return std::nullopt;
  ImageHeader header{ImageFormat::kTiff, width, height};
  header.tiff_extra_sample = extra_sample;
  header.tiff_compression = compression;
  header.tiff_samples = samples;
  header.fourth_channel_is_padding = extra_sample == 0;
  // The offset of the next page's directory follows the entries; 0 ends the list.
  const std::size_t next = ifd + 2 + 12 * std::size_t(entries);
  header.tiff_more_pages = next + 4 <= b.size() && u32(next) != 0;
  return header;
}

}  // namespace

bool tiff_compression_decodable(int code) {
  // libtiff answers for itself where OpenCV links it as a library of its
  // own (Debian, Ubuntu, JetPack); a libtiff built into OpenCV is out of
  // sight, and then only the codecs every libtiff build has are trusted.
  using Configured = int (*)(std::uint16_t);
  static const Configured configured = reinterpret_cast<Configured>(::dlsym(RTLD_DEFAULT, "TIFFIsCODECConfigured"));
  if (code < 0 || code > 0xFFFF) return false;
  if (configured) return configured(std::uint16_t(code)) != 0;
  for (int known : {1, 2, 3, 4, 5, 7, 8, 32773, 32946})  // none, CCITT, LZW, JPEG, Deflate, PackBits
    if (code == known) return true;
  return false;
}

std::optional<ImageHeader> parse_image_header(std::string_view b) {
  if (b.size() >= 8 && b.substr(0, 8) == "\x89PNG\r\n\x1a\n") return png(b);
  if (b.size() >= 3 && b.substr(0, 3) == "\xFF\xD8\xFF") return jpeg(b);
  if (b.size() >= 2 && b.substr(0, 2) == "BM") return bmp(b);
  if (b.size() >= 12 && b.substr(0, 4) == "RIFF" && b.substr(8, 4) == "WEBP") return webp(b);
  if (b.size() >= 8 && (b.substr(0, 4) == std::string_view("II*\0", 4) ||
                        b.substr(0, 4) == std::string_view("MM\0*", 4)))
    return tiff(b);
  return std::nullopt;
}

int jpeg_exif_orientation(std::string_view b) {
  if (b.size() < 4 || b.substr(0, 3) != "\xFF\xD8\xFF") return 1;
  std::size_t at = 2;
  while (at + 4 <= b.size() && std::uint8_t(b[at]) == 0xFF) {
    const std::uint8_t marker = std::uint8_t(b[at + 1]);
    if (marker == 0xDA || marker == 0xD9) break;  // the image data: no more metadata
    const std::size_t length = be16(b, at + 2);
    if (length < 2 || at + 2 + length > b.size()) break;
    const std::string_view data = b.substr(at + 4, length - 2);
    if (marker == 0xE1 && data.size() >= 14 && data.substr(0, 6) == std::string_view("Exif\0\0", 6)) {
      const std::string_view tiff = data.substr(6);
      if (tiff.substr(0, 2) != "II" && tiff.substr(0, 2) != "MM") return 1;
      const bool little = tiff[0] == 'I';
      auto u16 = [&](std::uint64_t p) { return little ? le16(tiff, p) : be16(tiff, p); };
      auto u32 = [&](std::uint64_t p) { return little ? le32(tiff, p) : be32(tiff, p); };
      const std::uint64_t ifd = u32(4);
      if (ifd + 2 > tiff.size()) return 1;
      const std::uint32_t entries = u16(ifd);
      for (std::uint32_t i = 0; i < entries; ++i) {
        const std::uint64_t e = ifd + 2 + 12 * std::uint64_t(i);
        if (e + 12 > tiff.size()) return 1;
        if (u16(e) == 0x0112 && u16(e + 2) == 3) {  // Orientation, SHORT
          const std::uint32_t value = u16(e + 8);
          return value >= 1 && value <= 8 ? int(value) : 1;
        }
      }
      return 1;
    }
    at += 2 + length;
  }
  return 1;
}

const char* format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::kPng: return "PNG";
    case ImageFormat::kJpeg: return "JPEG";
    case ImageFormat::kBmp: return "BMP";
    case ImageFormat::kWebp: return "WebP";
    case ImageFormat::kTiff: return "TIFF";
  }
  return "?";
}

}  // namespace nasoa::runtime
