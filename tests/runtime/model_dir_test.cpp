// Model directories: saved as one-model bundles, replaced without a window in
// which a crash loses both models, and never replacing what is not a bundle.
#include "runtime/inference/model_dir.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <filesystem>
#include <limits>
#include <functional>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/scrambled_state.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"

namespace fs = std::filesystem;

namespace nasoa::runtime {
namespace {

using nasoa::testing::TempDir;

zoo::Network small_network(int classes) {
  zoo::Network net(Encoding::parse("2-_8_1-2"), classes);
  net->eval();
  return net;
}

ModelDirInfo info_for(std::vector<std::string> labels) {
  ModelDirInfo info;
  info.labels = std::move(labels);
  info.input_size = 32;
  info.mean = {0.5f, 0.4f, 0.3f};
  info.std = {0.2f, 0.25f, 0.3f};
  info.validation_accuracy = 0.75;
  info.provenance = {"model_dir_test", "model_dir_test", 5, "2026-01-01T00:00:00Z", "none"};
  return info;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

// `f` throws nasoa::Error with `code`, whatever the message.
::testing::AssertionResult throws_code(ErrorCode code, const std::function<void()>& f) {
  return nasoa::testing::throws_error(f, code, "");
}

// A zoo bundle of two 2-class models with these labels (none: no labels).
zoo::BundleInput two_model_bundle(const std::vector<std::string>& labels) {
  zoo::BundleInput in;
  in.name = "zoo";
  for (const char* name : {"one", "two"}) {
    zoo::BundleModelInput m;
    m.name = name;
    m.network = small_network(2);
    m.input_size = 32;
    m.labels = labels;
    in.models.push_back(std::move(m));
  }
  return in;
}

TEST(ModelDirTest, SavesAndOpensWithEverythingInferenceNeeds) {
  TempDir tmp;
  zoo::Network net = small_network(3);
  nasoa::testing::scramble_state(*net, 2);  // BatchNorm statistics included
  save_model_dir(tmp / "m", net, info_for({"cat", "dog", "bird"}));
  const LoadedModel m = open_model_dir(tmp / "m");
  EXPECT_EQ(m.info.name, kModelName);
  EXPECT_EQ(m.info.labels, (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(m.info.input_size, 32);
  EXPECT_EQ(m.info.mean[1], 0.4f);
  EXPECT_EQ(m.info.std[2], 0.3f);
  ASSERT_TRUE(m.info.upstream_accuracy.has_value());
  EXPECT_DOUBLE_EQ(*m.info.upstream_accuracy, 0.75);
  EXPECT_EQ(m.provenance.seed, 5u);
  EXPECT_EQ(m.info.encoding, "2-_8_1-2");
  EXPECT_FALSE(m.network->is_training());
  const auto a = net->named_parameters();
  const auto b = m.network->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  const auto buffers = m.network->named_buffers();
  ASSERT_GT(net->named_buffers().size(), 0u);
  for (const auto& p : net->named_buffers()) EXPECT_TRUE(torch::equal(p.value(), buffers[p.key()])) << p.key();
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"m"});
}

TEST(ModelDirTest, ReplacesAnExistingModelDirAndLeavesNothingBeside) {
  TempDir tmp;
  zoo::Network a = small_network(2), b = small_network(3);
  save_model_dir(tmp / "m", a, info_for({"x", "y"}));
  save_model_dir(tmp / "m", b, info_for({"cat", "dog", "bird"}));
  EXPECT_EQ(open_model_dir(tmp / "m").info.labels.size(), 3u);
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"m"});
}

// Whether this file system swaps two folders in one step (renameat2
// RENAME_EXCHANGE); without it a save leaves a moment with no folder.
bool swaps_folders(const fs::path& dir) {
  fs::create_directories(dir / "swap-a");
  fs::create_directories(dir / "swap-b");
  const long rc = ::syscall(SYS_renameat2, AT_FDCWD, (dir / "swap-a").c_str(), AT_FDCWD, (dir / "swap-b").c_str(),
                            1u << 1 /* RENAME_EXCHANGE */);
  fs::remove_all(dir / "swap-a");
  fs::remove_all(dir / "swap-b");
  return rc == 0;
}

// A classifier opened while the model is saved again (the app reloading as
// a fine-tune finishes) gets one whole model, old or new: a save swapping
// the new one in between the manifest and the weights once paired the old
// manifest with the new weights, a checksum error.
TEST(ModelDirTest, OpensWholeModelsWhileSavesSwapNewOnesIn) {
  TempDir tmp;
  if (!swaps_folders(tmp.path())) GTEST_SKIP() << "this file system cannot swap folders in one step";
  zoo::Network two = small_network(2), three = small_network(3);
  save_model_dir(tmp / "m", two, info_for({"x", "y"}));
  std::atomic<bool> done{false};
  std::string save_error;
  std::thread writer([&] {
    try {
      for (int i = 0; i < 60; ++i) {
        if (i % 2) save_model_dir(tmp / "m", two, info_for({"x", "y"}));
        else save_model_dir(tmp / "m", three, info_for({"cat", "dog", "bird"}));
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    } catch (const std::exception& e) {
      save_error = e.what();
    }
    done = true;
  });
  int opened = 0;
  std::vector<std::string> failures;
  while (!done) {
    try {
      const LoadedModel m = open_model_dir(tmp / "m");
      if (m.network->num_classes() != int(m.info.labels.size())) failures.push_back("labels of another model");
      ++opened;
    } catch (const Error& e) {
      failures.push_back(e.what());
    }
  }
  writer.join();
  EXPECT_EQ(save_error, "");
  EXPECT_GT(opened, 0);
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << opened + failures.size()
                                << " opens failed; the first: " << failures.front();
}

TEST(ModelDirTest, RecoversTheOldModelAfterACrashBetweenTheRenames) {
  TempDir tmp;
  zoo::Network net = small_network(2);
  save_model_dir(tmp / "m", net, info_for({"x", "y"}));
  // The state after "rename DIR aside" and before "rename the new one in".
  fs::rename(tmp / "m", tmp / ".m.old");
  fs::create_directories(tmp / ".m.new");
  const LoadedModel m = open_model_dir(tmp / "m");
  EXPECT_EQ(m.info.labels, (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(fs::exists(tmp / "m/MANIFEST"));
  EXPECT_FALSE(fs::exists(tmp / ".m.old"));

  // And save_model_dir recovers too, then replaces as usual.
  fs::rename(tmp / "m", tmp / ".m.old");
  zoo::Network other = small_network(3);
  save_model_dir(tmp / "m", other, info_for({"a", "b", "c"}));
  EXPECT_EQ(open_model_dir(tmp / "m").info.labels.size(), 3u);
  EXPECT_EQ(entries(tmp.path()), std::vector<std::string>{"m"});
}

TEST(ModelDirTest, AStaleAsideCopyLosesToTheNewModelAndTheNextSaveDropsIt) {
  TempDir tmp;
  zoo::Network a = small_network(2), b = small_network(3);
  save_model_dir(tmp / "m", a, info_for({"x", "y"}));
  fs::copy(tmp / "m", tmp / ".m.old", fs::copy_options::recursive);
  save_model_dir(tmp / "m2", b, info_for({"a", "b", "c"}));
  fs::remove_all(tmp / "m");
  fs::rename(tmp / "m2", tmp / "m");
  // A crash while removing the old copy: the new one must win, and opening
  // it modifies nothing (a reader may run beside a saving writer).
  EXPECT_EQ(open_model_dir(tmp / "m").info.labels.size(), 3u);
  EXPECT_TRUE(fs::exists(tmp / ".m.old"));
  save_model_dir(tmp / "m", a, info_for({"x", "y"}));
  EXPECT_FALSE(fs::exists(tmp / ".m.old"));
  EXPECT_EQ(open_model_dir(tmp / "m").info.labels.size(), 2u);
}

TEST(ModelDirTest, RefusesToReplaceWhatIsNotABundle) {
  TempDir tmp;
  zoo::Network net = small_network(2);
  tmp.write("precious/data.txt", "keep");
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "precious", net, info_for({"x", "y"})); }));
  EXPECT_TRUE(fs::exists(tmp / "precious/data.txt"));
  fs::create_directories(tmp / "empty");
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "empty", net, info_for({"x", "y"})); }));
  tmp.write("file", "keep");
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "file", net, info_for({"x", "y"})); }));
  EXPECT_EQ(entries(tmp.path()), (std::vector<std::string>{"empty", "file", "precious"}));
}

TEST(ModelDirTest, TheTargetIsCheckedBeforeAnyWork) {
  TempDir tmp;
  EXPECT_NO_THROW(check_model_dir_target(tmp / "new"));
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { check_model_dir_target(tmp / "no-such-folder/m"); }));
  // A folder no one may write to, root included (procfs): refused before
  // any training, not when the trained model is saved.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target("/proc/1/nasoa-model"); },
                                           ErrorCode::kInvalidArgument, "/proc/1 is not writable"));
  tmp.write("a-file", "x");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target(tmp / "a-file/m"); },
                                           ErrorCode::kInvalidArgument, "a-file is not a folder"))
      << "a folder inside a file was accepted";
  zoo::Network net = small_network(2);
  save_model_dir(tmp / "m", net, info_for({"x", "y"}));
  EXPECT_NO_THROW(check_model_dir_target(tmp / "m")) << "a model directory may be replaced";
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { check_model_dir_target(tmp / "m", tmp / "m"); }));
  // Inside the zoo being adapted, however reached: its next update would
  // delete the model with the zoo's old folder.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target(tmp / "m/fine-tuned", tmp / "m"); },
                                           ErrorCode::kInvalidArgument, "inside the zoo bundle"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target(tmp / "m/../m/x", tmp / "m/"); },
                                           ErrorCode::kInvalidArgument, "inside the zoo bundle"));
  EXPECT_NO_THROW(check_model_dir_target(tmp / "m-beside", tmp / "m")) << "a name that merely starts alike";
  zoo::write_bundle(tmp / "zoo", two_model_bundle({"x", "y"}));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target(tmp / "zoo"); }, ErrorCode::kInvalidArgument,
                                           "a zoo bundle of 2 model(s), not a model directory"))
      << "a zoo of two models would be replaced";
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "zoo", net, info_for({"x", "y"})); }));
  EXPECT_NO_THROW(zoo::open_bundle(tmp / "zoo")) << "the zoo is left as it was";
  // A damaged zoo is still a zoo; a damaged model directory may be replaced.
  for (const char* dir : {"zoo", "m"}) {
    for (const fs::directory_entry& f : fs::directory_iterator(tmp.path() / dir / "models")) {
      std::string bytes = zoo::read_file(f.path().string());
      bytes[bytes.size() / 2] = char(bytes[bytes.size() / 2] ^ 1);
      zoo::write_file_atomic(f.path().string(), bytes);
      break;
    }
  }
  // The damage is real: neither opens any more.
  EXPECT_THROW(zoo::open_bundle(tmp / "zoo"), Error);
  EXPECT_THROW(open_model_dir(tmp / "m"), Error);
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { check_model_dir_target(tmp / "zoo"); }));
  EXPECT_NO_THROW(check_model_dir_target(tmp / "m")) << "a damaged model directory may be replaced";
  tmp.write("folder/data.txt", "keep");
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { check_model_dir_target(tmp / "folder"); }));
}

// A zoo of one labelled model (what nasoa-pretrain writes) looks like a
// model directory; what shipped it tells them apart.
TEST(ModelDirTest, AOneModelZooIsNotReplacedAsAModelDirectory) {
  TempDir tmp;
  zoo::BundleInput one = two_model_bundle({"x", "y"});
  one.models.pop_back();
  one.provenance.tool = "nasoa-pretrain 0.3";
  zoo::write_bundle(tmp / "pretrained", one);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { check_model_dir_target(tmp / "pretrained"); },
                                           ErrorCode::kInvalidArgument, "written by nasoa-pretrain 0.3"));
  zoo::Network net = small_network(2);
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "pretrained", net, info_for({"x", "y"})); }));
  EXPECT_EQ(zoo::open_bundle(tmp / "pretrained").provenance.tool, "nasoa-pretrain 0.3") << "the zoo was replaced";
}

// A save a crash interrupted between its renames leaves DIR missing and its
// old copy aside; that copy is what a save would put back and replace, so
// it is checked like DIR: a zoo there is refused and kept.
TEST(ModelDirTest, AZooLeftAsideByAnInterruptedSaveIsNotReplaced) {
  TempDir tmp;
  zoo::write_bundle(tmp / "z", two_model_bundle({"x", "y"}));
  fs::rename(tmp / "z", tmp / ".z.old");
  zoo::Network net = small_network(2);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { save_model_dir(tmp / "z", net, info_for({"x", "y"})); },
                                           ErrorCode::kInvalidArgument, "a zoo bundle of 2 model(s)"));
  EXPECT_EQ(zoo::open_bundle(tmp / "z").models.size(), 2u) << "the zoo set aside was lost";

  // A model directory set aside the same way is replaced, as DIR would be.
  save_model_dir(tmp / "m", net, info_for({"x", "y"}));
  fs::rename(tmp / "m", tmp / ".m.old");
  zoo::Network other = small_network(3);
  save_model_dir(tmp / "m", other, info_for({"a", "b", "c"}));
  EXPECT_EQ(open_model_dir(tmp / "m").info.labels.size(), 3u);
  EXPECT_FALSE(fs::exists(tmp / ".m.old"));
}

// A link to a folder that is not there (an unmounted drive's) is not written
// through: that would create the folders it names.
TEST(ModelDirTest, ALinkToNothingIsNotWrittenThrough) {
  TempDir tmp;
  fs::create_symlink(tmp / "unmounted/drive/model", tmp / "out");
  zoo::Network net = small_network(2);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { save_model_dir(tmp / "out", net, info_for({"x", "y"})); },
                                           ErrorCode::kInvalidArgument, "which does not exist"));
  EXPECT_FALSE(fs::exists(tmp / "unmounted"));
}

TEST(ModelDirTest, RefusesLabelsThatDoNotFitTheNetwork) {
  TempDir tmp;
  zoo::Network net = small_network(3);
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { save_model_dir(tmp / "m", net, info_for({"x", "y"})); }));
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "m", net, info_for({"x", "", "z"})); }));
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument,
                          [&] { save_model_dir(tmp / "m", net, info_for({"x", "a\tb", "z"})); }));
  EXPECT_FALSE(fs::exists(tmp / "m"));
}

TEST(ModelDirTest, OpenRefusesBundlesThatAreNotModelDirs) {
  TempDir tmp;
  EXPECT_TRUE(throws_code(ErrorCode::kNotFound, [&] { open_model_dir(tmp / "missing"); }));
  zoo::BundleInput in = two_model_bundle({});
  zoo::write_bundle(tmp / "two-models", in);
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { open_model_dir(tmp / "two-models"); }));
  in.models.pop_back();
  zoo::write_bundle(tmp / "no-labels", in);
  EXPECT_TRUE(throws_code(ErrorCode::kInvalidArgument, [&] { open_model_dir(tmp / "no-labels"); }));
}

TEST(ModelDirTest, OpenRefusesWeightsNoTrainingSaves) {
  // Whole and checksummed, but every probability would come out NaN.
  TempDir tmp;
  const std::vector<std::pair<std::string, std::function<void(zoo::NetworkImpl&)>>> damage{
      {"nan", [](zoo::NetworkImpl& n) { n.parameters().back().fill_(std::numeric_limits<float>::quiet_NaN()); }},
      {"inf", [](zoo::NetworkImpl& n) { n.parameters().front().fill_(std::numeric_limits<float>::infinity()); }},
      {"negative-variance",
       [](zoo::NetworkImpl& n) {
         for (const auto& b : n.named_buffers())
           if (b.key().find("running_var") != std::string::npos) b.value().fill_(-1.0f);
       }},
  };
  for (const auto& [name, edit] : damage) {
    zoo::BundleInput in = two_model_bundle({"a", "b"});
    in.models.pop_back();
    {
      torch::NoGradGuard no_grad;
      edit(*in.models.front().network);
    }
    zoo::write_bundle(tmp / name, in);
    EXPECT_TRUE(throws_code(ErrorCode::kCorrupt, [&] { open_model_dir(tmp / name); })) << name;
  }
}

}  // namespace
}  // namespace nasoa::runtime
