#include "runtime/data/task_source.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "nasoa/error.h"
#include "zoo/text/printable.h"

namespace fs = std::filesystem;

namespace nasoa::runtime {
namespace {

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp" || ext == ".webp" ||
         ext == ".tif" || ext == ".tiff";
}

// A field in double quotes, as spreadsheets write them: the quotes go and a
// doubled quote inside is one. (The label is still what follows the last
// comma, so a label may not contain one.)
std::string unquote(const std::string& field) {
  if (field.size() < 2 || field.front() != '"' || field.back() != '"') return field;
  std::string out;
  for (std::size_t i = 1; i + 1 < field.size(); ++i) {
    out += field[i];
    if (field[i] == '"' && field[i + 1] == '"' && i + 2 < field.size()) ++i;
  }
  return out;
}

// Two classes at least, each named so that it can be a model's label: the
// saved model and nasoa-classify's output separate labels by tabs and line
// breaks. Checked here, at ingestion, so that such a name fails before
// training rather than when the trained model is saved.
void check_classes(const TaskSource& t, std::size_t least = 2) {
  if (t.class_names.size() < least)
    throw Error(ErrorCode::kInvalidArgument,
                t.origin + (least == 1 ? std::string(": no class folder with an image file type in it")
                                       : ": a task needs at least two classes, found " +
                                             std::to_string(t.class_names.size())));
  if (const std::string problem = zoo::label_problem(t.class_names); !problem.empty())
    throw Error(ErrorCode::kInvalidArgument, t.origin + ": class name " + problem + "; rename it");
}

// A CSV or IDX file given as a task: a pipe would block the open for ever and
// a device (a link to /dev/zero) never end.
void require_regular_file(const std::string& path, const char* what) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  // A folder on the way that cannot be searched hides whether it exists.
  if (ec && ec != std::errc::no_such_file_or_directory && ec != std::errc::not_a_directory)
    throw Error(ErrorCode::kIo, path + ": cannot look it up: " + ec.message());
  if (!fs::exists(status)) throw Error(ErrorCode::kNotFound, path + ": no such " + what);
  if (fs::is_directory(status))
    throw Error(ErrorCode::kInvalidArgument, path + ": is a folder, not a " + what);
  if (!fs::is_regular_file(status))
    throw Error(ErrorCode::kInvalidArgument, path + ": not a regular file (a pipe or a device), not a " + what);
}

}  // namespace

std::optional<std::string> file_identity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

namespace {

// Whether `folder` is `path` or one of the folders above it (both canonical).
bool is_at_or_above(const fs::path& folder, const fs::path& path) {
  return std::mismatch(folder.begin(), folder.end(), path.begin(), path.end()).first == folder.end();
}

// What listing a folder of images found.
struct Found {
  std::vector<fs::path> files;
  std::vector<SkippedFile> passed_over;  // hidden entries, other file types
  std::vector<SkippedFile> skipped;      // what could have held images but cannot be read
};

// The image files under `folder` and its subfolders. A top folder (a class
// folder, or the folder list_image_files() is given) that cannot be listed is
// an error (the class would silently shrink); a subfolder that cannot be
// listed is a skip. `root` is the canonical task folder (or listed folder),
// `root_name` what messages call it.
void list_files(const fs::path& folder, bool is_top, const fs::path& root, const std::string& root_name,
                Found& found, std::set<fs::path>& listed_folders) {
  std::error_code ec;
  if (!is_top) {  // top folders are all in `listed_folders` before any is listed
    const fs::path canonical = fs::canonical(folder, ec);
    // A link up to the task folder or above it would make the other classes
    // (or the whole disk) images of this one.
    if (!ec && !root.empty() && is_at_or_above(canonical, root)) {
      found.skipped.push_back({folder.string(), "a link to " + root_name + " or a folder above it; not followed"});
      return;
    }
    if (!ec && !listed_folders.insert(canonical).second) {
      found.passed_over.push_back(
          {folder.string(), "a folder listed elsewhere in " + root_name + " (reached again through a link)"});
      return;
    }
  }
  fs::directory_iterator it(folder, ec);
  const auto cannot_list = [&](const std::error_code& e) {
    if (is_top) throw Error(ErrorCode::kIo, folder.string() + ": cannot list: " + e.message());
    found.skipped.push_back({folder.string(), "cannot list this folder: " + e.message()});
  };
  if (ec) return cannot_list(ec);
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    std::error_code entry_ec;
    if (entry.is_directory(entry_ec)) {
      if (name[0] == '.')
        found.passed_over.push_back({entry.path().string(), "hidden folder"});
      else
        list_files(entry.path(), false, root, root_name, found, listed_folders);
    } else if (name[0] == '.') {
      found.passed_over.push_back({entry.path().string(), "hidden file"});
    } else if (!has_image_extension(entry.path())) {
      found.passed_over.push_back({entry.path().string(), "not an image file type (jpg, png, bmp, webp, tiff)"});
    } else if (!entry.is_regular_file(entry_ec)) {
      found.skipped.push_back({entry.path().string(), entry_ec ? "cannot be read: " + entry_ec.message()
                                                              : "not a regular file (a pipe or a device)"});
    } else {
      found.files.push_back(entry.path());
    }
  }
  if (ec) cannot_list(ec);
}

}  // namespace

TaskSource list_folder(const std::string& dir, FolderRole role) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::exists(dir, ec))
      throw Error(ErrorCode::kInvalidArgument,
                  dir + ": is a file, not a task folder (a folder of class subfolders of images)");
    throw Error(ErrorCode::kNotFound, dir + ": no such task folder");
  }
  TaskSource task;
  task.origin = dir;
  std::vector<fs::path> class_dirs;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    // An entry that cannot be looked at (a symlink loop, a dangling link) is
    // skipped; `ec` is kept for the listing itself.
    std::error_code entry_ec;
    if (entry.is_directory(entry_ec)) {
      if (entry.path().filename().string()[0] == '.')
        task.skipped.push_back({entry.path().string(), "hidden folder"});
      else
        class_dirs.push_back(entry.path());
    } else if (entry_ec) {
      task.skipped.push_back({entry.path().string(), "cannot be read: " + entry_ec.message()});
    } else {
      task.skipped.push_back({entry.path().string(), "not inside a class folder"});
    }
  }
  if (ec) throw Error(ErrorCode::kIo, dir + ": cannot list: " + ec.message());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty())
    throw Error(ErrorCode::kInvalidArgument,
                dir + ": no class folders; a task is a folder of class subfolders of images");
  // Each file once: reached twice through links, it could land in both the
  // training and the validation split, or under two labels.
  std::map<std::string, std::string> seen;  // file_identity -> the path it was first listed as
  std::set<fs::path> listed_folders;        // canonical: a link back up must not loop
  std::error_code root_ec;
  const fs::path task_root = fs::canonical(dir, root_ec);
  // Class folders are all in `listed_folders` before any is listed. One that
  // is a link up to the task folder or above it would make the other classes
  // (or the whole disk) images of one class: it is not a class.
  std::vector<fs::path> classes;
  for (const fs::path& class_dir : class_dirs) {
    std::error_code canonical_ec;
    const fs::path canonical = fs::canonical(class_dir, canonical_ec);
    if (!canonical_ec && !root_ec && is_at_or_above(canonical, task_root)) {
      task.skipped.push_back({class_dir.string(), "a link to the task folder or a folder above it; not a class"});
      continue;
    }
    if (!canonical_ec) listed_folders.insert(canonical);
    classes.push_back(class_dir);
  }
  for (const fs::path& class_dir : classes) {
    const int label = static_cast<int>(task.class_names.size());
    task.class_names.push_back(class_dir.filename().string());
    Found found;
    list_files(class_dir, true, task_root, "the task folder", found, listed_folders);
    task.skipped.insert(task.skipped.end(), found.passed_over.begin(), found.passed_over.end());
    task.skipped.insert(task.skipped.end(), found.skipped.begin(), found.skipped.end());
    std::vector<fs::path>& files = found.files;
    std::sort(files.begin(), files.end());  // a fixed order makes splits reproducible
    for (const fs::path& f : files) {
      if (const std::optional<std::string> id = file_identity(f.string())) {
        const auto [first, inserted] = seen.emplace(*id, f.string());
        if (!inserted) {
          task.skipped.push_back({f.string(), "the same file as " + first->second + " (through a link); the first is kept"});
          continue;
        }
      }
      task.samples.push_back({f.string(), label, -1});
    }
  }
  check_classes(task, role == FolderRole::kValidation ? 1 : 2);
  return task;
}

ImageFiles list_image_files(const std::string& folder) {
  std::error_code ec;
  if (!fs::exists(folder, ec)) throw Error(ErrorCode::kNotFound, folder + ": no such folder");
  if (!fs::is_directory(folder, ec)) throw Error(ErrorCode::kInvalidArgument, folder + ": not a folder");
  std::error_code root_ec;
  const fs::path root = fs::canonical(folder, root_ec);
  std::set<fs::path> listed_folders;
  if (!root_ec) listed_folders.insert(root);
  Found found;
  list_files(folder, true, root_ec ? fs::path() : root, "the folder listed", found, listed_folders);
  std::sort(found.files.begin(), found.files.end());
  ImageFiles out;
  out.passed_over = std::move(found.passed_over);
  out.skipped = std::move(found.skipped);
  std::map<std::string, std::string> seen;  // file_identity -> the path it was first listed as
  for (const fs::path& f : found.files) {
    if (const std::optional<std::string> id = file_identity(f.string())) {
      const auto [first, inserted] = seen.emplace(*id, f.string());
      if (!inserted) {
        out.passed_over.push_back({f.string(), "the same file as " + first->second + " (through a link); the first is kept"});
        continue;
      }
    }
    out.images.push_back(f.string());
  }
  return out;
}

TaskSource list_csv(const std::string& csv_path) {
  require_regular_file(csv_path, "CSV list (path,label lines)");
  std::ifstream file(csv_path, std::ios::binary);
  // It exists (checked above): failing to open it is an I/O failure (permissions, say).
  if (!file) throw Error(ErrorCode::kIo, csv_path + ": cannot open the CSV list: " + std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  // An image or a UTF-16 file given as the list: said so, not parsed into
  // a line of garbage.
  if (text.str().find('\0') != std::string::npos)
    throw Error(ErrorCode::kInvalidArgument,
                csv_path + ": binary data (or UTF-16); a CSV list is UTF-8 text lines of `path,label`");
  // Lines may end in "\n", "\r\n" or (classic Mac) a lone "\r".
  std::string lines = std::move(text).str();
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i] == '\r' && (i + 1 == lines.size() || lines[i + 1] != '\n')) lines[i] = '\n';
  std::istringstream in(lines);
  TaskSource task;
  task.origin = csv_path;
  const fs::path base = fs::path(csv_path).parent_path();
  std::map<std::string, int> labels;
  // Each image once: listed twice it could land in both the training and the
  // validation split, and under two labels it has no single answer.
  std::map<std::string, std::pair<int, std::string>> listed;  // path -> (line, label)
  std::string line;
  bool seen_row = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    line = std::string(zoo::trim_blanks(line));
    // A comment is "#" followed by a space or nothing, or a "#" line without
    // a comma; "#1 front.jpg,cat" is an image.
    if (line.empty() ||
        (line[0] == '#' && (line.size() == 1 || line[1] == ' ' || line[1] == '\t' || line.find(',') == std::string::npos)))
      continue;
    // The label is after the last comma, so that paths may contain commas.
    const std::size_t comma = line.rfind(',');
    if (comma == std::string::npos)
      throw Error(ErrorCode::kInvalidArgument, csv_path + ":" + std::to_string(number) + ": expected `path,label`, got '" +
                                                   zoo::printable(line.substr(0, 200)) + "'");
    const std::string path = unquote(std::string(zoo::trim_blanks(std::string_view(line).substr(0, comma)))),
                      label = unquote(std::string(zoo::trim_blanks(std::string_view(line).substr(comma + 1))));
    const bool first_row = !seen_row;
    seen_row = true;
    // A header, after any comments ("#path,label" too: before '#' lines with
    // a comma were rows, it was a comment).
    const auto lower = [](std::string t) {
      for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
      return t;
    };
    if (first_row && (lower(path) == "path" || lower(path) == "#path") && lower(label) == "label") continue;
    if (path.empty() || label.empty())
      throw Error(ErrorCode::kInvalidArgument, csv_path + ":" + std::to_string(number) + ": empty path or label in '" +
                                                   zoo::printable(line) + "'");
    // The label is what follows the last comma: a quoted label holding a
    // comma would be cut in two and make a class of its tail.
    if (label.find('"') != std::string::npos)
      throw Error(ErrorCode::kInvalidArgument, csv_path + ":" + std::to_string(number) + ": label '" +
                                                   zoo::printable(label) +
                                                   "' holds a quote; a label may not contain a comma or a quote");
    const fs::path p = fs::path(path).is_absolute() ? fs::path(path) : base / path;
    // The file itself, however it is reached (a link, "a/../b"); as written
    // when it cannot be resolved (a missing file, skipped later).
    // The file itself, however it is reached (a link, a hard link,
    // "a/../b"); as written when it cannot be found (skipped later).
    std::error_code absolute_ec;
    const fs::path absolute = fs::absolute(p, absolute_ec);
    const std::optional<std::string> id = file_identity(p.string());
    const std::string key = id ? "file " + *id : "path " + (absolute_ec ? p : absolute).lexically_normal().string();
    const auto [first, new_path] = listed.emplace(key, std::make_pair(number, label));
    if (!new_path) {
      const auto& [first_line, first_label] = first->second;
      task.skipped.push_back(
          {p.string(), "listed again on line " + std::to_string(number) + " of " + csv_path + " (first on line " +
                           std::to_string(first_line) +
                           (first_label == label ? ")" : ", as '" + zoo::printable(first_label) + "', here as '" +
                                                             zoo::printable(label) + "'); the first is kept")});
      continue;
    }
    auto [it, inserted] = labels.emplace(label, static_cast<int>(task.class_names.size()));
    if (inserted) task.class_names.push_back(label);
    task.samples.push_back({p.string(), it->second, -1});
  }
  check_classes(task);
  return task;
}

namespace {

// An IDX file's bytes, plain or gzipped, read in pieces so that the header
// is checked before the data is read. A gzip stream is inflated here rather
// than through gzread, which takes a stream cut in its last bytes (the
// trailer with the CRC and length) for one that ended: a read that reaches
// the end of the data must also reach the end of the stream, or the file is
// truncated. Concatenated gzip members are read as one stream, as gzip does.
class IdxByteReader {
 public:
  explicit IdxByteReader(const std::string& path) : path_(path), in_((require_regular_file(path, "IDX file"), path),
                                                                         std::ios::binary) {
    if (!in_) throw Error(ErrorCode::kIo, path + ": cannot open the IDX file: " + std::strerror(errno));
    char magic[2] = {0, 0};
    in_.read(magic, 2);
    gzip_ = in_.gcount() == 2 && std::uint8_t(magic[0]) == 0x1f && std::uint8_t(magic[1]) == 0x8b;
    in_.clear();
    in_.seekg(0);
    if (gzip_ && inflateInit2(&stream_, 15 + 16) != Z_OK)
      throw Error(ErrorCode::kInternal, path + ": cannot start zlib");
  }
  ~IdxByteReader() {
    if (gzip_) inflateEnd(&stream_);
  }
  IdxByteReader(const IdxByteReader&) = delete;
  IdxByteReader& operator=(const IdxByteReader&) = delete;

  [[noreturn]] void corrupt(const std::string& what) const {
    throw Error(ErrorCode::kCorrupt, path_ + ": not a valid IDX file: " + what);
  }

  // Up to `size` bytes; fewer only where the data (and a gzip stream, with
  // its trailer checked) ends.
  std::size_t read(std::uint8_t* into, std::size_t size) {
    if (!gzip_) {
      in_.read(reinterpret_cast<char*>(into), std::streamsize(size));
      if (in_.bad()) corrupt("read error");
      return std::size_t(in_.gcount());
    }
    std::size_t got = 0;
    while (got < size) {
      if (stream_.avail_in == 0 && !fill()) {
        if (between_members_) break;  // the input ends where a member does
        corrupt("the gzip stream is truncated");
      }
      if (between_members_) {
        if (inflateReset(&stream_) != Z_OK) corrupt("damaged gzip data");
        between_members_ = false;
      }
      const std::size_t room = std::min<std::size_t>(size - got, 1u << 30);
      stream_.next_out = into + got;
      stream_.avail_out = unsigned(room);
      const int rc = inflate(&stream_, Z_NO_FLUSH);
      got += room - stream_.avail_out;
      if (rc == Z_STREAM_END) {
        between_members_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        corrupt(std::string("damaged gzip data (") + (stream_.msg ? stream_.msg : "zlib error") + ")");
      }
    }
    return got;
  }

 private:
  bool fill() {
    in_.read(reinterpret_cast<char*>(buffer_.data()), std::streamsize(buffer_.size()));
    if (in_.bad()) corrupt("read error");
    stream_.next_in = buffer_.data();
    stream_.avail_in = unsigned(in_.gcount());
    return stream_.avail_in > 0;
  }

  std::string path_;
  std::ifstream in_;
  bool gzip_ = false;
  bool between_members_ = false;  // a member has ended; another may follow
  z_stream stream_{};
  std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(1 << 20);
};

}  // namespace

std::vector<std::uint8_t> read_idx_file(const std::string& path, int expected_dims, std::vector<std::int64_t>* dims,
                                        const IdxLimits& limits) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(ErrorCode::kInvalidArgument, path + ": is a folder, not an IDX file");
  IdxByteReader file(path);
  // The header first: a wrong file is refused before its data is read, and
  // the data is read to exactly the size the header announces.
  const std::size_t header_size = 4 + 4 * std::size_t(expected_dims);
  std::uint8_t header[4 + 4 * 4];
  const std::size_t got = file.read(header, 4);
  if (got < 4 || header[0] != 0 || header[1] != 0) file.corrupt("bad magic");
  if (header[2] != 0x08) file.corrupt("element type is not unsigned byte");
  if (header[3] != expected_dims)
    file.corrupt(std::to_string(header[3]) + " dimensions, expected " + std::to_string(expected_dims));
  if (file.read(header + 4, header_size - 4) < header_size - 4) file.corrupt("truncated header");
  std::uint64_t total = 1;
  dims->clear();
  for (int d = 0; d < expected_dims; ++d) {
    const std::size_t at = 4 + 4 * std::size_t(d);
    const std::int64_t size = (std::int64_t(header[at]) << 24) | (header[at + 1] << 16) | (header[at + 2] << 8) | header[at + 3];
    dims->push_back(size);
    if (d > 0 && size == 0) file.corrupt("dimension " + std::to_string(d + 1) + " is 0: images of no pixels");
    if (__builtin_mul_overflow(total, static_cast<std::uint64_t>(size), &total))
      file.corrupt("the header's dimensions multiply past 2^64 bytes");
  }
  if (limits.max_pixels > 0 && expected_dims > 1) {
    const std::uint64_t item = (*dims)[0] > 0 ? total / std::uint64_t((*dims)[0]) : 0;
    if (item > std::uint64_t(limits.max_pixels))
      throw Error(ErrorCode::kInvalidArgument, path + ": images of " + std::to_string(item) +
                                                   " pixels, above the limit of " +
                                                   std::to_string(limits.max_pixels) + " (TaskOptions::max_pixels)");
  }
  if (limits.max_bytes > 0 && total > limits.max_bytes)
    throw Error(ErrorCode::kInvalidArgument,
                path + ": the header announces " + std::to_string(total) + " bytes of data, above the limit of " +
                    std::to_string(limits.max_bytes) +
                    " (TaskOptions::memory_cap_bytes: IDX images are held in memory whole)");
  // Grown as the data comes (not reserved from the header): a damaged
  // header must fail as a short file, not as a huge allocation.
  std::vector<std::uint8_t> bytes;
  std::uint64_t have = 0;
  while (have < total) {
    const std::size_t step = std::size_t(std::min<std::uint64_t>(total - have, 64u << 20));
    bytes.resize(std::size_t(have) + step);
    const std::size_t n = file.read(bytes.data() + have, step);
    have += n;
    if (n < step) break;
  }
  std::uint8_t extra = 0;
  if (have < total || file.read(&extra, 1) != 0)  // (the second read also checks a gzip stream's end)
    file.corrupt("the header announces " + std::to_string(total) + " bytes of data, the file has " +
                 (have < total ? std::to_string(have) : std::string("more")));
  bytes.resize(std::size_t(have));
  return bytes;
}

TaskSource list_idx(const std::string& images_path, const std::string& labels_path,
                    const std::vector<std::string>& class_names, const IdxLimits& limits) {
  std::vector<std::int64_t> image_dims, label_dims;
  auto images = std::make_shared<IdxImages>();
  images->pixels = read_idx_file(images_path, 3, &image_dims, limits);
  images->count = image_dims[0];
  images->rows = image_dims[1];
  images->cols = image_dims[2];
  const std::vector<std::uint8_t> labels = read_idx_file(labels_path, 1, &label_dims);
  if (label_dims[0] != images->count)
    throw Error(ErrorCode::kInvalidArgument,
                labels_path + ": " + std::to_string(label_dims[0]) + " labels for " +
                    std::to_string(images->count) + " images in " + images_path);
  TaskSource task;
  task.origin = images_path;
  std::array<bool, 256> present{};
  for (const std::uint8_t l : labels) present[l] = true;
  // Class names are given by label value; without them, the classes are the
  // label values that occur (EMNIST Letters counts from 1), named by them.
  std::array<int, 256> class_of{};
  if (class_names.empty()) {
    for (int v = 0; v < 256; ++v)
      if (present[std::size_t(v)]) {
        class_of[std::size_t(v)] = int(task.class_names.size());
        task.class_names.push_back(std::to_string(v));
      }
  } else {
    for (int v = 255; v >= 0; --v)
      if (present[std::size_t(v)] && v >= int(class_names.size()))
        throw Error(ErrorCode::kInvalidArgument,
                    labels_path + ": label " + std::to_string(v) + " but only " + std::to_string(class_names.size()) +
                        " class names were given (names go by label value, from 0)");
    for (std::size_t v = 0; v < class_names.size(); ++v) {
      if (!present[v])
        throw Error(ErrorCode::kInvalidArgument,
                    labels_path + ": no image has label " + std::to_string(v) + ", named '" + class_names[v] +
                        "' (names go by label value, from 0); leave out the names, or name only labels that occur");
      class_of[v] = int(v);
      task.class_names.push_back(class_names[v]);
    }
  }
  for (std::int64_t i = 0; i < images->count; ++i)
    task.samples.push_back({images_path + "#" + std::to_string(i), class_of[labels[std::size_t(i)]], i});
  task.idx_images = std::move(images);
  check_classes(task);
  return task;
}

void check_class_selection(const std::vector<std::string>& keep, const std::vector<std::string>& names) {
  if (keep.size() < 2)
    throw Error(ErrorCode::kInvalidArgument,
                std::to_string(keep.size()) + " classes selected; a task needs at least two");
  if (!names.empty() && names.size() != keep.size())
    throw Error(ErrorCode::kInvalidArgument, std::to_string(names.size()) + " class names for " +
                                                 std::to_string(keep.size()) + " selected classes");
  const auto first_repeat = [](const std::vector<std::string>& v) {
    for (std::size_t k = 0; k < v.size(); ++k)
      if (std::find(v.begin(), v.begin() + std::ptrdiff_t(k), v[k]) != v.begin() + std::ptrdiff_t(k)) return k;
    return v.size();
  };
  if (const std::size_t k = first_repeat(names); k < names.size())
    throw Error(ErrorCode::kInvalidArgument, "class name '" + names[k] + "' is given twice; it would merge two classes");
  if (const std::size_t k = first_repeat(keep); k < keep.size())
    throw Error(ErrorCode::kInvalidArgument, "class '" + keep[k] + "' is selected twice");
}

TaskSource select_classes(const TaskSource& source, const std::vector<std::string>& keep,
                          const std::vector<std::string>& names) {
  check_class_selection(keep, names);
  std::vector<int> new_label(source.class_names.size(), -1);
  for (std::size_t k = 0; k < keep.size(); ++k) {
    const auto it = std::find(source.class_names.begin(), source.class_names.end(), keep[k]);
    if (it == source.class_names.end()) {
      std::string known;
      for (const std::string& c : source.class_names) known += (known.empty() ? "" : ", ") + c;
      throw Error(ErrorCode::kInvalidArgument,
                  source.origin + ": no class '" + keep[k] + "' (there are: " + known + ")");
    }
    new_label[std::size_t(it - source.class_names.begin())] = int(k);  // distinct: checked above
  }
  TaskSource out;
  out.origin = source.origin;
  out.class_names = names.empty() ? keep : names;
  out.skipped = source.skipped;
  out.idx_images = source.idx_images;
  for (const SampleRef& s : source.samples)
    if (const int label = new_label[std::size_t(s.label)]; label >= 0) out.samples.push_back({s.path, label, s.idx});
  check_classes(out);
  return out;
}

}  // namespace nasoa::runtime
