// plan_bench: how long nasoa::Adapter::plan() takes, against the 1 % of the
// budget issue #5 allows planning.
//
// Three cases, alternated rep by rep:
//   first plan, new state    a new Adapter in an empty state directory (a
//                            device's first adapt, its profile given)
//   first plan, kept state   a new Adapter in a state directory an earlier
//                            process planned in (a process that plans once)
//   later plan               the same Adapter's next plan
// Opening the zoo and reading the task are timed apart (not planning).
// Given several bundles of the same models (one whose predictor carries the
// summary of its experience, one whose does not, say), it times each in
// turn within every rep.
//
//   plan_bench --zoo zoo/default [OTHER_BUNDLE ...] --profile bench/adaption/profile.json --task DIR
//              [--reps 15] [--budget 30]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench_support.h"
#include "nasoa/nasoa.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Times nasoa::Adapter::plan(): an Adapter's first plan (new and kept state) and its later ones"};
  std::vector<std::string> zoo_dirs;
  std::string profile, task_dir, scratch = "plan-bench-state";
  int reps = 15;
  double budget_seconds = 30;
  app.add_option("--zoo", zoo_dirs, "zoo bundles, timed in turn")->required();
  app.add_option("--profile", profile, "device profile of the zoo (nasoa-profile), so that no plan measures one")
      ->required();
  app.add_option("--task", task_dir, "task folder (class subfolders of images)")->required();
  app.add_option("--reps", reps, "repetitions of each case")->check(CLI::PositiveNumber);
  app.add_option("--budget", budget_seconds, "time budget of each plan, seconds")->check(CLI::PositiveNumber);
  app.add_option("--scratch", scratch, "folder for the state directories (emptied first)");
  CLI11_PARSE(app, argc, argv);

  try {
    fs::remove_all(scratch);
    // (bundle, case) -> seconds
    std::map<std::pair<std::string, std::string>, std::vector<double>> seconds;
    nasoa::Budget budget;
    budget.seconds = budget_seconds;
    std::map<std::string, std::size_t> records;
    std::map<std::string, std::string> chosen;
    for (int rep = 0; rep < reps; ++rep) {
      for (std::size_t z = 0; z < zoo_dirs.size(); ++z) {
        const std::string& zoo_dir = zoo_dirs[z];
        auto t = Clock::now();
        const nasoa::Zoo zoo = nasoa::Zoo::open(zoo_dir);
        seconds[{zoo_dir, "open the zoo"}].push_back(since(t));
        t = Clock::now();
        nasoa::TaskOptions task_options;
        task_options.image_side = zoo.models().front().input_size;
        const nasoa::Task task = nasoa::Task::from_folder(task_dir, task_options);
        seconds[{zoo_dir, "read the task"}].push_back(since(t));

        nasoa::AdapterOptions options;
        options.device_profile = profile;
        options.state_dir = (fs::path(scratch) / ("new-" + std::to_string(z) + "-" + std::to_string(rep))).string();
        {
          nasoa::Adapter adapter(zoo, options);
          t = Clock::now();
          const nasoa::Plan plan = adapter.plan(task, budget);
          seconds[{zoo_dir, "first plan, new state"}].push_back(since(t));
          records[zoo_dir] = plan.shipped_records;
          chosen[zoo_dir] = plan.best.regime.model;
        }
        fs::remove_all(options.state_dir);
        options.state_dir = (fs::path(scratch) / ("kept-" + std::to_string(z))).string();
        nasoa::Adapter adapter(zoo, options);
        t = Clock::now();
        adapter.plan(task, budget);
        // The kept state's first use is a new state's: it counts from rep 2.
        if (rep > 0) seconds[{zoo_dir, "first plan, kept state"}].push_back(since(t));
        t = Clock::now();
        adapter.plan(task, budget);
        seconds[{zoo_dir, "later plan"}].push_back(since(t));
      }
    }
    fs::remove_all(scratch);

    std::printf("# plan_bench: nasoa::Adapter::plan() on %s\n\n", nasoa::bench::cpu_model().c_str());
    std::printf("task %s, budget %g s, %d reps (kept state: %d), bundles alternated within each rep\n\n",
                task_dir.c_str(), budget_seconds, reps, reps - 1);
    std::printf("| bundle | case | median | min | max | median / budget | ratio to the first bundle |\n"
                "|---|---|---:|---:|---:|---:|---:|\n");
    for (const char* name : {"first plan, new state", "first plan, kept state", "later plan", "open the zoo",
                             "read the task"}) {
      const double first = nasoa::bench::median(seconds[{zoo_dirs.front(), name}]);
      for (const std::string& zoo_dir : zoo_dirs) {
        const std::vector<double>& v = seconds[{zoo_dir, name}];
        if (v.empty()) continue;
        const double m = nasoa::bench::median(v);
        std::printf("| %s | %s | %.3f s | %.3f s | %.3f s | %.2f %% | %.2fx |\n", zoo_dir.c_str(), name, m,
                    *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()),
                    100 * m / budget_seconds, first > 0 ? m / first : 0.0);
      }
    }
    std::printf("\n");
    for (const std::string& zoo_dir : zoo_dirs)
      std::printf("%s: %zu shipped experience records; planned model %s\n", zoo_dir.c_str(), records[zoo_dir],
                  chosen[zoo_dir].c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "plan_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
