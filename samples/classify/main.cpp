// Sample: classify image files with a fine-tuned model.
//
//   nasoa-classify --model MODEL_DIR [--top K] PATH...
//
// Prints one line per image, `path<TAB>label<TAB>probability` (a tab, line
// break or backslash in the path written \t, \n, \r or \\); with --top K,
// K such lines per image, most probable first. Folders are walked recursively
// in sorted order, taking files with an image extension; files named on the
// command line are always tried. A file that cannot be classified is reported
// on stderr and the rest go on; so is a folder without images, and a pipe,
// device or dangling link named like an image. Exit status: 0 when every
// image was classified, 1 when any failed (or the model cannot be used), 2
// for bad arguments.
//
// Uses only the public API: nasoa::Classifier and nasoa::Error.
#include <CLI/CLI.hpp>
#include <nasoa/nasoa.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "../common/command_line.h"
#include "../common/text_file.h"

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
    if (ext == known) return true;
  return false;
}

// The images under `folder`, sorted; false (after saying why) if it cannot be walked.
// Adds the image files under `folder` to `found`; links to folders are
// followed, each folder once (as training reads a task). False, after saying
// why, when something could not be read.
bool walk_into(const fs::path& folder, const fs::path& root, std::set<fs::path>& seen,
               std::vector<std::string>& found) {
  std::error_code ec;
  const fs::path canonical = fs::canonical(folder, ec);
  if (!ec && !seen.insert(canonical).second) return true;  // reached again through a link
  // A link up to the folder walked or above it would walk its siblings (or
  // the whole disk); training skips such links too.
  if (!ec && !seen.empty() && canonical != root &&
      std::mismatch(canonical.begin(), canonical.end(), root.begin(), root.end()).first == canonical.end()) {
    std::cerr << "nasoa-classify: skipped: " << nasoa_samples::one_line(folder.string())
              << ": a link to a folder above the one walked; not followed\n";
    return true;
  }
  fs::directory_iterator it(folder, ec);
  if (ec) {
    std::cerr << "nasoa-classify: " << nasoa_samples::one_line(folder.string()) << ": cannot list: " << ec.message()
              << '\n';
    return false;
  }
  bool usable = true;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    // Hidden entries (".thumbs", macOS's "._photo.jpg") are not images a
    // user meant; training skips them too.
    if (it->path().filename().string().rfind('.', 0) == 0) continue;
    std::error_code type_ec;
    if (it->is_directory(type_ec)) {
      usable = walk_into(it->path(), root, seen, found) && usable;
      continue;
    }
    if (!has_image_extension(it->path())) continue;
    if (it->is_regular_file(type_ec)) {
      found.push_back(it->path().string());
    } else {
      // A pipe, device or dangling link named like an image: said, not dropped.
      std::cerr << "nasoa-classify: skipped: " << nasoa_samples::one_line(it->path().string())
                << ": not a regular file\n";
      usable = false;
    }
  }
  if (ec) {
    std::cerr << "nasoa-classify: " << nasoa_samples::one_line(folder.string())
              << ": cannot walk the folder: " << ec.message() << '\n';
    return false;
  }
  return usable;
}

// The images under `folder`, sorted; false (after saying why) if it cannot be walked.
bool walk(const std::string& folder, std::vector<std::string>* out) {
  std::vector<std::string> found;
  std::set<fs::path> seen;
  std::error_code ec;
  const fs::path root = fs::canonical(folder, ec);
  const bool usable = walk_into(folder, root, seen, found);
  if (found.empty()) {
    std::cerr << "nasoa-classify: " << nasoa_samples::one_line(folder)
              << ": no image files (.png .jpg .jpeg .bmp .webp .tif .tiff) in it\n";
    return false;
  }
  std::sort(found.begin(), found.end());
  out->insert(out->end(), found.begin(), found.end());
  return usable;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Classify images with a fine-tuned nasoa model directory.\n"
               "Prints `path<TAB>label<TAB>probability` per image; with --top K, K lines per\n"
               "image, most probable first. Folders are walked recursively (sorted; .png .jpg\n"
               ".jpeg .bmp .webp .tif .tiff). Exit status: 0 all classified, 1 any file failed\n"
               "or the model cannot be used, 2 bad arguments."};
  std::string model_dir;
  int top = 1;
  std::vector<std::string> paths;
  app.add_option("--model", model_dir, "Model directory (written by the runtime after fine-tuning)")
      ->required();
  app.add_option("--top", top, "Print the K most probable classes per image (default 1)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("paths", paths, "Image files and folders")->required();
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  if (model_dir.empty()) {
    std::cerr << "nasoa-classify: --model is empty; name a model directory\n";
    return 2;
  }

  try {
    const nasoa::Classifier classifier = nasoa::Classifier::open(model_dir);  // verifies every file
    bool failed = false;
    std::vector<std::string> images;
    for (const std::string& path : paths) {
      std::error_code ec;
      if (fs::is_directory(path, ec)) failed |= !walk(path, &images);
      else images.push_back(path);
    }
    for (const std::string& image : images) {
      try {
        const std::string shown = nasoa_samples::one_line(image);
        for (const nasoa::Prediction& p : classifier.predict_file(image, top))
          std::printf("%s\t%s\t%.6f\n", shown.c_str(), p.label.c_str(), double(p.probability));
      } catch (const nasoa::Error& e) {
        // The message names the file and what is wrong with it.
        std::fflush(stdout);
        std::cerr << "nasoa-classify: skipped (" << nasoa::to_string(e.code())
                  << "): " << nasoa_samples::one_line(e.what()) << '\n';  // a file name may hold a line break
        failed = true;
      }
    }
    // Results that could not be written (a full disk, a closed pipe) are
    // lost: that is a failure, not a success.
    if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
      std::cerr << "nasoa-classify: cannot write the results to standard output\n";
      return 1;
    }
    return failed ? 1 : 0;
  } catch (const nasoa::Error& e) {
    std::cerr << "nasoa-classify: cannot use model " << nasoa_samples::one_line(model_dir) << " ("
              << nasoa::to_string(e.code()) << "): " << e.what() << '\n';
    return 1;
  }
}
