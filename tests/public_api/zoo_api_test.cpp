// The public API as an app uses it: only <nasoa/nasoa.h> and libnasoa.
// The bundle comes from `nasoa-zoo create` (a ctest fixture), passed with --bundle=DIR.
#include <gtest/gtest.h>
#include <nasoa/nasoa.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "../support/expect_error.h"

namespace fs = std::filesystem;

// Set from --bundle=DIR in main(); adapter_api_test.cpp reads it too.
std::string g_bundle;
// --shipped-bundle=DIR: the same models with shipped experience and predictor
// (plan_api_test.cpp); may not exist.
std::string g_shipped_bundle;

namespace {

class ZooApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (g_bundle.empty()) GTEST_SKIP() << "run with --bundle=DIR (ctest passes it)";
    scratch_ = fs::temp_directory_path() / ("nasoa-api-test-" + std::to_string(::getpid()));
    fs::remove_all(scratch_);
  }
  void TearDown() override { fs::remove_all(scratch_); }

  // A private copy that a test may damage.
  std::string copy_bundle() {
    fs::create_directories(scratch_);
    fs::copy(g_bundle, scratch_ / "zoo", fs::copy_options::recursive);
    return (scratch_ / "zoo").string();
  }

  fs::path scratch_;
};

TEST_F(ZooApiTest, OpensAndDescribesTheBundle) {
  const nasoa::Zoo zoo = nasoa::Zoo::open(g_bundle);
  EXPECT_EQ(zoo.name(), "public-api");
  EXPECT_EQ(zoo.format_version(), nasoa::kZooFormatVersion);
  EXPECT_EQ(zoo.provenance().seed, 7u);
  EXPECT_NE(zoo.provenance().command_line.find("create"), std::string::npos);
  ASSERT_EQ(zoo.models().size(), 2u);
  const nasoa::ModelInfo& m = zoo.model("020-_16_11-21");
  EXPECT_EQ(m.input_size, 32);
  EXPECT_EQ(m.upstream_classes, 10);
  EXPECT_FALSE(m.upstream_accuracy.has_value());
  const nasoa::NetworkCost cost = nasoa::count_cost(nasoa::Encoding::parse(m.encoding), 10, 32);
  EXPECT_EQ(m.parameters, cost.parameters);
  EXPECT_EQ(m.macs, cost.macs);
  EXPECT_EQ(m.weights_sha256.size(), 64u);
  EXPECT_FALSE(zoo.predictor_path().has_value());
  EXPECT_NO_THROW(zoo.verify());
}

TEST_F(ZooApiTest, ABundleWhoseUpdateWasInterruptedOpensPutBack) {
  // What a crash between the two renames of an update leaves where folders
  // cannot be swapped (vfat, NFS): the bundle missing, its copy aside.
  const fs::path zoo = copy_bundle();
  const fs::path aside = zoo.parent_path() / ("." + zoo.filename().string() + ".old");
  fs::rename(zoo, aside);
  const nasoa::Zoo opened = nasoa::Zoo::open(zoo.string());
  EXPECT_EQ(opened.name(), "public-api");
  EXPECT_EQ(fs::path(opened.dir()), zoo);
  EXPECT_TRUE(fs::exists(zoo / "MANIFEST"));
  EXPECT_FALSE(fs::exists(aside));
}

TEST_F(ZooApiTest, UnknownModelNamesTheModelsThereAre) {
  const nasoa::Zoo zoo = nasoa::Zoo::open(g_bundle);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { zoo.model("resnet-9000"); }, nasoa::ErrorCode::kNotFound,
                                           "2-_16_2-11"));
}

TEST_F(ZooApiTest, ZooIsASharedHandleAndAMovedFromOneSaysSo) {
  nasoa::Zoo a = nasoa::Zoo::open(g_bundle);
  const nasoa::Zoo copy = a;  // shares the parsed manifest
  EXPECT_EQ(&copy.models(), &a.models());
  nasoa::Zoo b = std::move(a);
  EXPECT_EQ(b.models().size(), 2u);
  // Every call on the moved-from handle is an error, not a crash.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { (void)a.name(); }, nasoa::ErrorCode::kInvalidArgument,
                                           "moved from"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { (void)a.models(); }, nasoa::ErrorCode::kInvalidArgument,
                                           "moved from"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { a.verify(); }, nasoa::ErrorCode::kInvalidArgument, "moved from"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::Adapter adapter(a); }, nasoa::ErrorCode::kInvalidArgument,
                                           "moved from"));
  a = std::move(b);
  EXPECT_EQ(a.name(), "public-api");
  EXPECT_EQ(copy.name(), "public-api");
}

TEST_F(ZooApiTest, AnAdapterOutlivesTheZooItWasMadeFrom) {
  std::optional<nasoa::Zoo> zoo(nasoa::Zoo::open(g_bundle));
  nasoa::AdapterOptions options;
  options.state_dir = (scratch_ / "state").string();
  const nasoa::Adapter adapter(*zoo, options);
  zoo.reset();
  fs::create_directories(scratch_);
  EXPECT_NO_THROW(adapter.check_out_dir((scratch_ / "model").string()));
  EXPECT_NE(adapter.state_dir().find("public-api"), std::string::npos) << adapter.state_dir();
}

TEST_F(ZooApiTest, DamageIsRefusedWithNasoaError) {
  const std::string dir = copy_bundle();
  const nasoa::Zoo zoo = nasoa::Zoo::open(dir);
  const std::string weights = dir + "/" + zoo.models()[1].weights_file;
  { std::ofstream(weights, std::ios::app) << "x"; }
  EXPECT_TRUE(nasoa::testing::throws_error([&] { zoo.verify(); }, nasoa::ErrorCode::kCorrupt,
                                           zoo.models()[1].weights_file))
      << "verify() accepted an extended weights file";
  EXPECT_THROW(nasoa::Zoo::open(dir), nasoa::Error);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { nasoa::Zoo::open(dir + "/does-not-exist"); },
                                           nasoa::ErrorCode::kNotFound, ""));
  // An empty path is a missing argument, said so (not a filesystem error).
  for (const auto& open : std::vector<std::function<void()>>{[] { nasoa::Zoo::open(""); },
                                                             [] { nasoa::Classifier::open(""); }})
    EXPECT_TRUE(nasoa::testing::throws_error(open, nasoa::ErrorCode::kInvalidArgument, "empty path"));
}

TEST(EncodingApiTest, ParsesPrintsAndCounts) {
  const nasoa::Encoding e = nasoa::Encoding::parse("031-_64_1-1-221-11121");
  EXPECT_EQ(e.to_string(), "031-_64_1-1-221-11121");
  EXPECT_EQ(nasoa::count_cost(e).parameters, 15235528);
  EXPECT_TRUE(nasoa::testing::throws_error([] { nasoa::Encoding::parse("031-_64_1-1-23"); },
                                           nasoa::ErrorCode::kInvalidEncoding, ""));
  EXPECT_STREQ(nasoa::to_string(nasoa::ErrorCode::kInvalidEncoding), "invalid-encoding");
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--bundle=", 0) == 0) g_bundle = arg.substr(9);
    if (arg.rfind("--shipped-bundle=", 0) == 0) g_shipped_bundle = arg.substr(17);
  }
  // Adapters the tests build with the default state directory learn in a
  // folder of this process, never in the user's own ~/.local/state/nasoa.
  std::string state = (std::filesystem::temp_directory_path() / "nasoa-public-api-state-XXXXXX").string();
  if (!::mkdtemp(state.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  ::setenv("XDG_STATE_HOME", state.c_str(), 1);
  const int failed = RUN_ALL_TESTS();
  std::error_code ignored;
  std::filesystem::remove_all(state, ignored);
  return failed;
}
