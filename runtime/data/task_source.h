// runtime/data/task_source.h: what a task's images are and where they live.
//
// A task arrives as one of:
//   - a folder of class subfolders of image files (jpg, jpeg, png, bmp, webp,
//     tif, tiff; any case), the layout a user hands the SDK;
//   - a pair of IDX files (MNIST format, plain or gzipped): images and labels;
//   - a CSV list of `path,label` lines (paths relative to the CSV's folder).
// Listing reads no pixels. A class folder's subfolders are part of the class
// (links to folders are followed, each folder listed once). Files that
// cannot be images (other extensions, hidden files and folders, a file
// reached twice through links, a subfolder that cannot be listed) are not
// dropped silently: they are listed in `skipped` with the reason. Structural faults (no such folder, fewer than two
// classes, an unparsable CSV line) are nasoa::Error naming the path and line.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/task.h"

namespace nasoa::runtime {

using nasoa::SkippedFile;

// Decoded IDX images, kept in memory: count x rows x cols, uint8, grayscale.
struct IdxImages {
  std::int64_t count = 0, rows = 0, cols = 0;
  std::vector<std::uint8_t> pixels;
};

struct SampleRef {
  std::string path;      // the image file, or "<idx file>#<index>" for IDX
  int label = 0;         // index into TaskSource::class_names
  std::int64_t idx = -1; // index into TaskSource::idx_images, or -1 for a file
};

struct TaskSource {
  std::string origin;  // the folder, CSV or IDX file the task came from
  std::vector<std::string> class_names;  // sorted for folders; as first seen in CSV
  std::vector<SampleRef> samples;
  std::vector<SkippedFile> skipped;
  std::shared_ptr<const IdxImages> idx_images;  // only for IDX tasks
};

// Each of these refuses (Error{kInvalidArgument}) a task of fewer than two
// classes or with a class name that is not a valid label.
// What identifies the file at `path` however it is reached (a symbolic link,
// a hard link, "a/../b"): its device and inode. nullopt when it cannot be
// looked at (missing, unreadable).
std::optional<std::string> file_identity(const std::string& path);

// A validation folder (kValidation) may hold fewer classes than the task
// (at least one); it is listed by the same rules.
enum class FolderRole { kTask, kValidation };
TaskSource list_folder(const std::string& dir, FolderRole role = FolderRole::kTask);
// The image files under `folder` (sorted), walked as a class folder is:
// subfolders included, links to folders followed (each folder once, none to
// `folder` or above it), each file once. Hidden entries and other file types
// are passed over; entries that cannot be read (a dangling link, a pipe
// named like an image, a subfolder that cannot be listed) are skipped. Both
// are listed with the reason. Throws Error{kNotFound} for a missing folder,
// {kInvalidArgument} for a path that is not a folder, {kIo} for a folder that
// cannot be listed.
struct ImageFiles {
  std::vector<std::string> images;
  std::vector<SkippedFile> passed_over;
  std::vector<SkippedFile> skipped;
};
ImageFiles list_image_files(const std::string& folder);

// `path,label` per line: an optional `path,label` header, a UTF-8 byte-order
// mark, blank lines, `#` comments and double-quoted fields are accepted; the
// label follows the last comma; relative paths are relative to the CSV file.
// An image listed again (with the same label or another) is skipped and
// reported, naming both lines; the first listing is kept.
TaskSource list_csv(const std::string& csv_path);
// What an IDX file may announce before its data is read (0: no limit): IDX
// images are held in memory whole, and a small gzipped file can announce
// gigabytes.
struct IdxLimits {
  std::int64_t max_pixels = 0;   // per image: rows x cols (TaskOptions::max_pixels)
  std::uint64_t max_bytes = 0;   // all images together (TaskOptions::memory_cap_bytes)
};

// `class_names` may be empty: classes are then named by their label numbers.
// Images beyond `limits` are refused with Error{kInvalidArgument} naming the
// file, the size and the limit, before their data is read.
TaskSource list_idx(const std::string& images_path, const std::string& labels_path,
                    const std::vector<std::string>& class_names = {}, const IdxLimits& limits = {});

// The rules a class selection must keep whatever the task holds (at least
// two classes, none twice, as many distinct `names` as classes when given):
// Error{kInvalidArgument} otherwise. select_classes() checks them first; a
// program checks them before reading the task.
void check_class_selection(const std::vector<std::string>& keep, const std::vector<std::string>& names);

// The samples of the classes named `keep` (folder names, or label numbers for
// an IDX task listed without names), relabelled 0, 1, ... in `keep`'s order
// and renamed `names` when given. Skipped files are kept. Throws
// Error{kInvalidArgument} naming an unknown or repeated class, a `names` of
// another length, a name that is not a valid label, or fewer than two classes.
TaskSource select_classes(const TaskSource& source, const std::vector<std::string>& keep,
                          const std::vector<std::string>& names = {});

// Reads a whole IDX file, transparently gunzipping it. Throws Error{kCorrupt}
// naming the file when its magic, dimensions or length are wrong, and
// Error{kInvalidArgument} when its header announces more than `limits` (the
// pixels of one item: the product of the dimensions after the first).
std::vector<std::uint8_t> read_idx_file(const std::string& path, int expected_dims,
                                        std::vector<std::int64_t>* dims, const IdxLimits& limits = {});

}  // namespace nasoa::runtime
