// offline_tools/corpus/clipart.h: clip-art categories as image classes.
//
// A category is a folder of the clip-art tree that holds at least
// kMinClipartFiles PNG files directly; its class is those files, never its
// subfolders' (they are categories of their own). The package files many
// drawings under several folders, byte for byte the same; each distinct
// drawing is given to one category only (the ownership rule below), so that
// no image can land in two classes, let alone two sets.
#pragma once

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "nasoa/task.h"

namespace nasoa::corpus {

constexpr std::size_t kMinClipartFiles = 30;     // PNG files directly in a folder, to be a category
constexpr std::size_t kMinClipartDistinct = 20;  // usable distinct drawings left, to stay one
// Not a category of drawings but the package's pile of uncategorised ones.
constexpr const char* kClipartExcluded = "unsorted";

struct ClipartCategory {
  std::string folder;              // relative to the clip-art root, '/'-separated
  std::string name;                // the class name: folder with '/' replaced by '-'
  std::size_t png_files = 0;       // PNG files directly in the folder
  std::vector<std::string> files;  // usable distinct drawings it owns, relative paths, sorted
};

struct DuplicateFile {
  std::string path;     // relative to the clip-art root
  std::string same_as;  // the copy that is used (relative)
};

struct DroppedCategory {
  std::string folder;
  std::string reason;
};

struct MergedCategory {
  std::string folder;               // the parent folder the class is named after
  std::vector<std::string> from;    // the sibling folders it joins
};

struct ClipartInventory {
  std::vector<ClipartCategory> categories;  // sorted by folder
  std::vector<DroppedCategory> dropped;
  std::vector<MergedCategory> merged;
  std::vector<SkippedFile> skipped;  // header refusals: over the pixel cap, not an image, unreadable
  std::vector<DuplicateFile> duplicates;
};

// Lists the categories under `root`; sibling folders holding the same
// subjects in other styles (at least 90 % of the smaller one's file names
// agree once each folder's own name is taken out of them) become one
// category named after their parent. Then reads every candidate file's header
// (refusing those announcing more than `max_pixels`) and hashes its bytes
// (SHA-256) to find the copies. A drawing found in several categories
// belongs to the one whose folder is deepest (the most specific), then has
// the fewest PNG files, then sorts first; inside that category, to the copy
// whose name sorts first. A category left with fewer than
// kMinClipartDistinct drawings is dropped. Throws Error{kNotFound} naming
// `root` (and the Debian package) when it is not a folder.
ClipartInventory scan_clipart(const std::string& root, std::int64_t max_pixels, int threads);

// The drawing at `path` fitted into a side x side square, as premultiplied
// 8-bit BGRA (colour already multiplied by alpha): cropped to its content
// (the alpha bounding box, or for an opaque drawing the box of what differs
// from a uniform border colour) plus a 4 % margin, scaled so the longer side
// fills the square, centred. Returns an empty Mat and sets `reason` when the
// file cannot be used.
cv::Mat clipart_square(const std::string& path, int side, std::int64_t max_pixels, std::string* reason);

// Composites a premultiplied BGRA square onto a solid BGR colour.
cv::Mat composite_onto(const cv::Mat& premultiplied, const cv::Vec3b& background);

}  // namespace nasoa::corpus
