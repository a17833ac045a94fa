// nasoa-gather: fine-tuning experience for the performance predictor.
//
//   nasoa-gather --zoo BUNDLE --tasks DIR --log FILE [--lrs 0.003,0.01,0.03,0.1]
//                [--frozen 0,1,2] [--epochs 1,3,8] [--models a,b] [--batch 32] [--plans-per-pair N]
//                [--probe-per-class 20] [--seed 1] [--hours H] [--threads N] [--shard K/N]
//   nasoa-gather --ship LOG --zoo BUNDLE
//
// Fine-tunes every model of the bundle on every task (each subfolder of DIR,
// a folder of class subfolders) under plans from a grid of learning rate x
// frozen stages x epochs, and appends one record per run to the experience
// log (runtime/adapt/experience_log.h): the task's meta-features, the model's
// features, the regime, the validation accuracy after every epoch, the time,
// and the LogME score of the model's frozen features on a sample of the task
// (the probe feature; its time is recorded too). With --plans-per-pair N each
// (task, model) pair gets N plans of the grid, a draw seeded by --seed and
// the pair's names, instead of all. A loss that diverges before the first
// evaluation is recorded as such, and so is a run that fails in LibTorch or
// runs out of memory (the fit leaves both out; run_outcome.h). A task whose
// split holds out no image (every class has one) is skipped, saying so, as
// it cannot evaluate a run; the files of a task that cannot be read are
// listed (the first 10 of each task).
// Runs go round by round (plan k of every pair before plan k+1 of any), so
// that a gathering cut short still covers every pair.
//
// Resumable: a run whose id is in the log already is skipped. Run ids name
// the task, the model, the plan, --batch, --seed and, unless it is the
// default 20, --probe-per-class; a log of runs with another --probe-per-class
// is refused, as their LogME scores would not compare. The log is
// append-only with a checksum per record, so a crash loses at most the run
// in flight. A run that ran out of memory is recorded as failed all the
// same; --retry-out-of-memory makes each such run again (memory depends on
// what else the host ran at the time), as a record of its own whose id ends
// in "|retry=N" (N: its failed records before), until one gets through.
// --hours stops cleanly after that much wall time. --shard K/N
// takes only the tasks whose index (in name order) is K modulo N, so that N
// processes can gather into one log side by side (appends are serialised by
// the log's lock; run ids and each pair's draw of plans are the same as in
// a single process). Hidden folders of --tasks are skipped.
//
// --ship fits the performance predictor on the log's records, in run-id
// order (so the result does not depend on how shards interleaved), and
// writes both (the predictor and those records) into the bundle, which is
// rewritten crash-safely with its models unchanged
// (zoo::set_bundle_experience).
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr),
// 2 bad arguments.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <unistd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <string_view>
#include <utility>
#include <thread>
#include <tuple>

#include "nasoa/error.h"
#include "nasoa/version.h"
#include "offline_tools/nasoa_gather/run_outcome.h"
#include "runtime/adapt/experience_log.h"
#include "runtime/adapt/predictor.h"
#include "runtime/adapt/probe.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/train/fine_tuner.h"
#include "samples/common/command_line.h"
#include "samples/common/text_file.h"
#include "samples/common/output_path.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/bundle/bundle.h"
#include "zoo/system/usable_cores.h"
#include "zoo/text/printable.h"

namespace {

namespace fs = std::filesystem;
namespace rt = nasoa::runtime;
using nasoa::Error;
using nasoa::ErrorCode;
using Clock = std::chrono::steady_clock;

// Run ids name --probe-per-class only when it differs from this, so that the
// ids of logs gathered before they named it (all with this default, unless
// given otherwise) stay the same.
constexpr int kDefaultProbePerClass = 20;

struct Args {
  std::string zoo, tasks, log, ship;
  std::vector<double> lrs{0.003, 0.01, 0.03, 0.1};
  std::vector<int> frozen{0, 1, 2};
  std::vector<int> epochs{1, 3, 8};
  std::vector<std::string> models;  // empty: all of the bundle's
  int batch = 32, plans_per_pair = 0, probe_per_class = kDefaultProbePerClass, threads = 0;
  std::string shard;  // "K/N", or empty for all tasks
  std::uint64_t seed = 1;
  double hours = 0;
  bool retry_out_of_memory = false;
};

struct Plan {
  double lr;
  int frozen, epochs;
};

struct Task {
  std::string name;
  std::unique_ptr<rt::ImageStore> store;
  rt::Split split;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string plan_text(const Plan& p) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "lr %g, frozen %d, epochs %d", p.lr, p.frozen, p.epochs);
  return buf;
}

// 64 bits of the SHA-256 of `text`: a draw or a lock that follows a task's
// (and model's) name, whatever else is in the folder or in this shard.
std::uint64_t name_hash(const std::string& text) {
  const std::string digest = nasoa::zoo::sha256_bytes(text);
  std::uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | static_cast<unsigned char>(digest[std::size_t(i)]);
  return h;
}

std::string run_id(const std::string& task, const std::string& model, const Plan& p, int batch, std::uint64_t seed,
                   int probe_per_class) {
  char buf[192];
  std::snprintf(buf, sizeof buf, "|lr=%g|frozen=%d|epochs=%d|batch=%d|seed=%llu", p.lr, p.frozen, p.epochs, batch,
                static_cast<unsigned long long>(seed));
  std::string id = task + "|" + model + buf;
  if (probe_per_class != kDefaultProbePerClass) id += "|probe=" + std::to_string(probe_per_class);
  return id;
}

// Where a run id ends in `key` and a number ("|retry=2"): the number and
// where the ending starts. Nothing for any other ending (a task folder
// named so, say, is part of the id).
std::optional<std::pair<int, std::size_t>> numbered_ending(const std::string& id, const char* key) {
  const std::size_t at = id.rfind(key);
  if (at == std::string::npos) return std::nullopt;
  const std::string_view digits = std::string_view(id).substr(at + std::strlen(key));
  int value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return std::pair{value, at};
}

// A run id without its "|retry=N" ending (a run made again after it ran out
// of memory): the id of the plan's first try.
std::string first_try_id(const std::string& id) {
  const auto retry = numbered_ending(id, "|retry=");
  return retry ? id.substr(0, retry->second) : id;
}

// The --probe-per-class a run id names: its "|probe=N" ending (before any
// "|retry=N"), or the default for an id without one.
int probe_per_class_of(const std::string& id) {
  const auto probe = numbered_ending(first_try_id(id), "|probe=");
  return probe ? probe->first : kDefaultProbePerClass;
}

// Run ids hold --probe-per-class, but one log of runs whose LogME scores
// came from samples of different sizes would fit the predictor on scores
// that do not compare: a gathering into a log of other runs is refused.
void check_log_probe(const std::vector<rt::ExperienceRecord>& records, int probe_per_class, const std::string& log) {
  for (const rt::ExperienceRecord& r : records) {
    const int made_with = probe_per_class_of(r.run_id);
    if (made_with == probe_per_class) continue;
    throw Error(ErrorCode::kInvalidArgument,
                log + ": holds runs gathered with --probe-per-class " + std::to_string(made_with) +
                    (made_with == kDefaultProbePerClass ? " (the default: their run ids name none)" : "") +
                    ", this gathering has --probe-per-class " + std::to_string(probe_per_class) +
                    "; their LogME scores would not compare: give --probe-per-class " + std::to_string(made_with) +
                    " or gather into another --log");
  }
}

// Run ids name a task, a model name and a plan, not the weights: a log
// gathered with another bundle whose model of that name is another network,
// or the same network pretrained again (its upstream accuracy tells them
// apart), would have its runs taken for this bundle's.
void check_log_models(const std::vector<rt::ExperienceRecord>& records, const nasoa::zoo::Manifest& manifest,
                      const std::string& log, const std::string& zoo) {
  for (const rt::ExperienceRecord& r : records)
    for (const nasoa::ModelInfo& m : manifest.models) {
      if (r.model.name != m.name) continue;
      if (r.model.encoding != m.encoding)
        throw Error(ErrorCode::kInvalidArgument,
                    log + ": holds runs of a model '" + m.name + "' with encoding " + r.model.encoding + "; in " +
                        zoo + " '" + m.name + "' is " + m.encoding + ": gather into another --log");
      if (r.model.upstream_accuracy != m.upstream_accuracy) {
        const auto shown = [](const std::optional<double>& a) {
          return a ? "upstream accuracy " + nasoa::zoo::shown_number(*a) : std::string("no upstream accuracy");
        };
        throw Error(ErrorCode::kInvalidArgument,
                    log + ": holds runs of model '" + m.name + "' at " + shown(r.model.upstream_accuracy) + "; in " +
                        zoo + " it has " + shown(m.upstream_accuracy) +
                        ", so its weights were trained again since: gather into another --log");
      }
    }
}

int ship(const Args& a, const std::string& command_line) {
  rt::ExperienceLogContents contents = rt::read_experience_log(a.ship);
  for (const std::string& line : contents.damage_report(a.ship)) std::cerr << "nasoa-gather: " << line << "\n";
  if (contents.records.empty()) throw Error(ErrorCode::kInvalidArgument, a.ship + ": no usable experience records");
  check_log_models(contents.records, nasoa::zoo::open_bundle(a.zoo), a.ship, a.zoo);
  // In run-id order, and within one id by the record's own text, so that
  // what is shipped never depends on the order of the log's lines.
  std::vector<std::pair<std::string, rt::ExperienceRecord>> lines;
  for (rt::ExperienceRecord& r : contents.records) lines.emplace_back(rt::encode_experience_line(r), std::move(r));
  std::sort(lines.begin(), lines.end(), [](const auto& x, const auto& y) {
    return std::tie(x.second.run_id, x.first) < std::tie(y.second.run_id, y.first);
  });
  // A run id names one run: a repeat (a log appended to twice, or two logs
  // of the same grid concatenated) would weigh that run double in the fit.
  // One record per id is kept, the same whatever the line order.
  contents.records.clear();
  std::size_t repeats = 0, differing = 0;
  for (std::size_t i = 0, kept = 0; i < lines.size(); ++i) {
    if (i > 0 && lines[i].second.run_id == contents.records.back().run_id) {
      ++repeats;
      if (lines[i].first != lines[kept].first) ++differing;
      continue;
    }
    kept = i;
    contents.records.push_back(std::move(lines[i].second));
  }
  if (repeats > 0)
    std::cerr << "nasoa-gather: " << a.ship << ": dropped " << repeats
              << " record(s) whose run id repeats another (" << differing
              << " of them with other results; one record per run id is kept)\n";
  const auto t0 = Clock::now();
  rt::Predictor predictor = rt::Predictor::fit(contents.records, {});
  const double fit_seconds = seconds_since(t0);
  // Only the verified, complete lines go into the bundle.
  std::string log;
  for (const rt::ExperienceRecord& r : contents.records) log += rt::encode_experience_line(r);
  // Marked as fitted on exactly this file, so that devices start from it.
  predictor.set_fitted_on(rt::PredictorState::shipped_fingerprint(nasoa::zoo::sha256_hex(log), {}));
  const nasoa::Provenance provenance{std::string("nasoa-gather ") + NASOA_VERSION_STRING, command_line,
                                     rt::PredictorOptions{}.seed,
                                     nasoa::zoo::utc_timestamp(), "docs/corpora.md#source-tasks"};
  const nasoa::zoo::Manifest m = nasoa::zoo::set_bundle_experience(a.zoo, predictor.to_json(), log, provenance);
  std::cout << "shipped:    " << contents.records.size() << " experience records and a predictor fitted in "
            << fit_seconds << " s into " << a.zoo << " ('" << m.name << "')\n";
  return 0;
}

// Refuses, before any training, a grid that would fail halfway or write the
// same run twice, and a --log that cannot be one (a folder, a pipe, a path
// whose folder is missing).
void check_grid_and_log_path(Args& a) {
  const auto distinct = [](auto& values) {
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
  };
  distinct(a.lrs);
  distinct(a.frozen);
  distinct(a.epochs);
  std::set<std::string> lr_ids;
  for (double lr : a.lrs) {
    if (!(lr > 0) || !std::isfinite(lr))
      throw nasoa_samples::BadArguments("--lrs: " + std::to_string(lr) + " is not a learning rate > 0");
    char text[32];
    std::snprintf(text, sizeof text, "%g", lr);  // as run ids write it
    if (!lr_ids.insert(text).second)
      throw nasoa_samples::BadArguments(std::string("--lrs: two learning rates read as ") + text +
                                        " in run ids; give rates that differ in 6 significant digits");
  }
  for (int f : a.frozen)
    if (f < 0) throw nasoa_samples::BadArguments("--frozen: " + std::to_string(f) + " is negative");
  for (int e : a.epochs)
    if (e < 1) throw nasoa_samples::BadArguments("--epochs: " + std::to_string(e) + " is below 1");
  if (a.lrs.empty() || a.frozen.empty() || a.epochs.empty())
    throw nasoa_samples::BadArguments("--lrs, --frozen and --epochs each need a value");
  std::error_code ec;
  // Inside the bundle the log would make it fail verification (a file it
  // does not list, or one it lists, changed).
  if (!a.zoo.empty() && nasoa_samples::is_within(a.log, a.zoo))
    throw nasoa_samples::BadArguments(a.log + ": is inside the zoo bundle " + a.zoo +
                                      "; keep the log elsewhere (--ship copies it into the bundle)");
  // Inside the tasks it would be read as task data (and written there).
  if (!a.tasks.empty() && nasoa_samples::is_within(a.log, a.tasks))
    throw nasoa_samples::BadArguments(a.log + ": is inside --tasks " + a.tasks +
                                      ", where it would be read as an image of a task; keep the log elsewhere");
  if (!a.tasks.empty()) {
    if (!fs::exists(a.tasks, ec)) throw nasoa_samples::BadArguments("--tasks " + a.tasks + ": no such folder");
    if (!fs::is_directory(a.tasks, ec))
      throw nasoa_samples::BadArguments("--tasks " + a.tasks + ": is a file, not a folder of task folders");
  }
  if (fs::exists(a.log, ec)) {
    if (!fs::is_regular_file(a.log, ec))
      throw nasoa_samples::BadArguments(a.log + ": not a regular file; refusing to append to it");
  } else if (!fs::is_directory(fs::absolute(a.log).parent_path(), ec)) {
    throw nasoa_samples::BadArguments(a.log + ": its folder does not exist");
  }
}

// The log as this process finds it once its tasks are claimed: the runs
// already made, the damage reported. A file with lines but no record is not
// an experience log: appending to it would damage it (a mistyped path).
rt::ExperienceLogContents read_log_to_append(const std::string& log) {
  const rt::ExperienceLogContents contents = rt::read_experience_log(log);
  if (contents.records.empty() && !contents.skipped.empty())
    throw Error(ErrorCode::kInvalidArgument,
                log + ": not an experience log (" + std::to_string(contents.skipped.size()) +
                    " lines, none a record); refusing to append to it");
  // A last line without its newline is cut before appending. That is right
  // for a record a crash cut short (it starts with its checksum's hex
  // digits), not for a file of other text.
  if (contents.records.empty() && contents.torn_tail) {
    const std::string bytes = nasoa::zoo::read_file(log);
    const std::string_view tail = std::string_view(bytes).substr(contents.torn_tail->offset);
    const std::size_t hex = std::min<std::size_t>(tail.size(), 64);
    const bool record_start = std::all_of(tail.begin(), tail.begin() + long(hex), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
    }) && (tail.size() <= 64 || tail[64] == ' ');
    if (!record_start)
      throw Error(ErrorCode::kInvalidArgument,
                  log + ": not an experience log (its text is not a record); refusing to append to it");
  }
  for (const std::string& line : contents.damage_report(log))
    std::cerr << "gathering: " << line << " (that run is made again)\n";
  return contents;
}

// Claims this process's tasks in the log: an open-file-description lock on
// one byte per task (at an offset its name gives), far past the log's end,
// so that two gathers running a task into one log at once (both without
// --shard, overlapping shards, or task lists that differ) cannot both write
// its runs. Returns the descriptor, which holds the locks until the process
// ends.
int claim_tasks(const std::string& log, const std::vector<std::string>& names) {
  int fd = ::open(log.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  const bool created = fd >= 0;
  if (!created && errno == EEXIST) fd = ::open(log.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorCode::kIo, log + ": cannot open: " + std::strerror(errno));
  for (std::size_t i = 0; i < names.size(); ++i) {
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    lock.l_start = (off_t(1) << 62) + off_t(name_hash(names[i]) >> 24);
    lock.l_len = 1;
    if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
      const int error = errno;
      ::close(fd);
      if (error == EAGAIN || error == EACCES)
        throw Error(ErrorCode::kInvalidArgument, log + ": another nasoa-gather is gathering task '" + names[i] +
                                                     "' into it; give each process its own --shard K/N");
      throw Error(ErrorCode::kIo, log + ": cannot lock: " + std::strerror(error));
    }
  }
  // A new log's folder entry is made durable (once the tasks are claimed,
  // so that a gather started meanwhile finds them taken), as the log's own
  // appends would for a file they created.
  if (created) nasoa::zoo::sync_directory(fs::absolute(log).parent_path().string());
  return fd;
}

// "K/N" with 0 <= K < N: digits only, no sign, no wrap-around.
std::pair<std::size_t, std::size_t> parse_shard(const std::string& text) {
  const auto bad = [&] {
    return nasoa_samples::BadArguments("--shard '" + text + "': expected K/N with 0 <= K < N");
  };
  const std::size_t slash = text.find('/');
  if (slash == std::string::npos) throw bad();
  const auto number = [&](std::string_view digits) {
    std::size_t v = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size()) throw bad();
    return v;
  };
  const std::size_t k = number(std::string_view(text).substr(0, slash));
  const std::size_t n = number(std::string_view(text).substr(slash + 1));
  if (n == 0 || k >= n) throw bad();
  return {k, n};
}

// The bundle's models named by --models, in the bundle's order; all of them
// when none is named.
std::vector<nasoa::ModelInfo> selected_models(const nasoa::zoo::Manifest& manifest,
                                              const std::vector<std::string>& names, const std::string& zoo) {
  if (names.empty()) return manifest.models;
  std::string known;
  for (const nasoa::ModelInfo& m : manifest.models) known += (known.empty() ? "" : ", ") + m.name;
  for (const std::string& name : names)
    if (std::none_of(manifest.models.begin(), manifest.models.end(),
                     [&](const nasoa::ModelInfo& m) { return m.name == name; }))
      throw nasoa_samples::BadArguments("--models: " + zoo + " has no model '" + name + "' (it has " + known + ")");
  std::vector<nasoa::ModelInfo> out;
  for (const nasoa::ModelInfo& m : manifest.models)
    if (std::find(names.begin(), names.end(), m.name) != names.end()) out.push_back(m);
  return out;
}

int run(Args a) {
  check_grid_and_log_path(a);
  const auto started = Clock::now();
  const int cores = nasoa::zoo::usable_cores();
  const int workers = std::max(1, cores / 4);
  torch::set_num_threads(a.threads > 0 ? a.threads : std::max(1, cores - workers));

  const nasoa::zoo::Manifest manifest = nasoa::zoo::open_bundle(a.zoo);
  if (manifest.models.empty()) throw Error(ErrorCode::kInvalidArgument, a.zoo + ": the bundle has no models");
  const int side = manifest.models.front().input_size;
  for (const nasoa::ModelInfo& m : manifest.models)
    if (m.input_size != side)
      throw Error(ErrorCode::kInvalidArgument, a.zoo + ": models of different input sizes (" + m.name + ": " +
                                                   std::to_string(m.input_size) + ", not " + std::to_string(side) + ")");
  const std::vector<nasoa::ModelInfo> models = selected_models(manifest, a.models, a.zoo);

  std::vector<Task> tasks;
  std::vector<std::string> names;
  std::size_t hidden = 0;
  for (const auto& e : fs::directory_iterator(a.tasks)) {
    if (!e.is_directory()) continue;
    const std::string name = e.path().filename().string();
    // A hidden folder is no task: a killed nasoa-make-task's ".NAME.partial"
    // (half a task), ".git", an editor's.
    if (name.front() == '.') {
      ++hidden;
      continue;
    }
    names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  if (hidden > 0) std::cerr << "gathering: " << hidden << " hidden folder(s) of " << a.tasks << " skipped\n";
  if (names.empty()) throw Error(ErrorCode::kNotFound, a.tasks + ": no task folders in it");
  if (!a.shard.empty()) {
    const auto [k, n] = parse_shard(a.shard);
    std::vector<std::string> mine;
    for (std::size_t i = 0; i < names.size(); ++i)
      if (i % n == k) mine.push_back(names[i]);
    if (mine.empty()) throw Error(ErrorCode::kInvalidArgument, "--shard " + a.shard + ": no task of " + a.tasks + " falls in it");
    names = std::move(mine);
  }
  const int claims = claim_tasks(a.log, names);  // held until the process ends
  (void)claims;
  const rt::ExperienceLogContents existing = read_log_to_append(a.log);  // once claimed
  check_log_models(existing.records, manifest, a.log, a.zoo);
  check_log_probe(existing.records, a.probe_per_class, a.log);
  const std::set<std::string> done = rt::completed_run_ids(existing);
  // Per first try's id: how many of its records ran out of memory, and
  // whether any did not (then the plan is made, for good).
  struct Tries {
    int out_of_memory = 0;
    bool made = false;
  };
  std::map<std::string, Tries> tries;
  for (const rt::ExperienceRecord& r : existing.records) {
    Tries& t = tries[first_try_id(r.run_id)];
    if (nasoa::gather::failed_for_memory(r.stop_reason)) ++t.out_of_memory;
    else t.made = true;
  }
  for (const std::string& name : names) {
    rt::IngestOptions ingest;
    ingest.side = side;
    Task t;
    // Run ids and records are UTF-8 text: a Latin-1 folder name went in as
    // U+FFFD, never matched on resume, and every rerun made its runs again.
    // (A backslash is doubled in such a name, so that it cannot read as a
    // folder literally named with "\xe9".)
    t.name = nasoa::zoo::is_valid_utf8(name) ? name : nasoa::zoo::utf8_escaped(name);
    t.store = std::make_unique<rt::ImageStore>(rt::list_folder((fs::path(a.tasks) / name).string()), ingest);
    for (const std::string& line : nasoa_samples::skipped_lines(t.store->skipped()))
      std::cerr << "gathering: task '" << t.name << "': " << line << "\n";
    t.split = rt::stratified_split(t.store->labels(), 0.2, a.seed);
    // Every class of one image: none is held out, and no run of the task
    // could be evaluated (each would be recorded without an accuracy).
    if (t.split.validation.empty()) {
      std::cerr << "gathering: task '" << t.name << "' skipped: each of its " << t.store->class_names().size()
                << " classes has one image, so its split holds out none to evaluate a run on"
                << " (a class needs two or more)\n";
      continue;
    }
    // Nor do run ids name the task's images: runs of a task folder made
    // again (other images, or another count) are not this task's.
    const nasoa::TaskMeta& now = t.store->meta();
    for (const rt::ExperienceRecord& r : existing.records) {
      if (r.task_name != t.name) continue;
      double moved = 0;
      for (std::size_t c = 0; c < 3; ++c) moved = std::max(moved, std::abs(r.task.pixel_mean[c] - now.pixel_mean[c]));
      if (r.task.classes != now.classes || r.task.images != now.images || moved > 1e-6)
        throw Error(ErrorCode::kInvalidArgument,
                    a.log + ": holds runs of task '" + t.name + "' with " + std::to_string(r.task.images) +
                        " images of " + std::to_string(r.task.classes) + " classes (mean pixel " +
                        nasoa::zoo::shown_number(r.task.pixel_mean[0]) + "); the folder now has " +
                        std::to_string(now.images) + " of " + std::to_string(now.classes) + " (mean pixel " +
                        nasoa::zoo::shown_number(now.pixel_mean[0]) +
                        "), so it was made again since: gather into another --log");
    }
    tasks.push_back(std::move(t));
  }
  if (tasks.empty())
    throw Error(ErrorCode::kInvalidArgument,
                a.tasks + ": no task left to gather" + (a.shard.empty() ? "" : " in --shard " + a.shard) +
                    ": each was skipped (the reasons are above)");

  std::vector<Plan> grid;
  for (double lr : a.lrs)
    for (int f : a.frozen)
      for (int e : a.epochs) grid.push_back({lr, f, e});
  std::cerr << "gathering: " << models.size() << " models x " << tasks.size() << " tasks x "
            << (a.plans_per_pair > 0 ? std::min<std::size_t>(std::size_t(a.plans_per_pair), grid.size()) : grid.size())
            << " plans; " << done.size() << " runs already in " << a.log << "\n";

  // Each pair's plans: the grid in a seeded order of its own, so pairs cover
  // different corners of the grid and together the whole of it.
  std::map<std::pair<std::size_t, std::size_t>, std::vector<Plan>> plans;
  std::size_t rounds = 0;
  for (std::size_t t = 0; t < tasks.size(); ++t)
    for (std::size_t m = 0; m < models.size(); ++m) {
      std::vector<Plan> order = grid;
      // Seeded by the names, not by positions: the same draw whatever the
      // sharding, and whatever task folders are added beside this one.
      std::mt19937_64 rng(a.seed ^ name_hash(tasks[t].name + '\0' + models[m].name));
      std::shuffle(order.begin(), order.end(), rng);
      if (a.plans_per_pair > 0 && order.size() > std::size_t(a.plans_per_pair)) order.resize(std::size_t(a.plans_per_pair));
      rounds = std::max(rounds, order.size());
      plans[{t, m}] = std::move(order);
    }

  std::vector<int> max_frozen;
  for (const nasoa::ModelInfo& info : models)
    max_frozen.push_back(nasoa::zoo::load_network(a.zoo, info)->num_stages() - 1);
  std::set<std::string> made;  // this process's runs, by id
  std::map<std::pair<std::size_t, std::size_t>, double> probe, probe_seconds;
  int ran = 0, skipped = 0;
  for (std::size_t r = 0; r < rounds; ++r)
    for (std::size_t t = 0; t < tasks.size(); ++t)
      for (std::size_t m = 0; m < models.size(); ++m) {
        const std::vector<Plan>& list = plans[{t, m}];
        if (r >= list.size()) continue;
        const nasoa::ModelInfo& info = models[m];
        Task& task = tasks[t];
        Plan plan = list[r];
        // Frozen counts above the model's are the same run as its largest:
        // capped before naming the run, so that it is made and counted once.
        plan.frozen = std::min(plan.frozen, max_frozen[m]);
        std::string id = run_id(task.name, info.name, plan, a.batch, a.seed, a.probe_per_class);
        if (done.count(id)) {
          // Made, unless every try so far ran out of memory and those are
          // to be made again.
          const Tries& t = tries[id];
          if (!a.retry_out_of_memory || t.made || t.out_of_memory == 0) {
            ++skipped;
            continue;
          }
          id += "|retry=" + std::to_string(t.out_of_memory);
        }
        if (!made.insert(id).second) continue;  // a capped plan this process has made
        if (a.hours > 0 && seconds_since(started) > a.hours * 3600) {
          std::cerr << "gathering: stopped after " << a.hours << " h (" << ran << " runs); run again to carry on\n";
          return 0;
        }
        const int classes = static_cast<int>(task.store->class_names().size());
        if (!probe.count({t, m})) {
          const auto t0 = Clock::now();
          nasoa::zoo::Network net = nasoa::zoo::load_network(a.zoo, info);
          probe[{t, m}] = rt::logme_probe(*net, *task.store, rt::probe_sample(*task.store, task.split.train, a.probe_per_class),
                                          info.mean, info.std, workers);
          probe_seconds[{t, m}] = seconds_since(t0);
        }
        const auto t0 = Clock::now();
        rt::FineTuneJob job;
        job.network = nasoa::zoo::load_network_for_task(a.zoo, info, classes, a.seed);
        job.store = task.store.get();
        job.split = task.split;
        job.regime.model = info.name;
        job.regime.learning_rate = plan.lr;
        job.regime.epochs = plan.epochs;
        job.regime.batch_size = a.batch;
        job.regime.frozen_stages = plan.frozen;
        job.regime.horizontal_flip = false;  // glyph tasks: mirroring changes the class
        job.regime.seed = a.seed;
        job.mean = info.mean;
        job.std = info.std;
        job.fingerprint = "nasoa-gather";
        job.loader_workers = workers;
        // A loss that diverges before the first evaluation, or a failure in
        // LibTorch, is this plan's outcome: recorded (unevaluated, so the fit
        // leaves it out) so that the run counts as made (run_outcome.h).
        const rt::FineTuneOutcome outcome = nasoa::gather::outcome_of_run(
            [&] { return rt::fine_tune(job, rt::Limits(1e9, 0)); },
            "task '" + task.name + "', model '" + info.name + "', " + plan_text(plan),
            job.use_cuda && torch::cuda::is_available() ? "cuda:0" : "cpu", std::cerr);

        rt::ExperienceRecord rec;
        rec.run_id = id;
        rec.source = rt::ExperienceSource::kShipped;
        rec.task_id = task.name;
        rec.task_name = task.name;
        rec.task = task.store->meta();
        rec.train_images = static_cast<std::int64_t>(task.split.train.size());
        rec.model = rt::describe_model(info);
        rec.regime = job.regime;
        double best = -1;
        for (const rt::EpochRecord& e : outcome.history) {
          rec.history.push_back({e.epoch, e.elapsed_seconds, e.train_loss, e.validation_accuracy});
          best = std::max(best, e.validation_accuracy);
        }
        rec.final_accuracy = outcome.validation_accuracy;
        rec.best_accuracy = best;
        rec.total_seconds = seconds_since(t0);
        rec.device = outcome.device;
        rec.stop_reason = outcome.stop_reason;
        // A degenerate sample can make LogME's evidence 0/0; a record cannot
        // hold a NaN, and refusing it after the fine-tune would stop every
        // resumed gathering at this same run. No score, as on the device.
        if (std::isfinite(probe[{t, m}])) rec.probe_score = probe[{t, m}];
        rt::append_experience(a.log, rec);
        ++ran;
        // Without an evaluated epoch: diverged, failed, or (a run that
        // stopped before its first evaluation) not evaluated.
        char accuracy[32] = "not evaluated";
        if (best >= 0)
          std::snprintf(accuracy, sizeof accuracy, "%6.2f %%", 100 * best);
        else if (outcome.stop_reason.rfind("diverged", 0) == 0)
          std::snprintf(accuracy, sizeof accuracy, "diverged");
        else if (outcome.stop_reason.rfind("failed", 0) == 0)
          std::snprintf(accuracy, sizeof accuracy, "failed");
        std::fprintf(stderr, "%-12s %-10s lr %-6g frozen %d epochs %2d: %s  (%.1f s; probe %.3f in %.2f s)\n",
                     task.name.c_str(), info.name.c_str(), plan.lr, plan.frozen, plan.epochs, accuracy,
                     rec.total_seconds, probe[{t, m}], probe_seconds[{t, m}]);
      }
  std::cerr << "gathering: " << ran << " runs made, " << skipped << " found in the log, "
            << static_cast<long>(seconds_since(started)) << " s\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-gather: fine-tuning experience of a bundle's models on source tasks (nasoa " NASOA_VERSION_STRING ")"};
  Args a;
  app.add_option("--zoo", a.zoo, "The bundle")->required();
  auto* tasks = app.add_option("--tasks", a.tasks, "Folder of source tasks, each a folder of class subfolders");
  auto* log = app.add_option("--log", a.log, "Experience log to append to (created if missing)");
  app.add_option("--ship", a.ship, "Fit the predictor on this experience log and write both into the bundle")
      ->excludes(tasks)->excludes(log);
  app.add_option("--lrs", a.lrs, "Learning rates of the grid")
      ->delimiter(',')->check(nasoa_samples::list_values())->capture_default_str();
  app.add_option("--frozen", a.frozen, "Frozen stages of the grid (capped at each model's stages - 1)")
      ->delimiter(',')->check(nasoa_samples::list_values())->capture_default_str();
  app.add_option("--epochs", a.epochs, "Epochs of the grid")
      ->delimiter(',')->check(nasoa_samples::list_values())->capture_default_str();
  app.add_option("--models", a.models, "Only these models of the bundle (comma-separated names; default: all)")
      ->delimiter(',')->check(nasoa_samples::list_values());
  app.add_option("--batch", a.batch, "Batch size")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--plans-per-pair", a.plans_per_pair, "Plans of the grid per (task, model), a seeded draw; 0: all")
      ->check(nasoa_samples::non_negative_integer())->capture_default_str();
  app.add_option("--probe-per-class", a.probe_per_class, "Images per class for the LogME probe")->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--seed", a.seed, "Seed of splits, draws and training")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  app.add_option("--hours", a.hours, "Stop cleanly after this much wall time (0: none)")
      ->check(nasoa_samples::finite_number(0, false, 1e6))
      ->capture_default_str();
  app.add_option("--threads", a.threads, "Compute threads (default: the cores less the batch loader)")
      ->check(CLI::Range(0, nasoa::zoo::usable_cores()));  // more only waits on itself
  app.add_option("--shard", a.shard, "K/N: only the tasks whose index in name order is K modulo N");
  app.add_flag("--retry-out-of-memory", a.retry_out_of_memory,
               "Make again the runs of the log that ran out of memory (each as a record of its own)");
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  return nasoa_samples::run_reporting_errors("nasoa-gather", [&] {
    if (!a.ship.empty()) {
      // Gathering's options would be taken for part of what is shipped.
      for (const char* option : {"--lrs", "--frozen", "--epochs", "--models", "--batch", "--plans-per-pair",
                                 "--probe-per-class", "--seed", "--hours", "--threads", "--shard",
                                 "--retry-out-of-memory"})
        if (app.count(option) > 0)
          throw nasoa_samples::BadArguments(std::string(option) +
                                            " is for gathering; --ship takes only --zoo (the fit has seeds of its own)");
      return ship(a, nasoa::zoo::provenance_command_line(argc, argv));
    }
    if (a.tasks.empty() || a.log.empty())
      throw nasoa_samples::BadArguments("give --tasks DIR and --log FILE (or --ship LOG)");
    if (!a.shard.empty()) parse_shard(a.shard);  // its syntax now; which tasks it takes, once they are listed
    return run(a);
  });
}
