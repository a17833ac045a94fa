// runtime/adapt/experience_log.h: the experience store, one record per
// fine-tuning run, for the performance predictor to learn from.
//
// File format (UTF-8 text, append-only): one record per line,
//
//   <64 lower-case hex: SHA-256 of JSON> ' ' <JSON, one line> '\n'
//
// where JSON is the compact serialization of the record (see to_json() and
// docs/adaption.md). Every line is verified on its own, so damage costs only
// the lines it touches:
//   - a last line without its '\n' is a torn append (a crash mid-write): it is
//     dropped and reported in `torn_tail`, whatever its content;
//   - a complete line that fails its checksum, does not parse, or carries a
//     newer record version is skipped and reported in `skipped` with its byte
//     offset and 1-based line number; the lines around it are kept.
// Reading never throws for damage, only when the file cannot be read.
//
// Appending writes all of its lines with one write() on an O_APPEND
// descriptor, then fsync()s, under an exclusive flock() on the file: a crash
// leaves at most a torn tail, never a damaged earlier record. Before writing,
// an append cuts a torn tail (truncates the file to just after its last
// '\n'), so that the new records start on a line of their own and stay
// readable. A cut tail is the remnant of a record whose append never
// returned, so nothing that was durably stored is lost.
//
// Ownership and threads: plain values and free functions; nothing is kept
// open between calls. Appends from several threads or processes to one file
// are serialised by the flock(); a reader running beside an append may see
// the append's lines as a torn tail (reported, not an error).
//
// Errors: nasoa::Error. Reading: kNotFound for a missing file, kIo for one
// that cannot be read, kInvalidArgument for a path that is not a regular file
// (a folder, a pipe). Appending: kInvalidArgument naming the field of a
// record that must not be stored (empty run id, invalid regime, ...), kIo
// naming the file and the system error.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "nasoa/regime.h"
#include "nasoa/task.h"

namespace nasoa {
struct ModelInfo;
}

namespace nasoa::runtime {

// The newest record version this build reads, and the one it writes.
inline constexpr int kExperienceRecordVersion = 1;

// What the predictor knows of a zoo model.
struct ModelFeatures {
  std::string name;
  std::string encoding;
  std::int64_t parameters = 0;  // with a head of `head_classes` outputs, see describe_model()
  std::int64_t macs = 0;        // per image at input_size
  int input_size = 0;
  int num_stages = 0;           // stem included: frozen_stages runs over 0..num_stages
  std::optional<double> upstream_accuracy;  // top-1 in [0, 1] on the upstream corpus
  // Seconds per training step measured at the record's batch size and frozen
  // count on the record's device, when known. Descriptive only: the predictor
  // does not use it, since accuracy does not depend on the device's speed.
  std::optional<double> step_seconds;
};

// Parameters and MACs from count_cost(encoding, head_classes, input_size),
// stages from the encoding. Throws Error{kInvalidEncoding} for a bad encoding,
// Error{kInvalidArgument} for head_classes or input_size below 1.
ModelFeatures describe_model(const std::string& name, const std::string& encoding, int input_size,
                             int head_classes, std::optional<double> upstream_accuracy = std::nullopt);
// The same for a bundle's model, from its manifest entry (upstream head).
ModelFeatures describe_model(const ModelInfo& info);

enum class ExperienceSource {
  kShipped,  // gathered offline on source tasks, shipped in the bundle
  kDevice,   // a fine-tune this device ran for a user
};
const char* to_string(ExperienceSource source);  // "shipped" / "device"

struct EpochPoint {
  int epoch = 0;                     // 1-based
  double elapsed_seconds = 0;        // since the run began
  double train_loss = 0;
  double validation_accuracy = -1;   // -1: not evaluated
};

struct ExperienceRecord {
  std::string run_id;  // unique per run; resumable gathering skips ids already stored
  ExperienceSource source = ExperienceSource::kDevice;
  std::string task_id, task_name;
  TaskMeta task;
  std::int64_t train_images = 0;  // images trained on after the split; 0: unknown
  ModelFeatures model;
  Regime regime;                  // regime.model names model.name
  std::optional<double> budget_seconds, budget_joules;
  std::vector<EpochPoint> history;
  double final_accuracy = -1;     // of the weights handed back (of a run cut short: the
                                  // highest of the epochs it is recorded with); -1: never evaluated
  double best_accuracy = -1;      // best validation accuracy seen; the predictor's target
  double total_seconds = 0;       // whole run, evaluation and saving included
  std::optional<double> joules;
  std::string meter = "none";     // energy meter name, "estimate:...", or "none"
  std::string device;             // "cpu", "cuda:0", ...
  std::string stop_reason;        // "completed", "time budget", ...
  // A cheap transferability probe's score for this task and model, when one
  // ran (e.g. a linear probe on frozen features); the predictor treats it as
  // an optional feature.
  std::optional<double> probe_score;
};

// Images trained on: train_images when known, else the task's images less the
// regime's validation fraction (at least 1).
std::int64_t effective_train_images(const ExperienceRecord& record);

// Throws Error{kInvalidArgument} naming the first field that must not be
// stored: empty run id, invalid regime (nasoa::validate), regime.model not
// model.name, classes < 1, accuracies outside [-1, 1], negative seconds.
void validate(const ExperienceRecord& record);

// One record as compact one-line JSON (its "v" is kExperienceRecordVersion),
// and back. parse_experience_record throws Error{kCorrupt} naming `source`
// and the field at fault, Error{kUnsupportedVersion} for a newer record.
std::string to_json(const ExperienceRecord& record);
ExperienceRecord parse_experience_record(std::string_view json, const std::string& source);

// A piece of the file that was not used.
struct LogDamage {
  std::uint64_t offset = 0;  // byte offset of the line's first byte
  std::int64_t line = 0;     // 1-based line number
  std::uint64_t bytes = 0;   // the line's length, its '\n' included when it has one
  std::string reason;
};

struct ExperienceLogContents {
  std::vector<ExperienceRecord> records;     // in file order
  std::vector<std::string> record_sha256;    // each record's line checksum (hex)
  std::vector<LogDamage> skipped;            // complete lines that failed
  std::optional<LogDamage> torn_tail;        // the last line, when it has no '\n'
  std::uint64_t good_end = 0;                // byte offset just after the last '\n'

  // One line per damage found, for logs and reports; empty when none.
  std::vector<std::string> damage_report(const std::string& path) const;
};

ExperienceLogContents parse_experience_log(std::string_view bytes, const std::string& source);
ExperienceLogContents read_experience_log(const std::string& path);

// The line append_experience writes for `record` (validated first).
std::string encode_experience_line(const ExperienceRecord& record);

struct AppendReport {
  std::uint64_t torn_bytes_cut = 0;  // size of the torn tail removed first; 0: none
  std::uint64_t bytes_written = 0;
  std::size_t already_present = 0;  // records left out by append_new_experience
};

// Appends the records (created with mode 0644 if missing; a new file's
// directory is fsynced too). All records are validated before anything is
// written. An empty list writes nothing but still cuts a torn tail.
AppendReport append_experience(const std::string& path, const std::vector<ExperienceRecord>& records);
AppendReport append_experience(const std::string& path, const ExperienceRecord& record);
// The same for one record, unless the file already holds its run id; the
// check is made under the file's lock (already_present then counts it).
AppendReport append_new_experience(const std::string& path, const ExperienceRecord& record);

// Run ids of the valid records, for skipping runs already gathered.
std::set<std::string> completed_run_ids(const ExperienceLogContents& contents);
// The same from a file; a missing file has none.
std::set<std::string> completed_run_ids(const std::string& path);

}  // namespace nasoa::runtime
