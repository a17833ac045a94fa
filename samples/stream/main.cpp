// nasoa-stream: adapt to a stream of tasks, one after the other, and watch
// the performance predictor learn from each.
//
//   nasoa-stream --zoo DIR --budget SECONDS [--state DIR] [--json FILE]
//                [--out DIR [--resume]] [--probe] [--min-experience N]
//                [--threads N] [--device auto|cpu|cuda] TASK_DIR...
//
// For each task folder in turn: read it, plan (nasoa::Adapter::plan), fine-tune
// the plan inside the budget, and record the outcome, so that the next plan
// knows about it. One line per task: the chosen model, learning rate, frozen
// stages and epochs, the predicted accuracy and its standard deviation, the
// accuracy achieved on validation (the run's highest, what the predictor
// predicts), the prediction's error and the seconds.
// At the end, the mean absolute error of the predictions over the first
// half of the tasks and over the second: a predictor that learns from the
// device's records gets closer. Until the predictor has --min-experience
// records to learn from, tasks get the default plan, with the predictor's
// estimate of it from whatever it has; the first task of a device without
// shipped experience has no estimate at all and is left out of the means.
//
// Models are saved under --out (default: a temporary folder, removed at the
// end, or by the next stream when this one was killed). A task that fails is reported on its line and the stream goes on.
//
// A stream can be killed and continued: with --out, task N's files are
//   OUT/N-NAME               its model,
//   OUT/N-NAME.plan.json     its plan, while it trains,
//   OUT/N-NAME.checkpoint    the SDK's checkpoint, while it trains,
//   OUT/N-NAME.outcome.json  its outcome, once recorded.
// --resume takes a task with an outcome as done, continues a task with a
// plan and a checkpoint where it stopped, and runs the others; it refuses
// (exit 2) task folders in another order than OUT's files name them. A kill in the
// moment between recording a task and writing its outcome records that task
// twice (once per run); anywhere else each task is recorded once.
//
// Uses only the public API (<nasoa/nasoa.h>); it is also a sample to copy.
// Exit status: 0 every task adapted, 1 some failed, 2 bad arguments.
#include <CLI/CLI.hpp>
#include <nasoa/nasoa.h>
#include <unistd.h>

#include "../common/achieved_accuracy.h"
#include "../common/command_line.h"
#include "../common/output_path.h"
#include "../common/text_file.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <tuple>

namespace {

// Ctrl-C or a SIGTERM: the stream stops at the next training step (or the
// next task), keeps what --resume needs under --out, removes a temporary
// folder, and exits 130. Without this, a kill left the temporary folder
// (cleaned only by a later stream) and nothing said where the run stood.
volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_interrupt(int) { interrupted = 1; }
struct Interrupted {};
void stop_if_interrupted() {
  if (interrupted) throw Interrupted{};
}

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Outcome {
  std::string task;
  nasoa::Plan plan;
  std::optional<double> achieved;
  double seconds = 0;
  std::string error;
  std::string not_recorded;                 // why the outcome is not in the state, when recording failed
  std::vector<nasoa::SkippedFile> skipped;  // files of the task that could not be used
  bool done_before = false;                 // read back from OUT/N-NAME.outcome.json by --resume
  bool resumed = false;                     // continued from a checkpoint by --resume
  std::optional<double> abs_error() const {
    if (!achieved || !plan.best.predicted_accuracy) return std::nullopt;
    return std::fabs(*plan.best.predicted_accuracy - *achieved);
  }
};

std::string pct(const std::optional<double>& v) {
  if (!v) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", 100 * *v);
  return text;
}

// Mean absolute error over the outcomes [from, to) that have one.
std::optional<double> mae(const std::vector<Outcome>& all, std::size_t from, std::size_t to, std::size_t* count) {
  double sum = 0;
  *count = 0;
  for (std::size_t i = from; i < to; ++i)
    if (const auto e = all[i].abs_error()) sum += *e, ++*count;
  if (*count == 0) return std::nullopt;
  return sum / double(*count);
}

nlohmann::json optional_json(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(); }

// Whether `path` exists; an unreadable folder counts as no.
bool present(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

nlohmann::json skipped_json(const std::vector<nasoa::SkippedFile>& skipped) {
  nlohmann::json list = nlohmann::json::array();
  for (const nasoa::SkippedFile& f : skipped) list.push_back({{"path", f.path}, {"reason", f.reason}});
  return list;
}

// A path's bytes as hex digits. The outcome file is written with bytes that
// are not UTF-8 replaced by U+FFFD, so "task_dir" alone cannot tell apart two
// folders named in another encoding; "task_dir_bytes" can.
std::string as_hex(const std::string& text) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * text.size());
  for (const unsigned char c : text) {
    hex += kDigits[c >> 4];
    hex += kDigits[c & 15];
  }
  return hex;
}

// A path as the outcome file's "task_dir" holds it, for outcome files written
// before "task_dir_bytes" was (0.3.3 and older).
std::string as_stored(const std::string& text) {
  return nlohmann::json::parse(nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
      .get<std::string>();
}

// What --resume needs to take a task as done: which folder and budget it
// was, its plan, what it achieved and what it skipped.
nlohmann::json outcome_json(const Outcome& o, const std::string& task_dir, double budget_seconds) {
  return {{"task_dir", task_dir},
          {"task_dir_bytes", as_hex(task_dir)},
          {"budget_seconds", budget_seconds},
          {"plan", nlohmann::json::parse(o.plan.to_json())},
          {"achieved_accuracy", optional_json(o.achieved)},
          {"seconds", o.seconds},
          {"skipped", skipped_json(o.skipped)}};
}


// Reads back a task's outcome, refusing one of another folder or budget
// (the stream's summary would mix them) and naming the field at fault.
Outcome read_outcome(const std::string& file, const std::string& task_name, const std::string& task_dir,
                     double budget_seconds) {
  const auto corrupt = [&](const std::string& why) {
    return nasoa::Error(nasoa::ErrorCode::kCorrupt, file + ": " + why + "; remove it to run the task again");
  };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(nasoa_samples::read_text(file));
  } catch (const nlohmann::json::exception&) {
    throw corrupt("not valid JSON");
  }
  const auto field = [&](const char* name, nlohmann::json::value_t type) -> const nlohmann::json& {
    if (!j.is_object() || !j.contains(name)) throw corrupt(std::string("field ") + name + " is missing");
    const nlohmann::json& v = j.at(name);
    const bool number = type == nlohmann::json::value_t::number_float;
    if (number ? !v.is_number() : v.type() != type) throw corrupt(std::string("field ") + name + " has the wrong type");
    return v;
  };
  const std::string stored_dir = field("task_dir", nlohmann::json::value_t::string).get<std::string>();
  const bool same_folder =
      j.contains("task_dir_bytes")
          ? field("task_dir_bytes", nlohmann::json::value_t::string).get<std::string>() == as_hex(task_dir)
          : stored_dir == as_stored(task_dir);
  if (!same_folder)
    throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                       file + " is the outcome of task folder " + stored_dir + ", not " +
                           task_dir + ": resume with the same task folders in the same order, or use another --out");
  if (field("budget_seconds", nlohmann::json::value_t::number_float).get<double>() != budget_seconds)
    throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                       file + " was reached with --budget " + j.at("budget_seconds").dump() +
                           ": resume with the same --budget, or use another --out");
  Outcome o;
  o.task = task_name;
  o.done_before = true;
  try {
    o.plan = nasoa::Plan::from_json(field("plan", nlohmann::json::value_t::object).dump());
  } catch (const nasoa::Error& e) {
    throw corrupt(std::string("its plan: ") + e.what());
  }
  const nlohmann::json& achieved = j.contains("achieved_accuracy") ? j.at("achieved_accuracy") : nlohmann::json();
  if (!achieved.is_null()) {
    if (!achieved.is_number() || !(achieved.get<double>() >= 0 && achieved.get<double>() <= 1))
      throw corrupt("field achieved_accuracy is not null or a number in [0, 1]");
    o.achieved = achieved.get<double>();
  }
  o.seconds = field("seconds", nlohmann::json::value_t::number_float).get<double>();
  for (const nlohmann::json& f : field("skipped", nlohmann::json::value_t::array)) {
    if (!f.is_object() || !f.contains("path") || !f.at("path").is_string() || !f.contains("reason") ||
        !f.at("reason").is_string())
      throw corrupt("field skipped holds an entry without a path and a reason");
    o.skipped.push_back({f.at("path").get<std::string>(), f.at("reason").get<std::string>()});
  }
  return o;
}

// The name a task's files under --out carry: its folder's last component
// ("big" for "data/big" and "data/big/").
std::string task_name(const std::string& folder) {
  const fs::path given(folder);
  return given.filename().empty() ? given.parent_path().filename().string() : given.filename().string();
}

// With --resume: a file under OUT of task N (N-NAME.outcome.json, .plan.json,
// .checkpoint) whose NAME is not the name of this stream's task N. The
// stream was given its tasks in another order, or others: resuming would
// train them all again beside the old files, and record each twice.
std::string resume_order_problem(const std::string& out, const std::vector<std::string>& tasks) {
  std::vector<std::string> files;  // sorted, so that the message names the first task at fault
  std::error_code ec;
  for (fs::directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
    // Those three are files; a task's model is a folder (of "x.checkpoint", say).
    std::error_code kind;
    if (it->is_regular_file(kind)) files.push_back(it->path().filename().string());
  }
  std::sort(files.begin(), files.end(), [](const std::string& a, const std::string& b) {
    const std::size_t da = a.find_first_not_of("0123456789"), db = b.find_first_not_of("0123456789");
    return std::make_pair(da, a) < std::make_pair(db, b);  // "2-..." before "10-..."
  });
  for (const std::string& file : files) {
    std::string stem;
    for (const std::string suffix : {".outcome.json", ".plan.json", ".checkpoint"})
      if (file.size() > suffix.size() && file.compare(file.size() - suffix.size(), suffix.size(), suffix) == 0)
        stem = file.substr(0, file.size() - suffix.size());
    const std::size_t dash = stem.find('-');
    if (dash == 0 || dash == std::string::npos || stem.find_first_not_of("0123456789") != dash) continue;
    const std::string digits = stem.substr(0, dash);
    if (digits.size() > 9) continue;  // not a position this stream could have
    const std::size_t n = std::stoul(digits);
    if (n == 0 || n > tasks.size() || stem.substr(dash + 1) == task_name(tasks[n - 1])) continue;
    return (fs::path(out) / file).string() + " is task " + digits + " '" + stem.substr(dash + 1) +
           "' of the stream being resumed, where this command's task " + digits + " is '" + task_name(tasks[n - 1]) +
           "': resume with the same task folders in the same order, or use another --out";
  }
  return {};
}

// The scratch folders of streams that were killed: nasoa-stream-<pid> in
// the temporary folder whose process is gone. A live stream's folder, or
// one whose process another PID namespace hides, is left alone as long as
// /proc shows that id; errors only leave a folder behind.
void remove_abandoned_scratch(const fs::path& temp) {
  std::error_code ec;
  for (fs::directory_iterator it(temp, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const std::string prefix = "nasoa-stream-";
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() ||
        name.find_first_not_of("0123456789", prefix.size()) != std::string::npos)
      continue;
    std::error_code gone;
    if (fs::exists(fs::path("/proc") / name.substr(prefix.size()), gone) || gone) continue;
    std::error_code ignored;
    if (it->is_directory(ignored) && !it->is_symlink(ignored)) fs::remove_all(it->path(), ignored);
  }
}

// This stream's scratch folder, if it made one. A folder that cannot be
// removed is said, not thrown: every task's result stands, and a throw
// from an error handler would end the program.
void remove_scratch(const std::optional<fs::path>& scratch) {
  if (!scratch) return;
  std::error_code ec;
  fs::remove_all(*scratch, ec);
  if (ec) std::cerr << "nasoa-stream: note: could not remove " << scratch->string() << ": " << ec.message() << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-stream: plan, fine-tune and record a stream of tasks, one after the other"};
  std::string zoo_dir, state, json, out, device = "auto";
  std::vector<std::string> tasks;
  double seconds = 0;
  int threads = 0;
  bool probe = false;
  app.add_option("--zoo", zoo_dir, "Zoo bundle directory")->required()->check(nasoa_samples::non_empty());
  app.add_option("--budget", seconds, "Wall-clock budget per task, seconds")
      ->required()
      ->check(nasoa_samples::finite_number(0, true));
  app.add_option("--state", state, "Where this device's experience, predictor and profile are kept "
                                   "(default: nasoa::default_state_dir())");
  app.add_option("--json", json, "Write a JSON summary here");
  bool resume = false;
  app.add_option("--out", out, "Save each task's model in a subfolder of this folder (default: a temporary one)")
      ->check(nasoa_samples::non_empty());
  app.add_flag("--resume", resume, "Continue a killed stream of the same --out: done tasks are kept, a task killed "
                                   "mid-training continues from its checkpoint");
  app.add_flag("--probe", probe, "Score each model's frozen features on a sample of the task (LogME) while planning");
  int min_experience = nasoa::AdapterOptions{}.min_experience;
  app.add_option("--min-experience", min_experience, "Evaluated records the predictor needs before its plan is "
                                                     "followed; below, the default plan")
      ->check(nasoa_samples::non_negative_integer())->capture_default_str();
  app.add_option("--threads", threads, "Compute threads (default: on the CPU the cores less the batch loaders, a quarter of them; with a GPU one per core)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--device", device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str();
  app.add_option("tasks", tasks, "Task folders (class subfolders of images), in the order they arrive")->required();
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;

  if (resume && out.empty()) {
    std::cerr << "nasoa-stream: --resume needs the --out of the stream to continue\n";
    return 2;
  }
  if (resume) {
    if (const std::string problem = resume_order_problem(out, tasks); !problem.empty()) {
      std::cerr << "nasoa-stream: " << problem << "\n";
      return 2;
    }
  }
  // Outputs clear of the inputs: a model folder inside a task folder would be
  // read as a class next time; a summary inside the zoo would replace a file.
  std::vector<std::pair<std::string, std::string>> inputs{{"--zoo", zoo_dir}};
  for (const std::string& t : tasks) {
    if (t.empty()) {
      std::cerr << "nasoa-stream: a task folder is an empty path\n";
      return 2;
    }
    inputs.emplace_back("the task folder", t);
  }
  if (app.get_option("--json")->count() > 0 && json.empty()) {
    std::cerr << "nasoa-stream: --json is empty; name a file, or leave it out\n";
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> inputs_and_out = inputs;
  inputs_and_out.emplace_back("--out", out);
  for (const auto& [option, path, clear_of] : {std::tuple{"--out", out, inputs}, std::tuple{"--json", json, inputs_and_out}}) {
    if (path.empty()) continue;
    if (const std::string clash = nasoa_samples::output_clash(option, path, clear_of); !clash.empty()) {
      std::cerr << "nasoa-stream: " << clash << "\n";
      return 2;
    }
  }
  if (app.get_option("--state")->count() > 0 && state.empty()) {
    std::cerr << "nasoa-stream: --state is empty; leave it out for the default\n";
    return 2;
  }
  std::string state_used = state;
  if (state_used.empty()) {
    try {
      state_used = nasoa::default_state_dir();
    } catch (const nasoa::Error&) {
      // No home folder: the Adapter says so below.
    }
  }
  if (const std::string problem = nasoa_samples::state_folder_problem(state_used, inputs); !problem.empty()) {
    std::cerr << "nasoa-stream: " << problem << "\n";
    return 2;
  }
  if (!json.empty()) {
    // Checked now: the summary comes after every task has trained.
    std::string problem = nasoa_samples::output_file_problem("--json", json);
    if (problem.empty()) problem = nasoa_samples::output_clash("--json", json, {{"--state", state_used}});
    if (!problem.empty()) {
      std::cerr << "nasoa-stream: " << problem << "\n";
      return 2;
    }
  }

  std::optional<fs::path> scratch;
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  try {
    const nasoa::Zoo zoo = nasoa::Zoo::open(zoo_dir);
    if (zoo.models().empty()) throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, zoo_dir + ": the zoo has no models");
    if (out.empty()) {
      remove_abandoned_scratch(fs::temp_directory_path());
      scratch = fs::temp_directory_path() / ("nasoa-stream-" + std::to_string(::getpid()));
      out = scratch->string();
    }
    fs::create_directories(out);
    nasoa::AdapterOptions options;
    options.state_dir = state;
    options.threads = threads;
    options.probe = probe;
    options.min_experience = min_experience;
    options.device = nasoa::parse_device_preference(device);
    std::optional<nasoa::Adapter> made =
        nasoa_samples::make_adapter("nasoa-stream", zoo, options, nasoa_samples::kAdapterFlagNames);
    if (!made) {
      std::error_code ec;
      if (scratch) fs::remove_all(*scratch, ec);
      return 2;
    }
    nasoa::Adapter& adapter = *made;
    std::cout << "state: " << adapter.state_dir() << "\n";
    std::printf("%-3s %-20s %-20s %7s %6s %6s %16s %9s %7s %8s\n", "#", "task", "model", "lr", "frozen", "epochs",
                "predicted %", "achieved", "error", "seconds");

    std::vector<Outcome> outcomes;
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      stop_if_interrupted();
      const Clock::time_point started = Clock::now();
      const fs::path given(tasks[i]);
      const std::string name = task_name(tasks[i]);
      const std::string model_dir = (fs::path(out) / (std::to_string(i + 1) + "-" + name)).string();
      const std::string outcome_file = model_dir + ".outcome.json";
      const std::string plan_file = model_dir + ".plan.json";
      // The folder itself, however it is spelt ("big", "big/", a link to it).
      std::error_code ec;
      fs::path resolved = fs::weakly_canonical(fs::absolute(given), ec);
      if (ec) resolved = fs::absolute(given).lexically_normal();
      if (resolved.filename().empty()) resolved = resolved.parent_path();
      const std::string task_dir = resolved.string();
      Outcome o;
      o.task = name;
      try {
        if (resume && present(outcome_file)) {
          o = read_outcome(outcome_file, name, task_dir, seconds);
        } else {
          nasoa::TaskOptions task_options;
          task_options.image_side = zoo.models().front().input_size;
          task_options.threads = threads;
          task_options.time_limit_seconds = seconds;  // reading counts in the task's budget
          const nasoa::Task task = nasoa::Task::from_folder(tasks[i], task_options);
          o.skipped = task.skipped();
          nasoa::Budget budget;
          budget.seconds = seconds;
          budget.spent_seconds = task.ingest_seconds();
          // An outcome of an earlier stream must not stand for what this run
          // trains next.
          std::remove(outcome_file.c_str());
          // A task killed mid-training continues the plan it had; its
          // checkpoint counts the time already spent, planning included.
          o.resumed = resume && present(model_dir + ".checkpoint") && present(plan_file);
          if (o.resumed) {
            o.plan = nasoa_samples::read_saved_plan(plan_file);
            if (o.plan.budget_seconds != seconds)
              throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument,
                                 plan_file + " was planned for --budget " + nlohmann::json(o.plan.budget_seconds).dump() +
                                     ": resume with the same --budget, or use another --out");
            o.plan.planning_seconds = 0;
            o.plan.planning_joules = 0;
          } else {
            o.plan = adapter.plan(task, budget);
            nasoa_samples::write_text(plan_file, o.plan.to_json());
          }
          const nasoa::Result r = adapter.fine_tune(
              task, o.plan, budget, model_dir, [](const nasoa::Progress&) { stop_if_interrupted(); }, o.resumed);
          // What the predictor predicts: the run's highest validation
          // accuracy (the saved weights' may be up to a standard error below).
          if (const std::optional<double> highest = nasoa_samples::highest_validation_accuracy(r)) o.achieved = highest;
          o.seconds = r.wall_seconds;
          // The model is saved: a state folder that cannot take the record
          // does not make the task fail (--resume would train it again).
          try {
            adapter.record(task, o.plan, r);
          } catch (const nasoa::Error& e) {
            o.not_recorded = e.what();
            std::cerr << "nasoa-stream: warning: the outcome of " << nasoa_samples::one_line(name)
                      << " was not recorded: " << nasoa_samples::one_line(e.what()) << '\n';
          }
          nasoa_samples::write_text(outcome_file, outcome_json(o, task_dir, seconds)
                                             .dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
                                         "\n");
          std::remove(plan_file.c_str());
        }
      } catch (const nasoa::Error& e) {
        o.error = e.what();
        o.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        // The plan serves --resume only beside a checkpoint.
        if (!present(model_dir + ".checkpoint")) std::remove(plan_file.c_str());
      }
      if (!o.error.empty()) {
        std::printf("%-3zu %-20s failed: %s\n", i + 1, nasoa_samples::one_line(o.task).c_str(),
                    nasoa_samples::one_line(o.error).c_str());
      } else {
        const nasoa::Regime& g = o.plan.best.regime;
        const std::string predicted =
            pct(o.plan.best.predicted_accuracy) +
            (o.plan.best.predicted_std ? " +- " + pct(o.plan.best.predicted_std) : std::string(" (default)"));
        std::printf("%-3zu %-20s %-20s %7g %6d %6d %16s %9s %7s %8.1f%s\n", i + 1,
                    nasoa_samples::one_line(o.task).c_str(), g.model.c_str(),
                    g.learning_rate, g.frozen_stages, g.epochs, predicted.c_str(), pct(o.achieved).c_str(),
                    pct(o.abs_error()).c_str(), o.seconds,
                    o.done_before ? "  (done before)" : o.resumed ? "  (resumed)" : "");
      }
      if (!o.skipped.empty())
        std::printf("    %zu file(s) skipped, first: %s: %s\n", o.skipped.size(),
                    nasoa_samples::one_line(o.skipped.front().path).c_str(),
                    o.skipped.front().reason.c_str());
      std::fflush(stdout);  // each row as its task ends, also into a file or a pipe
      outcomes.push_back(std::move(o));
    }

    const std::size_t half = outcomes.size() / 2;
    std::size_t n_first = 0, n_second = 0;
    const auto first = mae(outcomes, 0, half, &n_first);
    const auto second = mae(outcomes, half, outcomes.size(), &n_second);
    std::cout << "mean absolute error of the predicted accuracy (percentage points): first half " << pct(first) << " ("
              << n_first << " tasks), second half " << pct(second) << " (" << n_second << " tasks)\n";

    std::size_t failed = 0;
    for (const Outcome& o : outcomes) failed += !o.error.empty();
    if (!json.empty()) {
      nlohmann::json j;
      j["zoo"] = zoo.name();
      j["state_dir"] = adapter.state_dir();
      j["budget_seconds"] = seconds;
      j["tasks"] = nlohmann::json::array();
      for (const Outcome& o : outcomes) {
        nlohmann::json t{{"task", o.task}, {"seconds", o.seconds}, {"skipped", skipped_json(o.skipped)},
                         {"done_before", o.done_before}, {"resumed", o.resumed}};
        if (!o.not_recorded.empty()) t["not_recorded_because"] = o.not_recorded;
        if (!o.error.empty()) {
          t["error"] = o.error;
        } else {
          t["plan"] = nlohmann::json::parse(o.plan.to_json());
          t["predicted_accuracy"] = optional_json(o.plan.best.predicted_accuracy);
          t["predicted_std"] = optional_json(o.plan.best.predicted_std);
          t["achieved_accuracy"] = optional_json(o.achieved);
          t["absolute_error"] = optional_json(o.abs_error());
        }
        j["tasks"].push_back(t);
      }
      j["mae_first_half"] = optional_json(first);
      j["mae_second_half"] = optional_json(second);
      j["failed"] = failed;
      nasoa_samples::write_text(json, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    }
    remove_scratch(scratch);
    if (!nasoa_samples::standard_output_written()) {
      std::cerr << "nasoa-stream: cannot write the table to standard output\n";
      return 1;
    }
    return failed ? 1 : 0;
  } catch (const Interrupted&) {
    std::fflush(stdout);
    remove_scratch(scratch);
    std::cerr << "\nnasoa-stream: interrupted"
              << (scratch ? "; the temporary folder was removed (give --out to be able to resume)"
                          : "; the same command with --resume continues where it stopped")
              << '\n';
    return 130;
  } catch (const nasoa::Error& e) {
    remove_scratch(scratch);
    std::cerr << "nasoa-stream: error (" << nasoa::to_string(e.code()) << "): " << e.what() << '\n';
    return 1;
  } catch (const std::filesystem::filesystem_error& e) {
    remove_scratch(scratch);
    std::cerr << "nasoa-stream: error: " << e.what() << '\n';
    return 1;
  }
}
