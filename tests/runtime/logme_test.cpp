// LogME ranks features by how well a linear model on them explains the labels.
#include <gtest/gtest.h>

#include <random>

#include "nasoa/error.h"
#include "runtime/adapt/logme.h"
#include "tests/support/expect_error.h"

namespace nasoa::runtime {
namespace {

// n samples of d features: the first `informative` features hold the class's
// code plus Gaussian noise of `noise`; the rest are noise only.
std::vector<float> make_features(const std::vector<int>& labels, int d, int informative, double noise, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  std::vector<float> f;
  for (int label : labels)
    for (int j = 0; j < d; ++j) {
      const float signal = j < informative ? ((label * 7 + j * 3) % 5 == 0 ? 1.0f : 0.0f) + (j == label ? 1.0f : 0.0f) : 0.0f;
      f.push_back(signal + static_cast<float>(noise) * gauss(rng));
    }
  return f;
}

std::vector<int> make_labels(int n, int classes) {
  std::vector<int> labels;
  for (int i = 0; i < n; ++i) labels.push_back(i % classes);
  return labels;
}

TEST(LogMeTest, InformativeFeaturesScoreAboveNoiseAndDegradeWithNoise) {
  const int n = 300, d = 32, classes = 6;
  const std::vector<int> labels = make_labels(n, classes);
  const double clean = logme_score(make_features(labels, d, 16, 0.1, 1), n, d, labels, classes);
  const double noisy = logme_score(make_features(labels, d, 16, 0.6, 1), n, d, labels, classes);
  const double noise_only = logme_score(make_features(labels, d, 0, 1.0, 1), n, d, labels, classes);
  EXPECT_GT(clean, noisy);
  EXPECT_GT(noisy, noise_only);
}

TEST(LogMeTest, DoesNotDependOnTheOrderOfSamples) {
  const int n = 120, d = 40, classes = 4;  // d close to n: the Gram matrix is nearly singular
  std::vector<int> labels = make_labels(n, classes);
  std::vector<float> f = make_features(labels, d, 8, 0.3, 2);
  const double score = logme_score(f, n, d, labels, classes);
  std::vector<float> g(f.size());
  std::vector<int> l(labels.size());
  for (int i = 0; i < n; ++i) {  // reversed order
    l[std::size_t(i)] = labels[std::size_t(n - 1 - i)];
    for (int j = 0; j < d; ++j) g[std::size_t(i * d + j)] = f[std::size_t((n - 1 - i) * d + j)];
  }
  EXPECT_NEAR(logme_score(g, n, d, l, classes), score, 1e-6 * std::abs(score) + 1e-9);
}

TEST(LogMeTest, WorksWithMoreFeaturesThanSamples) {
  const int n = 40, d = 128, classes = 4;
  const std::vector<int> labels = make_labels(n, classes);
  const double informative = logme_score(make_features(labels, d, 8, 0.1, 3), n, d, labels, classes);
  const double noise = logme_score(make_features(labels, d, 0, 1.0, 3), n, d, labels, classes);
  EXPECT_TRUE(std::isfinite(informative));
  EXPECT_GT(informative, noise);
}

TEST(LogMeTest, RefusesMismatchedInputNamingTheSizes) {
  const std::vector<int> labels = {0, 1, 0};
  EXPECT_TRUE(nasoa::testing::throws_error([&] { logme_score(std::vector<float>(5, 0.f), 3, 2, labels, 2); },
                                           ErrorCode::kInvalidArgument, "n = 3"));
  EXPECT_THROW(logme_score(std::vector<float>(6, 0.f), 3, 2, {0, 1, 2}, 2), Error);
}

}  // namespace
}  // namespace nasoa::runtime
