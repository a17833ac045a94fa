#include "runtime/adapt/logme.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <string>
#include <vector>

#include "nasoa/error.h"

namespace nasoa::runtime {

double logme_score(const std::vector<float>& features, int n, int d, const std::vector<int>& labels, int classes) {
  if (n < 2 || d < 1 || classes < 2 || features.size() != std::size_t(n) * std::size_t(d) ||
      labels.size() != std::size_t(n))
    throw Error(ErrorCode::kInvalidArgument,
                "logme_score: " + std::to_string(features.size()) + " feature values and " +
                    std::to_string(labels.size()) + " labels for n = " + std::to_string(n) + ", d = " +
                    std::to_string(d) + ", classes = " + std::to_string(classes) +
                    " (need n >= 2, d >= 1, classes >= 2, n x d values, n labels)");
  for (int l : labels)
    if (l < 0 || l >= classes)
      throw Error(ErrorCode::kInvalidArgument, "logme_score: label " + std::to_string(l) + " outside [0, " +
                                                   std::to_string(classes) + ")");
  // Features that overflowed (odd weights, odd inputs) have no evidence to
  // weigh; LAPACK's eigensolver would fail to converge on them.
  if (!std::all_of(features.begin(), features.end(), [](float x) { return std::isfinite(x); }))
    return std::numeric_limits<double>::quiet_NaN();
  torch::NoGradGuard no_grad;
  // Double precision: the evidence subtracts large, nearly equal terms.
  const torch::Tensor f = torch::from_blob(const_cast<float*>(features.data()), {n, d}, torch::kFloat).to(torch::kDouble);
  torch::Tensor s, v;  // F^T F = V diag(s) V^T
  try {
    std::tie(s, v) = torch::linalg_eigh(f.t().mm(f), "L");
  } catch (const c10::Error&) {  // did not converge: no score, as for degenerate features
    return std::numeric_limits<double>::quiet_NaN();
  }
  const torch::Tensor fv = f.mm(v);  // F V, so that F m = (F V)(V^T m)
  // V^T F^T y for every class's indicator y at once, as a d x classes matrix.
  torch::Tensor indicators = torch::zeros({n, classes}, torch::kDouble);
  auto ind = indicators.accessor<double, 2>();
  std::vector<double> counts(std::size_t(classes), 0.0);  // y^T y
  for (int i = 0; i < n; ++i) {
    ind[i][labels[std::size_t(i)]] = 1.0;
    counts[std::size_t(labels[std::size_t(i)])] += 1.0;
  }
  const torch::Tensor xs_t = fv.t().mm(indicators).contiguous();
  const torch::Tensor sigma_t = s.clamp_min(0).contiguous();
  // The fixed-point iteration runs on d numbers per class: plain loops, as
  // a tensor op per line cost more in dispatch than in arithmetic (a task of
  // 300 classes took seconds).
  const double* xs = xs_t.data_ptr<double>();
  const std::vector<double> sigma(sigma_t.data_ptr<double>(), sigma_t.data_ptr<double>() + d);
  const double nd = n, dd = d;
  std::vector<double> x(std::size_t(d), 0.0);
  // For given alpha and beta: gamma, m^T m and the residual |y - F m|^2, with
  // m = beta (alpha + beta s)^-1 x in the eigenbasis.
  struct Terms {
    double gamma = 0, mm = 0, residual = 0, log_denominators = 0;
  };
  auto terms = [&](double alpha, double beta, double yy) {
    Terms t;
    double mx = 0, mms = 0;
    for (std::size_t k = 0; k < sigma.size(); ++k) {
      const double denom = alpha + beta * sigma[k];
      const double m = beta * x[k] / denom;
      t.gamma += beta * sigma[k] / denom;
      t.mm += m * m;
      mx += m * x[k];
      mms += m * m * sigma[k];
      t.log_denominators += std::log(denom);
    }
    t.residual = std::max(1e-12, yy - 2 * mx + mms);
    return t;
  };
  // A class without samples is left out: its all-zero target is fitted
  // perfectly by any features, and would add a large score of nothing.
  double total = 0;
  int scored = 0;
  for (int c = 0; c < classes; ++c) {
    if (counts[std::size_t(c)] == 0) continue;
    ++scored;
    for (int k = 0; k < d; ++k) x[std::size_t(k)] = xs[std::size_t(k) * std::size_t(classes) + std::size_t(c)];
    const double yy = counts[std::size_t(c)];
    double alpha = 1.0, beta = 1.0, evidence = 0;
    // The terms at the current alpha and beta: each iteration's become the
    // next one's starting point.
    Terms now = terms(alpha, beta, yy);
    for (int it = 0; it < 100; ++it) {
      const double alpha_next = now.gamma / std::max(now.mm, 1e-12);
      const double beta_next = (nd - now.gamma) / now.residual;
      const bool converged = std::abs(alpha_next - alpha) / alpha < 1e-5 && std::abs(beta_next - beta) / beta < 1e-5;
      alpha = alpha_next, beta = beta_next;
      now = terms(alpha, beta, yy);
      evidence = nd / 2 * std::log(beta) + dd / 2 * std::log(alpha) - nd / 2 * std::log(2 * M_PI) -
                 beta / 2 * now.residual - alpha / 2 * now.mm - 0.5 * now.log_denominators;
      if (converged) break;
    }
    total += evidence / nd;
  }
  return total / scored;
}

}  // namespace nasoa::runtime
