#include "runtime/adapt/logme.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

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
  torch::NoGradGuard no_grad;
  // Double precision: the evidence subtracts large, nearly equal terms.
  const torch::Tensor f = torch::from_blob(const_cast<float*>(features.data()), {n, d}, torch::kFloat).to(torch::kDouble);
  const auto [s, v] = torch::linalg_eigh(f.t().mm(f), "L");  // F^T F = V diag(s) V^T
  const torch::Tensor sigma = s.clamp_min(0);
  const torch::Tensor fv = f.mm(v);  // F V, so that F m = (F V)(V^T m)
  const double nd = n, dd = d;
  double total = 0;
  for (int c = 0; c < classes; ++c) {
    torch::Tensor y = torch::zeros({n}, torch::kDouble);
    for (int i = 0; i < n; ++i)
      if (labels[std::size_t(i)] == c) y[i] = 1.0;
    const torch::Tensor x = fv.t().mv(y);  // V^T F^T y
    const double yy = y.dot(y).item<double>();
    double alpha = 1.0, beta = 1.0, evidence = 0;
    for (int it = 0; it < 100; ++it) {
      const torch::Tensor denom = alpha + beta * sigma;
      const double gamma = (beta * sigma / denom).sum().item<double>();
      const torch::Tensor mv = beta * x / denom;  // V^T m
      const double mm = mv.dot(mv).item<double>();
      const double residual = std::max(1e-12, yy - 2 * mv.dot(x).item<double>() + (mv * mv * sigma).sum().item<double>());
      const double alpha_next = gamma / std::max(mm, 1e-12);
      const double beta_next = (nd - gamma) / residual;
      const bool converged = std::abs(alpha_next - alpha) / alpha < 1e-5 && std::abs(beta_next - beta) / beta < 1e-5;
      alpha = alpha_next, beta = beta_next;
      const torch::Tensor denom_now = alpha + beta * sigma;
      const torch::Tensor m_now = beta * x / denom_now;
      const double mm_now = m_now.dot(m_now).item<double>();
      const double res_now =
          std::max(1e-12, yy - 2 * m_now.dot(x).item<double>() + (m_now * m_now * sigma).sum().item<double>());
      evidence = nd / 2 * std::log(beta) + dd / 2 * std::log(alpha) - nd / 2 * std::log(2 * M_PI) -
                 beta / 2 * res_now - alpha / 2 * mm_now - 0.5 * torch::log(denom_now).sum().item<double>();
      if (converged) break;
    }
    total += evidence / nd;
  }
  return total / classes;
}

}  // namespace nasoa::runtime
