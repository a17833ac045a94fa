// runtime/data/image_store.h: a task's images, decoded and resized once.
//
// The store decodes every listed image once, in parallel, into side x side
// RGB uint8 (the centre square, resized to side x side), and keeps
// them in one compact buffer, unless that buffer would exceed the memory cap:
// then it keeps nothing and decodes again on each access ("streaming").
// Task meta-features are computed in the same pass.
//
// Never silent data loss: every file it cannot use is listed in skipped() with
// the reason: unreadable, zero-byte, truncated, not an image, a pixel type it
// cannot convert (signed integers, over 4 channels), or a header that
// announces more pixels than the cap (refused before decoding). A class left
// without any usable image is an Error{kInvalidArgument} naming it.
//
// Thread-safety: after construction all const members may be called from
// several threads at once (the batch loader's workers do).
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/data/task_source.h"

namespace nasoa::runtime {

struct IngestOptions {
  int side = 64;                              // cached images are side x side x 3
  std::int64_t max_pixels = 100'000'000;      // header above this: skipped, never decoded
  std::int64_t memory_cap_bytes = 1LL << 30;  // cache above this: stream from disk
  std::array<std::uint8_t, 3> background{255, 255, 255};  // RGB under transparent pixels
  int threads = 0;                            // 0: one per hardware thread
  // Wall-clock seconds reading may take; 0: no limit. Past it, reading stops
  // (an image being decoded is finished) and the constructor throws
  // Error{kInvalidArgument}: the caller's budget has no time left to train.
  double time_limit_seconds = 0;
  // Of that limit, what reading took before the store began (listing the
  // folder, unpacking IDX files).
  double time_spent_seconds = 0;
};

using nasoa::TaskMeta;  // defined in the public API: the report shows it

class ImageStore {
 public:
  // Throws Error{kInvalidArgument} for bad options, for fewer than two
  // classes or a class without usable images after decoding.
  ImageStore(TaskSource source, const IngestOptions& options);

  std::size_t size() const { return labels_.size(); }
  int label(std::size_t i) const { return labels_[i]; }
  // Every image's label, in image order (what stratified_split takes).
  const std::vector<int>& labels() const { return labels_; }
  const std::string& path(std::size_t i) const { return source_.samples[kept_[i]].path; }
  // Position of image i in the TaskSource it was built from.
  std::size_t source_index(std::size_t i) const { return kept_[i]; }
  const std::string& origin() const { return source_.origin; }
  const std::vector<std::string>& class_names() const { return source_.class_names; }
  int side() const { return options_.side; }

  // Image i as side x side CV_8UC3, RGB. A view into the cache, or a fresh
  // decode when streaming. Throws Error{kIo} if a streamed file changed.
  cv::Mat image(std::size_t i) const;

  bool streaming() const { return cache_.empty(); }
  const TaskMeta& meta() const { return meta_; }
  const std::vector<SkippedFile>& skipped() const { return skipped_; }

 private:
  std::string skipped_in_class(std::size_t c) const;

  TaskSource source_;
  IngestOptions options_;
  std::vector<std::size_t> kept_;  // store index -> source sample index
  std::vector<int> labels_;
  std::vector<std::uint8_t> cache_;
  TaskMeta meta_;
  std::vector<SkippedFile> skipped_;
};

// Why an image file cannot be used: its kind, which decides the error a
// caller reports (the classifier's ErrorCode), and the reason as text, for
// the person who must fix the file.
struct ImageRefusal {
  enum class Kind {
    kNone,        // the file was used
    kUnreadable,  // the file system's failure: cannot open, read error
    kRefused,     // an intact file this SDK does not take: not a regular
                  // file, a pixel type or TIFF variant it cannot convert
                  // faithfully, or more pixels than the cap
    kDamaged,     // content that is not a whole image: empty, truncated,
                  // failing its checksums, or refused by the decoder
  };
  Kind kind = Kind::kNone;
  std::string reason;

  bool empty() const { return kind == Kind::kNone; }
};

// Decodes one image file's bytes to side x side RGB uint8, or returns an empty
// Mat and sets `refusal`. Exposed for the classifier, which must see images
// exactly as training did. `original` receives the decoded size, `channels`
// the channels the file stores (2 for a grey-and-alpha PNG, which OpenCV
// decodes as 4), `more_pages` whether pages follow the one decoded (a
// multi-page TIFF).
cv::Mat decode_to_square(const std::string& bytes, const IngestOptions& options,
                         ImageRefusal* refusal, cv::Size* original = nullptr,
                         int* channels = nullptr, bool* more_pages = nullptr);

// Reads the file at `path` and decodes it as decode_to_square() does; only
// its header is read first, so that an image over the pixel cap is refused
// without reading the rest. `bytes` is a scratch buffer the caller may reuse.
// Returns an empty Mat and sets `refusal` (kUnreadable: "cannot open[: why]"
// or "read error"; else decode_to_square's) when the file cannot be used.
cv::Mat load_file_square(const std::string& path, const IngestOptions& options, std::string* bytes,
                         ImageRefusal* refusal, cv::Size* original = nullptr, int* channels = nullptr,
                         bool* more_pages = nullptr);

// Why to_rgb8() cannot convert `m` (a channel count outside 1-4, a signed
// integer depth), or empty when it can.
std::string unsupported_pixels(const cv::Mat& m);

// The same channels at 8 bits: 16-bit unsigned scaled by 1/257, float (16,
// 32 or 64-bit, in [0,1]) by 255; empty for what unsupported_pixels()
// refuses.
cv::Mat to_8bit(const cv::Mat& decoded);

// Converts a decoded image (1-4 channels, BGR(A) order as OpenCV decodes it,
// 8/16-bit unsigned or float (16, 32 or 64-bit) in [0,1]) to RGB uint8,
// compositing transparent pixels onto `background`. Returns an empty Mat for
// what unsupported_pixels() refuses. The one conversion both training and the
// classifier use.
// An alpha channel that is 0 everywhere is taken for padding: the image is
// opaque. `premultiplied`: the colour is already multiplied by alpha (a TIFF's
// associated alpha, or what libtiff's RGBA interface makes of unassociated
// alpha); only the background's share is added.
cv::Mat to_rgb8(const cv::Mat& decoded, const std::array<std::uint8_t, 3>& background, bool premultiplied = false);

// Centre-crops an RGB uint8 image to a square and resizes it to side x side.
cv::Mat fit_square(const cv::Mat& rgb, int side);

}  // namespace nasoa::runtime
