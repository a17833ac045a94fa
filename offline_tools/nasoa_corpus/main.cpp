// nasoa-corpus: build the upstream corpus, the source tasks and the
// evaluation tasks from Debian's data packages.
//
//   nasoa-corpus --out DIR [--seed N] [--side PX] [--fashion DIR] [--clipart DIR]
//                [--fonts DIR] [--threads N] [--scale full|tiny] [--force]
//                [--max-pixels N] [--fashion-upstream N] [--fashion-eval N]
//                [--clipart-per-class N] [--glyph-upstream N] [--glyph-source N]
//                [--glyph-eval N]
//
// Writes DIR/upstream/<class>/, DIR/source/<task>/<class>/,
// DIR/eval/<task>/<class>/ (PNG files) and DIR/corpus.json, last. Run again
// with the same options it does nothing if the files are those corpus.json
// records (a digest over them), rebuilds them if some are missing or changed,
// and refuses if the folders hold files it did not write; with other options
// it refuses unless --force. docs/corpora.md describes what it builds.
//
// Exit status: 0 success (or nothing to do), 1 a failed operation (the
// reason on stderr), 2 bad arguments.
#include <CLI/CLI.hpp>

#include <iostream>

#include "nasoa/error.h"
#include "offline_tools/corpus/corpus.h"
#include "samples/common/command_line.h"

int main(int argc, char** argv) {
  namespace nc = nasoa::corpus;
  CLI::App app{"nasoa-corpus: build the upstream corpus, source tasks and evaluation tasks from Debian's data packages"};
  nc::CorpusOptions o;
  std::string scale = "full";
  app.add_option("--out", o.out, "Folder to write the corpus into (new, empty, or an earlier corpus)")->required();
  app.add_option("--seed", o.seed, "Seed of every random choice")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  app.add_option("--side", o.side, "Side of the square images, in pixels")->capture_default_str()->check(CLI::Range(16, 1024));
  app.add_option("--fashion", o.fashion_dir, "Fashion-MNIST IDX files (package dataset-fashion-mnist)")->capture_default_str();
  app.add_option("--clipart", o.clipart_dir, "Clip-art category tree of PNG files (package openclipart-png)")->capture_default_str();
  app.add_option("--fonts", o.fonts_dir, "Folder searched for .ttf/.otf fonts (packages fonts-*)")->capture_default_str();
  app.add_option("--threads", o.threads, "Worker threads (0: one per core); the output does not depend on it")
      ->capture_default_str()->check(CLI::Range(0, 1024));
  app.add_option("--scale", scale, "full, or tiny: a few classes and images per set, for tests")
      ->capture_default_str()->check(CLI::IsMember({"full", "tiny"}));
  app.add_flag("--force", o.force, "Rebuild a complete corpus that was built with other options");
  app.add_option("--max-pixels", o.max_pixels, "Clip-art whose header announces more pixels is skipped, never decoded")
      ->capture_default_str()->check(CLI::Range(std::int64_t(1), std::int64_t(1) << 40));
  const char* per_class = "Images per class (default: the scale's)";
  const CLI::Range count_range(1, 100000);
  app.add_option("--fashion-upstream", o.fashion_upstream, std::string(per_class) + ", Fashion-MNIST TRAIN classes 0-4 (full: 1200)")->check(count_range);
  app.add_option("--fashion-eval", o.fashion_eval, std::string(per_class) + ", Fashion-MNIST TEST classes 5-9 (full: 200)")->check(count_range);
  app.add_option("--clipart-per-class", o.clipart, "Most images per clip-art class (full: 200)")->check(count_range);
  app.add_option("--glyph-upstream", o.glyph_upstream, std::string(per_class) + ", Latin letters and digits (full: 150)")->check(count_range);
  app.add_option("--glyph-source", o.glyph_source, std::string(per_class) + ", Greek letters and symbols (full: 80)")->check(count_range);
  app.add_option("--glyph-eval", o.glyph_eval, std::string(per_class) + ", Cyrillic letters (full: 80)")->check(count_range);
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  o.scale = *nc::parse_scale(scale);
  return nasoa_samples::run_reporting_errors("nasoa-corpus", [&] {
    if (o.out.empty()) throw nasoa_samples::BadArguments("--out is an empty path");
    const nc::CorpusSummary s = nc::build_corpus(o, std::cerr);
    if (s.built) {
      std::cout << "wrote " << o.out << " in " << s.seconds << " s\n";
    } else {
      std::cout << o.out << " is complete already\n";
    }
    for (const auto& [name, c] : {std::pair<const char*, nc::SetCount>{"upstream", s.upstream},
                                  {"source", s.source}, {"eval", s.eval}})
      std::cout << "  " << name << ": " << c.tasks << (c.tasks == 1 ? " task, " : " tasks, ") << c.classes
                << " classes, " << c.images << " images\n";
    std::cout << "  skipped " << s.skipped << " unusable source files; " << s.duplicates
              << " clip-art copies or look-alikes used once (corpus.json lists both)\n";
    return 0;
  });
}
