#include "runtime/data/image_store.h"

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <thread>

#include "nasoa/error.h"
#include "runtime/data/image_header.h"
#include "zoo/text/printable.h"
#include "zoo/system/usable_cores.h"

namespace nasoa::runtime {
namespace {

constexpr std::size_t kHeaderBytes = 256 * 1024;

// Reads the first `limit` bytes of a file (all of it when limit is 0).
using Kind = ImageRefusal::Kind;

ImageRefusal damaged(std::string reason) { return {Kind::kDamaged, std::move(reason)}; }
ImageRefusal refused(std::string reason) { return {Kind::kRefused, std::move(reason)}; }

bool read_bytes(const std::string& path, std::size_t limit, std::string* out, ImageRefusal* refusal) {
  // Opening a pipe or a device would block or never end.
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    *refusal = ec ? ImageRefusal{Kind::kUnreadable, "cannot open: " + ec.message()} : refused("not a regular file");
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *refusal = {Kind::kUnreadable, "cannot open"};
    return false;
  }
  out->clear();
  if (limit == 0) {
    in.seekg(0, std::ios::end);
    const std::streamoff size = in.tellg();
    in.seekg(0);
    out->resize(static_cast<std::size_t>(std::max<std::streamoff>(size, 0)));
  } else {
    out->resize(limit);
  }
  in.read(out->data(), static_cast<std::streamsize>(out->size()));
  out->resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) {
    *refusal = {Kind::kUnreadable, "read error"};
    return false;
  }
  return true;
}

// A JPEG cut short still decodes (libjpeg pads it with grey); its missing
// end-of-image marker gives it away. The marker is found by walking the
// file's structure, not by looking for its two bytes: an EXIF thumbnail
// holds an end-of-image marker of its own, and data may follow the image
// (a Motion Photo's video).
bool jpeg_is_complete(const std::string& bytes) {
  const auto byte = [&](std::size_t at) { return std::uint8_t(bytes[at]); };
  std::size_t at = 2;  // after SOI
  bool in_scan = false;
  while (at + 1 < bytes.size()) {
    if (byte(at) != 0xFF) {
      // Entropy-coded data, or stray bytes between segments, which libjpeg
      // skips to the next marker (as parse_image_header does).
      ++at;
      continue;
    }
    const std::uint8_t marker = byte(at + 1);
    if (marker == 0xD9) return true;
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (in_scan && (marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7))) {  // stuffed byte, restart marker
      at += 2;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // markers without a length
      at += 2;
      continue;
    }
    if (at + 4 > bytes.size()) return false;
    const std::size_t length = (std::size_t(byte(at + 2)) << 8) | byte(at + 3);
    if (length < 2) return false;
    at += 2 + length;
    in_scan = marker == 0xDA;  // a scan's data follows its header; DHT etc. may come between scans
  }
  return false;
}

// Why a PNG cannot be decoded, found from its chunks alone; empty when its
// chunks are whole up to IEND and the critical ones (IHDR, PLTE, IDAT, IEND:
// an upper-case first letter) match their CRCs. libpng would fail on the same
// files, but print "libpng error: ..." to the app's stderr first (OpenCV
// installs no error handler). OpenCV tells libpng to ignore CRCs, so a file
// damaged in its pixel data would otherwise reach zlib as garbage. Ancillary
// chunks are not checked: libpng only warns about theirs.
std::string png_damage(const std::string& bytes) {
  const auto u32 = [&](std::size_t at) {
    return (std::uint32_t(std::uint8_t(bytes[at])) << 24) | (std::uint32_t(std::uint8_t(bytes[at + 1])) << 16) |
           (std::uint32_t(std::uint8_t(bytes[at + 2])) << 8) | std::uint32_t(std::uint8_t(bytes[at + 3]));
  };
  std::size_t at = 8;  // after the signature
  while (at + 8 <= bytes.size()) {
    const std::uint32_t length = u32(at);
    const std::string type = zoo::printable(std::string_view(bytes).substr(at + 4, 4));
    if (length > 0x7FFFFFFFu) return "damaged PNG (a chunk length of " + std::to_string(length) + ")";
    if (bytes.size() - at - 8 < std::size_t(length) + 4) return "truncated PNG (its " + type + " chunk is cut short)";
    const bool critical = (std::uint8_t(bytes[at + 4]) & 0x20) == 0;
    if (critical) {
      const auto* data = reinterpret_cast<const Bytef*>(bytes.data() + at + 4);
      if (crc32(crc32(0L, Z_NULL, 0), data, uInt(length + 4)) != u32(at + 8 + length))
        return "damaged PNG (CRC error in its " + type + " chunk)";
    }
    if (type == "IEND") return "";
    at += 12 + std::size_t(length);
  }
  return "truncated PNG (no IEND chunk)";
}

// The header's verdict: empty when the bytes may be decoded, else why not.
ImageRefusal header_refusal(const std::string& bytes, const IngestOptions& options,
                            std::optional<ImageHeader>* header) {
  if (bytes.empty()) return damaged("zero-byte file");
  *header = parse_image_header(bytes);
  if (!*header) {
    if (bytes.size() >= 4 && (bytes.compare(0, 4, std::string("II+\0", 4)) == 0 ||
                              bytes.compare(0, 4, std::string("MM\0+", 4)) == 0))
      return refused("BigTIFF, which is not read (save it as a classic TIFF or PNG)");
    // A known signature whose header cannot be read: a damaged or cut file
    // of that format, not something else.
    const auto starts = [&](std::string_view magic) { return bytes.compare(0, magic.size(), magic) == 0; };
    const char* format = starts(std::string_view("\x89PNG\r\n\x1a\n", 8))                               ? "PNG"
                         : starts(std::string_view("\xff\xd8\xff", 3))                                     ? "JPEG"
                         : starts(std::string_view("II*\0", 4)) || starts(std::string_view("MM\0*", 4))       ? "TIFF"
                         : starts("BM")                                                                      ? "BMP"
                         : bytes.size() >= 12 && starts("RIFF") && bytes.compare(8, 4, "WEBP") == 0          ? "WebP"
                                                                                                             : nullptr;
    if (format) return damaged(std::string("damaged or truncated ") + format + " (its header cannot be read)");
    return damaged("not a recognised image (PNG, JPEG, BMP, WebP or TIFF header expected)");
  }
  if ((*header)->format == ImageFormat::kTiff) {
    const int compression = (*header)->tiff_compression;
    if (!tiff_compression_decodable(compression))
      return refused("TIFF compression " + std::to_string(compression) +
                     " has no decoder here (it would read as a black image): save it as PNG or an LZW/Deflate TIFF");
    // OpenCV reads grey and alpha as grey alone: the transparent parts
    // would show what is stored under them, not the background.
    if ((*header)->tiff_samples == 2 && ((*header)->tiff_extra_sample == 1 || (*header)->tiff_extra_sample == 2))
      return refused("grey-and-alpha TIFF: its transparency would be lost in decoding; save it as PNG");
  }
  // Sides are up to 2^32 each: their product is compared without forming it.
  const std::int64_t width = (*header)->width, height = (*header)->height;
  if (height > 0 && width > options.max_pixels / height)
    return refused(std::string(format_name((*header)->format)) + " header announces " + std::to_string(width) + "x" +
                   std::to_string(height) + " = " + zoo::shown_number(double(width) * double(height)) +
                   " pixels, above the cap of " + std::to_string(options.max_pixels) + "; not decoded");
  return {};
}

cv::Mat idx_square(const IdxImages& idx, std::int64_t index, int side) {
  const cv::Mat gray(int(idx.rows), int(idx.cols), CV_8U,
                     const_cast<std::uint8_t*>(idx.pixels.data() + index * idx.rows * idx.cols));
  cv::Mat rgb;
  cv::cvtColor(gray, rgb, cv::COLOR_GRAY2RGB);
  return fit_square(rgb, side);
}

}  // namespace

// The files of class `c` that were skipped, with their reasons, for the
// error that ends ingestion: the caller gets no Task to ask for them.
std::string ImageStore::skipped_in_class(std::size_t c) const {
  constexpr std::size_t kShown = 5;
  std::set<std::string> paths;
  for (const SampleRef& s : source_.samples)
    if (s.label == int(c)) paths.insert(s.path);
  // For a folder task, also what listing the class folder passed over
  // (files of other types, hidden ones, repeats through links): they never
  // became samples.
  const std::string folder = (std::filesystem::path(source_.origin) / source_.class_names[c]).string() + "/";
  std::vector<const SkippedFile*> mine;
  for (const SkippedFile& f : skipped_)
    if (paths.count(f.path) > 0 || f.path.rfind(folder, 0) == 0) mine.push_back(&f);
  if (mine.empty()) return " (no image file in it)";
  std::string out = "; its " + std::to_string(mine.size()) + " file(s) were skipped:";
  for (std::size_t i = 0; i < std::min(kShown, mine.size()); ++i)
    out += " " + zoo::printable(mine[i]->path) + " (" + mine[i]->reason + ");";
  if (mine.size() > kShown) out += " and " + std::to_string(mine.size() - kShown) + " more";
  else out.pop_back();
  return out;
}

std::string unsupported_pixels(const cv::Mat& m) {
  if (m.channels() < 1 || m.channels() > 4)
    return "unsupported channel count " + std::to_string(m.channels()) + " (1 to 4 expected)";
  const char* depth = nullptr;
  switch (m.depth()) {
    case CV_8U: case CV_16U: return {};
    case CV_16F: case CV_32F: case CV_64F: {
      // Floats are read as [0, 1]; tools that write 0-255 (or worse) floats
      // would turn into a white image.
      cv::Mat f = m;
      if (m.depth() == CV_16F) m.convertTo(f, CV_32F);
      if (!cv::checkRange(f, true, nullptr, -1e-3, 1.001))
        return "float pixels outside [0, 1] (or not finite): their scale is unknown";
      return {};
    }
    case CV_8S: depth = "8-bit signed"; break;
    case CV_16S: depth = "16-bit signed"; break;
    case CV_32S: depth = "32-bit signed"; break;
    default: return "unsupported pixel depth " + std::to_string(m.depth());
  }
  return std::string("unsupported pixel depth: ") + depth + " (8- or 16-bit unsigned, or float in [0,1] expected)";
}

cv::Mat to_8bit(const cv::Mat& decoded) {
  // Signed integers have no agreed scale: refused rather than guessed.
  if (!unsupported_pixels(decoded).empty()) return {};
  cv::Mat m = decoded;
  if (m.depth() == CV_16F) m.convertTo(m, CV_32F);
  if (m.depth() == CV_16U) m.convertTo(m, CV_8U, 1.0 / 257.0);
  else if (m.depth() == CV_32F || m.depth() == CV_64F) m.convertTo(m, CV_8U, 255.0);
  return m;
}

cv::Mat to_rgb8(const cv::Mat& decoded, const std::array<std::uint8_t, 3>& background, bool premultiplied) {
  cv::Mat m = to_8bit(decoded);
  if (m.empty()) return {};
  if (m.channels() == 2 || m.channels() == 4) {
    // Alpha that is 0 everywhere is padding (a BMP or TIFF whose fourth
    // channel was never alpha, as an app's cv::imread hands it over), not
    // an image of nothing but background.
    cv::Mat alpha;
    cv::extractChannel(m, alpha, m.channels() - 1);
    if (cv::countNonZero(alpha) == 0) {
      cv::Mat colour;
      if (m.channels() == 4) cv::cvtColor(m, colour, cv::COLOR_BGRA2BGR);
      else cv::extractChannel(m, colour, 0);
      m = colour;
    }
  }
  cv::Mat rgb;
  switch (m.channels()) {
    case 1: cv::cvtColor(m, rgb, cv::COLOR_GRAY2RGB); return rgb;
    case 3: cv::cvtColor(m, rgb, cv::COLOR_BGR2RGB); return rgb;
    case 2:
    case 4: {
      cv::Mat rgba;
      if (m.channels() == 2) {
        std::vector<cv::Mat> ga;
        cv::split(m, ga);
        cv::merge(std::vector<cv::Mat>{ga[0], ga[0], ga[0], ga[1]}, rgba);
      } else {
        cv::cvtColor(m, rgba, cv::COLOR_BGRA2RGBA);
      }
      rgb.create(rgba.size(), CV_8UC3);
      for (int y = 0; y < rgba.rows; ++y) {
        const cv::Vec4b* src = rgba.ptr<cv::Vec4b>(y);
        cv::Vec3b* dst = rgb.ptr<cv::Vec3b>(y);
        for (int x = 0; x < rgba.cols; ++x) {
          const int a = src[x][3];
          for (int c = 0; c < 3; ++c) {
            const int under = background[std::size_t(c)] * (255 - a);
            dst[x][c] = static_cast<std::uint8_t>(
                premultiplied ? std::min(255, src[x][c] + (under + 127) / 255) : (src[x][c] * a + under + 127) / 255);
          }
        }
      }
      return rgb;
    }
    default: return {};
  }
}

// Only the header is read first, so that an image over the pixel cap is
// refused without reading (let alone decoding) the rest of it. Two formats
// may keep their header past the first bytes (a TIFF's directory after its
// pixels, a JPEG's frame after large metadata): such a file is read whole to
// judge it, when its size could belong to an image within the cap.
cv::Mat load_file_square(const std::string& path, const IngestOptions& options, std::string* bytes,
                         ImageRefusal* refusal, cv::Size* original, int* channels, bool* more_pages) {
  if (!read_bytes(path, kHeaderBytes, bytes, refusal)) return {};
  if (bytes->size() == kHeaderBytes) {
    std::optional<ImageHeader> header;
    *refusal = header_refusal(*bytes, options, &header);
    if (!refusal->empty()) {
      const auto starts = [&](std::string_view magic) { return bytes->compare(0, magic.size(), magic) == 0; };
      const bool late_header_possible = starts({"II*\0", 4}) || starts({"MM\0*", 4}) || starts("\xFF\xD8\xFF");
      if (header || !late_header_possible) return {};  // over the pixel cap, or not an image
      // At most 8 bytes a pixel (16-bit RGBA) plus 16 MiB of metadata; saturating.
      const std::uintmax_t pixels = std::uintmax_t(std::max<std::int64_t>(options.max_pixels, 0));
      const std::uintmax_t most = pixels > (UINTMAX_MAX >> 4) ? UINTMAX_MAX : 8 * pixels + (16u << 20);
      std::error_code ec;
      const std::uintmax_t size = std::filesystem::file_size(path, ec);
      if (!ec && size > most) {
        *refusal = damaged("no image header in the first " + std::to_string(kHeaderBytes) + " bytes of a file of " +
                           std::to_string(size) + " bytes, more than an image within the pixel cap takes");
        return {};
      }
      *refusal = {};
    } else if (header) {
      // A file far larger than its pixels can take is not read whole: a
      // sparse or padded file of gigabytes behind a small image's header.
      // 32 bytes a pixel is an uncompressed RGBA TIFF of doubles.
      const std::uintmax_t pixels = std::uintmax_t(header->width) * std::uintmax_t(header->height);
      const std::uintmax_t most = 32 * pixels + (16u << 20);
      std::error_code ec;
      const std::uintmax_t size = std::filesystem::file_size(path, ec);
      if (!ec && size > most) {
        *refusal = damaged(std::string(format_name(header->format)) + " file of " + std::to_string(size) +
                           " bytes, more than a " + std::to_string(header->width) + "x" +
                           std::to_string(header->height) + " image takes; not read");
        return {};
      }
    }
    if (!read_bytes(path, 0, bytes, refusal)) return {};
  }
  return decode_to_square(*bytes, options, refusal, original, channels, more_pages);
}

// The centre square is cut from the image first and then resized: resizing
// the whole image first (shorter side to `side`) would make a 1 x 600,000
// strip, a PNG of 2 KB, a buffer of gigabytes.
cv::Mat fit_square(const cv::Mat& rgb, int side) {
  const int short_side = std::min(rgb.cols, rgb.rows);
  const cv::Mat centre = rgb(cv::Rect((rgb.cols - short_side) / 2, (rgb.rows - short_side) / 2, short_side, short_side));
  cv::Mat square;
  cv::resize(centre, square, {side, side}, 0, 0, short_side > side ? cv::INTER_AREA : cv::INTER_LINEAR);
  return square;
}

namespace {

// `m` turned as its EXIF orientation says, so that a phone's portrait photo
// is trained on standing up.
cv::Mat upright(const cv::Mat& m, int orientation) {
  cv::Mat out;
  switch (orientation) {
    case 2: cv::flip(m, out, 1); return out;
    case 3: cv::rotate(m, out, cv::ROTATE_180); return out;
    case 4: cv::flip(m, out, 0); return out;
    case 5: cv::transpose(m, out); return out;
    case 6: cv::rotate(m, out, cv::ROTATE_90_CLOCKWISE); return out;
    case 7: cv::transpose(m, out); cv::rotate(out, out, cv::ROTATE_180); return out;
    case 8: cv::rotate(m, out, cv::ROTATE_90_COUNTERCLOCKWISE); return out;
    default: return m;
  }
}

}  // namespace

cv::Mat decode_to_square(const std::string& bytes, const IngestOptions& options,
                         ImageRefusal* refusal, cv::Size* original, int* channels, bool* more_pages) {
  std::optional<ImageHeader> header;
  *refusal = header_refusal(bytes, options, &header);
  if (!refusal->empty()) return {};
  if (header->format == ImageFormat::kJpeg && !jpeg_is_complete(bytes)) {
    *refusal = damaged("truncated JPEG (no end-of-image marker)");
    return {};
  }
  if (header->format == ImageFormat::kPng) {
    if (std::string why = png_damage(bytes); !why.empty()) {
      *refusal = damaged(std::move(why));
      return {};
    }
  }
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(cv::Mat(1, int(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
                           cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    *refusal = damaged(std::string("decoder error: ") + e.what());
    return {};
  }
  if (decoded.empty()) {
    // OpenCV does not say why; intact files of a variant it does not read
    // (a half-float TIFF, an animated WebP) end here too.
    *refusal = damaged(std::string("a ") + format_name(header->format) +
                       " file the decoder refused: damaged, truncated, or a variant OpenCV does not read");
    return {};
  }
  if (header->format == ImageFormat::kJpeg) decoded = upright(decoded, jpeg_exif_orientation(bytes));
  if (original) *original = decoded.size();
  if (more_pages) *more_pages = header->tiff_more_pages;
  if (channels) *channels = header->stored_grey ? std::min(decoded.channels(), 2) : decoded.channels();
  if (std::string why = unsupported_pixels(decoded); !why.empty()) {
    *refusal = refused(std::move(why));
    return {};
  }
  if (header->fourth_channel_is_padding && decoded.channels() == 4) cv::cvtColor(decoded, decoded, cv::COLOR_BGRA2BGR);
  // A TIFF's associated alpha is stored premultiplied, and OpenCV reads
  // 8-bit unassociated alpha through libtiff's RGBA interface, which
  // premultiplies it (without the tag it reads the channels as stored, as
  // it writes them).
  const bool premultiplied = header->format == ImageFormat::kTiff &&
                             (header->tiff_extra_sample == 1 || (header->tiff_extra_sample == 2 && decoded.depth() == CV_8U));
  return fit_square(to_rgb8(decoded, options.background, premultiplied), options.side);
}

ImageStore::ImageStore(TaskSource source, const IngestOptions& options)
    : source_(std::move(source)), options_(options), skipped_(source_.skipped) {
  if (options.side < 8 || options.side > 4096)
    throw Error(ErrorCode::kInvalidArgument, "image side " + std::to_string(options.side) + " is outside 8-4096");
  if (!(options.time_limit_seconds >= 0) || !std::isfinite(options.time_limit_seconds))
    throw Error(ErrorCode::kInvalidArgument, "time_limit_seconds must be finite and >= 0 (0: no limit), got " +
                                                 zoo::shown_number(options.time_limit_seconds));
  if (options.max_pixels < 1 || options.memory_cap_bytes < 0)
    throw Error(ErrorCode::kInvalidArgument, "max_pixels must be positive and memory_cap_bytes not negative");
  if (options.threads < 0 || options.threads > 4096)
    throw Error(ErrorCode::kInvalidArgument,
                "threads must be 0 (one per core) to 4096, got " + std::to_string(options.threads));
  const std::size_t n = source_.samples.size();
  const std::size_t image_bytes = std::size_t(options.side) * options.side * 3;
  const bool cache = n * image_bytes <= std::size_t(options.memory_cap_bytes);
  if (cache) cache_.resize(n * image_bytes);

  struct Outcome {
    bool ok = false;
    std::string reason;
    cv::Size original;
    int channels = 0;
    std::string note;  // about a file that is used, for the report
  };
  std::vector<Outcome> outcomes(n);
  // Whole pixel values, summed exactly: the statistics are the same however
  // the images fell to the threads and in whatever order the threads' sums
  // are merged (a search's resume compares them).
  std::array<std::uint64_t, 3> sum{}, sum_sq{};
  std::mutex stats_mutex;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> out_of_time{false};
  const auto started = std::chrono::steady_clock::now();
  const auto past_limit = [&] {
    return options.time_limit_seconds > 0 &&
           options.time_spent_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >
               options.time_limit_seconds;
  };
  auto work = [&] {
    std::array<std::uint64_t, 3> local_sum{}, local_sq{};
    std::string bytes;
    for (std::size_t i = next++; i < n; i = next++) {
      if (out_of_time || past_limit()) {
        out_of_time = true;
        break;
      }
      const SampleRef& s = source_.samples[i];
      Outcome& o = outcomes[i];
      cv::Mat square;
      // This runs on pool threads, where an escaping exception would end
      // the process: whatever one image throws makes it a reported skip.
      try {
        if (s.idx >= 0) {
          square = idx_square(*source_.idx_images, s.idx, options_.side);
          o.original = {int(source_.idx_images->cols), int(source_.idx_images->rows)};
          o.channels = 1;
        } else {
          bool more_pages = false;
          ImageRefusal refusal;
          square = load_file_square(s.path, options_, &bytes, &refusal, &o.original, &o.channels, &more_pages);
          o.reason = std::move(refusal.reason);
          // OpenCV decodes a TIFF's first page; the others must not go unsaid.
          if (!square.empty() && more_pages)
            o.note = "a multi-page TIFF: its first page is used, the pages after it are not";
        }
      } catch (const std::bad_alloc&) {
        o.reason = "out of memory while decoding it";
        square = cv::Mat();
      } catch (const std::exception& e) {
        o.reason = std::string("cannot convert it: ") + e.what();
        square = cv::Mat();
      }
      if (square.empty()) continue;
      o.ok = true;
      for (int y = 0; y < square.rows; ++y) {
        const cv::Vec3b* row = square.ptr<cv::Vec3b>(y);
        for (int x = 0; x < square.cols; ++x)
          for (int c = 0; c < 3; ++c) {
            const std::uint64_t v = row[x][c];
            local_sum[std::size_t(c)] += v;
            local_sq[std::size_t(c)] += v * v;
          }
      }
      if (cache) std::memcpy(cache_.data() + i * image_bytes, square.data, image_bytes);
    }
    std::lock_guard<std::mutex> lock(stats_mutex);
    for (std::size_t c = 0; c < 3; ++c) sum[c] += local_sum[c], sum_sq[c] += local_sq[c];
  };
  const std::size_t asked = options.threads > 0 ? std::size_t(options.threads)
                                                : std::size_t(zoo::usable_cores());
  const std::size_t threads = std::min(asked, std::max<std::size_t>(1, n));
  std::vector<std::thread> pool;
  try {
    for (std::size_t t = 1; t < threads; ++t) pool.emplace_back(work);
  } catch (const std::system_error&) {
    // The system would not start that many: the threads started share the work.
  }
  work();
  for (std::thread& t : pool) t.join();
  if (out_of_time) {
    std::size_t read = 0;
    for (const Outcome& o : outcomes) read += o.ok || !o.reason.empty();
    throw Error(ErrorCode::kInvalidArgument,
                source_.origin + ": reading the task took more than its limit of " + zoo::shown_number(options.time_limit_seconds) +
                    " s (" + std::to_string(read) + " of " + std::to_string(n) +
                    " files read); give a larger budget, or fewer or smaller images");
  }

  // Keep the usable images, in source order, and compact the cache.
  std::vector<std::int64_t> per_class(source_.class_names.size(), 0);
  std::int64_t gray = 0;
  double width_sum = 0, height_sum = 0;
  meta_.min_width = meta_.min_height = std::numeric_limits<std::int64_t>::max();
  for (std::size_t i = 0; i < n; ++i) {
    const Outcome& o = outcomes[i];
    if (!o.ok) {
      skipped_.push_back({source_.samples[i].path, o.reason});
      continue;
    }
    if (!o.note.empty()) skipped_.push_back({source_.samples[i].path, o.note});
    if (cache && kept_.size() != i)
      std::memmove(cache_.data() + kept_.size() * image_bytes, cache_.data() + i * image_bytes, image_bytes);
    kept_.push_back(i);
    labels_.push_back(source_.samples[i].label);
    ++per_class[std::size_t(source_.samples[i].label)];
    gray += o.channels <= 2;
    width_sum += o.original.width;
    height_sum += o.original.height;
    meta_.min_width = std::min<std::int64_t>(meta_.min_width, o.original.width);
    meta_.max_width = std::max<std::int64_t>(meta_.max_width, o.original.width);
    meta_.min_height = std::min<std::int64_t>(meta_.min_height, o.original.height);
    meta_.max_height = std::max<std::int64_t>(meta_.max_height, o.original.height);
  }
  if (cache) {
    cache_.resize(kept_.size() * image_bytes);
    cache_.shrink_to_fit();
  }
  for (std::size_t c = 0; c < per_class.size(); ++c)
    if (per_class[c] == 0)
      throw Error(ErrorCode::kInvalidArgument, source_.origin + ": class '" + zoo::printable(source_.class_names[c]) +
                                                   "' has no usable image" + skipped_in_class(c));

  const double count = double(kept_.size());
  const double pixels = count * options.side * options.side;
  meta_.classes = int(per_class.size());
  meta_.images = std::int64_t(kept_.size());
  meta_.min_per_class = *std::min_element(per_class.begin(), per_class.end());
  meta_.max_per_class = *std::max_element(per_class.begin(), per_class.end());
  meta_.mean_per_class = count / double(per_class.size());
  meta_.mean_width = width_sum / count;
  meta_.mean_height = height_sum / count;
  meta_.grayscale_fraction = double(gray) / count;
  for (std::size_t c = 0; c < 3; ++c) {
    meta_.pixel_mean[c] = double(sum[c]) / 255.0 / pixels;
    meta_.pixel_std[c] =
        std::sqrt(std::max(0.0, double(sum_sq[c]) / (255.0 * 255.0) / pixels - meta_.pixel_mean[c] * meta_.pixel_mean[c]));
  }
}

cv::Mat ImageStore::image(std::size_t i) const {
  const std::size_t image_bytes = std::size_t(options_.side) * options_.side * 3;
  if (!cache_.empty())
    return cv::Mat(options_.side, options_.side, CV_8UC3,
                   const_cast<std::uint8_t*>(cache_.data() + i * image_bytes));
  const SampleRef& s = source_.samples[kept_[i]];
  if (s.idx >= 0) return idx_square(*source_.idx_images, s.idx, options_.side);
  std::string bytes;
  ImageRefusal refusal;
  const cv::Mat square = load_file_square(s.path, options_, &bytes, &refusal, nullptr, nullptr);
  if (square.empty())
    throw Error(ErrorCode::kIo, s.path + ": no longer decodes (" + refusal.reason + "); it changed during training");
  return square;
}

}  // namespace nasoa::runtime
