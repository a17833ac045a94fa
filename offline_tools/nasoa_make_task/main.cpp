// nasoa-make-task: turn an IDX image set into an ordinary task folder.
//
//   nasoa-make-task --idx IMAGES LABELS --classes 5,6,7 [--class-names a,b,c]
//                   --per-class N [--seed S] --out DIR [--replace]
//
// Writes DIR/<class name>/<index>.png, one lossless PNG per chosen image,
// named by its index in the IDX file so that each image can be traced back
// to its source. Tasks are folders because that is what a user hands the SDK:
// a task made here exercises the same ingestion a user's photos go through.
// Which images are chosen depends only on the IDX files, the classes, N and
// the seed. The folder is written beside DIR (".DIR.partial"), synced and
// renamed into place when complete; an old DIR is moved aside (".DIR.old")
// first and removed last. So an interrupted run never leaves a half task
// behind (between the two renames DIR is missing, and a rerun makes it).
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr),
// 2 bad arguments.
#include <CLI/CLI.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>

#include "nasoa/error.h"
#include "runtime/data/task_source.h"
#include "samples/common/command_line.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/manifest.h"

namespace fs = std::filesystem;

namespace {

using nasoa::Error;
using nasoa::ErrorCode;

// The files written under `dir` and the folders themselves reach the disk:
// one syncfs of their file system rather than an fsync per PNG.
void sync_tree(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kIo, dir.string() + ": cannot open: " + std::strerror(errno));
  const int rc = ::syncfs(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) throw Error(ErrorCode::kIo, dir.string() + ": cannot sync: " + std::strerror(error));
}

struct Args {
  std::vector<std::string> idx, classes, class_names;
  std::int64_t per_class = 0;
  std::uint64_t seed = 0;
  std::string out;
  bool replace = false;
};

// True when `dir` holds nothing but class folders of PNG files, i.e. what this
// tool writes: only such a folder is removed for --replace, so that a mistyped
// --out never deletes a user's data.
bool looks_like_made_task(const fs::path& dir) {
  for (const fs::directory_entry& cls : fs::directory_iterator(dir)) {
    if (!cls.is_directory()) return false;
    for (const fs::directory_entry& f : fs::directory_iterator(cls.path()))
      if (!f.is_regular_file() || f.path().extension() != ".png") return false;
  }
  return true;
}

// std::shuffle's algorithm is the library's choice; this one is fixed, so the
// same seed picks the same images with any compiler.
void seeded_shuffle(std::vector<std::size_t>& v, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

int run(const Args& a) {
  namespace rt = nasoa::runtime;
  nasoa_samples::checking_arguments([&] { rt::check_class_selection(a.classes, a.class_names); },
                                    "--classes / --class-names: ");
  // A class name names a folder.
  nasoa_samples::checking_arguments([&] {
    for (const std::string& name : a.class_names.empty() ? a.classes : a.class_names)
      nasoa::zoo::check_safe_name("class folder name", name);
  });
  // "task/" and "." name a folder too; the staging folder goes beside it,
  // never inside (where replacing the old task deleted the new one).
  const fs::path out = nasoa::zoo::named_folder(a.out);
  if (out == out.root_path())
    throw nasoa_samples::BadArguments(a.out + ": the root folder cannot be a task folder");
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      throw Error(ErrorCode::kInvalidArgument, a.out + " exists and is not a folder; refusing to replace it");
    if (!fs::is_empty(out, ec)) {
      if (!a.replace)
        throw Error(ErrorCode::kInvalidArgument, a.out + " exists and is not empty (--replace replaces a task folder)");
      if (!looks_like_made_task(out))
        throw Error(ErrorCode::kInvalidArgument,
                    a.out + " holds more than class folders of PNG files; refusing to replace it");
    }
  }

  const rt::TaskSource task = rt::select_classes(rt::list_idx(a.idx[0], a.idx[1]), a.classes, a.class_names);
  std::vector<std::vector<std::size_t>> by_class(task.class_names.size());
  for (std::size_t i = 0; i < task.samples.size(); ++i) by_class[std::size_t(task.samples[i].label)].push_back(i);
  for (std::size_t c = 0; c < by_class.size(); ++c) {
    if (std::int64_t(by_class[c].size()) < a.per_class)
      throw Error(ErrorCode::kInvalidArgument, a.idx[1] + ": class '" + a.classes[c] + "' has " +
                                                   std::to_string(by_class[c].size()) + " images, fewer than --per-class " +
                                                   std::to_string(a.per_class));
    seeded_shuffle(by_class[c], a.seed + c);
    by_class[c].resize(std::size_t(a.per_class));
    std::sort(by_class[c].begin(), by_class[c].end());
  }

  const fs::path staging = out.parent_path() / ("." + out.filename().string() + ".partial");
  fs::remove_all(staging, ec);
  const rt::IdxImages& images = *task.idx_images;
  const std::vector<int> png_options{cv::IMWRITE_PNG_COMPRESSION, 9};
  std::int64_t written = 0;
  try {
    for (std::size_t c = 0; c < by_class.size(); ++c) {
      const fs::path folder = staging / task.class_names[c];
      fs::create_directories(folder, ec);
      if (ec) throw Error(ErrorCode::kIo, folder.string() + ": cannot create folder: " + ec.message());
      for (const std::size_t i : by_class[c]) {
        const rt::SampleRef& s = task.samples[i];
        const cv::Mat image(int(images.rows), int(images.cols), CV_8UC1,
                            const_cast<std::uint8_t*>(images.pixels.data() + s.idx * images.rows * images.cols));
        char name[32];
        std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(s.idx));
        const std::string path = (folder / name).string();
        if (!cv::imwrite(path, image, png_options)) throw Error(ErrorCode::kIo, path + ": cannot write the PNG");
        ++written;
      }
    }
    // The new task is made durable before it replaces anything; the old one
    // is renamed aside and removed only once the new one is in place, so a
    // kill leaves the old task, the new one, or (between the two renames)
    // none, never part of one.
    sync_tree(staging);
    const fs::path aside = out.parent_path() / ("." + out.filename().string() + ".old");
    fs::remove_all(aside, ec);
    bool moved_aside = false;
    if (fs::exists(out, ec)) {
      fs::rename(out, aside, ec);
      if (ec) throw Error(ErrorCode::kIo, a.out + ": cannot move the old task aside: " + ec.message());
      moved_aside = true;
    }
    fs::rename(staging, out, ec);
    if (ec) {
      const std::string why = ec.message();
      std::error_code back;
      if (moved_aside) fs::rename(aside, out, back);  // the old task, put back
      throw Error(ErrorCode::kIo, a.out + ": cannot move the finished task into place: " + why +
                                      (moved_aside && back ? "; the old task is in " + aside.string() : ""));
    }
    nasoa::zoo::sync_directory(out.parent_path().string());
    fs::remove_all(aside, ec);
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
  std::cout << "wrote " << written << " images in " << by_class.size() << " classes to " << a.out << '\n';
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-make-task: write a folder of class subfolders of PNG images from IDX files"};
  Args a;
  app.add_option("--idx", a.idx, "MNIST-format IDX images and labels files (plain or gzipped)")->expected(2)->required();
  app.add_option("--classes", a.classes, "Label numbers to take, in this order")
      ->delimiter(',')->check(nasoa_samples::list_values())->required();
  app.add_option("--class-names", a.class_names, "Folder names of those classes (default: the numbers)")
      ->delimiter(',')->check(nasoa_samples::list_values());
  app.add_option("--per-class", a.per_class, "Images per class")->required()->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 40));
  app.add_option("--seed", a.seed, "Seed of which images are picked")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  app.add_option("--out", a.out, "Task folder to write (must not exist, or be empty)")
      ->required()
      ->check(nasoa_samples::non_empty());
  app.add_flag("--replace", a.replace, "Replace a task folder this tool wrote");
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  return nasoa_samples::run_reporting_errors("nasoa-make-task", [&] { return run(a); });
}
