// Sample: classify image files with a fine-tuned model.
//
//   nasoa-classify --model MODEL_DIR [--top K] PATH...
//
// Prints one line per image, `path<TAB>label<TAB>probability` (a tab, line
// break or backslash in the path or label written \t, \n, \r or \\, other
// control characters and Unicode line separators as \xHH bytes); with --top K,
// K such lines per image, most probable first. Of a multi-page TIFF only the
// first page is classified, as in training, and a note on stderr says so.
// Folders are walked recursively in sorted order, taking files with an image
// extension; files named on the command line are always tried. A file that
// cannot be classified is reported on stderr and the rest go on; so is a
// folder without images, and a pipe, device or dangling link named like an
// image. Exit status: 0 when every image was classified, 1 when any failed
// (or the model cannot be used), 2 for bad arguments.
//
// Uses only the public API: nasoa::Classifier, nasoa::list_images and nasoa::Error.
#include <CLI/CLI.hpp>
#include <nasoa/nasoa.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "../common/command_line.h"
#include "../common/text_file.h"

namespace fs = std::filesystem;

namespace {

// Adds the images under `folder` to `out`, walked as training walks a
// class folder (nasoa::list_images); false, after saying why, when something
// in it could not be read or it holds no image.
bool walk(const std::string& folder, std::vector<std::string>* out) {
  nasoa::ImageListing listing;
  try {
    listing = nasoa::list_images(folder);
  } catch (const nasoa::Error& e) {
    std::cerr << "nasoa-classify: " << nasoa_samples::one_line(e.what()) << '\n';
    return false;
  }
  // Hidden entries (".thumbs", macOS's "._photo.jpg") and other file types
  // are not images a user meant; what looks like one but cannot be read is
  // said, not dropped.
  for (const nasoa::SkippedFile& s : listing.skipped)
    std::cerr << "nasoa-classify: skipped: " << nasoa_samples::one_line(s.path) << ": " << s.reason << '\n';
  if (listing.images.empty()) {
    std::cerr << "nasoa-classify: " << nasoa_samples::one_line(folder)
              << ": no image files (.png .jpg .jpeg .bmp .webp .tif .tiff) in it\n";
    return false;
  }
  out->insert(out->end(), listing.images.begin(), listing.images.end());
  return listing.skipped.empty();
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
        bool more_pages = false;
        const std::vector<nasoa::Prediction> predictions = classifier.predict_file(image, top, &more_pages);
        // A label may hold U+2028, U+2029 or U+0085, which line-based readers
        // split a record at, as they would at a path's.
        for (const nasoa::Prediction& p : predictions)
          std::printf("%s\t%s\t%.6f\n", shown.c_str(), nasoa_samples::one_line(p.label).c_str(),
                      double(p.probability));
        if (more_pages) {
          std::fflush(stdout);
          std::cerr << "nasoa-classify: note: " << shown
                    << ": a multi-page TIFF; only its first page was classified\n";
        }
      } catch (const nasoa::Error& e) {
        // The message names the file and what is wrong with it.
        std::fflush(stdout);
        std::cerr << "nasoa-classify: skipped (" << nasoa::to_string(e.code())
                  << "): " << nasoa_samples::one_line(e.what()) << '\n';  // a file name may hold a line break
        failed = true;
      }
    }
    if (!nasoa_samples::standard_output_written()) {
      std::cerr << "nasoa-classify: cannot write the results to standard output\n";
      return 1;
    }
    return failed ? 1 : 0;
  } catch (const nasoa::Error& e) {
    std::cerr << "nasoa-classify: cannot use model " << nasoa_samples::one_line(model_dir) << " ("
              << nasoa::to_string(e.code()) << "): " << nasoa_samples::one_line(e.what()) << '\n';
    return 1;
  }
}
