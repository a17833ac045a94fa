// nasoa::Classifier against the in-memory network it was saved from: the same
// preprocessing as training ingestion, the same probabilities, batch or not.
#include "nasoa/classifier.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "nasoa/error.h"
#include "runtime/data/image_store.h"
#include "runtime/inference/model_dir.h"
#include "tests/support/expect_error.h"
#include "tests/support/scrambled_state.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

namespace nasoa {
namespace {

using nasoa::testing::TempDir;

constexpr int kSide = 32;
const std::array<float, 3> kMean{0.5f, 0.45f, 0.4f};
const std::array<float, 3> kStd{0.25f, 0.2f, 0.3f};

class ClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::manual_seed(11);
    net_ = zoo::Network(Encoding::parse("020-_16_11-21"), 3);
    // BatchNorm statistics a fresh network does not have, so that a
    // classifier that dropped them would compute something else.
    nasoa::testing::scramble_state(*net_, 11);
    // A head far from uniform, so that the top-1 class is never a near tie.
    torch::NoGradGuard no_grad;
    for (auto& p : net_->named_parameters())
      if (p.key().rfind("head.", 0) == 0) p.value().normal_(0, 1);
    net_->eval();
    runtime::ModelDirInfo info;
    info.labels = {"cat", "dog", "bird"};
    info.input_size = kSide;
    info.mean = kMean;
    info.std = kStd;
    info.validation_accuracy = 0.875;
    info.provenance = {"classifier_api_test", "", 1, "2026-01-01T00:00:00Z", "none"};
    dir_ = tmp_ / "model";
    runtime::save_model_dir(dir_, net_, info);
  }

  // The network's softmax on the image, preprocessed independently of the
  // classifier: training's conversion, then mean/std by tensor arithmetic.
  std::vector<float> expected(const cv::Mat& image) {
    const cv::Mat square = runtime::fit_square(runtime::to_rgb8(image, runtime::IngestOptions{}.background), kSide);
    torch::Tensor x = torch::from_blob(square.data, {kSide, kSide, 3}, torch::kUInt8)
                          .permute({2, 0, 1}).to(torch::kFloat).div(255.0);
    x = (x - torch::tensor({kMean[0], kMean[1], kMean[2]}).view({3, 1, 1})) /
        torch::tensor({kStd[0], kStd[1], kStd[2]}).view({3, 1, 1});
    torch::NoGradGuard no_grad;
    const torch::Tensor p = torch::softmax(net_->forward(x.unsqueeze(0)), 1)[0].contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  }

  // The network's softmax on an image of one colour (r, g, b), built by
  // hand: what any correct conversion and resize of a uniform image gives.
  std::vector<float> expected_uniform(int r, int g, int b) {
    torch::Tensor x = torch::tensor({float(r), float(g), float(b)}).div(255.0).view({3, 1, 1});
    x = ((x - torch::tensor({kMean[0], kMean[1], kMean[2]}).view({3, 1, 1})) /
         torch::tensor({kStd[0], kStd[1], kStd[2]}).view({3, 1, 1}))
            .expand({3, kSide, kSide});
    torch::NoGradGuard no_grad;
    const torch::Tensor p = torch::softmax(net_->forward(x.unsqueeze(0)), 1)[0].contiguous();
    return std::vector<float>(p.data_ptr<float>(), p.data_ptr<float>() + p.numel());
  }

  static std::vector<cv::Mat> images() {
    cv::RNG rng(3);
    cv::Mat bgr(40, 50, CV_8UC3), gray(64, 37, CV_8UC1), bgra(33, 33, CV_8UC4), bgr16(48, 48, CV_16UC3);
    for (cv::Mat* m : {&bgr, &gray, &bgra, &bgr16}) rng.fill(*m, cv::RNG::UNIFORM, 0, m->depth() == CV_16U ? 65535 : 255);
    cv::Mat smooth(90, 60, CV_8UC3);
    for (int y = 0; y < smooth.rows; ++y)
      for (int x = 0; x < smooth.cols; ++x) smooth.at<cv::Vec3b>(y, x) = cv::Vec3b(uchar(x * 4), uchar(y * 2), 128);
    return {bgr, gray, bgra, bgr16, smooth};
  }

  static void expect_matches(const std::vector<Prediction>& got, const std::vector<float>& want) {
    ASSERT_EQ(got.size(), want.size());
    const int top = int(std::max_element(want.begin(), want.end()) - want.begin());
    EXPECT_EQ(got[0].index, top);
    for (const Prediction& p : got) EXPECT_NEAR(p.probability, want[std::size_t(p.index)], 1e-5);
  }

  TempDir tmp_;
  zoo::Network net_{nullptr};
  std::string dir_;
};

TEST_F(ClassifierTest, PredictsWhatTheSavedNetworkComputes) {
  const Classifier clf = Classifier::open(dir_);
  EXPECT_EQ(clf.labels(), (std::vector<std::string>{"cat", "dog", "bird"}));
  EXPECT_EQ(clf.num_classes(), 3);
  EXPECT_EQ(clf.input_size(), kSide);
  EXPECT_EQ(clf.encoding(), "020-_16_11-21");
  ASSERT_TRUE(clf.validation_accuracy().has_value());
  EXPECT_DOUBLE_EQ(*clf.validation_accuracy(), 0.875);
  EXPECT_EQ(clf.dir(), fs::absolute(dir_).string());
  for (const cv::Mat& image : images()) {
    SCOPED_TRACE(image.channels());
    const std::vector<Prediction> top3 = clf.predict(image, 3);
    expect_matches(top3, expected(image));
    for (const Prediction& p : top3) EXPECT_EQ(p.label, clf.labels()[std::size_t(p.index)]);
    EXPECT_GE(top3[0].probability, top3[1].probability);
    EXPECT_GE(top3[1].probability, top3[2].probability);
  }
}

// Uniform images of every kind the decoder hands over, against values
// worked out by hand rather than by the conversion the classifier uses:
// OpenCV's BGR order, grey, 16 bits (a 257th), and alpha over white.
TEST_F(ClassifierTest, ConvertsEachPixelFormatAsWorkedOutByHand) {
  const Classifier clf = Classifier::open(dir_);
  struct Case {
    const char* what;
    cv::Mat image;
    int r, g, b;
  };
  const std::vector<Case> cases = {
      {"bgr8", cv::Mat(40, 50, CV_8UC3, cv::Scalar(10, 100, 200)), 200, 100, 10},
      {"grey8", cv::Mat(30, 70, CV_8UC1, cv::Scalar(77)), 77, 77, 77},
      {"bgr16", cv::Mat(48, 48, CV_16UC3, cv::Scalar(257 * 10, 257 * 100, 257 * 200)), 200, 100, 10},
      {"bgra8 opaque", cv::Mat(33, 33, CV_8UC4, cv::Scalar(10, 100, 200, 255)), 200, 100, 10},
      // A fifth opaque over white: (200 * 51 + 255 * 204) / 255 = 244.5 less
      // a rounding hair, and so on.
      {"bgra8 a fifth opaque", cv::Mat(33, 33, CV_8UC4, cv::Scalar(10, 100, 200, 51)), 244, 224, 206},
      // Alpha 0 everywhere is padding (a BMP's unused fourth byte), not an
      // image of nothing but background.
      {"bgra8 alpha all 0", cv::Mat(33, 33, CV_8UC4, cv::Scalar(10, 100, 200, 0)), 200, 100, 10},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    expect_matches(clf.predict(c.image, 3), expected_uniform(c.r, c.g, c.b));
  }
  // The cases differ: a classifier that ignored its input would fail some.
  const std::vector<float> rgb = expected_uniform(200, 100, 10), bgr = expected_uniform(10, 100, 200);
  float largest = 0;
  for (std::size_t i = 0; i < rgb.size(); ++i) largest = std::max(largest, std::abs(rgb[i] - bgr[i]));
  EXPECT_GT(largest, 1e-3) << "swapped channels must change the answer by more than the tolerance";
}

TEST_F(ClassifierTest, BatchEqualsOneByOne) {
  const Classifier clf = Classifier::open(dir_);
  std::vector<cv::Mat> batch = images();
  for (int i = 0; i < 8; ++i) batch.push_back(batch[std::size_t(i) % 5]);  // more than one image per kind
  const auto all = clf.predict(batch, 2);
  ASSERT_EQ(all.size(), batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto one = clf.predict(batch[i], 2);
    ASSERT_EQ(all[i].size(), 2u);
    for (std::size_t k = 0; k < 2; ++k) {
      EXPECT_EQ(all[i][k].index, one[k].index) << i;
      EXPECT_NEAR(all[i][k].probability, one[k].probability, 1e-5) << i;
    }
  }
  EXPECT_TRUE(clf.predict(std::vector<cv::Mat>{}, 1).empty());
}

TEST_F(ClassifierTest, TopKIsClampedToTheClassesAndMustBePositive) {
  const Classifier clf = Classifier::open(dir_);
  const cv::Mat image = images()[0];
  EXPECT_EQ(clf.predict(image).size(), 1u);
  const auto all = clf.predict(image, 100);
  ASSERT_EQ(all.size(), 3u);
  float sum = 0;
  for (const Prediction& p : all) sum += p.probability;
  EXPECT_NEAR(sum, 1.0f, 1e-5);
  for (int bad : {0, -1})
    EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict(image, bad); }, ErrorCode::kInvalidArgument, ""))
        << bad;
}

TEST_F(ClassifierTest, RefusesImagesItCannotConvert) {
  const Classifier clf = Classifier::open(dir_);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict(std::vector<cv::Mat>{images()[0], cv::Mat()}); },
                                           ErrorCode::kInvalidArgument, "image 1"));
  cv::Mat five(8, 8, CV_8UC(5));
  std::fill(five.data, five.data + five.total() * five.elemSize(), std::uint8_t(1));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict(five); }, ErrorCode::kInvalidArgument, "channel count 5"));
  // Signed integers have no agreed scale: refused, not saturated into wrong pixels.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict(cv::Mat(8, 8, CV_16SC1, cv::Scalar(300))); },
                                           ErrorCode::kInvalidArgument, "16-bit signed"));
  // A float16 image in [0,1] predicts as its 8-bit twin does.
  cv::Mat half;
  images()[2].convertTo(half, CV_32F, 1.0 / 255.0);
  half.convertTo(half, CV_16F);
  EXPECT_EQ(clf.predict(half)[0].index, clf.predict(images()[2])[0].index);
}

TEST_F(ClassifierTest, PredictFileDecodesAsTrainingDoesAndNamesBadFiles) {
  const Classifier clf = Classifier::open(dir_);
  const std::string png = tmp_ / "a.png";
  ASSERT_TRUE(cv::imwrite(png, images()[4]));
  const auto from_file = clf.predict_file(png, 3);
  const auto from_mat = clf.predict(cv::imread(png, cv::IMREAD_UNCHANGED), 3);
  ASSERT_EQ(from_file.size(), 3u);
  ASSERT_EQ(from_mat.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(from_file[k].index, from_mat[k].index);
    EXPECT_FLOAT_EQ(from_file[k].probability, from_mat[k].probability);
  }
  const std::string junk = tmp_.write("junk.jpg", "this is not a JPEG");
  const std::pair<std::string, ErrorCode> cases[] = {{junk, ErrorCode::kCorrupt},
                                                     {tmp_ / "missing.png", ErrorCode::kNotFound}};
  for (const std::pair<std::string, ErrorCode>& c : cases)
    EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict_file(c.first); }, c.second, c.first)) << c.first;
}

TEST_F(ClassifierTest, PredictFileCallsAnIntactImageItDoesNotTakeAnInvalidArgument) {
  // 0-255 floats are whole, only of no known scale: predict() refuses the
  // same pixels as kInvalidArgument, and the file is not damaged either.
  const Classifier clf = Classifier::open(dir_);
  const cv::Mat floats(8, 8, CV_32FC1, cv::Scalar(200.0f));
  const std::string tiff = tmp_ / "floats.tiff";
  ASSERT_TRUE(cv::imwrite(tiff, floats));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict(floats); }, ErrorCode::kInvalidArgument, ""));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict_file(tiff); }, ErrorCode::kInvalidArgument,
                                           "float pixels outside [0, 1]"));
}

TEST_F(ClassifierTest, PredictFileClassifiesAMultiPageTiffsFirstPageAndSaysPagesFollow) {
  const Classifier clf = Classifier::open(dir_);
  cv::Mat mirrored;
  cv::flip(images()[0], mirrored, 1);
  const std::vector<cv::Mat> pages{images()[0], mirrored};
  const std::string stack = tmp_ / "stack.tiff", one = tmp_ / "one.tiff";
  ASSERT_TRUE(cv::imwritemulti(stack, pages));
  ASSERT_TRUE(cv::imwrite(one, pages[0]));
  bool more_pages = false;
  const auto from_stack = clf.predict_file(stack, 3, &more_pages);
  EXPECT_TRUE(more_pages);
  const auto from_one = clf.predict_file(one, 3, &more_pages);
  EXPECT_FALSE(more_pages);
  ASSERT_EQ(from_stack.size(), 3u);
  ASSERT_EQ(from_one.size(), 3u);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_EQ(from_stack[k].index, from_one[k].index);
    EXPECT_FLOAT_EQ(from_stack[k].probability, from_one[k].probability);
  }
  EXPECT_EQ(clf.predict_file(stack, 3).size(), 3u) << "the overload without it still reads the first page";
  more_pages = true;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { clf.predict_file(tmp_ / "missing.tiff", 1, &more_pages); },
                                           ErrorCode::kNotFound, "missing.tiff"));
  EXPECT_FALSE(more_pages) << "a call that throws reports no pages";
}

TEST_F(ClassifierTest, ConstPredictIsSafeFromSeveralThreads) {
  const Classifier clf = Classifier::open(dir_);
  const std::vector<cv::Mat> batch = images();
  const auto want = clf.predict(batch, 1);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int r = 0; r < 3; ++r)
        for (std::size_t i = 0; i < batch.size(); ++i)
          if (clf.predict(batch[i])[0].index != want[i][0].index) ++mismatches;
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
}

TEST_F(ClassifierTest, IsAMovableHandleAndAMovedFromOneSaysSo) {
  Classifier a = Classifier::open(dir_);
  Classifier b = std::move(a);
  EXPECT_EQ(b.labels().size(), 3u);
  const cv::Mat image(kSide, kSide, CV_8UC3, cv::Scalar(10, 20, 30));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { a.predict(image); }, ErrorCode::kInvalidArgument, "moved from"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { (void)a.labels(); }, ErrorCode::kInvalidArgument, "moved from"));
  a = std::move(b);
  EXPECT_EQ(a.input_size(), kSide);
}

// The process's address space now, from the kernel's own count.
std::size_t virtual_bytes() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmSize:", 0) == 0) return std::stoull(line.substr(7)) * 1024;
  return 0;
}

// Running out of memory is an error an app can act on (a smaller batch or
// image), not "a bug in nasoa": whichever allocator ran out, it is
// kOutOfMemory. Here OpenCV's, converting an image too large for what the
// process may still map.
TEST_F(ClassifierTest, RunningOutOfMemoryIsOutOfMemory) {
  // A fresh process for the child: LibTorch's and OpenCV's thread pools do
  // not survive a plain fork.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const Classifier clf = Classifier::open(dir_);
  const cv::Mat huge(12000, 12000, CV_16UC1, cv::Scalar(1000));  // 288 MB; 8-bit RGB of it is 432 MB
  ASSERT_GT(virtual_bytes(), 0u);
  constexpr std::size_t kRoom = 128u << 20;  // less than the first conversion's 144 MB
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_AS, &limit), 0);
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < virtual_bytes() + kRoom)
    GTEST_SKIP() << "the address-space limit leaves too little room to run out in";
  // In the child: room for little more than what the process holds now.
  // Only the soft limit is lowered: raising a hard one needs privileges.
  // The child is a fresh run of this test with its own temp dir, and _Exit
  // skips the fixture's teardown, so it removes that dir itself.
  const auto exit_child = [&](int code) {
    std::error_code ignored;
    fs::remove_all(tmp_.path(), ignored);
    std::_Exit(code);
  };
  const auto predict_with_little_room = [&] {
    rlimit lower = limit;
    lower.rlim_cur = virtual_bytes() + kRoom;
    if (setrlimit(RLIMIT_AS, &lower) != 0) exit_child(3);
    try {
      clf.predict(huge);
    } catch (const Error& e) {
      std::fprintf(stderr, "%s: %s\n", to_string(e.code()), e.what());
      exit_child(e.code() == ErrorCode::kOutOfMemory ? 0 : 1);
    }
    exit_child(2);  // it fitted after all
  };
  EXPECT_EXIT(predict_with_little_room(), ::testing::ExitedWithCode(0),
              "out-of-memory: Classifier::predict: out of memory");
}

TEST_F(ClassifierTest, RefusesADamagedOrMissingModelDir) {
  {
    std::fstream f(dir_ + "/models/model.weights", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(200);
    const char c = char(f.get());
    f.seekp(200);
    f.put(char(c ^ 0x5a));
  }
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Classifier::open(dir_); }, ErrorCode::kCorrupt, "model.weights"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Classifier::open(tmp_ / "nowhere"); }, ErrorCode::kNotFound, ""));
}

TEST_F(ClassifierTest, OpenRecoversAModelDirLeftAsideByACrash) {
  fs::rename(dir_, tmp_ / ".model.old");
  const Classifier clf = Classifier::open(dir_);
  EXPECT_EQ(clf.labels().size(), 3u);
  EXPECT_TRUE(fs::exists(dir_ + "/MANIFEST"));
}

}  // namespace
}  // namespace nasoa
