// runtime/adapt/logme.h: LogME (You et al., ICML 2021), a transferability
// score of a pretrained model for a task, from the model's frozen features.
//
// For each class, the one-vs-rest target is fitted by Bayesian linear
// regression on the features; the evidence (marginal likelihood) is maximised
// over the prior and noise precisions by the fixed-point iteration of the
// paper, and the score is the mean log evidence per sample over the classes
// that have samples.
// Higher is better; scores of different models on one task are comparable.
// One eigendecomposition of the d x d feature Gram matrix serves all classes,
// so a few hundred samples of a few hundred features take milliseconds.
//
// Pure function; safe from any thread. Throws Error{kInvalidArgument} for
// empty input, a feature matrix whose size is not n x d, or a label outside
// [0, classes). Returns NaN (no score) for features that are not all finite,
// for features all alike (the evidence is 0/0), and where the
// eigendecomposition does not converge.
#pragma once

#include <vector>

namespace nasoa::runtime {

// `features`: n rows of d values, row-major. `labels`: n values in [0, classes).
double logme_score(const std::vector<float>& features, int n, int d, const std::vector<int>& labels, int classes);

}  // namespace nasoa::runtime
