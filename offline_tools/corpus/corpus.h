// offline_tools/corpus/corpus.h: the upstream corpus, source tasks and
// evaluation tasks, built from Debian's data packages.
//
// Writes three disjoint sets of ordinary class-folder trees under one folder:
//
//   OUT/upstream/<class>/<index>.png         the ImageNet stand-in (search, pretraining)
//   OUT/source/<task>/<class>/<index>.png    tasks that gather fine-tuning experience
//   OUT/eval/<task>/<class>/<index>.png      tasks the benchmarks report on
//   OUT/corpus.json                          what was built from what; written last
//
// No class name and no image is in two sets. Every image is 8-bit RGB PNG,
// side x side. The same seed and options give byte-identical trees on one
// machine, with any number of threads. docs/corpora.md is the data card: the
// sources, the allocation rule and the counts.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>

namespace nasoa::corpus {

// Where Debian's packages put the sources.
inline constexpr const char* kDefaultFashionDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kDefaultClipartDir = "/usr/share/openclipart/png";
inline constexpr const char* kDefaultFontsDir = "/usr/share/fonts";

// Bumped whenever a change makes a seed produce different images, so that an
// old corpus is not taken for one this version would build.
inline constexpr int kRecipe = 1;

enum class Scale {
  kFull,  // every class, the default counts
  kTiny,  // a few classes and images of each set, for tests: seconds to build
};
const char* to_string(Scale scale);
std::optional<Scale> parse_scale(const std::string& text);

struct CorpusOptions {
  std::string out;
  std::string fashion_dir = kDefaultFashionDir;
  std::string clipart_dir = kDefaultClipartDir;
  std::string fonts_dir = kDefaultFontsDir;
  std::uint64_t seed = 1;
  int side = 64;
  int threads = 0;  // 0: one per hardware thread; never changes the output
  Scale scale = Scale::kFull;
  bool force = false;  // rebuild a complete corpus built with other options
  std::int64_t max_pixels = 40'000'000;  // clip-art whose header announces more is skipped, never decoded
  // Images per class; -1 takes the scale's default (full: 1200, 200, 200,
  // 150, 80, 80; tiny: 4, 3, 4, 4, 3, 3).
  int fashion_upstream = -1;  // Fashion-MNIST TRAIN, upstream classes
  int fashion_eval = -1;      // Fashion-MNIST TEST, eval task fashion
  int clipart = -1;           // cap per clip-art class, all sets
  int glyph_upstream = -1;    // Latin letters and digits
  int glyph_source = -1;      // Greek letters and symbols
  int glyph_eval = -1;        // Cyrillic letters
};

struct SetCount {
  std::size_t tasks = 0;  // 1 for upstream (one tree of classes)
  std::size_t classes = 0;
  std::int64_t images = 0;
};

struct CorpusSummary {
  bool built = false;  // false: OUT already held this very corpus and was left alone
  SetCount upstream, source, eval;
  std::size_t skipped = 0;     // source files that could not be used
  std::size_t duplicates = 0;  // clip-art copies set aside so each drawing is used once
  double seconds = 0;
};

// Builds the corpus in options.out, or confirms that it is already there:
// corpus.json written with the same options and a digest of the recorded
// files that still matches them. Recorded files changed or removed since make
// it rebuild; files it did not record make it refuse (kInvalidArgument).
// Progress and every skipped file (path and reason) go to `log`. Throws
// nasoa::Error: kNotFound naming a missing source folder and the Debian
// package that provides it, kInvalidArgument for bad options, for an OUT
// holding a corpus built with other options (unless force) or holding files
// this tool did not write, kIo when writing fails.
CorpusSummary build_corpus(const CorpusOptions& options, std::ostream& log);

}  // namespace nasoa::corpus
