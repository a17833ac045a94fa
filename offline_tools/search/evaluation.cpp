#include "offline_tools/search/evaluation.h"

#include <nlohmann/json.hpp>

namespace nasoa::search {

void to_json(nlohmann::json& j, const Evaluation& e) {
  j = nlohmann::json{{"encoding", e.encoding},     {"step_seconds", e.step_seconds}, {"accuracy", e.accuracy},
                     {"parameters", e.parameters}, {"macs", e.macs},                 {"cost_seconds", e.cost_seconds},
                     {"seed", e.seed},             {"rank", e.rank}};
  if (!e.error.empty()) j["error"] = e.error;
}

void from_json(const nlohmann::json& j, Evaluation& e) {
  e.encoding = j.at("encoding").get<std::string>();
  e.step_seconds = j.at("step_seconds").get<double>();
  e.accuracy = j.at("accuracy").get<double>();
  e.parameters = j.at("parameters").get<std::int64_t>();
  e.macs = j.at("macs").get<std::int64_t>();
  e.cost_seconds = j.at("cost_seconds").get<double>();
  e.seed = j.at("seed").get<std::uint64_t>();
  e.rank = j.at("rank").get<int>();
  e.error = j.value("error", std::string());
}

}  // namespace nasoa::search
