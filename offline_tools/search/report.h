// offline_tools/search/report.h: the search's outputs for people: CSV tables
// and the accuracy-against-step-time plot with the baselines on the same axes.
#pragma once

#include <string>
#include <vector>

#include "offline_tools/search/evaluation.h"

namespace nasoa::search {

struct NamedEvaluation {
  std::string name;  // "resnet18-like", or a zoo model name
  Evaluation evaluation;
};

// Columns: name, encoding, step_ms, accuracy, parameters, macs, cost_s, seed,
// rank and, with `error_column`, error: why the evaluation failed, empty for
// a success (a failed row leaves accuracy empty, and step_ms too when no step
// was timed). The error is the one quoted column (its text may hold commas),
// on one line. Written atomically. Throws Error{kIo}.
void write_csv(const std::string& path, const std::vector<NamedEvaluation>& rows, bool error_column = false);

// PNG (OpenCV): accuracy (%) against training step time (ms, log scale);
// every evaluated candidate in grey, the front as a blue line, `selected` ringed
// in green and named, baselines as red squares with their names.
void write_front_plot(const std::string& path, const std::vector<Evaluation>& evaluated,
                      const std::vector<Evaluation>& front, const std::vector<NamedEvaluation>& selected,
                      const std::vector<NamedEvaluation>& baselines, const std::string& title);

}  // namespace nasoa::search
