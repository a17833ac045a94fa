// offline_tools/search/evaluation.h: one evaluated candidate and the interface
// that evaluates them.
//
// The search does not know how a candidate is evaluated: in production a
// ProxyEvaluator times a training step and trains briefly on the upstream
// corpus (in this process, or spread over MPI ranks); in tests a formula
// stands in. Evaluations are plain values; they travel as JSON between ranks
// and into the search state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace nasoa::search {

struct Evaluation {
  std::string encoding;
  double step_seconds = 0;     // one training step at the search's batch and input size
  double accuracy = 0;         // top-1 on the held-out part after the proxy training
  std::int64_t parameters = 0;
  std::int64_t macs = 0;       // per image at the search's input size
  double cost_seconds = 0;     // wall time the evaluation took
  std::uint64_t seed = 0;      // of the proxy training
  int rank = 0;                // MPI rank that evaluated it (0 on one process)
  std::string error;           // non-empty: the evaluation failed and the candidate is left out

  bool ok() const { return error.empty(); }
};

void to_json(nlohmann::json& j, const Evaluation& e);
void from_json(const nlohmann::json& j, Evaluation& e);

class Evaluator {
 public:
  virtual ~Evaluator() = default;
  // Evaluates every encoding (each a valid encoding string) and returns the
  // results in the same order. A candidate that cannot be evaluated comes
  // back with `error` set rather than throwing; a throw means the whole
  // search must stop (the state saved so far stays valid).
  virtual std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) = 0;
};

}  // namespace nasoa::search
