// LogME ranks features by how well a linear model on them explains the labels.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
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

// LogME from its definition, with dense matrices and no eigenbasis: for each
// class's indicator y, A = alpha I + beta F^T F, m = beta A^-1 F^T y,
// gamma = d - alpha tr(A^-1), the fixed point alpha = gamma / m^T m,
// beta = (n - gamma) / |y - F m|^2, and the evidence
// n/2 log beta + d/2 log alpha - n/2 log 2 pi - beta/2 |y - F m|^2
// - alpha/2 m^T m - 1/2 log det A, averaged over n and the classes.
double logme_by_definition(const std::vector<float>& features, int n, int d, const std::vector<int>& labels,
                           int classes) {
  const torch::Tensor f =
      torch::from_blob(const_cast<float*>(features.data()), {n, d}, torch::kFloat).to(torch::kDouble);
  const torch::Tensor gram = f.t().mm(f);
  const torch::Tensor eye = torch::eye(d, torch::kDouble);
  auto at = [&](double alpha, double beta, const torch::Tensor& y) {
    const torch::Tensor a = alpha * eye + beta * gram;
    const torch::Tensor a_inv = torch::inverse(a);
    const torch::Tensor m = beta * a_inv.mv(f.t().mv(y));
    const double gamma = d - alpha * a_inv.trace().item<double>();
    const double residual = (y - f.mv(m)).pow(2).sum().item<double>();
    const double mm = m.dot(m).item<double>();
    const double logdet = torch::logdet(a).item<double>();
    return std::array<double, 4>{gamma, mm, residual, logdet};
  };
  double total = 0;
  for (int c = 0; c < classes; ++c) {
    torch::Tensor y = torch::zeros({n}, torch::kDouble);
    for (int i = 0; i < n; ++i) y[i] = labels[std::size_t(i)] == c ? 1.0 : 0.0;
    double alpha = 1, beta = 1, evidence = 0;
    for (int it = 0; it < 100; ++it) {
      const auto [gamma, mm, residual, logdet] = at(alpha, beta, y);
      const double alpha_next = gamma / mm, beta_next = (n - gamma) / residual;
      const bool converged = std::abs(alpha_next - alpha) / alpha < 1e-5 && std::abs(beta_next - beta) / beta < 1e-5;
      alpha = alpha_next, beta = beta_next;
      const auto now = at(alpha, beta, y);
      evidence = n / 2.0 * std::log(beta) + d / 2.0 * std::log(alpha) - n / 2.0 * std::log(2 * M_PI) -
                 beta / 2 * now[2] - alpha / 2 * now[1] - 0.5 * now[3];
      if (converged) break;
    }
    total += evidence / n;
  }
  return total / classes;
}

TEST(LogMeTest, EqualsTheEvidenceComputedFromItsDefinition) {
  for (const auto& [n, d, classes, informative, noise] :
       {std::tuple{200, 24, 5, 12, 0.3}, std::tuple{90, 16, 3, 0, 1.0}, std::tuple{60, 8, 7, 8, 0.05}}) {
    const std::vector<int> labels = make_labels(n, classes);
    const std::vector<float> f = make_features(labels, d, informative, noise, 7);
    const double expected = logme_by_definition(f, n, d, labels, classes);
    EXPECT_NEAR(logme_score(f, n, d, labels, classes), expected, 1e-6 * std::abs(expected))
        << "n " << n << ", d " << d << ", classes " << classes;
  }
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

TEST(LogMeTest, AClassWithoutSamplesIsLeftOut) {
  const int n = 60, d = 16, classes = 3;
  const std::vector<int> labels = make_labels(n, classes);
  const std::vector<float> f = make_features(labels, d, 4, 0.3, 5);
  // The same samples with a fourth class that has none: the score of the
  // three classes, not one raised by a target any features fit.
  EXPECT_NEAR(logme_score(f, n, d, labels, classes + 1), logme_score(f, n, d, labels, classes), 1e-9);
}

// Features that overflowed give no score, not an exception that would fail
// the whole plan (the planner leaves such a model out of the probe).
TEST(LogMeTest, FeaturesThatAreNotFiniteGiveNoScore) {
  const int n = 30, d = 8, classes = 3;
  const std::vector<int> labels = make_labels(n, classes);
  std::vector<float> f = make_features(labels, d, 4, 0.3, 6);
  ASSERT_TRUE(std::isfinite(logme_score(f, n, d, labels, classes)));
  for (const float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::vector<float> g = f;
    g[17] = bad;
    EXPECT_TRUE(std::isnan(logme_score(g, n, d, labels, classes))) << bad;
  }
}

TEST(LogMeTest, RefusesMismatchedInputNamingTheSizes) {
  const std::vector<int> labels = {0, 1, 0};
  EXPECT_TRUE(nasoa::testing::throws_error([&] { logme_score(std::vector<float>(5, 0.f), 3, 2, labels, 2); },
                                           ErrorCode::kInvalidArgument, "n = 3"));
  EXPECT_THROW(logme_score(std::vector<float>(6, 0.f), 3, 2, {0, 1, 2}, 2), Error);
}

}  // namespace
}  // namespace nasoa::runtime
