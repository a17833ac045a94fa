// efficiency_bench: the paper's efficiency table at this project's scale.
//
//   efficiency_bench --zoo zoo/default --baselines zoo/baselines
//                    --tasks build/corpora/eval [--epochs 8] [--lr 0.03]
//                    [--batch 32] [--reps 5] [--threads N] [--out FILE.md]
//
// Every model of both bundles is fine-tuned on every evaluation task (each
// subfolder of --tasks) with one and the same regime, and its training step
// time is measured side by side with the others: --reps rounds, each timing
// every model once in turn (the fastest of 9 steps, runtime::time_training_steps
// at batch 64 and the bundle's input size, as the search measures), so that
// load on the machine falls on all alike; the median of the rounds is reported. The table gives encoding, parameters,
// MACs, step time, upstream accuracy, fine-tuning accuracy per task and its
// mean; then, for each baseline, the fastest zoo model at least as accurate
// on average and its speed-up, and whether the baseline lies above the zoo's
// front (a zoo model no slower reaches its mean accuracy, or not).
// Prints the table (and writes it as Markdown to --out); not a test.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "zoo/system/usable_cores.h"
#include "bench/bench_support.h"
#include "nasoa/encoding.h"
#include "runtime/data/image_store.h"
#include "runtime/data/split.h"
#include "runtime/data/task_source.h"
#include "runtime/profile/device_profile.h"
#include "runtime/train/fine_tuner.h"
#include "zoo/bundle/bundle.h"

namespace {

namespace fs = std::filesystem;
namespace rt = nasoa::runtime;
using Clock = std::chrono::steady_clock;

using nasoa::bench::cpu_model;
using nasoa::bench::median;

struct Row {
  std::string bundle_dir, kind;  // "zoo" or "baseline"
  nasoa::ModelInfo info;
  std::vector<double> step_rounds;
  std::vector<double> accuracy;  // per task
  double step() const { return median(step_rounds); }
  double mean_accuracy() const {
    double s = 0;
    for (double a : accuracy) s += a;
    return accuracy.empty() ? 0 : s / double(accuracy.size());
  }
};

double fine_tune_once(const Row& row, const rt::ImageStore& store, const nasoa::Regime& regime, int workers) {
  rt::FineTuneJob job;
  job.network = nasoa::zoo::load_network_for_task(row.bundle_dir, row.info,
                                                  static_cast<int>(store.class_names().size()), regime.seed);
  job.store = &store;
  job.regime = regime;
  job.regime.model = row.info.name;
  job.split = rt::stratified_split(store.labels(), regime.validation_fraction, regime.seed);
  job.mean = row.info.mean;
  job.std = row.info.std;
  job.fingerprint = "efficiency_bench";
  job.loader_workers = workers;
  return rt::fine_tune(job, rt::Limits(1e9, 0)).validation_accuracy;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"efficiency_bench: fine-tuning accuracy and training step time of the zoo against the baselines"};
  std::string zoo_dir, baselines_dir, tasks_dir, out;
  nasoa::Regime regime;
  regime.learning_rate = 0.03;
  regime.epochs = 8;
  regime.batch_size = 32;
  regime.horizontal_flip = false;  // glyph tasks: mirroring changes the class
  regime.seed = 1;
  int reps = 5, threads = 0, step_batch = 64;
  app.add_option("--zoo", zoo_dir, "The searched bundle")->required();
  app.add_option("--baselines", baselines_dir, "The hand-designed baselines bundle")->required();
  app.add_option("--tasks", tasks_dir, "Folder of evaluation tasks (each a folder of class subfolders)")->required();
  app.add_option("--epochs", regime.epochs, "Fine-tuning epochs")->capture_default_str();
  app.add_option("--lr", regime.learning_rate, "Fine-tuning peak learning rate")->capture_default_str();
  app.add_option("--batch", regime.batch_size, "Fine-tuning batch size")->capture_default_str();
  app.add_option("--step-batch", step_batch, "Batch size of the step timing")->capture_default_str();
  app.add_option("--reps", reps, "Rounds of step timing (median reported)")->capture_default_str();
  app.add_option("--threads", threads, "Compute threads (default: the cores less the batch loaders, a quarter of them)");
  app.add_option("--out", out, "Also write the table as Markdown here");
  CLI11_PARSE(app, argc, argv);

  const int cores = nasoa::zoo::usable_cores();
  const int workers = std::max(1, cores / 4);
  torch::set_num_threads(threads > 0 ? threads : std::max(1, cores - workers));
  const auto started = Clock::now();

  std::vector<Row> rows;
  for (const auto& [dir, kind] : {std::pair{zoo_dir, "zoo"}, std::pair{baselines_dir, "baseline"}}) {
    const nasoa::zoo::Manifest m = nasoa::zoo::open_bundle(dir);
    for (const nasoa::ModelInfo& info : m.models) rows.push_back({dir, kind, info, {}, {}});
  }
  std::vector<std::string> tasks;
  for (const auto& e : fs::directory_iterator(tasks_dir))
    if (e.is_directory()) tasks.push_back(e.path().filename().string());
  std::sort(tasks.begin(), tasks.end());

  // Step time: rounds over all models, so that the machine's load falls on all alike.
  for (int r = 0; r < reps; ++r)
    for (Row& row : rows) {
      nasoa::zoo::Network net = nasoa::zoo::load_network(row.bundle_dir, row.info);
      const std::vector<double> steps = rt::time_training_steps(*net, step_batch, row.info.input_size, 3, 9);
      row.step_rounds.push_back(*std::min_element(steps.begin(), steps.end()));
    }

  for (const std::string& task : tasks) {
    rt::IngestOptions ingest;
    ingest.side = rows.front().info.input_size;
    const rt::ImageStore store(rt::list_folder((fs::path(tasks_dir) / task).string()), ingest);
    for (Row& row : rows) {
      const auto t0 = Clock::now();
      row.accuracy.push_back(fine_tune_once(row, store, regime, workers));
      std::fprintf(stderr, "%-10s %-16s %6.2f %%  (%.0f s)\n", task.c_str(), row.info.name.c_str(),
                   100 * row.accuracy.back(), std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }

  std::ostringstream t;
  char line[1024];
  t << "Machine: " << cpu_model() << ", " << cores << " logical CPUs, " << torch::get_num_threads()
    << " compute thread(s), " << workers << " loader thread(s); LibTorch CPU.\n"
    << "Regime (all models): SGD momentum 0.9, lr " << regime.learning_rate << " cosine with warm-up, "
    << regime.epochs << " epochs, batch " << regime.batch_size << ", label smoothing 0.1, random resized crops, no flips, "
    << "seed 1, 20 % of each class held out.\n"
    << "Step time: forward+backward+update at batch " << step_batch << ", median of " << reps
    << " rounds (each the fastest of 9 steps), all models timed in turn each round.\n\n";
  t << "| model | kind | encoding | parameters | MACs | step ms | upstream top-1 |";
  for (const std::string& task : tasks) t << " " << task << " |";
  t << " mean FT top-1 |\n|---|---|---|---:|---:|---:|---:|";
  for (std::size_t i = 0; i < tasks.size(); ++i) t << "---:|";
  t << "---:|\n";
  for (const Row& row : rows) {
    std::snprintf(line, sizeof line, "| %s | %s | `%s` | %lld | %lld | %.2f | %.2f %% |", row.info.name.c_str(),
                  row.kind.c_str(), row.info.encoding.c_str(), static_cast<long long>(row.info.parameters),
                  static_cast<long long>(row.info.macs), 1000 * row.step(),
                  100 * row.info.upstream_accuracy.value_or(0));
    t << line;
    for (double a : row.accuracy) {
      std::snprintf(line, sizeof line, " %.2f %% |", 100 * a);
      t << line;
    }
    std::snprintf(line, sizeof line, " %.2f %% |\n", 100 * row.mean_accuracy());
    t << line;
  }
  t << "\n| baseline | mean FT top-1 | step ms | fastest zoo model at least as accurate | its mean | its step ms | speed-up | >= 1.5x | above the zoo's front |\n"
       "|---|---:|---:|---|---:|---:|---:|---|---|\n";
  int met = 0, baselines = 0;
  for (const Row& b : rows) {
    if (b.kind != "baseline") continue;
    ++baselines;
    const Row* best = nullptr;
    bool above = true;  // until a zoo model no slower is at least as accurate
    for (const Row& z : rows) {
      if (z.kind != "zoo") continue;
      if (z.mean_accuracy() >= b.mean_accuracy() && (!best || z.step() < best->step())) best = &z;
      if (z.step() <= b.step() && z.mean_accuracy() >= b.mean_accuracy()) above = false;
    }
    const double speedup = best ? b.step() / best->step() : 0;
    if (best && speedup >= 1.5) ++met;
    std::snprintf(line, sizeof line, "| %s | %.2f %% | %.2f | %s | %s | %s | %s | %s | %s |\n", b.info.name.c_str(),
                  100 * b.mean_accuracy(), 1000 * b.step(), best ? best->info.name.c_str() : "none",
                  best ? (std::to_string(100 * best->mean_accuracy()).substr(0, 5) + " %").c_str() : "-",
                  best ? std::to_string(1000 * best->step()).substr(0, 6).c_str() : "-",
                  best ? (std::to_string(speedup).substr(0, 4) + "x").c_str() : "-", best && speedup >= 1.5 ? "yes" : "no",
                  above ? "yes" : "no");
    t << line;
  }
  t << "\nTarget (some zoo model at least as accurate and >= 1.5x faster per step): met for " << met << " of "
    << baselines << " baselines. Wall time of this benchmark: "
    << static_cast<long>(std::chrono::duration<double>(Clock::now() - started).count()) << " s.\n";
  std::cout << t.str();
  if (!out.empty()) std::ofstream(out) << t.str();
  return 0;
}
