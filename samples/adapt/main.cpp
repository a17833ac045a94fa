// nasoa-adapt: fine-tune a zoo model on a folder of labelled images, inside a budget.
//
//   nasoa-adapt --zoo DIR (--data DIR|FILE.csv | --idx IMAGES LABELS [--class-names A,B,..])
//               (--budget SECONDS | --energy JOULES | both) --out DIR
//               [--memory MIB] [--report FILE.json]
//               [--state DIR] [--plan-only] [--probe] [--no-record] [--min-experience N]
//               [--model NAME] [--lr X] [--epochs N] [--frozen K] [--batch B]
//               [--optimizer sgd|adamw] [--schedule cosine|step] [--weight-decay X]
//               [--label-smoothing X] [--no-crop] [--flip|--no-flip]
//               [--validation DIR] [--seed S] [--threads N] [--device auto|cpu|cuda]
//               [--memory-layout auto|channels-first|channels-last]
//               [--watts W] [--profile FILE] [--resume] [--checkpoint-every SECONDS] [--quiet]
//               [--fixed-schedule] [--hand-back best-validated|latest-within-noise|last]
//
// Without --model, --lr, --epochs, --frozen and --batch, the planner chooses
// them (nasoa::Adapter::plan: one shot, from the zoo's shipped experience and
// this device's own), the plan is printed, and the model is fine-tuned. With
// any of them the regime is taken as given, its other fields at these
// defaults: the zoo's first model, learning rate 0.01, 10 epochs, batch 32,
// nothing frozen. Either way the rest of the regime comes from the flags
// (SGD with momentum 0.9, cosine schedule with half an epoch of warm-up, label
// smoothing 0.1, random resized crop, no flip unless --flip, 20 % of each
// class for validation), and the outcome is recorded in the state directory (--state,
// default nasoa::default_state_dir()) so the next plan learns from it.
// --plan-only prints the plan and its alternatives as JSON on stdout and
// trains nothing.
//
// A planned run writes its plan to OUT.plan.json before training, so that
// --resume continues the same run after a kill; it is removed with the
// checkpoint once the model is saved.
//
// Uses only the public API (<nasoa/nasoa.h>); it is also a sample to copy.
// Exit status: 0 done, 1 failed (the reason on stderr), 2 bad arguments.
#include <CLI/CLI.hpp>
#include <nasoa/nasoa.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "../common/achieved_accuracy.h"
#include "../common/command_line.h"
#include "../common/output_path.h"
#include "../common/text_file.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace {

using nasoa_samples::write_text;

using Clock = std::chrono::steady_clock;

// Redraws at most ten times a second, and always at the end of an epoch.
void print_progress(const nasoa::Progress& p) {
  static Clock::time_point last;
  const Clock::time_point now = Clock::now();
  if (p.step != p.steps_per_epoch && now - last < std::chrono::milliseconds(100)) return;
  last = now;
  const double done = p.steps_per_epoch ? double(p.step) / double(p.steps_per_epoch) : 0;
  const int width = 24, filled = int(done * width);
  std::string bar(std::size_t(filled), '#');
  bar.resize(std::size_t(width), '.');
  char line[200];
  std::snprintf(line, sizeof line,
                "\repoch %d/%d [%s] loss %.3f train %5.1f%% val %s %6.1fs ETA %5.1fs %7.1f J ",
                p.epoch, p.epochs, bar.c_str(), p.loss, 100 * p.train_accuracy,
                p.validation_accuracy < 0 ? "  -  " : (std::to_string(int(std::lround(100 * p.validation_accuracy))) + "%").c_str(),
                p.elapsed_seconds, p.eta_seconds, p.joules);
  std::cerr << line << std::flush;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// How long ago the kernel created this process (Linux, 10 ms resolution; 0
// where /proc cannot tell), at most 2 s. Loading LibTorch before main() takes
// 0.5-1 s, and the budget is for the whole command, so its clock starts
// there. The cap: the creation may be a shell's fork that ran other commands
// before exec'ing this one, whose time is not the budget's.
double seconds_since_exec() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat;
  std::getline(stat_file, stat);
  const std::size_t name_end = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (name_end == std::string::npos) return 0;
  std::istringstream fields(stat.substr(name_end + 1));
  std::string skipped;
  for (int field = 3; field < 22; ++field) fields >> skipped;  // state ... itrealvalue
  unsigned long long start_ticks = 0;
  double uptime = -1;
  std::ifstream("/proc/uptime") >> uptime;
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  if (!(fields >> start_ticks) || uptime < 0 || ticks_per_second <= 0) return 0;
  const double seconds = uptime - double(start_ticks) / double(ticks_per_second);
  return seconds > 0 ? std::min(seconds, 2.0) : 0;
}

std::string percent(const std::optional<double>& v) {
  if (!v) return "-";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f %%", 100 * *v);
  return text;
}

std::string fixed2(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", v);
  return text;
}

std::string describe(const nasoa::Regime& r) {
  std::ostringstream text;
  text << r.model << " (lr " << r.learning_rate << ", batch " << r.batch_size << ", " << r.frozen_stages
       << " frozen stages, " << r.epochs << " epochs)";
  return text.str();
}

// " of 60 s", or ", no time limit" for a budget of energy alone.
std::string time_limit_text(double budget_seconds) {
  std::ostringstream text;
  if (budget_seconds > 0) {
    text << " of " << budget_seconds << " s";
  } else {
    text << ", no time limit";
  }
  return text.str();
}

// The plan as a person reads it; --plan-only and the report have the JSON.
void print_plan(std::ostream& out, const nasoa::Plan& plan) {
  const nasoa::PlannedRun& b = plan.best;
  out << "plan:       " << describe(b.regime) << "\n"
      << "predicted:  " << percent(b.predicted_accuracy);
  if (b.predicted_std) out << " +- " << percent(b.predicted_std);
  out << " in " << fixed2(b.predicted_seconds) << " s" << time_limit_text(plan.budget_seconds);
  if (plan.budget_joules > 0 && b.predicted_joules)
    out << ", " << fixed2(*b.predicted_joules) << " J of " << plan.budget_joules << " J";
  out << " ("
      << nasoa::to_string(plan.source) << " plan; experience: " << plan.shipped_records << " shipped and "
      << plan.device_records << " device records)\n"
      << "why:        " << b.why << "\n"
      << "planned in: " << fixed2(plan.planning_seconds) << " s";
  if (plan.planning_joules > 0) out << ", " << fixed2(plan.planning_joules) << " J";
  if (plan.profiled) out << " (" << fixed2(plan.profiling_seconds) << " s of it measuring this device's profile, once)";
  if (plan.probe_used) out << " (" << fixed2(plan.probe_seconds) << " s of it probing)";
  out << "\n";
  for (const nasoa::PlannedRun& a : plan.alternatives)
    out << "instead:    " << describe(a.regime) << ": " << percent(a.predicted_accuracy) << " in "
        << fixed2(a.predicted_seconds) << " s\n";
  for (const std::string& note : plan.notes) out << "note:       " << note << "\n";
}

nlohmann::json report_json(const nasoa::Task& task, const nasoa::Result& r) {
  const nasoa::TaskMeta& m = task.meta();
  nlohmann::json j;
  j["regime"] = {{"model", r.regime.model}, {"learning_rate", r.regime.learning_rate},
                 {"epochs", r.regime.epochs}, {"batch_size", r.regime.batch_size},
                 {"frozen_stages", r.regime.frozen_stages}, {"optimizer", nasoa::to_string(r.regime.optimizer)},
                 {"momentum", r.regime.momentum}, {"weight_decay", r.regime.weight_decay},
                 {"schedule", nasoa::to_string(r.regime.schedule)}, {"warmup_epochs", r.regime.warmup_epochs},
                 {"label_smoothing", r.regime.label_smoothing},
                 {"random_resized_crop", r.regime.random_resized_crop},
                 {"horizontal_flip", r.regime.horizontal_flip},
                 {"validation_fraction", r.regime.validation_fraction}, {"seed", r.regime.seed}};
  j["task"] = {{"origin", task.origin()}, {"classes", task.class_names()}, {"images", m.images},
               {"images_per_class", {{"min", m.min_per_class}, {"mean", m.mean_per_class}, {"max", m.max_per_class}}},
               {"width", {{"min", m.min_width}, {"mean", m.mean_width}, {"max", m.max_width}}},
               {"height", {{"min", m.min_height}, {"mean", m.mean_height}, {"max", m.max_height}}},
               {"grayscale_fraction", m.grayscale_fraction}, {"pixel_mean", m.pixel_mean},
               {"pixel_std", m.pixel_std}, {"ingest_seconds", task.ingest_seconds()},
               {"streaming", task.streaming()}};
  j["epochs"] = nlohmann::json::array();
  for (const nasoa::EpochResult& e : r.epochs)
    j["epochs"].push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"train_accuracy", e.train_accuracy},
                           {"validation_accuracy", e.validation_accuracy < 0 ? nlohmann::json() : nlohmann::json(e.validation_accuracy)},
                           {"elapsed_seconds", e.elapsed_seconds}, {"joules", e.joules}});
  j["validation_accuracy"] = r.validation_accuracy < 0 ? nlohmann::json() : nlohmann::json(r.validation_accuracy);
  j["best_epoch"] = r.best_epoch;
  j["hand_back"] = nasoa::to_string(r.hand_back);
  j["wall_seconds"] = r.wall_seconds;
  j["joules"] = r.joules;
  // Of wall_seconds and joules, what went before training: reading the task
  // and planning.
  j["spent_seconds"] = r.spent_seconds;
  j["spent_joules"] = r.spent_joules;
  j["energy_meter"] = r.energy_meter;
  j["energy_measured"] = r.energy_measured;
  j["energy_note"] = r.energy_note;
  j["checkpoint_note"] = r.checkpoint_note;
  j["scheduled_epochs"] = r.scheduled_epochs;
  j["schedule_note"] = r.schedule_note;
  j["validation_note"] = r.validation_note;
  j["device"] = r.device;
  j["memory_layout"] = r.memory_layout;
  j["steps"] = r.steps;
  j["stopped_early"] = r.stopped_early;
  j["stop_reason"] = r.stop_reason;
  j["resumed"] = r.resumed;
  j["peak_memory_bytes"] = r.peak_memory_bytes;
  j["model_dir"] = r.model_dir;
  j["skipped"] = nlohmann::json::array();
  for (const nasoa::SkippedFile& f : task.skipped()) j["skipped"].push_back({{"path", f.path}, {"reason", f.reason}});
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  const Clock::time_point started =
      Clock::now() - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_since_exec()));
  CLI::App app{"nasoa-adapt: plan and fine-tune a zoo model on your images within a time/energy budget"};
  std::string zoo_dir, data, out, report, validation, state, device = "auto", memory_layout = "auto";
  nasoa::Budget budget;
  nasoa::Regime regime;
  int threads = 0;
  double watts = 0, checkpoint_every = 30;
  bool resume = false, quiet = false, plan_only = false, probe = false, no_record = false;
  std::string home_state;  // the default state folder; empty without a home directory
  try {
    home_state = nasoa::default_state_dir();
  } catch (const nasoa::Error&) {
    // No home directory: --state is then needed, and the API says so if it is left out.
  }
  const std::string default_state = home_state.empty() ? "nasoa::default_state_dir()" : home_state;
  app.add_option("--zoo", zoo_dir, "Zoo bundle directory")->required()->check(nasoa_samples::non_empty());
  std::vector<std::string> idx, idx_class_names;
  CLI::Option* data_option =
      app.add_option("--data", data, "Task: a folder of class subfolders, or a path,label .csv");
  CLI::Option* idx_option =
      app.add_option("--idx", idx, "Task as MNIST-format IDX files, plain or gzipped: IMAGES LABELS (instead of --data)")
          ->expected(2)
          ->excludes(data_option);
  app.add_option("--class-names", idx_class_names, "With --idx: the classes' names, comma-separated, in label order")
      ->delimiter(',')->check(nasoa_samples::list_values())
      ->needs(idx_option);
  app.add_option("--budget", budget.seconds,
                 "Wall-clock budget of the whole run, seconds (required unless --energy bounds the run alone)")
      ->check(nasoa_samples::finite_number(0, true));
  app.add_option("--out", out, "Directory for the fine-tuned model (replaced if it is one); ignored with --plan-only");
  app.add_option("--energy", budget.joules, "Energy budget, joules (measured, or estimated at --watts where no meter reads); 0: none. Without --budget, the budget alone")->check(nasoa_samples::finite_number(0, false));
  app.add_option("--memory", budget.memory_mib, "Resident memory cap, MiB; 0: none")
      ->check(CLI::Range(std::int64_t(0), std::int64_t(1) << 30));
  app.add_option("--report", report, "Write a JSON report of the run here (with --plan-only, the plan goes to standard output instead)");
  app.add_option("--state", state, "Where this device's experience, predictor and profile are kept (default: " +
                                       default_state + ")");
  app.add_flag("--plan-only", plan_only, "Print the plan and its alternatives as JSON and exit without training");
  app.add_flag("--probe", probe, "Score each model's frozen features on a sample of the task (LogME) while planning");
  app.add_flag("--no-record", no_record, "Do not record the outcome as this device's experience");
  int min_experience = nasoa::AdapterOptions{}.min_experience;
  app.add_option("--min-experience", min_experience, "Evaluated records the predictor needs before its plan is "
                                                     "followed; below, the default plan")
      ->check(nasoa_samples::non_negative_integer())->capture_default_str();
  // The fields the planner chooses; giving any of them skips planning.
  CLI::Option* regime_flags[] = {
      app.add_option("--model", regime.model, "Zoo model (default: the zoo's first)"),
      app.add_option("--lr", regime.learning_rate, "Peak learning rate")->capture_default_str(),
      app.add_option("--epochs", regime.epochs, "Epochs")->capture_default_str(),
      app.add_option("--frozen", regime.frozen_stages, "Frozen stages, stem = stage 0")->capture_default_str(),
      app.add_option("--batch", regime.batch_size, "Batch size")->capture_default_str()};
  app.add_option("--seed", regime.seed, "Seed of split, head and augmentation")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            errno = 0;
            char* end = nullptr;
            std::strtoull(text.c_str(), &end, 10);
            if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || *end != '\0' ||
                errno == ERANGE)
              return "expected a whole number from 0 to 2^64 - 1, got " + text;
            return {};
          },
          "UINT"))
      ->capture_default_str();
  std::string optimizer = "sgd", schedule = "cosine";
  bool no_crop = false, flip = false;
  app.add_option("--optimizer", optimizer, "sgd or adamw")->check(CLI::IsMember({"sgd", "adamw"}))->capture_default_str();
  app.add_option("--schedule", schedule, "cosine (with warm-up) or step")->check(CLI::IsMember({"cosine", "step"}))->capture_default_str();
  app.add_option("--weight-decay", regime.weight_decay, "Weight decay")->capture_default_str();
  app.add_option("--label-smoothing", regime.label_smoothing, "Label smoothing")->capture_default_str();
  app.add_flag("--no-crop", no_crop, "No random resized crop");
  app.add_flag("--flip,!--no-flip", flip,
               "Random horizontal flips (off by default: mirroring changes the class of text, digits and signs)");
  app.add_option("--validation", validation, "Folder of class subfolders used for validation instead of a split");
  app.add_option("--threads", threads, "Compute threads (default: on the CPU the cores less the batch loaders, a quarter of them; with a GPU one per core)")
      ->check(CLI::Range(0, 4096));
  app.add_option("--watts", watts, "Power to assume when no energy meter reads")->check(nasoa_samples::finite_number(0, false));
  std::string profile;
  app.add_option("--profile", profile, "Device profile from nasoa-profile (default: when planning, the one kept in the "
                                       "state directory, measured on first use; with a regime given by hand, the "
                                       "one kept there if any, never measured, else none)");
  app.add_option("--device", device, "auto, cpu or cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}))->capture_default_str();
  app.add_option("--memory-layout", memory_layout,
                 "Layout to train in on the CPU: auto (the faster for the model here), channels-first or channels-last")
      ->check(CLI::IsMember({"auto", "channels-first", "channels-last"}))
      ->capture_default_str();
  app.add_flag("--resume", resume, "Continue a killed run from OUT.checkpoint");
  bool fixed_schedule = false;
  app.add_flag("--fixed-schedule", fixed_schedule,
               "Follow the regime's epochs even when they prove slower than the budget allows (the budget then cuts "
               "the run); by default the learning-rate schedule is fitted to end in time");
  std::string hand_back = nasoa::to_string(nasoa::AdapterOptions{}.hand_back);
  app.add_option("--hand-back", hand_back,
                 "Which evaluated weights to save: best-validated (the epoch of the highest validation accuracy), "
                 "latest-within-noise (the latest epoch within one standard error of it) or last")
      ->check(CLI::IsMember({"best-validated", "latest-within-noise", "last"}))
      ->capture_default_str();
  app.add_option("--checkpoint-every", checkpoint_every, "Seconds of training a kill may lose at most")
      ->check(nasoa_samples::finite_number(0, true))->capture_default_str();
  app.add_flag("--quiet", quiet, "No progress bar");
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  regime.optimizer = nasoa::parse_optimizer(optimizer);
  regime.schedule = nasoa::parse_schedule(schedule);
  regime.random_resized_crop = !no_crop;
  regime.horizontal_flip = flip;
  bool given = false;
  for (const CLI::Option* o : regime_flags) given = given || o->count() > 0;
  // The regime's own rules, before the task is read: reading a large folder
  // takes minutes, and a bad --lr is a bad argument, not a failed run.
  try {
    nasoa::Regime rules = regime;
    if (rules.model.empty()) rules.model = "planned";  // chosen later, by the planner or as the zoo's first
    nasoa::validate(rules);
  } catch (const nasoa::Error& e) {
    std::cerr << "nasoa-adapt: " << e.what() << "\n";
    return 2;
  }
  if (plan_only && given) {
    std::cerr << "nasoa-adapt: --plan-only plans the regime; leave out --model, --lr, --epochs, --frozen and --batch\n";
    return 2;
  }
  if (app.get_option("--budget")->count() == 0 && !(budget.joules > 0)) {
    std::cerr << "nasoa-adapt: give a budget: --budget SECONDS, --energy JOULES, or both\n";
    return 2;
  }
  if (plan_only && resume) {
    std::cerr << "nasoa-adapt: --plan-only trains nothing, so there is nothing to resume\n";
    return 2;
  }
  if (!plan_only && out.empty()) {
    std::cerr << "nasoa-adapt: --out is required (except with --plan-only)\n";
    return 2;
  }
  if (app.get_option("--state")->count() > 0 && state.empty()) {
    std::cerr << "nasoa-adapt: --state is empty; leave it out for the default (" << default_state << ")\n";
    return 2;
  }
  if (app.get_option("--model")->count() > 0 && regime.model.empty()) {
    std::cerr << "nasoa-adapt: --model is empty; name a model of the zoo\n";
    return 2;
  }
  if (data.empty() && idx.empty()) {
    std::cerr << "nasoa-adapt: give the task: --data FOLDER_OR_CSV, or --idx IMAGES LABELS\n";
    return 2;
  }
  const std::string idx_images = idx.empty() ? "" : idx[0], idx_labels = idx.empty() ? "" : idx[1];
  if (!validation.empty() && !data.empty() &&
      (nasoa_samples::is_within(validation, data) || nasoa_samples::is_within(data, validation))) {
    std::cerr << "nasoa-adapt: --validation " << validation << " and --data " << data
              << " overlap: validation would measure training images; give a folder of its own\n";
    return 2;
  }
  if (!plan_only) {
    // A model folder inside the task would be read as a class next time;
    // inside the zoo, it would be deleted with the zoo's next update.
    const std::string clash = nasoa_samples::output_clash(
        "--out", out, {{"--zoo", zoo_dir}, {"--data", data}, {"--validation", validation}});
    if (!clash.empty()) {
      std::cerr << "nasoa-adapt: " << clash << "\n";
      return 2;
    }
  }
  if (app.get_option("--report")->count() > 0 && report.empty()) {
    std::cerr << "nasoa-adapt: --report is empty; name a file, or leave it out\n";
    return 2;
  }
  // The state folder this run uses (the default one when none is given).
  const std::string state_used = !state.empty() ? state : home_state;
  if (const std::string problem = nasoa_samples::state_folder_problem(
          state_used, {{"--zoo", zoo_dir}, {"--data", data}, {"--idx", idx_images}, {"--idx", idx_labels},
                       {"--validation", validation}});
      !problem.empty()) {
    std::cerr << "nasoa-adapt: " << problem << "\n";
    return 2;
  }
  if (!plan_only) {
    // Fine-tuning replaces the --out folder whole: what the device learned
    // must not be inside it.
    for (const auto& [option, path] : {std::pair<std::string, std::string>{"--state", state_used}, {"--profile", profile}})
      if (!path.empty() && nasoa_samples::is_within(path, out)) {
        std::cerr << "nasoa-adapt: " << option << " " << path << " is inside --out " << out
                  << ", which fine-tuning replaces; keep it elsewhere\n";
        return 2;
      }
  }
  if (!plan_only && !report.empty()) {
    // The report must not replace the device's experience or its profile.
    const std::string clash =
        nasoa_samples::output_clash("--report", report,
                                    {{"--zoo", zoo_dir}, {"--data", data}, {"--idx", idx_images}, {"--idx", idx_labels},
                                     {"--validation", validation}, {"--out", out},
                                     {"--state", state_used}, {"--profile", profile}});
    if (!clash.empty()) {
      std::cerr << "nasoa-adapt: " << clash << "\n";
      return 2;
    }
    if (const std::string problem = nasoa_samples::output_file_problem("--report", report); !problem.empty()) {
      std::cerr << "nasoa-adapt: " << problem << "\n";
      return 2;
    }
  }
  // OUT.plan.json goes beside OUT, as the SDK's OUT.checkpoint does: "m",
  // "m/" and "m/." all name the folder m.
  std::filesystem::path out_folder = std::filesystem::path(out).lexically_normal();
  if (out_folder.filename().empty()) out_folder = out_folder.parent_path();
  const std::string beside = out_folder.string();
  const std::string plan_file = beside + ".plan.json";

  try {
    const nasoa::Zoo zoo = nasoa::Zoo::open(zoo_dir);
    if (zoo.models().empty()) throw nasoa::Error(nasoa::ErrorCode::kInvalidArgument, zoo_dir + ": the zoo has no models");
    // A resumed planned run trains what its plan said, not what planning would say now.
    std::optional<nasoa::Plan> saved;
    if (!given && resume) {
      std::ifstream probe_file(plan_file);
      if (!probe_file)
        throw nasoa::Error(nasoa::ErrorCode::kNotFound,
                           "no checkpoint of a planned run to resume: " + plan_file + " is missing");
      saved = nasoa_samples::read_saved_plan(plan_file);
      // The resumed run keeps its plan, and the plan was made for its budget.
      // Both are what the command line gave: a mismatch is a bad argument.
      if (saved->budget_seconds != budget.seconds || saved->budget_joules != budget.joules ||
          saved->budget_memory_mib != budget.memory_mib) {
        std::cerr << "nasoa-adapt: " << plan_file << " was planned for --budget "
                  << nlohmann::json(saved->budget_seconds).dump() << " --energy "
                  << nlohmann::json(saved->budget_joules).dump() << " --memory " << saved->budget_memory_mib
                  << "; resume with the same budget\n";
        return 2;
      }
      // And for its zoo: one without the planned model is another --zoo.
      try {
        (void)zoo.model(saved->best.regime.model);
      } catch (const nasoa::Error& e) {
        if (e.code() != nasoa::ErrorCode::kNotFound) throw;
        std::cerr << "nasoa-adapt: " << plan_file << " planned model '" << saved->best.regime.model
                  << "', which --zoo " << zoo_dir << " does not have: resume with the --zoo the run was planned with\n";
        return 2;
      }
    }
    if (given && regime.model.empty()) regime.model = zoo.models().front().name;
    if (given) {
      try {
        (void)zoo.model(regime.model);  // its error names the bundle's models
      } catch (const nasoa::Error& e) {
        if (e.code() != nasoa::ErrorCode::kNotFound) throw;
        std::cerr << "nasoa-adapt: --model: " << nasoa_samples::one_line(e.what()) << "\n";
        return 2;
      }
      // Known only once the model is: a usage error too, not a failed run.
      const int stages = nasoa::Encoding::parse(zoo.model(regime.model).encoding).num_stages();
      if (regime.frozen_stages > stages) {
        std::cerr << "nasoa-adapt: --frozen " << regime.frozen_stages << ": model '" << regime.model << "' has "
                  << stages << " stages (stem included); give 0 to " << stages << "\n";
        return 2;
      }
    }
    const std::string side_model = given ? regime.model : saved ? saved->best.regime.model : zoo.models().front().name;
    nasoa::AdapterOptions options;
    options.threads = threads;
    options.estimate_watts = watts;
    options.device_profile = profile;
    options.checkpoint_interval_seconds = checkpoint_every;
    options.state_dir = state;
    options.probe = probe;
    options.fit_schedule = !fixed_schedule;
    options.hand_back = nasoa::parse_weights_choice(hand_back);
    options.min_experience = min_experience;
    options.device = nasoa::parse_device_preference(device);
    options.memory_layout = nasoa::parse_memory_layout_preference(memory_layout);
    // Before the task is read (its time counts in the budget).
    std::optional<nasoa::Adapter> made =
        nasoa_samples::make_adapter("nasoa-adapt", zoo, options, nasoa_samples::kAdapterFlagNames);
    if (!made) return 2;
    nasoa::Adapter& adapter = *made;
    // Reading the task counts in an energy budget too, as it does in the
    // time budget: from here on as the meter fine-tuning reads measures it,
    // or at --watts from the process's start, as the clock counts.
    std::optional<nasoa::EnergyWatch> watch(std::in_place, options, started);
    if (!plan_only) adapter.check_out_dir(out);  // before planning, which may measure the device
    nasoa::TaskOptions task_options;
    task_options.image_side = zoo.model(side_model).input_size;
    task_options.validation_dir = validation;
    task_options.threads = threads;
    if (budget.memory_mib > 0) task_options.memory_cap_bytes = budget.memory_mib * 1024 * 1024 / 2;
    // Reading counts in the budget: a folder of huge photos must not run past
    // it. (At least a second, within the guarantee's 2 s of grace: a budget
    // too small to train is the Adapter's to refuse, naming the budget.)
    if (budget.seconds > 0) task_options.time_limit_seconds = std::max(1.0, budget.seconds - seconds_since(started));
    // A file is a CSV list whatever its extension's case; a folder is a task
    // folder even when its name ends in .csv.
    std::error_code kind_ec;
    const bool csv = std::filesystem::is_regular_file(data, kind_ec) ||
                     (!std::filesystem::is_directory(data, kind_ec) && data.size() > 4 &&
                      std::equal(data.end() - 4, data.end(), ".csv", [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; }));
    const nasoa::Task task = !idx.empty() ? nasoa::Task::from_idx(idx_images, idx_labels, idx_class_names, task_options)
                             : csv        ? nasoa::Task::from_csv(data, task_options)
                                          : nasoa::Task::from_folder(data, task_options);
    if (!quiet)
      std::cerr << "task: " << task.size() << " images in " << task.class_names().size() << " classes ("
                << task.skipped().size() << " files skipped), read in " << task.ingest_seconds() << " s\n";
    // --plan-only writes no report: what was skipped, and why, is said here.
    if (plan_only && !quiet)
      for (const nasoa::SkippedFile& f : task.skipped())
        std::cerr << "skipped: " << nasoa_samples::one_line(f.path) << ": " << f.reason << "\n";

    nasoa::Plan plan;
    if (saved) {
      plan = *saved;
      plan.planning_seconds = 0;  // this process did not plan (fine_tune with resume does not count it either)
      plan.planning_joules = 0;
    } else if (!given) {
      budget.spent_seconds = seconds_since(started);
      budget.spent_joules = watch->joules();
      plan = adapter.plan(task, budget, regime);
      if (plan_only) {
        std::cout << plan.to_json();
        if (!nasoa_samples::standard_output_written()) {
          std::cerr << "nasoa-adapt: cannot write the plan to standard output\n";
          return 1;
        }
        return 0;
      }
      print_plan(std::cout, plan);
      std::cout << std::flush;
      write_text(plan_file, plan.to_json());
    } else {
      plan.best.regime = regime;
      plan.budget_seconds = budget.seconds;
      plan.budget_joules = budget.joules;
      plan.budget_memory_mib = budget.memory_mib;
      // A plan a killed planned run left would make a later --resume (without
      // regime flags) take this run's checkpoint for its own. Removed only
      // now, as training starts: a run that fails before keeps it.
      if (!resume) std::remove(plan_file.c_str());
    }

    // Everything since the start counts: fine_tune(task, plan, ...) adds the
    // planning seconds to what is spent here.
    budget.spent_seconds = std::max(0.0, seconds_since(started) - plan.planning_seconds);
    // The watch measured planning too, which the plan's planning_joules hold.
    budget.spent_joules = std::max(0.0, watch->joules() - plan.planning_joules);
    watch.reset();  // fine-tuning measures from here
    const nasoa::ProgressCallback progress = quiet ? nasoa::ProgressCallback{} : print_progress;
    const nasoa::Result r = [&] {
      try {
        return given ? adapter.fine_tune(task, regime, budget, out, progress, resume)
                     : adapter.fine_tune(task, plan, budget, out, progress, resume);
      } catch (...) {
        // The plan file serves --resume, which needs the checkpoint too.
        std::error_code ec;
        if (!given && !std::filesystem::exists(beside + ".checkpoint", ec)) std::remove(plan_file.c_str());
        throw;
      }
    }();
    if (!quiet) std::cerr << '\n';
    if (!given) std::remove(plan_file.c_str());  // the model is saved; the plan has served

    bool recorded = false;
    std::string not_recorded = no_record ? "--no-record" : "";
    if (!no_record) {
      try {
        recorded = adapter.record(task, plan, r);
        if (!recorded)
          not_recorded = r.stop_reason == "completed" || r.stop_reason.rfind("diverged", 0) == 0
                             ? "this result was recorded before"
                             : "the " + r.stop_reason + " cut the run short before any epoch was evaluated";
      } catch (const nasoa::Error& e) {
        not_recorded = e.what();
        std::cerr << "nasoa-adapt: warning: the outcome was not recorded: " << e.what() << '\n';
      }
    }

    std::string report_error;
    if (!report.empty()) {
      nlohmann::json j = report_json(task, r);
      j["plan"] = nlohmann::json::parse(plan.to_json());
      j["predicted_accuracy"] = plan.best.predicted_accuracy ? nlohmann::json(*plan.best.predicted_accuracy) : nlohmann::json();
      j["predicted_std"] = plan.best.predicted_std ? nlohmann::json(*plan.best.predicted_std) : nlohmann::json();
      // What the predictor predicts: the run's highest validation accuracy
      // (the saved weights', validation_accuracy, may be a little lower).
      const std::optional<double> highest = nasoa_samples::highest_validation_accuracy(r);
      j["achieved_accuracy"] = highest ? nlohmann::json(*highest) : nlohmann::json();
      j["recorded"] = recorded;
      if (!recorded) j["not_recorded_because"] = not_recorded;
      j["state_dir"] = adapter.state_dir();
      // A file name that is not UTF-8 (a Latin-1 one) cannot go into JSON as
      // it is: such bytes are written as U+FFFD rather than lose the report.
      // A report that cannot be written (a full disk) fails the command,
      // but after the summary: the model is saved and the run recorded.
      try {
        write_text(report, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
      } catch (const nasoa::Error& e) {
        report_error = e.what();
      }
    }

    char accuracy[64] = "not evaluated";
    if (r.validation_accuracy >= 0)
      std::snprintf(accuracy, sizeof accuracy, "%.1f %% on validation", 100 * r.validation_accuracy);
    std::cout << "model:      " << r.regime.model << " (lr " << r.regime.learning_rate << ", batch "
              << r.regime.batch_size << ", " << r.regime.frozen_stages << " frozen stages)\n"
              << "accuracy:   " << accuracy
              << (r.best_epoch > 0 ? " (epoch " + std::to_string(r.best_epoch) + ")" : std::string())
              << (plan.best.predicted_accuracy ? ", predicted " + percent(plan.best.predicted_accuracy) : std::string())
              << "\n"
              << "time:       " << r.wall_seconds << " s" << time_limit_text(budget.seconds) << " (" << r.stop_reason
              << ", "
              << r.epochs.size() << " epochs, " << r.steps << " steps on " << r.device << ", " << r.memory_layout << ")\n"
              << "energy:     " << (r.energy_meter == "none" ? std::string("not measured (no meter here; --watts gives an estimate)")
                                                            : std::to_string(r.joules) + " J (" + r.energy_meter +
                                                                  (r.energy_measured ? ", measured)" : ")") +
                                                                  (r.spent_joules > 0 ? ", " + fixed2(r.spent_joules) +
                                                                                            " J of it before training"
                                                                                      : std::string()))
              << "\n"
              << (r.schedule_note.empty() ? std::string() : "schedule:   " + r.schedule_note + "\n")
              << (r.validation_note.empty() ? std::string() : "warning:    " + r.validation_note + "\n")
              << (r.energy_note.empty() ? std::string() : "            " + r.energy_note + "\n")
              << "saved to:   " << r.model_dir << "\n"
              << (r.checkpoint_note.empty() ? std::string() : "warning:    " + r.checkpoint_note + "\n")
              << "experience: " << (recorded ? "recorded in " + adapter.state_dir() : "not recorded (" + not_recorded + ")")
              << "\n";
    for (std::size_t i = 0; i < task.skipped().size() && i < 10; ++i)
      std::cout << "skipped:    " << nasoa_samples::one_line(task.skipped()[i].path) << ": " << task.skipped()[i].reason
                << "\n";
    if (task.skipped().size() > 10)
      std::cout << "skipped:    ... " << task.skipped().size() - 10 << " more" << (report.empty() ? " (--report FILE lists them all)" : " (see the report)") << "\n";
    if (!nasoa_samples::standard_output_written()) {
      std::cerr << "nasoa-adapt: cannot write the summary to standard output (the model is saved in " << r.model_dir
                << ")\n";
      return 1;
    }
    if (!report_error.empty()) {
      std::cerr << "nasoa-adapt: error: the report was not written: " << report_error << '\n';
      return 1;
    }
    return 0;
  } catch (const nasoa::Error& e) {
    std::cerr << "\nnasoa-adapt: error (" << nasoa::to_string(e.code())
              << "): " << nasoa_samples::in_flag_terms(e.what(), nasoa_samples::kAdapterFlagNames) << '\n';
    return 1;
  }
}
