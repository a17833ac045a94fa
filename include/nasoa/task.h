// nasoa/task.h: a user's task, the labelled images to adapt a model to.
//
// A Task is read once: every image is decoded (OpenCV) and resized to
// `image_side`, and kept in a compact in-memory cache, or re-read from disk on
// each use when the cache would exceed `memory_cap_bytes`. Files that cannot
// be used are skipped and listed with the reason; nothing is dropped silently
// (a multi-page TIFF's first page is used, and the file is listed saying so).
//
// Ownership: a move-only handle owning the decoded images. Thread-safety:
// const members may be called from several threads at once.
// A JPEG is turned upright by its EXIF orientation. A class folder's
// subfolders belong to the class (links to folders are followed, each folder
// once); hidden files and folders, and a file reached twice through links,
// are skipped and listed.
//
// Errors: nasoa::Error{kNotFound} for a missing folder or file,
// {kInvalidArgument} for a task that cannot be trained on (no class folders,
// fewer than two classes, a class with no usable image (the message lists
// its skipped files), a class name that cannot be a label (empty, not UTF-8,
// or with a tab, line break or other control character), a malformed CSV
// line or a CSV of binary data; with a validation folder, a class with no
// training image, a validation folder with no usable image, or an image that
// is both a training and a validation image), {kIo} for a class folder that
// cannot be listed or a CSV or IDX file that exists but cannot be opened,
// {kCorrupt} for damaged IDX files. A path in a CSV that is a folder or a
// missing file is a skip. Every call on a moved-from Task throws
// Error{kInvalidArgument}.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nasoa/export.h"

namespace nasoa {

struct SkippedFile {
  std::string path;
  std::string reason;
};

// What a task looks like: for the planner, the predictor and the report.
struct TaskMeta {
  int classes = 0;
  std::int64_t images = 0;
  std::int64_t min_per_class = 0, max_per_class = 0;
  double mean_per_class = 0;
  std::int64_t min_width = 0, max_width = 0, min_height = 0, max_height = 0;  // as decoded
  double mean_width = 0, mean_height = 0;
  double grayscale_fraction = 0;       // images stored without colour (grey, or grey and alpha)
  std::array<double, 3> pixel_mean{};  // RGB in [0, 1], after resizing
  std::array<double, 3> pixel_std{};
};

struct TaskOptions {
  // Decoded size: the zoo's ModelInfo::input_size. The default is the input
  // size of the bundle the SDK ships (zoo/default). Adapter::plan leaves out
  // the models of another size (with a note), and refuses a task that no
  // model takes; fine_tune refuses a model of another size, naming both.
  int image_side = 32;
  std::string validation_dir;                 // class folders for validation; empty: split the task
  std::int64_t max_pixels = 100'000'000;      // larger images are skipped without decoding
  // Above it, images stream from disk (IDX files, held in memory whole, are
  // refused above it, before their data is read).
  std::int64_t memory_cap_bytes = 1LL << 30;
  int threads = 0;                            // decoding threads, 0-4096; 0: one per core
  // Wall-clock seconds decoding may take (0: no limit), checked before each
  // file: past it the constructor stops and throws Error{kInvalidArgument},
  // so that a budget covering ingestion is kept even for a folder of huge
  // photos. (Listing the folder, and the files being decoded when the limit
  // passes, are not cut short.)
  double time_limit_seconds = 0;
};

class NASOA_API Task {
 public:
  // A folder of class subfolders of images (jpg, png, bmp, webp, tiff).
  static Task from_folder(const std::string& dir, const TaskOptions& options = {});
  // A CSV list of `path,label` lines; paths are relative to the CSV's folder.
  // A first row "path,label" (or "#path,label") is a header. Blank lines and
  // comments ("#" then a space, or a "#" line without a comma) are passed
  // over; "#1.jpg,cat" is an image.
  static Task from_csv(const std::string& csv_path, const TaskOptions& options = {});
  // MNIST-format IDX image and label files, plain or gzipped; classes are
  // named by `class_names`, or by their numbers when it is empty.
  static Task from_idx(const std::string& images_path, const std::string& labels_path,
                       const std::vector<std::string>& class_names = {},
                       const TaskOptions& options = {});

  Task(Task&&) noexcept;
  Task& operator=(Task&&) noexcept;
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task();

  const std::string& origin() const;
  const std::vector<std::string>& class_names() const;
  std::size_t size() const;  // usable images, validation folder included
  const TaskMeta& meta() const;
  const std::vector<SkippedFile>& skipped() const;
  int image_side() const;
  bool streaming() const;
  double ingest_seconds() const;  // wall time reading and decoding took

  struct Impl;
  // For the SDK's own use. Every call on a moved-from Task throws
  // Error{kInvalidArgument}.
  const Impl& impl() const;

 private:
  explicit Task(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The image files under a folder, for an app that classifies what its user
// points at (nasoa-classify does). The folder is walked as a class folder of
// a task is: subfolders included, links to folders followed (each folder
// once; a link to the folder or above it is not), each file once.
struct ImageListing {
  std::vector<std::string> images;       // sorted
  std::vector<SkippedFile> passed_over;  // hidden entries, other file types, a file reached again through a link
  std::vector<SkippedFile> skipped;      // entries that cannot be read: a dangling link, a pipe named like
                                         // an image, a subfolder that cannot be listed
};
// Throws Error{kNotFound} for a missing folder, {kInvalidArgument} for a path
// that is not a folder, {kIo} for a folder that cannot be listed.
NASOA_API ImageListing list_images(const std::string& folder);

}  // namespace nasoa
