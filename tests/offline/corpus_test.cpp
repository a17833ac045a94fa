// nasoa-corpus's library on the real Debian packages, at the tiny scale.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "nasoa/error.h"
#include "offline_tools/corpus/corpus.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::corpus {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using nasoa::testing::TempDir;

// Skips the test (with the package to install) when a source is missing.
#define REQUIRE_SOURCES()                                                                                         \
  do {                                                                                                            \
    if (!fs::exists(std::string(kDefaultFashionDir) + "/t10k-images-idx3-ubyte.gz"))                              \
      GTEST_SKIP() << "package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";            \
    if (!fs::is_directory(kDefaultClipartDir))                                                                    \
      GTEST_SKIP() << "package openclipart-png is not installed (scripts/setup.sh installs it)";                  \
    if (!fs::is_directory(std::string(kDefaultFontsDir) + "/truetype/dejavu"))                                    \
      GTEST_SKIP() << "package fonts-dejavu-core is not installed (scripts/setup.sh installs it)";                \
  } while (0)

CorpusOptions tiny(const fs::path& out, std::uint64_t seed = 1, int threads = 2) {
  CorpusOptions o;
  o.out = out.string();
  o.scale = Scale::kTiny;
  o.seed = seed;
  o.threads = threads;
  return o;
}

CorpusSummary build(const CorpusOptions& o) {
  std::ostringstream log;
  return build_corpus(o, log);
}

// Relative path -> bytes, for every file under `root`.
std::map<std::string, std::string> read_tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out[e.path().lexically_relative(root).generic_string()] = zoo::read_file(e.path().string());
  return out;
}

std::size_t count_files(const fs::path& dir) {
  std::size_t n = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

// Every class of the record as (folder relative to OUT, class json).
std::vector<std::pair<std::string, json>> record_classes(const json& record) {
  std::vector<std::pair<std::string, json>> out;
  for (const json& c : record["sets"]["upstream"]["classes"]) out.emplace_back("upstream/" + c["name"].get<std::string>(), c);
  for (const char* set : {"source", "eval"})
    for (const json& t : record["sets"][set]["tasks"])
      for (const json& c : t["classes"])
        out.emplace_back(std::string(set) + "/" + t["name"].get<std::string>() + "/" + c["name"].get<std::string>(), c);
  return out;
}

json read_record(const fs::path& out) { return json::parse(zoo::read_file((out / "corpus.json").string())); }

TEST(CorpusTest, SameSeedGivesByteIdenticalTreesWithAnyThreadCount) {
  REQUIRE_SOURCES();
  TempDir dir;
  build(tiny(dir.path() / "a", 1, 2));
  build(tiny(dir.path() / "b", 1, 1));
  const auto a = read_tree(dir.path() / "a"), b = read_tree(dir.path() / "b");
  EXPECT_GT(a.size(), 150u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [path, bytes] : a) {
    const auto it = b.find(path);
    ASSERT_NE(it, b.end()) << path << " is only in the first tree";
    EXPECT_TRUE(it->second == bytes) << path << " differs";
  }
}

TEST(CorpusTest, AnotherSeedDrawsOtherGlyphsInTheSameClasses) {
  REQUIRE_SOURCES();
  TempDir dir;
  build(tiny(dir.path() / "one", 1));
  build(tiny(dir.path() / "two", 2));
  const json one = read_record(dir.path() / "one"), two = read_record(dir.path() / "two");
  const auto classes_one = record_classes(one), classes_two = record_classes(two);
  ASSERT_EQ(classes_one.size(), classes_two.size());
  std::size_t glyphs = 0, differ = 0;
  for (std::size_t i = 0; i < classes_one.size(); ++i) {
    ASSERT_EQ(classes_one[i].first, classes_two[i].first) << "the allocation must not depend on the seed";
    if (classes_one[i].second["source"]["package"] != "fonts") continue;
    for (const fs::directory_entry& e : fs::directory_iterator(dir.path() / "one" / classes_one[i].first)) {
      const fs::path other = dir.path() / "two" / classes_one[i].first / e.path().filename();
      ASSERT_TRUE(fs::exists(other)) << other;
      ++glyphs;
      differ += zoo::read_file(e.path().string()) != zoo::read_file(other.string());
    }
  }
  EXPECT_GT(glyphs, 50u);
  // Two seeds draw font, size, angle, colours and background independently:
  // an identical image would mean the seed is not reaching the drawing.
  EXPECT_EQ(differ, glyphs);
}

TEST(CorpusTest, SetsShareNoClassAndNoImageAndEveryFileIsAnRgbSquare) {
  REQUIRE_SOURCES();
  TempDir dir;
  CorpusOptions o = tiny(dir.path() / "c");
  o.side = 40;  // not the default, so that the side is seen to be honoured
  build(o);
  std::map<std::string, std::string> class_set;  // lower-cased class name -> set
  std::map<std::string, std::string> pixel_set;  // digest of decoded pixels -> set
  std::size_t files = 0;
  for (const char* set : {"upstream", "source", "eval"}) {
    const fs::path root = dir.path() / "c" / set;
    ASSERT_TRUE(fs::is_directory(root)) << root;
    std::set<std::string> names_here, digests_here;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(root)) {
      if (e.is_directory()) {
        // A class folder is one that holds files: upstream/<class>, <set>/<task>/<class>.
        if (count_files(e.path()) == 0) continue;
        std::string name = e.path().filename().string();
        for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
        names_here.insert(name);
        continue;
      }
      ++files;
      EXPECT_EQ(e.path().extension(), ".png") << e.path();
      const cv::Mat m = cv::imread(e.path().string(), cv::IMREAD_UNCHANGED);
      ASSERT_FALSE(m.empty()) << e.path() << " does not decode";
      EXPECT_EQ(m.type(), CV_8UC3) << e.path();
      EXPECT_EQ(m.rows, 40) << e.path();
      EXPECT_EQ(m.cols, 40) << e.path();
      digests_here.insert(zoo::sha256_hex(std::string_view(reinterpret_cast<const char*>(m.data), m.total() * m.elemSize())));
    }
    EXPECT_FALSE(names_here.empty()) << set;
    for (const std::string& n : names_here) {
      const auto [it, inserted] = class_set.emplace(n, set);
      EXPECT_TRUE(inserted) << "class " << n << " is in " << it->second << " and " << set;
    }
    for (const std::string& d : digests_here) {
      const auto [it, inserted] = pixel_set.emplace(d, set);
      EXPECT_TRUE(inserted) << "an image of " << set << " has the same pixels as one of " << it->second;
    }
  }
  EXPECT_GT(files, 150u);
}

TEST(CorpusTest, RecordCountsMatchTheFilesOnDisk) {
  REQUIRE_SOURCES();
  TempDir dir;
  const CorpusSummary s = build(tiny(dir.path() / "d"));
  const json record = read_record(dir.path() / "d");
  EXPECT_EQ(record["tool"], "nasoa-corpus");
  EXPECT_EQ(record["options"]["seed"], 1);
  std::int64_t on_disk = 0;
  std::set<std::string> recorded;
  for (const auto& [folder, c] : record_classes(record)) {
    const fs::path path = dir.path() / "d" / folder;
    ASSERT_TRUE(fs::is_directory(path)) << path;
    const std::size_t n = count_files(path);
    EXPECT_EQ(c["images"].get<std::size_t>(), n) << folder;
    EXPECT_EQ(c["items"].size(), n) << folder;
    EXPECT_GT(n, 0u) << folder;
    on_disk += std::int64_t(n);
    recorded.insert(folder);
  }
  std::size_t folders_with_files = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir.path() / "d"))
    if (e.is_directory() && count_files(e.path()) > 0) ++folders_with_files;
  EXPECT_EQ(folders_with_files, recorded.size()) << "a class folder on disk is missing from corpus.json";
  EXPECT_EQ(record["totals"]["images"].get<std::int64_t>(), on_disk);
  EXPECT_EQ(s.upstream.images + s.source.images + s.eval.images, on_disk);
  for (const char* set : {"source", "eval"}) {
    std::int64_t sum = 0;
    for (const json& t : record["sets"][set]["tasks"]) {
      std::int64_t task_sum = 0;
      for (const json& c : t["classes"]) task_sum += c["images"].get<std::int64_t>();
      EXPECT_EQ(t["images"].get<std::int64_t>(), task_sum) << t["name"];
      sum += task_sum;
    }
    EXPECT_EQ(record["totals"][set]["images"].get<std::int64_t>(), sum) << set;
  }

  std::vector<std::string> eval_tasks;
  for (const json& t : record["sets"]["eval"]["tasks"]) eval_tasks.push_back(t["name"]);
  EXPECT_EQ(eval_tasks, (std::vector<std::string>{"fashion", "cyrillic", "clipart-a", "clipart-b"}));
  std::vector<std::string> fashion;
  for (const json& c : record["sets"]["eval"]["tasks"][0]["classes"]) {
    fashion.push_back(c["name"]);
    EXPECT_EQ(c["source"]["split"], "test");
  }
  EXPECT_EQ(fashion, (std::vector<std::string>{"sandal", "shirt", "sneaker", "bag", "ankle-boot"}));
  EXPECT_EQ(record["sets"]["source"]["tasks"].size(), 2u);
  EXPECT_EQ(record["sets"]["upstream"]["classes"].size(), 10u);
}

TEST(CorpusTest, CompleteCorpusIsKeptAndOtherOptionsNeedForce) {
  REQUIRE_SOURCES();
  TempDir dir;
  const fs::path out = dir.path() / "e";
  ASSERT_TRUE(build(tiny(out)).built);
  const std::string record_before = zoo::read_file((out / "corpus.json").string());
  const auto stamp = fs::last_write_time(out / "corpus.json");

  const CorpusSummary again = build(tiny(out, 1, 1));  // threads do not change the corpus
  EXPECT_FALSE(again.built);
  EXPECT_GT(again.upstream.images, 0);
  EXPECT_EQ(fs::last_write_time(out / "corpus.json"), stamp);

  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { build(tiny(out, 7)); }, ErrorCode::kInvalidArgument,
                                                {"seed 7", "--force"}))
      << "another seed must need --force";
  EXPECT_EQ(zoo::read_file((out / "corpus.json").string()), record_before);

  CorpusOptions forced = tiny(out, 7);
  forced.force = true;
  EXPECT_TRUE(build(forced).built);
  EXPECT_EQ(read_record(out)["options"]["seed"], 7);

  EXPECT_FALSE(fs::exists(out / ".nasoa-corpus-building")) << "a finished build leaves no marker";
  // Without corpus.json, a folder a build of ours left (its marker) is an
  // unfinished corpus: built again.
  fs::remove(out / "corpus.json");
  std::ofstream(out / ".nasoa-corpus-building") << "killed mid-build";
  EXPECT_TRUE(build(tiny(out, 7)).built);
  EXPECT_TRUE(fs::exists(out / "corpus.json"));

  // Without either, nothing says the files are ours: refused, and a user's
  // image in a folder named like a set is kept.
  const fs::path theirs = dir.path() / "theirs";
  fs::create_directories(theirs / "upstream" / "cat");
  std::ofstream(theirs / "upstream" / "cat" / "a.png") << "their image";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { build(tiny(theirs, 7)); }, ErrorCode::kInvalidArgument,
                                           "no corpus.json"))
      << "a folder of someone else's files was emptied";
  EXPECT_TRUE(fs::exists(theirs / "upstream" / "cat" / "a.png"));

  // Same options, but a file damaged or removed since: rebuilt, as it was.
  fs::path some_png;
  for (const auto& e : fs::recursive_directory_iterator(out / "eval"))
    if (e.path().extension() == ".png") {
      some_png = e.path();
      break;
    }
  ASSERT_FALSE(some_png.empty());
  const std::string png_before = zoo::read_file(some_png.string());
  std::ofstream(some_png, std::ios::binary | std::ios::trunc) << "damaged";
  EXPECT_TRUE(build(tiny(out, 7)).built);
  EXPECT_EQ(zoo::read_file(some_png.string()), png_before);
  EXPECT_FALSE(build(tiny(out, 7)).built);  // and then it is complete again
  fs::remove(some_png);
  EXPECT_TRUE(build(tiny(out, 7)).built);
  EXPECT_TRUE(fs::exists(some_png));

  // A file added inside the sets is someone else's: never deleted by a rebuild.
  const fs::path notes = some_png.parent_path() / "NOTES.txt";
  std::ofstream(notes) << "mine";
  for (const bool force : {false, true}) {
    CorpusOptions again = tiny(out, 7);
    again.force = force;
    EXPECT_TRUE(nasoa::testing::throws_error([&] { build(again); }, ErrorCode::kInvalidArgument, "NOTES.txt"))
        << "a folder holding NOTES.txt was rebuilt, force " << force;
    EXPECT_TRUE(fs::exists(notes));
  }
  fs::remove(notes);
  EXPECT_FALSE(build(tiny(out, 7)).built);

  // A damaged record is refused or rebuilt, never a crash or a foreign exception.
  const std::string good_record = zoo::read_file((out / "corpus.json").string());
  nlohmann::json odd = nlohmann::json::parse(good_record);
  odd["content_sha256"] = 5;
  zoo::write_file_atomic((out / "corpus.json").string(), odd.dump());
  EXPECT_TRUE(build(tiny(out, 7)).built);
  zoo::write_file_atomic((out / "corpus.json").string(),
                         "{\"tool\": \"nasoa-corpus\", \"options\": {\"seed\": " + std::string(200000, '[') +
                             std::string(200000, ']') + "}}");
  // Other options: refused, naming the difference.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { build(tiny(out, 7)); }, ErrorCode::kInvalidArgument, "seed"))
      << "a record of other options was taken as this corpus";

  // A file it did not write makes the folder someone else's, --force or not.
  std::ofstream(out / "notes.txt") << "mine";
  forced.seed = 8;
  EXPECT_THROW(build(forced), Error);
  EXPECT_TRUE(fs::exists(out / "notes.txt"));
  EXPECT_TRUE(fs::exists(out / "corpus.json"));
}

TEST(CorpusTest, MissingSourceFolderIsNamedWithItsPackage) {
  REQUIRE_SOURCES();  // each case needs the sources checked before it to be there
  TempDir dir;
  const std::string missing = (dir.path() / "no-such-folder").string();
  struct Case {
    std::string CorpusOptions::*field;
    const char* package;
  };
  for (const Case& c : {Case{&CorpusOptions::clipart_dir, "openclipart-png"},
                        Case{&CorpusOptions::fashion_dir, "dataset-fashion-mnist"},
                        Case{&CorpusOptions::fonts_dir, "fonts-dejavu-core"}}) {
    CorpusOptions o = tiny(dir.path() / "out");
    o.*c.field = missing;
    EXPECT_TRUE(nasoa::testing::throws_error_with([&] { build(o); }, ErrorCode::kNotFound, {missing, c.package}))
        << "a missing " << c.package << " folder must be an error";
    EXPECT_FALSE(fs::exists(dir.path() / "out")) << "nothing may be written before the sources are checked";
  }
}

}  // namespace
}  // namespace nasoa::corpus
