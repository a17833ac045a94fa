#include "runtime/train/checkpoint.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <filesystem>

#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

constexpr char kMagic[] = "NASOACK1";
constexpr std::size_t kMagicSize = 8, kDigestSize = 32;

}  // namespace

void save_checkpoint(const std::string& path, const TrainingState& s) {
  // JSON has no NaN or infinity (they would be written as null, and the
  // checkpoint would not load): refuse them here, keeping the last good one.
  // A diverged epoch's loss is the exception: it is stored as null and read
  // back as NaN.
  const auto finite = [&](double v, const std::string& field) {
    if (!std::isfinite(v))
      throw Error(ErrorCode::kInternal, path + ": checkpoint field " + field + " is " + std::to_string(v) +
                                            "; not written, the file holds the checkpoint before");
  };
  finite(s.spent_seconds, "spent_seconds");
  finite(s.overhead_seconds, "overhead_seconds");
  finite(s.joules, "joules");
  finite(s.overhead_joules, "overhead_joules");
  finite(s.step_seconds, "measured.step_seconds");
  finite(s.evaluation_seconds, "measured.evaluation_seconds");
  finite(s.best_accuracy, "best_accuracy");
  finite(s.epoch_loss_sum, "epoch_loss_sum");
  finite(s.schedule.anchor_trained, "schedule.anchor_trained");
  finite(s.schedule.anchor_scheduled, "schedule.anchor_scheduled");
  finite(s.schedule.rate, "schedule.rate");
  for (std::size_t i = 0; i < s.history.size(); ++i) {
    const EpochRecord& e = s.history[i];
    const std::string at = "history[" + std::to_string(i) + "].";
    finite(e.train_accuracy, at + "train_accuracy");
    finite(e.validation_accuracy, at + "validation_accuracy");
    finite(e.elapsed_seconds, at + "elapsed_seconds");
    finite(e.joules, at + "joules");
  }
  nlohmann::json j;
  j["fingerprint"] = s.fingerprint;
  j["epoch"] = s.epoch;
  j["step"] = s.step;
  j["spent_seconds"] = s.spent_seconds;
  j["overhead_seconds"] = s.overhead_seconds;
  j["joules"] = s.joules;
  j["overhead_joules"] = s.overhead_joules;
  j["best_accuracy"] = s.best_accuracy;
  j["best_epoch"] = s.best_epoch;
  j["hand_back"] = to_string(s.weights_choice);
  j["epoch_so_far"] = {{"loss_sum", s.epoch_loss_sum}, {"correct", s.epoch_correct}, {"seen", s.epoch_seen}};
  if (s.layout) j["memory_layout"] = to_string(*s.layout);
  if (s.step_seconds > 0 || s.evaluation_seconds > 0)
    j["measured"] = {{"step_seconds", s.step_seconds}, {"evaluation_seconds", s.evaluation_seconds}};
  if (s.schedule.end_epoch > 0)
    j["schedule"] = {{"end_epoch", s.schedule.end_epoch}, {"anchor_trained", s.schedule.anchor_trained},
                     {"anchor_scheduled", s.schedule.anchor_scheduled}, {"rate", s.schedule.rate}};
  j["history"] = nlohmann::json::array();
  for (const EpochRecord& e : s.history)
    j["history"].push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss},
                            {"train_accuracy", e.train_accuracy},
                            {"validation_accuracy", e.validation_accuracy},
                            {"elapsed_seconds", e.elapsed_seconds}, {"joules", e.joules}});
  const std::string json = j.dump();
  const std::uint64_t length = json.size();
  // Streamed to the file and sealed as it goes: built in memory first, a
  // checkpoint held several copies of the weights at once, enough to trip
  // a memory cap that training itself fits in.
  zoo::write_file_atomic(path, [&](const zoo::ByteSink& file) {
    zoo::Sha256 digest;
    const zoo::ByteSink sealed = [&](std::string_view bytes) {
      digest.update(bytes);
      file(bytes);
    };
    sealed(std::string_view(kMagic, kMagicSize));
    sealed(std::string_view(reinterpret_cast<const char*>(&length), sizeof length));
    sealed(json);
    zoo::encode_weights(s.weights, sealed);
    file(digest.finish_bytes());
  });
}

TrainingState load_checkpoint(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error(ErrorCode::kNotFound, path + ": no checkpoint to resume from");
  const std::string bytes = zoo::read_file(path);
  auto corrupt = [&](const std::string& what) {
    throw Error(ErrorCode::kCorrupt, path + ": damaged checkpoint: " + what);
  };
  if (bytes.size() < kMagicSize + 8 + kDigestSize || bytes.compare(0, kMagicSize, kMagic) != 0)
    corrupt("not a nasoa checkpoint");
  const std::string_view body(bytes.data(), bytes.size() - kDigestSize);
  if (zoo::sha256_bytes(body) != bytes.substr(bytes.size() - kDigestSize)) corrupt("checksum mismatch");
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data() + kMagicSize, sizeof length);
  if (length > body.size() - kMagicSize - 8) corrupt("bad JSON length");
  TrainingState s;
  try {
    const nlohmann::json j = nlohmann::json::parse(body.substr(kMagicSize + 8, length));
    s.fingerprint = j.at("fingerprint").get<std::string>();
    const std::int64_t epoch = j.at("epoch").get<std::int64_t>();  // get<int> would wrap a huge one
    if (epoch < 0 || epoch > std::numeric_limits<int>::max()) corrupt("field epoch = " + std::to_string(epoch));
    s.epoch = int(epoch);
    s.step = j.at("step").get<std::int64_t>();
    s.spent_seconds = j.at("spent_seconds").get<double>();
    if (j.contains("overhead_seconds")) s.overhead_seconds = j.at("overhead_seconds").get<double>();
    s.joules = j.at("joules").get<double>();
    if (j.contains("overhead_joules")) s.overhead_joules = j.at("overhead_joules").get<double>();
    s.best_accuracy = j.at("best_accuracy").get<double>();
    // As int64: get<int> would wrap a huge one into range.
    const std::int64_t best_epoch = j.at("best_epoch").get<std::int64_t>();
    if (best_epoch < 0 || best_epoch > std::numeric_limits<int>::max())
      corrupt("field best_epoch = " + std::to_string(best_epoch));
    s.best_epoch = int(best_epoch);
    if (j.contains("hand_back")) {  // absent up to 0.3.3: the highest-validated, the default here
      const std::string rule = j.at("hand_back").get<std::string>();
      const std::optional<WeightsChoice> choice = parse_weights_choice(rule);
      if (!choice)
        corrupt("field hand_back = \"" + rule + "\", expected best-validated, latest-within-noise or last");
      s.weights_choice = *choice;
    }
    if (j.contains("epoch_so_far")) {  // absent from checkpoints of earlier versions
      const nlohmann::json& so_far = j.at("epoch_so_far");
      s.epoch_loss_sum = so_far.at("loss_sum").get<double>();
      s.epoch_correct = so_far.at("correct").get<std::int64_t>();
      s.epoch_seen = so_far.at("seen").get<std::int64_t>();
    }
    if (j.contains("measured")) {  // absent from checkpoints of earlier versions
      const nlohmann::json& measured = j.at("measured");
      s.step_seconds = measured.at("step_seconds").get<double>();
      s.evaluation_seconds = measured.at("evaluation_seconds").get<double>();
    }
    if (j.contains("schedule")) {  // absent until a run is fitted, and in earlier versions
      const nlohmann::json& fit = j.at("schedule");
      const std::int64_t end = fit.at("end_epoch").get<std::int64_t>();
      if (end < 1 || end > std::numeric_limits<int>::max()) corrupt("field schedule.end_epoch = " + std::to_string(end));
      s.schedule.end_epoch = int(end);
      s.schedule.anchor_trained = fit.at("anchor_trained").get<double>();
      s.schedule.anchor_scheduled = fit.at("anchor_scheduled").get<double>();
      s.schedule.rate = fit.at("rate").get<double>();
    }
    if (j.contains("memory_layout")) {
      const std::string layout = j.at("memory_layout").get<std::string>();
      s.layout = parse_memory_layout(layout);
      if (!s.layout) corrupt("unknown memory_layout \"" + layout + "\"");
    }
    for (const auto& e : j.at("history"))
      s.history.push_back({e.at("epoch").get<int>(),
                           e.at("train_loss").is_null() ? std::nan("") : e.at("train_loss").get<double>(),
                           e.at("train_accuracy").get<double>(), e.at("validation_accuracy").get<double>(),
                           e.at("elapsed_seconds").get<double>(), e.at("joules").get<double>()});
  } catch (const nlohmann::json::exception& e) {
    corrupt(std::string("bad JSON: ") + e.what());
  }
  // The checksum only shows the file is whole; these say it makes sense (a
  // negative time spent would extend the budget's deadline, an accuracy of 5
  // would go into the model's manifest).
  const auto in_range = [&](bool ok, const std::string& field, double value, const char* expected) {
    if (!ok) corrupt("field " + field + " = " + zoo::shown_number(value) + ", expected " + expected);
  };
  in_range(s.epoch >= 0, "epoch", s.epoch, ">= 0");
  in_range(s.step >= 0, "step", double(s.step), ">= 0");
  in_range(s.spent_seconds >= 0 && std::isfinite(s.spent_seconds), "spent_seconds", s.spent_seconds, ">= 0");
  in_range(s.overhead_seconds >= 0 && s.overhead_seconds <= s.spent_seconds, "overhead_seconds", s.overhead_seconds,
           "in [0, spent_seconds]");
  in_range(s.joules >= 0 && std::isfinite(s.joules), "joules", s.joules, ">= 0");
  in_range(s.overhead_joules >= 0 && s.overhead_joules <= s.joules, "overhead_joules", s.overhead_joules,
           "in [0, joules]");
  in_range(s.step_seconds >= 0 && std::isfinite(s.step_seconds), "measured.step_seconds", s.step_seconds, ">= 0");
  in_range(s.evaluation_seconds >= 0 && std::isfinite(s.evaluation_seconds), "measured.evaluation_seconds",
           s.evaluation_seconds, ">= 0");
  in_range(s.best_accuracy == -1 || (s.best_accuracy >= 0 && s.best_accuracy <= 1), "best_accuracy",
           s.best_accuracy, "-1 (none yet) or in [0, 1]");
  in_range(s.best_epoch >= 0 && std::int64_t(s.best_epoch) <= std::int64_t(s.epoch) + 1, "best_epoch", s.best_epoch,
           "in [0, epoch + 1]");
  in_range(s.epoch_seen >= 0, "epoch_so_far.seen", double(s.epoch_seen), ">= 0");
  in_range(s.epoch_correct >= 0 && s.epoch_correct <= s.epoch_seen, "epoch_so_far.correct", double(s.epoch_correct),
           "in [0, epoch_so_far.seen]");
  in_range(s.epoch_loss_sum >= 0 && std::isfinite(s.epoch_loss_sum), "epoch_so_far.loss_sum", s.epoch_loss_sum,
           ">= 0");
  // (An unfitted schedule's defaults pass.)
  in_range(s.schedule.anchor_trained >= 0 && std::isfinite(s.schedule.anchor_trained), "schedule.anchor_trained",
           s.schedule.anchor_trained, "a finite value >= 0");
  in_range(s.schedule.anchor_scheduled >= 0 && std::isfinite(s.schedule.anchor_scheduled),
           "schedule.anchor_scheduled", s.schedule.anchor_scheduled, "a finite value >= 0");
  in_range(s.schedule.rate > 0 && std::isfinite(s.schedule.rate), "schedule.rate", s.schedule.rate,
           "a finite value > 0");
  // A fit is made at an epoch end, before the epoch it ends after, and its
  // map never runs behind the epochs trained (schedule_fit.h); the regime's
  // epochs, which bound the rest, are the fine-tuner's to check.
  if (s.schedule.end_epoch > 0) {
    in_range(s.schedule.anchor_trained <= double(s.epoch), "schedule.anchor_trained", s.schedule.anchor_trained,
             "at most the epochs trained");
    in_range(s.schedule.anchor_trained < double(s.schedule.end_epoch), "schedule.anchor_trained",
             s.schedule.anchor_trained, "below schedule.end_epoch");
    in_range(s.schedule.anchor_scheduled >= s.schedule.anchor_trained, "schedule.anchor_scheduled",
             s.schedule.anchor_scheduled, "at least schedule.anchor_trained");
  }
  for (std::size_t i = 0; i < s.history.size(); ++i) {
    const EpochRecord& e = s.history[i];
    const std::string at = "history[" + std::to_string(i) + "].";
    in_range(e.validation_accuracy == -1 || (e.validation_accuracy >= 0 && e.validation_accuracy <= 1),
             at + "validation_accuracy", e.validation_accuracy, "-1 or in [0, 1]");
    in_range(e.train_accuracy >= 0 && e.train_accuracy <= 1, at + "train_accuracy", e.train_accuracy, "in [0, 1]");
    in_range(e.elapsed_seconds >= 0 && std::isfinite(e.elapsed_seconds), at + "elapsed_seconds", e.elapsed_seconds,
             ">= 0");
    in_range(e.joules >= 0 && std::isfinite(e.joules), at + "joules", e.joules, ">= 0");
  }
  s.weights = zoo::decode_weights(body.substr(kMagicSize + 8 + length), path);
  return s;
}

namespace {
std::string clock_path(const std::string& checkpoint_path) { return checkpoint_path + ".clock"; }
}  // namespace

void save_checkpoint_clock(const std::string& checkpoint_path, const std::string& fingerprint,
                           const CheckpointClock& clock) {
  if (!std::isfinite(clock.spent_seconds) || !std::isfinite(clock.joules)) return;  // JSON has no form for them
  const nlohmann::json j{{"fingerprint", fingerprint}, {"spent_seconds", clock.spent_seconds}, {"joules", clock.joules}};
  zoo::replace_file_lightly(clock_path(checkpoint_path), j.dump());
}

std::optional<CheckpointClock> load_checkpoint_clock(const std::string& checkpoint_path,
                                                     const std::string& fingerprint) {
  try {
    const nlohmann::json j = nlohmann::json::parse(zoo::read_file(clock_path(checkpoint_path)));
    if (j.at("fingerprint").get<std::string>() != fingerprint) return std::nullopt;
    CheckpointClock c{j.at("spent_seconds").get<double>(), j.at("joules").get<double>()};
    if (!(c.spent_seconds >= 0) || !(c.joules >= 0) || !std::isfinite(c.spent_seconds) || !std::isfinite(c.joules))
      return std::nullopt;
    return c;
  } catch (const std::exception&) {  // absent or damaged: the checkpoint's own figures stand
    return std::nullopt;
  }
}

CheckpointClock spent_before_resume(const std::string& checkpoint_path, const TrainingState& state,
                                    const std::vector<std::string>& fingerprints) {
  CheckpointClock spent{state.spent_seconds, state.joules};
  for (const std::string& fingerprint : fingerprints)
    if (const auto clock = load_checkpoint_clock(checkpoint_path, fingerprint)) {
      spent.spent_seconds = std::max(spent.spent_seconds, clock->spent_seconds);
      spent.joules = std::max(spent.joules, clock->joules);
    }
  return spent;
}

void remove_checkpoint_clock(const std::string& checkpoint_path) {
  std::error_code ignored;
  const std::filesystem::path clock(clock_path(checkpoint_path));
  std::filesystem::remove(clock, ignored);
  // What a heartbeat killed mid-write left (replace_file_lightly never looks).
  zoo::remove_stale_temporaries(clock.parent_path().string(), clock.filename().string() + ".tmp.");
}

void remove_checkpoint(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove(path, ignored);
  remove_checkpoint_clock(path);
}

}  // namespace nasoa::runtime
