// nasoa/classifier.h: a fine-tuned model, loaded for prediction.
//
// A model directory is a zoo bundle (docs/bundle-format.md) with exactly one
// model and its class labels, written by the runtime after fine-tuning.
// Classifier::open() verifies every file's size and SHA-256 before reading a
// weight, as Zoo::open() does. If a crash interrupted the replacement of a
// model directory (the directory is missing and its hidden ".NAME.old" copy
// is complete), open() puts the old copy back first, or reads it in place
// when it cannot be renamed.
//
// Pixels are converted exactly as training ingestion converts them: to RGB
// (grey replicated; transparent pixels composited onto white, alpha that is
// 0 everywhere taken for padding; 16-bit scaled to 8-bit), centre-cropped to
// a square and resized to input_size(), scaled to [0,1] and normalised with
// the model's mean and std. predict_file() also reads the file as training
// did (alpha, depth and a JPEG's EXIF orientation kept; what a TIFF's or
// BMP's header says its fourth channel is); a cv::Mat is taken as given,
// with straight (not premultiplied) alpha, so load it with
// cv::IMREAD_UNCHANGED (plain cv::imread drops alpha instead of compositing
// it) and turn a phone's JPEG upright yourself, or use predict_file().
//
// Ownership: a Classifier is a move-only handle that owns its network (on the
// GPU when LibTorch sees CUDA, else on the CPU); it keeps no file open and
// never modifies the directory after open(). A moved-from Classifier may be
// assigned to or destroyed; any other call throws Error{kInvalidArgument}.
// Thread-safety: every const member may be called from several threads at
// once; forward passes are serialised on one internal lock, so run one
// Classifier per thread for parallel throughput.
// top_k: values below 1 throw Error{kInvalidArgument}; values above the class
// count are clamped to it, so predict(image, 1000) ranks every class.
#pragma once

#include <opencv2/core.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/export.h"

namespace nasoa {

struct Prediction {
  int index = 0;          // class index, 0-based, into Classifier::labels()
  std::string label;
  float probability = 0;  // softmax output, in [0,1]
};

class NASOA_API Classifier {
 public:
  // Opens, verifies and loads the model directory `dir`. Throws Error with
  //   kNotFound            the directory, its MANIFEST or a listed file is missing;
  //   kCorrupt             a file's size or SHA-256 differs from the manifest,
  //                        or the manifest does not parse or is inconsistent;
  //   kUnsupportedVersion  the manifest's format version is not one this build reads;
  //   kInvalidArgument     `dir` is empty, a file rather than a folder, or a
  //                        sound bundle that is not a model directory (not
  //                        exactly one model, or no labels);
  //   kIo                  a file cannot be read.
  static Classifier open(const std::string& dir);

  Classifier(Classifier&&) noexcept;
  Classifier& operator=(Classifier&&) noexcept;
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;
  ~Classifier();

  // The top_k classes for one image, most probable first (ties: lower index
  // first). `image` is what cv::imread gives: 1, 2 (grey and alpha), 3 (BGR)
  // or 4 (BGRA) channels, 8- or 16-bit unsigned (or 16/32/64-bit float in [0,1]); it is
  // not modified. Throws Error{kInvalidArgument} for an empty image, an
  // unsupported channel count, a signed integer depth or float pixels
  // outside [0,1] (no agreed scale), or top_k < 1.
  std::vector<Prediction> predict(const cv::Mat& image, int top_k = 1) const;

  // The same for several images, run as batched forward passes; result i
  // belongs to images[i] and equals predict(images[i], top_k) up to float
  // rounding. An empty vector gives an empty result. Errors as above, naming
  // the index of the offending image; nothing is returned then.
  std::vector<std::vector<Prediction>> predict(const std::vector<cv::Mat>& images,
                                               int top_k = 1) const;

  // Reads and decodes the image file `path` with training ingestion's checks
  // (its header is checked before the rest is read; more than 100 M pixels
  // is refused undecoded) and predicts it. Of a multi-page TIFF only the
  // first page is classified, as in training; the overload below tells when
  // pages were left out. Throws Error naming the file: kNotFound (no such
  // file), kIo (unreadable), kCorrupt (not a recognised image, truncated or
  // damaged), kInvalidArgument (an intact image of a kind it does not take:
  // pixels predict() refuses as above, float pixels outside [0,1], a
  // grey-and-alpha TIFF, a BigTIFF or a TIFF compression with no decoder
  // here; over the pixel cap; a folder, pipe or device rather than a file;
  // or top_k < 1).
  std::vector<Prediction> predict_file(const std::string& path, int top_k = 1) const;
  // The same; `more_pages`, when not null, is set to whether pages follow
  // the one classified (a multi-page TIFF), false when the call throws.
  std::vector<Prediction> predict_file(const std::string& path, int top_k, bool* more_pages) const;

  const std::string& dir() const;                  // absolute
  const std::vector<std::string>& labels() const;  // one per class
  int num_classes() const;
  int input_size() const;                          // square side in pixels
  const std::string& encoding() const;             // ET-NAS encoding, see nasoa/encoding.h
  std::optional<double> validation_accuracy() const;  // top-1 in [0,1], when it was measured
  bool uses_cuda() const;

 private:
  struct Impl;
  explicit Classifier(std::unique_ptr<Impl> impl);
  Impl& live() const;  // *impl_, or Error{kInvalidArgument} when moved from
  std::unique_ptr<Impl> impl_;
};

}  // namespace nasoa
