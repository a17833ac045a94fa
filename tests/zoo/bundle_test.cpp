// Zoo bundles: bit-exact round trips, and every kind of damage is refused.
#include "zoo/bundle/bundle.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <thread>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/scrambled_state.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/bundle/weights_file.h"

namespace fs = std::filesystem;

namespace nasoa::zoo {
namespace {

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("nasoa-bundle-test-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    dir_ = (root_ / "zoo").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  BundleInput input() {
    BundleInput in;
    in.name = "test-zoo";
    in.provenance = {"bundle_test", "bundle_test --seed 1", 1, "2026-11-27T00:00:00Z", "docs/none.md"};
    for (const char* encoding : {"020-_16_11-21", "2-_8_1-2"}) {
      BundleModelInput model;
      model.name = in.models.empty() ? "small" : "tiny";
      model.network = Network(Encoding::parse(encoding), 10);
      nasoa::testing::scramble_state(*model.network, in.models.size() + 1);  // BatchNorm statistics included
      model.input_size = 32;
      in.models.push_back(std::move(model));
    }
    in.models.back().upstream_accuracy = 0.5;
    for (int c = 0; c < 10; ++c) in.models.back().labels.push_back("class-" + std::to_string(c));
    in.predictor = std::string("predictor bytes");
    in.experience = std::string("experience bytes");
    return in;
  }

  // Opening the bundle in `dir` is refused with `code` and a message mentioning `needle`.
  static ::testing::AssertionResult refused(const std::string& dir, ErrorCode code, const std::string& needle) {
    return nasoa::testing::throws_error([&] { open_bundle(dir); }, code, needle);
  }

  static void flip_byte(const std::string& path, std::size_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.get(c);
    f.seekp(static_cast<std::streamoff>(offset));
    f.put(static_cast<char>(c ^ 0x5a));
  }

  fs::path root_;
  std::string dir_;
};

// A fine-tune starts from the bundle's body and a new head: also for a task
// with as many classes as the upstream corpus (the head trained on its
// classes must not carry over), and the same seed gives the same head.
TEST_F(BundleTest, NetworkForATaskHasTheBundlesBodyAndANewSeededHead) {
  write_bundle(dir_, input());
  const ModelInfo model = open_bundle(dir_).models[0];
  ASSERT_EQ(model.upstream_classes, 10);
  const NamedTensors stored = module_state(*load_network(dir_, model));
  auto head_and_body = [](const NamedTensors& state) {
    std::vector<std::pair<std::string, torch::Tensor>> head, body;
    for (const auto& [name, tensor] : state) (name.rfind("head.", 0) == 0 ? head : body).emplace_back(name, tensor);
    return std::make_pair(head, body);
  };
  const auto [stored_head, stored_body] = head_and_body(stored);
  ASSERT_EQ(stored_head.size(), 2u);  // weight and bias

  const NamedTensors first = module_state(*load_network_for_task(dir_, model, 10, 7));
  const NamedTensors again = module_state(*load_network_for_task(dir_, model, 10, 7));
  const NamedTensors other = module_state(*load_network_for_task(dir_, model, 10, 8));
  const auto [first_head, first_body] = head_and_body(first);
  const auto [again_head, again_body] = head_and_body(again);
  const auto [other_head, other_body] = head_and_body(other);
  ASSERT_EQ(first_body.size(), stored_body.size());
  for (std::size_t i = 0; i < stored_body.size(); ++i)
    EXPECT_TRUE(torch::equal(first_body[i].second, stored_body[i].second)) << stored_body[i].first;
  ASSERT_EQ(first_head.size(), 2u);
  EXPECT_FALSE(torch::equal(first_head[0].second, stored_head[0].second)) << "the upstream head was kept";
  EXPECT_TRUE(torch::equal(first_head[0].second, again_head[0].second)) << "the same seed gave another head";
  EXPECT_FALSE(torch::equal(first_head[0].second, other_head[0].second)) << "another seed gave the same head";

  Network three = load_network_for_task(dir_, model, 3, 7);
  EXPECT_EQ(three->num_classes(), 3);
  EXPECT_EQ(three->forward(torch::zeros({2, 3, 32, 32})).sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(load_network_for_task(dir_, model, 0, 7), Error);
}

TEST_F(BundleTest, RoundTripIsBitExact) {
  BundleInput in = input();
  const Manifest written = write_bundle(dir_, in);
  const Manifest read = open_bundle(dir_);
  EXPECT_EQ(read.name, "test-zoo");
  EXPECT_EQ(read.format_version, 1u);
  EXPECT_EQ(read.provenance.command_line, "bundle_test --seed 1");
  EXPECT_EQ(read.provenance.seed, 1u);
  ASSERT_EQ(read.models.size(), 2u);
  EXPECT_FALSE(read.models[0].upstream_accuracy.has_value());
  EXPECT_DOUBLE_EQ(read.models[1].upstream_accuracy.value(), 0.5);
  EXPECT_TRUE(read.models[0].labels.empty());
  ASSERT_EQ(read.models[1].labels.size(), 10u);
  EXPECT_EQ(read.models[1].labels[9], "class-9");
  EXPECT_EQ(read.models[0].parameters, count_cost(Encoding::parse("020-_16_11-21"), 10, 32).parameters);
  EXPECT_EQ(read_file(dir_ + "/predictor.bin"), "predictor bytes");
  EXPECT_EQ(read_file(dir_ + "/experience.log"), "experience bytes");
  for (std::size_t m = 0; m < in.models.size(); ++m) {
    EXPECT_EQ(read.models[m].weights_sha256, written.models[m].weights_sha256);
    Network loaded = load_network(dir_, read.models[m]);
    const NamedTensors a = module_state(*in.models[m].network), b = module_state(*loaded);
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      ASSERT_EQ(a[i].second.nbytes(), b[i].second.nbytes());
      EXPECT_EQ(std::memcmp(a[i].second.data_ptr(), b[i].second.data_ptr(), a[i].second.nbytes()), 0)
          << a[i].first;
    }
  }
  // Nothing but the bundle's own files: no staging or temporary leftovers.
  for (const auto& entry : fs::directory_iterator(root_)) EXPECT_EQ(entry.path().filename(), "zoo");
  std::size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(dir_)) files += entry.is_regular_file();
  EXPECT_EQ(files, 5u);  // MANIFEST, two weights, predictor, experience
}

TEST_F(BundleTest, FlippedBytesSpreadOverEveryFileAreRefused) {
  const Manifest m = write_bundle(dir_, input());
  std::vector<std::string> files = {kManifestFileName};
  for (const FileEntry& f : m.files()) files.push_back(f.path);
  for (const std::string& file : files) {
    const std::string path = dir_ + "/" + file;
    const std::size_t size = fs::file_size(path);
    // Every byte of small files; a spread of offsets, ends included, of large ones.
    const std::size_t step = size <= 4096 ? 1 : size / 97;
    for (std::size_t offset = 0; offset < size; offset += step) {
      flip_byte(path, offset);
      EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, file == kManifestFileName ? "MANIFEST" : file))
          << file << ", byte " << offset << " flipped";
      flip_byte(path, offset);
    }
    flip_byte(path, size - 1);
    EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, file)) << file << ", last byte flipped";
    flip_byte(path, size - 1);
  }
  EXPECT_NO_THROW(open_bundle(dir_));
}

TEST_F(BundleTest, TruncatedWeightsAreRefusedAsTruncated) {
  const Manifest m = write_bundle(dir_, input());
  const std::string path = dir_ + "/" + m.models[0].weights_file;
  fs::resize_file(path, fs::file_size(path) - 100);
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "truncated"));
}

TEST_F(BundleTest, MissingFilesAreRefusedByName) {
  const Manifest m = write_bundle(dir_, input());
  fs::remove(dir_ + "/" + m.models[1].weights_file);
  EXPECT_TRUE(refused(dir_, ErrorCode::kNotFound, m.models[1].weights_file));
  fs::remove(dir_ + "/MANIFEST");
  EXPECT_TRUE(refused(dir_, ErrorCode::kNotFound, "MANIFEST"));
  EXPECT_TRUE(refused((root_ / "nowhere").string(), ErrorCode::kNotFound, "nowhere"));
  write_file_atomic((root_ / "a-file").string(), "not a folder");
  EXPECT_TRUE(refused((root_ / "a-file").string(), ErrorCode::kInvalidArgument, "is a file, not a bundle directory"));
}

TEST_F(BundleTest, FutureFormatVersionIsRefused) {
  write_bundle(dir_, input());
  Manifest m = decode_manifest(read_file(dir_ + "/MANIFEST"), "MANIFEST");
  m.format_version = kZooFormatVersion + 1;
  write_file_atomic(dir_ + "/MANIFEST", encode_manifest(m));
  EXPECT_TRUE(refused(dir_, ErrorCode::kUnsupportedVersion, "format version 2"));
}

TEST_F(BundleTest, InconsistentManifestFieldsAreRefusedByName) {
  write_bundle(dir_, input());
  const Manifest good = decode_manifest(read_file(dir_ + "/MANIFEST"), "MANIFEST");
  auto refuse = [&](auto edit, const std::string& needle) {
    Manifest m = good;
    edit(m);
    write_file_atomic(dir_ + "/MANIFEST", encode_manifest(m));
    return refused(dir_, ErrorCode::kCorrupt, needle);
  };
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].parameters += 1; }, "models[0].parameters"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].macs = 7; }, "models[1].macs"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].encoding = "9-_16_1"; }, "models[0].encoding"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].name = m.models[0].name; }, "repeats"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].weights_file = "../escape.weights"; }, "safe relative path"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].std[1] = 0.0f; }, "models[0].std"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].weights_sha256 = "abc"; }, "64 lower-case hex"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.name.clear(); }, "field name"));
  // What a writer would refuse is refused on reading too, so that a bundle
  // that opens can be added to; shown escaped, not as a terminal escape.
  EXPECT_TRUE(refuse([](Manifest& m) { m.name = "my zoo\n\033[31mRED"; }, "'my zoo\\n\\x1b[31mRED'"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].name = "X" + m.models[0].name; m.models[0].name = "x" + m.models[0].name; },
                     "names may not differ in case alone"));
  // A network of the listed size cannot fit in so few bytes: refused
  // before any loader builds it.
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].weights_bytes = 4 * std::uint64_t(m.models[0].parameters) - 1; },
                     "models[0].weights.size"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].labels.pop_back(); }, "models[1].labels"));
  // Normalisation that would turn every prediction into NaN.
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].mean[0] = std::nanf(""); }, "models[0].mean"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].mean[2] = HUGE_VALF; }, "models[0].mean"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[0].std[0] = 1e-45f; }, "models[0].std"));
  // Labels that print ambiguously or cannot tell classes apart.
  ASSERT_GE(good.models[1].labels.size(), 2u);
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].labels[1] = m.models[1].labels[0]; }, "models[1].labels[1]"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].labels[0] = "a\tb"; }, "'a\\tb'"));
  EXPECT_TRUE(refuse([](Manifest& m) { m.models[1].labels[0].clear(); }, "models[1].labels[0]"));
}

TEST_F(BundleTest, FilesReachedThroughLinksOutOfTheBundleAreRefused) {
  const Manifest m = write_bundle(dir_, input());
  const fs::path outside = root_ / "outside";
  fs::create_directories(outside);
  fs::rename(dir_ + "/models", outside / "models");
  fs::create_directory_symlink(outside / "models", dir_ + "/models");
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "a symbolic link; the files of a bundle must lie inside it"));
  fs::remove(dir_ + "/models");
  fs::rename(outside / "models", dir_ + "/models");
  ASSERT_NO_THROW(open_bundle(dir_));
  fs::rename(dir_ + "/" + m.models[0].weights_file, outside / "w");
  fs::create_symlink(outside / "w", dir_ + "/" + m.models[0].weights_file);
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, m.models[0].weights_file + ": a symbolic link"));
}

TEST_F(BundleTest, AManifestThatIsNoFileOrTooLargeIsRefusedUnread) {
  write_bundle(dir_, input());
  fs::remove(dir_ + "/MANIFEST");
  fs::create_directories(dir_ + "/MANIFEST");
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "MANIFEST: not a regular file"));
  fs::remove(dir_ + "/MANIFEST");
  {
    std::ofstream huge(dir_ + "/MANIFEST", std::ios::binary);
    huge << "NASOAMF1";
  }
  fs::resize_file(dir_ + "/MANIFEST", kMaxManifestBytes + 1);  // sparse: nothing is written
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "more than a manifest takes"));
}

TEST_F(BundleTest, ManifestThatDoesNotParseIsRefused) {
  write_bundle(dir_, input());
  // Correctly framed (magic, length, digest) around a body that is not a
  // Manifest message, so that only the protobuf parse can catch it.
  const std::string body(40, '\xff');
  std::string framed = "NASOAMF1";
  const std::uint64_t length = body.size();
  framed.append(reinterpret_cast<const char*>(&length), sizeof length);
  framed += body;
  framed += sha256_bytes(body);
  write_file_atomic(dir_ + "/MANIFEST", framed);
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "does not parse"));

  write_file_atomic(dir_ + "/MANIFEST", std::string(100, '#'));
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, "bad magic"));
}

TEST_F(BundleTest, WritingRefusesBadInputAndExistingDirectories) {
  write_bundle(dir_, input());
  EXPECT_THROW(write_bundle(dir_, input()), Error);  // exists
  BundleInput dup = input();
  dup.models[1].name = dup.models[0].name;
  EXPECT_THROW(write_bundle((root_ / "dup").string(), dup), Error);
  BundleInput unsafe = input();
  unsafe.models[0].name = "../evil";
  EXPECT_THROW(write_bundle((root_ / "unsafe").string(), unsafe), Error);
  EXPECT_FALSE(fs::exists(root_ / "dup"));
  EXPECT_FALSE(fs::exists(root_ / "unsafe"));
}

// What the reader refuses is never written: such a bundle would replace a
// good one and then open nowhere.
TEST_F(BundleTest, WritingRefusesWhatTheReaderWouldRefuseAndKeepsTheBundleThere) {
  write_bundle(dir_, input());
  const std::string manifest_before = read_file(dir_ + "/MANIFEST");
  struct Case {
    const char* what;
    std::function<void(BundleModelInput&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases{
      {"std 0", [](BundleModelInput& m) { m.std[1] = 0.0f; }, "field models[1].std"},
      {"std 1e9", [](BundleModelInput& m) { m.std[0] = 1e9f; }, "field models[1].std"},
      {"mean NaN", [](BundleModelInput& m) { m.mean[2] = std::nanf(""); }, "field models[1].mean"},
      {"accuracy 1.5", [](BundleModelInput& m) { m.upstream_accuracy = 1.5; }, "field models[1].upstream_accuracy"},
      {"accuracy NaN", [](BundleModelInput& m) { m.upstream_accuracy = std::nan(""); },
       "field models[1].upstream_accuracy"},
      {"label with a tab", [](BundleModelInput& m) { m.labels[3] = "class\t3"; }, "field models[1].labels[3]"},
      {"label twice", [](BundleModelInput& m) { m.labels[4] = m.labels[0]; }, "field models[1].labels[4]"},
      {"empty label", [](BundleModelInput& m) { m.labels[0].clear(); }, "field models[1].labels[0]"},
  };
  for (const Case& c : cases) {
    BundleInput bad = input();
    c.edit(bad.models[1]);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { write_bundle((root_ / "new").string(), bad); },
                                             ErrorCode::kInvalidArgument, c.needle))
        << c.what;
    EXPECT_FALSE(fs::exists(root_ / "new")) << c.what;
    EXPECT_TRUE(nasoa::testing::throws_error([&] { replace_bundle(dir_, bad); }, ErrorCode::kInvalidArgument,
                                             c.needle))
        << c.what;
    EXPECT_TRUE(nasoa::testing::throws_error([&] { add_to_bundle(dir_, bad.models[1], "test-zoo", bad.provenance); },
                                             ErrorCode::kInvalidArgument, c.needle))
        << c.what;
    EXPECT_EQ(read_file(dir_ + "/MANIFEST"), manifest_before) << c.what << ": the good bundle was replaced";
  }
  EXPECT_NO_THROW(verify_bundle(dir_));
  for (const auto& entry : fs::directory_iterator(root_)) EXPECT_EQ(entry.path().filename(), "zoo");
}

TEST_F(BundleTest, WeightsChangedAfterOpeningAreRefusedAtLoad) {
  write_bundle(dir_, input());
  const Manifest m = open_bundle(dir_);
  flip_byte(dir_ + "/" + m.models[0].weights_file, 100);
  EXPECT_THROW(load_network(dir_, m.models[0]), Error);
}

TEST_F(BundleTest, ReplaceSwapsInTheNewBundleAndLeavesNothingBeside) {
  write_bundle(dir_, input());
  BundleInput next = input();
  next.name = "next";
  next.models.pop_back();
  const Manifest m = replace_bundle(dir_, next);
  EXPECT_EQ(m.name, "next");
  EXPECT_EQ(open_bundle(dir_).models.size(), 1u);
  for (const auto& entry : fs::directory_iterator(root_)) EXPECT_EQ(entry.path().filename(), "zoo");
  // Creating works too: nothing there yet.
  replace_bundle((root_ / "fresh").string(), next);
  EXPECT_EQ(open_bundle((root_ / "fresh").string()).name, "next");
}

TEST_F(BundleTest, RecoversTheOldBundleAfterACrashBetweenTheRenames) {
  write_bundle(dir_, input());
  // The state a crash between the two renames leaves: DIR gone, .DIR.old complete.
  fs::rename(dir_, root_ / ".zoo.old");
  fs::create_directories(root_ / ".zoo.new");
  EXPECT_EQ(recover_bundle(dir_), (root_ / "zoo").string());
  EXPECT_EQ(open_bundle(dir_).models.size(), 2u);
  EXPECT_FALSE(fs::exists(root_ / ".zoo.old"));
  // A later replacement clears the stale staging copy.
  BundleInput next = input();
  next.name = "next";
  replace_bundle(dir_, next);
  EXPECT_FALSE(fs::exists(root_ / ".zoo.new"));
  EXPECT_EQ(open_bundle(dir_).name, "next");
}

TEST_F(BundleTest, ReadersNeverRemoveAnAsideCopyAndWritersOnlyTheirOwn) {
  write_bundle(dir_, input());
  // A user's folder that happens to have the aside name: opening the bundle
  // deleted it, with everything in it.
  fs::create_directories(root_ / ".zoo.old");
  std::ofstream(root_ / ".zoo.old" / "notes.txt") << "keep";
  EXPECT_EQ(recover_bundle(dir_), (root_ / "zoo").string());
  open_bundle(dir_);
  EXPECT_TRUE(fs::exists(root_ / ".zoo.old" / "notes.txt"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { replace_bundle(dir_, input()); }, ErrorCode::kInvalidArgument,
                                           ".zoo.old exists and is not an old copy"))
      << "a replacement went ahead over a folder that is not an old copy";
  EXPECT_TRUE(fs::exists(root_ / ".zoo.old" / "notes.txt"));
  EXPECT_EQ(open_bundle(dir_).name, "test-zoo");
  // An old copy a crashed writer left beside a complete bundle is the next writer's to remove.
  fs::remove_all(root_ / ".zoo.old");
  fs::copy(dir_, root_ / ".zoo.old", fs::copy_options::recursive);
  BundleInput next = input();
  next.name = "next";
  replace_bundle(dir_, next);
  EXPECT_FALSE(fs::exists(root_ / ".zoo.old"));
  EXPECT_EQ(open_bundle(dir_).name, "next");
}

TEST_F(BundleTest, TwoWritersAddingAtOnceBothLand) {
  // Each reads the bundle, adds its model and writes it back: without turns,
  // the second write dropped the first one's model.
  write_bundle(dir_, input());
  std::vector<std::thread> writers;
  std::vector<std::string> errors(4);
  for (int i = 0; i < 4; ++i)
    writers.emplace_back([&, i] {
      try {
        BundleModelInput model;
        model.name = "added-" + std::to_string(i);
        model.network = Network(Encoding::parse("2-_8_1-2"), 10);
        model.input_size = 32;
        add_to_bundle(dir_, model, "x", input().provenance);
      } catch (const std::exception& e) {
        errors[std::size_t(i)] = e.what();
      }
    });
  for (std::thread& t : writers) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  const Manifest m = open_bundle(dir_);
  EXPECT_EQ(m.models.size(), 6u);
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(std::any_of(m.models.begin(), m.models.end(),
                            [&](const ModelInfo& info) { return info.name == "added-" + std::to_string(i); }))
        << "added-" << i << " was lost";
}

TEST_F(BundleTest, ALinkToABundleReplacesTheBundleItPointsAt) {
  write_bundle(dir_, input());
  fs::create_symlink(dir_, root_ / "link");
  BundleInput next = input();
  next.name = "next";
  replace_bundle((root_ / "link").string(), next);
  EXPECT_TRUE(fs::is_symlink(root_ / "link"));
  EXPECT_EQ(open_bundle(dir_).name, "next");
}

// A crash between a save's two renames leaves the link dangling and the
// bundle set aside beside its target: that copy is found through the link
// (named in the error, put back by recovery and by the next writer).
TEST_F(BundleTest, ALinkWhoseBundleASaveLeftAsideIsFoundThroughIt) {
  write_bundle(dir_, input());
  fs::create_directories(root_ / "elsewhere");
  fs::create_symlink(dir_, root_ / "elsewhere" / "link");
  const fs::path target(dir_);
  const fs::path aside = target.parent_path() / ("." + target.filename().string() + ".old");
  fs::rename(target, aside);
  const std::string link = (root_ / "elsewhere" / "link").string();
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { open_bundle(link); }, ErrorCode::kNotFound,
                                           {aside.string() + " holds the bundle", "rename it to " + target.string()}));
  EXPECT_EQ(recover_bundle(link), target.string());
  EXPECT_EQ(open_bundle(link).name, input().name) << "the bundle set aside was not put back";
}

// "link/.." is the folder above the link's target, as the OS resolves it,
// not the folder holding the link.
TEST_F(BundleTest, DotDotAfterALinkIsResolvedAsTheSystemDoes) {
  fs::create_directories(root_ / "far" / "inner");
  fs::create_directory_symlink(root_ / "far" / "inner", root_ / "near");
  EXPECT_EQ(named_folder((root_ / "near" / ".." / "m").string()), fs::canonical(root_ / "far") / "m");
  EXPECT_EQ(named_folder((root_ / "near" / "m" / "").string()), root_ / "near" / "m") << "no .. : kept as text";
  EXPECT_EQ(named_folder((root_ / "near").string()), root_ / "near") << "a link named last stays the link";
}

TEST_F(BundleTest, ReplaceNeverTouchesWhatIsNotABundle) {
  fs::create_directories(root_ / "precious");
  std::ofstream(root_ / "precious" / "data.txt") << "keep";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { replace_bundle((root_ / "precious").string(), input()); },
                                           ErrorCode::kInvalidArgument, "precious"))
      << "a folder that is not a bundle was replaced";
  EXPECT_TRUE(fs::exists(root_ / "precious" / "data.txt"));
}

TEST_F(BundleTest, ABundleWithFieldsThisBuildDoesNotKnowOpensButIsNotRewritten) {
  write_bundle(dir_, input());
  write_bundle(dir_ + "-plain", input());
  // What a newer nasoa may write: a field this build has no number for
  // (1000, varint 1) appended to the manifest's body, its length and
  // checksum made right again. The file: 8 bytes of magic, the body's length
  // (8 bytes), the body, its SHA-256.
  const std::string path = dir_ + "/MANIFEST";
  const std::string bytes = read_file(path);
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data() + 8, sizeof length);
  const std::string body = bytes.substr(16, length) + std::string("\xC0\x3E\x01", 3);
  length = body.size();
  std::string newer = bytes.substr(0, 8) + std::string(reinterpret_cast<const char*>(&length), 8) + body;
  newer += sha256_bytes(body);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << newer;

  const Manifest read = open_bundle(dir_);
  EXPECT_EQ(read.models.size(), 2u) << "the fields it knows are read";
  EXPECT_TRUE(holds_unknown_fields(path));
  EXPECT_FALSE(holds_unknown_fields(dir_ + "-plain/MANIFEST")) << "a bundle of this build's fields";
  const Provenance ship{"gather", "gather --ship", 1, "2026-11-30T00:00:00Z", ""};
  EXPECT_TRUE(nasoa::testing::throws_error([&] { set_bundle_experience(dir_, "p", "e", ship); },
                                           ErrorCode::kUnsupportedVersion, "fields this nasoa does not know"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { add_to_bundle(dir_, input().models[0], "x", ship); },
                                           ErrorCode::kUnsupportedVersion, "would drop them"));
  EXPECT_EQ(read_file(path), newer) << "the refused rewrite changed the manifest";
}

TEST_F(BundleTest, ReplaceRefusesABundleFolderHoldingWhatItsManifestDoesNotList) {
  replace_bundle(dir_, input());
  // A fine-tuned model saved into the bundle's folder, and a stray file
  // beside the weights: the swap would delete both with the old folder.
  fs::create_directories(fs::path(dir_) / "my-model");
  std::ofstream(fs::path(dir_) / "my-model" / "MANIFEST") << "a model";
  std::ofstream(fs::path(dir_) / "models" / "notes.txt") << "mine";
  std::string what;
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { replace_bundle(dir_, input()); }, ErrorCode::kInvalidArgument,
                                                {"my-model", "models/notes.txt", "move it out"}, &what));
  EXPECT_EQ(what.find("my-model/MANIFEST"), std::string::npos) << "listed below a folder already named: " << what;
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "my-model" / "MANIFEST"));
  EXPECT_TRUE(fs::exists(fs::path(dir_) / "models" / "notes.txt"));
  // Moved out, the bundle is replaced as before.
  fs::remove_all(fs::path(dir_) / "my-model");
  fs::remove(fs::path(dir_) / "models" / "notes.txt");
  EXPECT_NO_THROW(replace_bundle(dir_, input()));
}

TEST_F(BundleTest, AddToBundleCreatesThenAddsKeepingTheOthersBitExact) {
  BundleInput in = input();
  const Provenance first{"pretrain", "pretrain --model a", 4, "2026-11-27T00:00:00Z", "docs/data.md#x"};
  const Manifest created = add_to_bundle(dir_, in.models[0], "starter", first);
  EXPECT_EQ(created.name, "starter");
  EXPECT_EQ(created.provenance.command_line, "pretrain --model a");

  // Add a second model to an existing bundle that also carries a predictor.
  BundleInput with_predictor = input();
  with_predictor.models.pop_back();
  replace_bundle(dir_, with_predictor);
  const Manifest before = open_bundle(dir_);
  const Provenance second{"pretrain", "pretrain --model b", 5, "2026-11-28T00:00:00Z", "docs/data.md#x"};
  bool dropped = true;
  const Manifest after = add_to_bundle(dir_, in.models[1], "ignored", second, &dropped);
  EXPECT_FALSE(dropped) << "a model added beside the others left the predictor out";
  EXPECT_EQ(after.name, before.name);
  ASSERT_EQ(after.models.size(), 2u);
  EXPECT_EQ(after.models[0].name, "small");
  EXPECT_EQ(after.models[0].weights_sha256, before.models[0].weights_sha256);
  EXPECT_EQ(after.models[1].name, "tiny");
  EXPECT_EQ(after.models[1].labels.size(), 10u);
  EXPECT_EQ(after.provenance.seed, 5u);
  EXPECT_EQ(after.provenance.command_line, before.provenance.command_line + " && pretrain --model b");
  EXPECT_EQ(read_file(dir_ + "/predictor.bin"), "predictor bytes");
  EXPECT_EQ(read_file(dir_ + "/experience.log"), "experience bytes");
  const Manifest reread = open_bundle(dir_);
  for (const ModelInfo& m : reread.models) load_network(dir_, m);

  // The very same model again (its weights as the bundle has them): what
  // the predictor learnt about it holds, so it is kept.
  BundleModelInput same;
  same.name = after.models[0].name;
  same.network = load_network(dir_, after.models[0]);
  same.input_size = after.models[0].input_size;
  same.mean = after.models[0].mean;
  same.std = after.models[0].std;
  same.upstream_accuracy = after.models[0].upstream_accuracy;
  same.labels = after.models[0].labels;
  dropped = true;
  const Manifest same_again = add_to_bundle(dir_, same, "ignored", second, &dropped);
  EXPECT_FALSE(dropped);
  EXPECT_EQ(same_again.models[0].weights_sha256, after.models[0].weights_sha256);
  EXPECT_EQ(read_file(dir_ + "/predictor.bin"), "predictor bytes");
  EXPECT_EQ(read_file(dir_ + "/experience.log"), "experience bytes");

  // Same name: replaced in place, the others untouched.
  torch::manual_seed(9);
  BundleModelInput retrained = in.models[0];
  retrained.network = Network(Encoding::parse("2-_8_1-2"), 3);
  retrained.labels = {"a", "b", "c"};
  const Provenance retraining{"pretrain", "pretrain --model a --epochs 9", 6, "2026-11-29T00:00:00Z", "docs/data.md#x"};
  dropped = false;
  const Manifest replaced = add_to_bundle(dir_, retrained, "ignored", retraining, &dropped);
  // The predictor was fitted on, and the experience gathered with, the old
  // weights: shipped with the new ones they would be silently wrong.
  EXPECT_TRUE(dropped) << "the caller was not told that the predictor and experience were left out";
  EXPECT_FALSE(replaced.predictor.has_value());
  EXPECT_FALSE(replaced.experience.has_value());
  EXPECT_FALSE(fs::exists(dir_ + "/predictor.bin"));
  EXPECT_FALSE(fs::exists(dir_ + "/experience.log"));
  ASSERT_EQ(replaced.models.size(), 2u);
  EXPECT_EQ(replaced.models[0].name, "small");
  EXPECT_EQ(replaced.models[0].encoding, "2-_8_1-2");
  EXPECT_EQ(replaced.models[0].upstream_classes, 3);
  EXPECT_EQ(replaced.models[1].weights_sha256, after.models[1].weights_sha256);
  EXPECT_EQ(replaced.provenance.command_line, after.provenance.command_line + " && pretrain --model a --epochs 9");
  // The very same command again (re-adding the same model) is not chained twice.
  dropped = true;
  const Manifest repeated = add_to_bundle(dir_, retrained, "ignored", retraining, &dropped);
  EXPECT_FALSE(dropped) << "nothing was left to leave out";
  EXPECT_EQ(repeated.provenance.command_line, replaced.provenance.command_line)
      << "the same command again was written twice in a row";
  for (const auto& entry : fs::directory_iterator(root_)) EXPECT_EQ(entry.path().filename(), "zoo");
}

TEST_F(BundleTest, ShippingExperienceAgainWithTheSameCommandRecordsItOnce) {
  write_bundle(dir_, input());
  const std::string made_by = open_bundle(dir_).provenance.command_line;
  const Provenance ship{"gather", "gather --ship a.log", 1, "2026-11-29T00:00:00Z", "docs/data.md#x"};
  set_bundle_experience(dir_, "predictor 1", "experience 1", ship);
  const Manifest again = set_bundle_experience(dir_, "predictor 2", "experience 2", ship);
  EXPECT_EQ(again.provenance.command_line, made_by + " && gather --ship a.log");
  EXPECT_EQ(read_file(dir_ + "/experience.log"), "experience 2") << "the second shipping was not written";
  const Provenance other{"gather", "gather --ship b.log", 1, "2026-11-30T00:00:00Z", "docs/data.md#x"};
  const Manifest later = set_bundle_experience(dir_, "predictor 3", "experience 3", other);
  EXPECT_EQ(later.provenance.command_line, made_by + " && gather --ship a.log && gather --ship b.log");
  // A command that the last one merely ends with is another command.
  const Provenance part{"gather", "--ship b.log", 1, "2026-11-30T00:00:00Z", "docs/data.md#x"};
  EXPECT_EQ(set_bundle_experience(dir_, "p", "e", part).provenance.command_line,
            later.provenance.command_line + " && --ship b.log");
}

TEST_F(BundleTest, ShippingAgainCollapsesTheRepeatsAnOlderBuildChained) {
  BundleInput in = input();
  in.provenance.command_line = "pretrain --model a && gather --ship a.log && gather --ship a.log && gather --ship a.log";
  replace_bundle(dir_, in);
  const Provenance ship{"gather", "gather --ship a.log", 1, "2026-11-29T00:00:00Z", "docs/data.md#x"};
  EXPECT_EQ(set_bundle_experience(dir_, "p", "e", ship).provenance.command_line,
            "pretrain --model a && gather --ship a.log");
  // Only the repeats of the command being chained collapse.
  in.provenance.command_line = "gather --ship a.log && gather --ship a.log && pretrain --model a";
  replace_bundle(dir_, in);
  EXPECT_EQ(set_bundle_experience(dir_, "p", "e", ship).provenance.command_line,
            "gather --ship a.log && gather --ship a.log && pretrain --model a && gather --ship a.log");
  // A bundle made by nothing but that command, repeated, keeps it once.
  in.provenance.command_line = "gather --ship a.log && gather --ship a.log";
  replace_bundle(dir_, in);
  EXPECT_EQ(set_bundle_experience(dir_, "p", "e", ship).provenance.command_line, "gather --ship a.log");
}

TEST_F(BundleTest, AddToBundleRefusesADamagedBundleAndLeavesItAlone) {
  const Manifest m = write_bundle(dir_, input());
  flip_byte(dir_ + "/" + m.models[0].weights_file, 40);
  BundleInput in = input();
  EXPECT_THROW(add_to_bundle(dir_, in.models[1], "x", in.provenance), Error);
  EXPECT_TRUE(refused(dir_, ErrorCode::kCorrupt, m.models[0].weights_file));
}

TEST_F(BundleTest, ThreadsWritingOneFileEachReplaceItWhole) {
  // Two threads of one process writing the same file used to share one
  // temporary: one's rename moved the other's half-written bytes, or failed.
  const std::string path = (root_ / "shared.json").string();
  const std::string a(100000, 'a'), b(100000, 'b');
  write_file_atomic(path, a);
  std::atomic<int> errors{0}, torn{0}, reads{0};
  std::atomic<bool> writing{true};
  auto writer = [&](const std::string& text) {
    for (int i = 0; i < 100; ++i) {
      try {
        write_file_atomic(path, text);
      } catch (const Error&) {
        ++errors;
      }
    }
  };
  std::thread reader([&] {
    while (writing) {
      const std::string got = read_file(path);
      ++reads;
      if (got != a && got != b) ++torn;
    }
  });
  std::thread first(writer, a), second(writer, b);
  first.join();
  second.join();
  writing = false;
  reader.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(reads.load(), 0) << "the reader never looked at the file while it was written";
  EXPECT_EQ(torn.load(), 0);
  for (const auto& entry : fs::directory_iterator(root_))
    EXPECT_EQ(entry.path().filename().string().find("shared.json.tmp"), std::string::npos) << entry.path();
}

}  // namespace
}  // namespace nasoa::zoo

namespace nasoa::zoo {
namespace {

TEST(Sha256Test, MatchesTheStandardTestVector) {
  // FIPS 180-2, "abc".
  const std::string hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  EXPECT_EQ(sha256_hex("abc"), hex);
  const std::string raw = sha256_bytes("abc");
  ASSERT_EQ(raw.size(), 32u);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), 0xba);
  EXPECT_EQ(static_cast<unsigned char>(raw[31]), 0xad);
}

TEST_F(BundleTest, AtomicWritesRefuseToReplaceWhatIsNotARegularFile) {
  const std::string pipe = (root_ / "pipe").string(), folder = (root_ / "folder").string();
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0644), 0);
  std::filesystem::create_directories(folder);
  for (const std::string& target : {pipe, folder}) {
    EXPECT_TRUE(nasoa::testing::throws_error([&] { write_file_atomic(target, "report"); },
                                             ErrorCode::kInvalidArgument, "is not a regular file"))
        << target << " was replaced";
    EXPECT_TRUE(nasoa::testing::throws_error([&] { replace_file_lightly(target, "clock"); },
                                             ErrorCode::kInvalidArgument, "is not a regular file"))
        << target << " was replaced";
  }
  EXPECT_TRUE(std::filesystem::is_fifo(pipe));
  EXPECT_TRUE(std::filesystem::is_directory(folder));
  write_file_atomic((root_ / "plain").string(), "report");
  write_file_atomic((root_ / "plain").string(), "again");
  EXPECT_EQ(read_file((root_ / "plain").string()), "again");
  replace_file_lightly((root_ / "plain").string(), "lightly");
  EXPECT_EQ(read_file((root_ / "plain").string()), "lightly");
  replace_file_lightly((root_ / "fresh").string(), "new");
  EXPECT_EQ(read_file((root_ / "fresh").string()), "new");
  std::size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(root_)) ++entries;
  EXPECT_EQ(entries, 4u) << "a temporary file was left beside the targets";
}

TEST_F(BundleTest, CreatesMissingFoldersDurablyAndRefusesAFileInTheWay) {
  const fs::path deep = root_ / "a/b/c/";
  create_directories_durably(deep.string());
  EXPECT_TRUE(fs::is_directory(root_ / "a/b/c"));
  create_directories_durably((root_ / "a/b").string());  // there already: nothing to do
  create_directories_durably((root_ / "a/./b/../b/d").string());
  EXPECT_TRUE(fs::is_directory(root_ / "a/b/d"));
  write_file_atomic((root_ / "a/file").string(), "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { create_directories_durably((root_ / "a/file/e").string()); },
                                           ErrorCode::kIo, "a/file"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { create_directories_durably((root_ / "a/file").string()); },
                                           ErrorCode::kIo, "not a folder"));
}

TEST_F(BundleTest, ReadFileReadsEveryByteAndRefusesWhatIsNotAFile) {
  const std::string empty = (root_ / "empty").string(), big = (root_ / "big").string();
  { std::ofstream(empty, std::ios::binary); }
  EXPECT_EQ(read_file(empty), "");
  // Larger than any stream buffer, with NUL bytes and no line structure.
  std::string bytes(3 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = char((i * 2654435761u) >> 13);
  { std::ofstream(big, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size())); }
  EXPECT_TRUE(read_file(big) == bytes) << "a 3 MiB file did not read back byte for byte";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { read_file((root_ / "missing").string()); }, ErrorCode::kNotFound,
                                           "missing"));
  const std::string pipe = (root_ / "pipe").string();
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0644), 0);
  for (const std::string& target : {pipe, root_.string()})
    EXPECT_TRUE(nasoa::testing::throws_error([&] { read_file(target); }, ErrorCode::kInvalidArgument,
                                             "not a regular file"))
        << target;
}

// The id of a process that has ended (its own child, reaped).
pid_t ended_process() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

TEST_F(BundleTest, WhatAKilledWriterLeftIsRemovedAndALiveWritersIsNot) {
  // A kill between creating the temporary file (or staging folder) and the
  // rename left it for good, one more per kill: the next write removes those
  // of ended processes.
  const std::string dead = std::to_string(ended_process());
  const std::string live = std::to_string(::getppid());  // the test runner, alive
  for (const std::string& pid : {dead, live}) {
    std::ofstream(root_ / ("state.json.tmp." + pid)) << "half";
    std::ofstream(root_ / ("state.json.tmp." + pid + ".7")) << "half";
    fs::create_directories(root_ / (".zoo.partial-" + pid) / "models");
  }
  std::ofstream(root_ / "state.json.tmp.notapid") << "someone else's";
  std::ofstream(root_ / ("state.json.tmp." + dead + ".x")) << "someone else's";
  // Left long ago; one the dead id wrote a moment ago may be a writer's in
  // another PID namespace, and stays.
  const auto long_ago = fs::file_time_type::clock::now() - std::chrono::hours(1);
  for (const std::string& name : {"state.json.tmp." + dead, "state.json.tmp." + dead + ".7", ".zoo.partial-" + dead,
                                  "state.json.tmp." + live, "state.json.tmp." + live + ".7", ".zoo.partial-" + live})
    fs::last_write_time(root_ / name, long_ago);
  std::ofstream(root_ / ("state.json.tmp." + dead + ".8")) << "fresh";
  write_file_atomic((root_ / "state.json").string(), "whole");
  EXPECT_FALSE(fs::exists(root_ / ("state.json.tmp." + dead)));
  EXPECT_FALSE(fs::exists(root_ / ("state.json.tmp." + dead + ".7")));
  EXPECT_TRUE(fs::exists(root_ / ("state.json.tmp." + live)));
  EXPECT_TRUE(fs::exists(root_ / ("state.json.tmp." + live + ".7")));
  EXPECT_TRUE(fs::exists(root_ / "state.json.tmp.notapid"));
  EXPECT_TRUE(fs::exists(root_ / ("state.json.tmp." + dead + ".x")));
  EXPECT_TRUE(fs::exists(root_ / ("state.json.tmp." + dead + ".8"))) << "changed a moment ago";
  write_bundle(dir_, input());
  EXPECT_FALSE(fs::exists(root_ / (".zoo.partial-" + dead)));
  EXPECT_TRUE(fs::exists(root_ / (".zoo.partial-" + live)));
}

}  // namespace
}  // namespace nasoa::zoo
