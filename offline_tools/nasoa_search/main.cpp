// nasoa-search: NASOA's joint block-level and macro-level architecture search
// for networks that are efficient to train.
//
//   nasoa-search --corpus DIR --state DIR --out DIR [options]
//   mpirun -np N nasoa-search ...   (rank 0 drives, every rank evaluates)
//
// Every candidate is evaluated on this machine: its training step time at the
// proxy batch and input size, and its held-out accuracy after a short proxy
// training on a sample of the upstream corpus (offline_tools/search). The
// search state is saved after every batch of evaluations into --state, so a
// killed search started again with the same options resumes where it stopped.
// The outputs in --out: evaluations.csv (every candidate with its seed and
// cost; a failed one with the reason), front.csv, baselines.csv (the
// --baseline networks, evaluated the same way), selected.csv (--select models
// spread over the front, named for the zoo) and front.png (accuracy against
// step time, baselines on the same axes).
//
// Exit status: 0 success, 1 a failed operation (the reason on stderr),
// 2 bad arguments.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/version.h"
#include "offline_tools/search/proxy_evaluator.h"
#include "offline_tools/search/report.h"
#include "offline_tools/search/search.h"
#include "samples/common/command_line.h"
#include "samples/common/text_file.h"
#include "samples/common/output_path.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/system/usable_cores.h"

#ifdef NASOA_WITH_MPI
#include <mpi.h>
#endif

namespace {

using nasoa::Error;
using nasoa::ErrorCode;
using nasoa::search::Evaluation;
using nasoa::search::NamedEvaluation;
using Json = nlohmann::json;

struct Args {
  std::string corpus, state, out;
  nasoa::search::SearchOptions search;
  nasoa::search::ProxyOptions proxy;
  std::vector<std::string> baselines;  // name=ENCODING
  int select = 6;
  int threads = 0;
  double max_step_ms = 0;
  std::string max_macs_text;
};

#ifdef NASOA_WITH_MPI
// Rank 0's evaluator: each batch is broadcast, rank r evaluates the
// candidates i with i % size == r, and the results are gathered back in order.
class MpiEvaluator : public nasoa::search::Evaluator {
 public:
  MpiEvaluator(nasoa::search::ProxyEvaluator& local, int rank, int size) : local_(local), rank_(rank), size_(size) {}

  std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) override {
    broadcast(Json{{"encodings", encodings}}.dump());
    return gather(evaluate_share(encodings));
  }

  void stop() { broadcast(Json{{"stop", true}}.dump()); }

  // Every rank reads the corpus itself (per-node copies on a cluster): one
  // that read another sample would evaluate its share on other heads and
  // images. Only rank 0's digest goes into the state, so each rank compares
  // its own with it; all ranks learn whether any differs, and stop together.
  void check_same_corpus_sample() {
    const std::string mine = local_.sample_digest() + " (" + std::to_string(local_.classes()) + " classes, pixel " +
                             local_.pixel_statistics() + ")";
    const std::string first = broadcast(mine);
    int same = mine == first ? 1 : 0, all_same = 0;
    MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (!same)
      std::cerr << "nasoa-search: rank " << rank_ << " read the corpus sample " << mine << ", rank 0 " << first << "\n";
    if (!all_same)
      throw Error(ErrorCode::kInvalidArgument,
                  "the ranks read different corpus samples from --corpus (rank 0: " + first +
                      "): give every rank the same corpus (a copy on each node must match rank 0's)");
  }

  // The loop of ranks other than 0: until rank 0 says stop.
  void serve() {
    for (;;) {
      const Json command = Json::parse(broadcast(""));
      if (command.contains("stop")) return;
      gather(evaluate_share(command.at("encodings").get<std::vector<std::string>>()));
    }
  }

 private:
  std::string broadcast(std::string text) {
    long long n = static_cast<long long>(text.size());
    MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    text.resize(static_cast<std::size_t>(n));
    MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, 0, MPI_COMM_WORLD);
    return text;
  }

  Json evaluate_share(const std::vector<std::string>& encodings) {
    Json mine = Json::array();
    for (std::size_t i = static_cast<std::size_t>(rank_); i < encodings.size(); i += static_cast<std::size_t>(size_))
      mine.push_back(Json{{"index", i}, {"evaluation", local_.evaluate_one(encodings[i])}});
    return mine;
  }

  // Rank 0 gets every rank's share and puts the results back in order.
  std::vector<Evaluation> gather(const Json& mine) {
    const std::string text = mine.dump();
    int length = static_cast<int>(text.size());
    std::vector<int> lengths(static_cast<std::size_t>(size_)), offsets(static_cast<std::size_t>(size_));
    MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
    std::string all;
    if (rank_ == 0) {
      int total = 0;
      for (int r = 0; r < size_; ++r) offsets[std::size_t(r)] = total, total += lengths[std::size_t(r)];
      all.resize(static_cast<std::size_t>(total));
    }
    MPI_Gatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(), MPI_CHAR, 0,
                MPI_COMM_WORLD);
    if (rank_ != 0) return {};
    std::map<std::size_t, Evaluation> by_index;
    for (int r = 0; r < size_; ++r)
      for (const Json& item : Json::parse(all.substr(std::size_t(offsets[std::size_t(r)]), std::size_t(lengths[std::size_t(r)]))))
        by_index[item.at("index").get<std::size_t>()] = item.at("evaluation").get<Evaluation>();
    std::vector<Evaluation> out;
    for (auto& [i, e] : by_index) out.push_back(std::move(e));
    return out;
  }

  nasoa::search::ProxyEvaluator& local_;
  int rank_, size_;
};
#endif

// Rank and size as the MPI launcher announces them; 0 and 1 when started alone.
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

// NAME and canonical ENCODING of a --baseline NAME=ENCODING. The name goes
// into a CSV column and the plot's legend, so it is kept to plain text.
std::pair<std::string, std::string> parse_baseline(const std::string& b) {
  const auto eq = b.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ErrorCode::kInvalidArgument, "--baseline '" + b + "': expected NAME=ENCODING");
  const std::string name = b.substr(0, eq);
  if (name.size() > 64 || std::any_of(name.begin(), name.end(), [](char c) {
        return c == ',' || c == '"' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
      }))
    throw Error(ErrorCode::kInvalidArgument, "--baseline '" + b.substr(0, 80) +
                                                 "': the name must be at most 64 characters, without commas, "
                                                 "quotes or control characters");
  return {name, nasoa::Encoding::parse(b.substr(eq + 1)).to_string()};
}

std::vector<NamedEvaluation> evaluate_baselines(const Args& a, nasoa::search::Evaluator& evaluator) {
  // Cached beside the search state, so a resumed run does not retrain them;
  // only under the evaluator settings they were made with, and only their
  // successes (a failure, out of memory say, is tried again).
  const std::string cache_path = (std::filesystem::path(a.state) / "baselines.json").string();
  Json cache = Json::object();
  try {
    if (std::filesystem::exists(cache_path)) {
      const Json file = Json::parse(nasoa::zoo::read_file(cache_path));
      if (!file.is_object()) throw Error(ErrorCode::kCorrupt, cache_path + ": not a JSON object");
      if (!file.contains("evaluations"))
        std::cerr << "baselines: " << cache_path << " is of an earlier version, which did not record the "
                  << "evaluator settings; evaluated again\n";
      else if (file.contains("evaluator") && file.at("evaluator") == a.search.evaluator)
        cache = file.at("evaluations");
      else
        std::cerr << "baselines: " << cache_path << " was made with other evaluator settings; evaluated again\n";
    }
    if (!cache.is_object()) throw Error(ErrorCode::kCorrupt, cache_path + ": field evaluations is not a JSON object");
    for (const auto& [encoding, evaluation] : cache.items()) (void)evaluation.get<Evaluation>();
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kCorrupt, cache_path + ": " + e.what() + " (remove it to evaluate the baselines again)");
  }
  std::vector<std::string> names, encodings, missing;
  for (const std::string& b : a.baselines) {
    const auto [name, encoding] = parse_baseline(b);
    names.push_back(name);
    encodings.push_back(encoding);
    if (!cache.contains(encoding) &&
        std::find(missing.begin(), missing.end(), encoding) == missing.end())
      missing.push_back(encoding);
  }
  std::map<std::string, Evaluation> failed;
  if (!missing.empty()) {
    std::cerr << "baselines: evaluating " << missing.size() << "\n";
    for (const Evaluation& e : evaluator.evaluate(missing)) {
      if (e.ok()) cache[e.encoding] = e;
      else failed[e.encoding] = e;
    }
    nasoa::zoo::write_file_atomic(cache_path, Json{{"evaluator", a.search.evaluator}, {"evaluations", cache}}.dump(1));
  }
  std::vector<NamedEvaluation> out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    Evaluation e = cache.contains(encodings[i]) ? cache.at(encodings[i]).get<Evaluation>() : failed.at(encodings[i]);
    if (!e.ok()) {
      std::cerr << "baseline " << names[i] << " (" << encodings[i] << ") left out: " << e.error << "\n";
      continue;
    }
    out.push_back({names[i], std::move(e)});
  }
  return out;
}

int drive(const Args& a, nasoa::search::Evaluator& evaluator) {
  const auto started = std::chrono::steady_clock::now();
  auto log = [](const std::string& line) { std::cerr << line << std::endl; };
  const nasoa::search::SearchResult result = nasoa::search::run_search(a.search, evaluator, a.state, log);
  const std::vector<NamedEvaluation> baselines = evaluate_baselines(a, evaluator);

  std::filesystem::create_directories(a.out);
  const auto path = [&](const char* name) { return (std::filesystem::path(a.out) / name).string(); };
  std::vector<NamedEvaluation> all, front, selected;
  // Failures too (a step above --max-step-ms, out of memory), with why.
  for (const Evaluation& e : result.attempted) all.push_back({"candidate", e});
  for (std::size_t i = 0; i < result.front.size(); ++i) front.push_back({"front-" + std::to_string(i + 1), result.front[i]});
  const std::vector<Evaluation> chosen = nasoa::search::spread_over_front(result.front, a.select);
  for (std::size_t i = 0; i < chosen.size(); ++i) selected.push_back({"nasoa-" + std::to_string(i + 1), chosen[i]});
  nasoa::search::write_csv(path("evaluations.csv"), all, /*error_column=*/true);
  nasoa::search::write_csv(path("front.csv"), front);
  nasoa::search::write_csv(path("baselines.csv"), baselines);
  nasoa::search::write_csv(path("selected.csv"), selected);
  nasoa::search::write_front_plot(path("front.png"), result.evaluated, result.front, selected, baselines,
                                  "nasoa-search: " + std::to_string(result.evaluated.size()) + " candidates");

  double cost = 0;
  for (const Evaluation& e : result.attempted) cost += e.cost_seconds;
  std::cout << "evaluated:  " << result.evaluated.size() << " candidates (" << static_cast<long>(cost)
            << " s of evaluation), " << result.attempted.size() - result.evaluated.size() << " failed, "
            << result.generations_done << " generation(s)\n"
            << "front:      " << result.front.size() << " networks\n";
  for (const NamedEvaluation& s : selected)
    std::printf("  %-9s %-40s %6.2f %%  %8.2f ms\n", s.name.c_str(), s.evaluation.encoding.c_str(),
                100 * s.evaluation.accuracy, 1000 * s.evaluation.step_seconds);
  for (const NamedEvaluation& b : baselines)
    std::printf("  %-16s %-40s %6.2f %%  %8.2f ms (baseline)\n", b.name.c_str(), b.evaluation.encoding.c_str(),
                100 * b.evaluation.accuracy, 1000 * b.evaluation.step_seconds);
  std::cout << "time:       "
            << static_cast<long>(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count())
            << " s; outputs in " << a.out << "\n";
  return 0;
}

// The process count another launcher than Open MPI's announces (MPICH's and
// Intel MPI's mpiexec: PMI_SIZE; Slurm's srun: SLURM_NTASKS), with the
// variable's name; nothing when there is none or one process.
std::optional<std::pair<std::string, int>> other_launcher_processes() {
  for (const char* name : {"PMI_SIZE", "SLURM_NTASKS"})
    if (const int n = env_int(name, 1); n > 1) return std::pair<std::string, int>{name, n};
  return std::nullopt;
}

int run(Args a) {
  // Ranks are read from Open MPI's variables. Started by another launcher,
  // every process would take itself for the only one and run the whole
  // search into the same --state.
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr)
    if (const auto other = other_launcher_processes())
      throw nasoa_samples::BadArguments(
          "started as one of " + std::to_string(other->second) + " processes (" + other->first + "=" +
          std::to_string(other->second) +
          "), not by Open MPI's mpirun: nasoa-search shares a search between processes started by mpirun only; "
          "start it with mpirun -np " + std::to_string(other->second) + ", or as a single process");
  const int rank = env_int("OMPI_COMM_WORLD_RANK", 0), size = env_int("OMPI_COMM_WORLD_SIZE", 1);
  const int local_ranks = std::max(1, env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1));
  // Refused now, not after reading the corpus (or after the hours of search),
  // as bad arguments.
  nasoa_samples::checking_arguments([&] {
    if (!a.max_macs_text.empty()) {
      // 1e6 and 1000000 alike; not a silent 1 from "1e6", nor 100000 from "100000x".
      char* end = nullptr;
      const double v = std::strtod(a.max_macs_text.c_str(), &end);
      if (end == a.max_macs_text.c_str() || *end != '\0' || !(v >= 0) || v > 9e18 || v != std::floor(v))
        throw nasoa_samples::BadArguments("--max-macs '" + a.max_macs_text +
                                          "': expected a whole number of MACs, e.g. 5e8");
      a.search.max_macs = static_cast<std::int64_t>(v);
    }
    nasoa::search::validate_search_options(a.search);
    for (const std::string& b : a.baselines) parse_baseline(b);
    // Written inside the corpus, the state or the outputs would be read as a
    // class by the resumed run.
    for (const auto& [option, path] : {std::pair<std::string, std::string>{"--state", a.state}, {"--out", a.out}})
      if (const std::string clash = nasoa_samples::output_clash(option, path, {{"--corpus", a.corpus}}); !clash.empty())
        throw nasoa_samples::BadArguments(clash);
    std::error_code ec;
    if (std::filesystem::exists(a.out, ec) && !std::filesystem::is_directory(a.out, ec))
      throw nasoa_samples::BadArguments("--out " + a.out + ": exists and is not a folder");
  });
  a.proxy.max_step_seconds = a.max_step_ms / 1000;
  a.proxy.rank = rank;
  // The ranks on one machine share its cores; compute and batch-loading
  // threads together never exceed a rank's share (LibTorch's threads spin).
  const int cores = nasoa::zoo::usable_cores();
  const int share = std::max(1, cores / local_ranks);
  a.proxy.loader_workers = std::max(1, share / 4);
  torch::set_num_threads(a.threads > 0 ? a.threads : std::max(1, share - a.proxy.loader_workers));

  nasoa::search::ProxyEvaluator local(a.corpus, a.proxy);
  a.search.classes = local.classes();
  a.search.input_size = a.proxy.input_size;
  // What decides an evaluation's numbers; the state refuses a resume under
  // others. The compute threads and the device set the step times (and, with
  // more than one thread, may change a float sum's order, so the accuracy).
  const bool on_cuda = a.proxy.use_cuda && torch::cuda::is_available();
  nlohmann::json evaluator{{"input", a.proxy.input_size},
                           {"batch", a.proxy.batch_size},
                           {"proxy_epochs", a.proxy.epochs},
                           {"proxy_lr", a.proxy.learning_rate},
                           {"train_per_class", a.proxy.train_per_class},
                           {"validation_per_class", a.proxy.validation_per_class},
                           {"timing_warmup", a.proxy.timing_warmup},
                           {"timing_repetitions", a.proxy.timing_repetitions},
                           {"max_step_ms", a.max_step_ms},
                           {"cuda", on_cuda},
                           {"corpus_pixels", local.pixel_statistics()},
                           {"corpus_sample", local.sample_digest()}};
  // On a GPU the compute threads do not time the steps.
  if (!on_cuda) evaluator["compute_threads"] = torch::get_num_threads();
  a.search.evaluator = evaluator.dump();
  if (rank == 0) {
    std::cerr << "corpus sample: " << local.classes() << " classes, " << local.train_images() << " training and "
              << local.validation_images() << " held-out images; " << size << " process(es), "
              << torch::get_num_threads() << " compute thread(s) each\n";
    for (const std::string& line : nasoa_samples::skipped_lines(local.skipped()))
      std::cerr << "corpus sample: " << line << "\n";
    for (const std::string& name : local.classes_without_training())
      std::cerr << "corpus sample: warning: class '" << nasoa_samples::one_line(name) << "' has no more than "
                << a.proxy.validation_per_class
                << " images (--validation-per-class), all held out: no candidate trains on it\n";
  }
  if (size == 1) return drive(a, local);
#ifdef NASOA_WITH_MPI
  MpiEvaluator mpi(local, rank, size);
  mpi.check_same_corpus_sample();
  if (rank != 0) {
    mpi.serve();
    return 0;
  }
  int status = 1;
  try {
    status = drive(a, mpi);
  } catch (...) {
    mpi.stop();
    throw;
  }
  mpi.stop();
  return status;
#else
  throw Error(ErrorCode::kInvalidArgument, "started by an MPI launcher with " + std::to_string(size) +
                                           " processes, but this nasoa-search was built without MPI");
#endif
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nasoa-search: joint block- and macro-level search for networks fast to train (nasoa " NASOA_VERSION_STRING ")"};
  Args a;
  a.search.space.c0_choices = {8, 12, 16, 24, 32};
  a.search.space.min_blocks = 3;
  a.search.space.max_blocks = 12;
  a.search.space.min_stages = 2;
  a.search.space.max_stages = 4;
  a.search.space.max_channels = 512;
  app.add_option("--corpus", a.corpus, "Upstream corpus: a folder of class subfolders")->required();
  app.add_option("--state", a.state, "Folder of the resumable search state")->required();
  app.add_option("--out", a.out, "Folder for the CSV tables and the plot")->required();
  app.add_option("--seed", a.search.seed, "Seed of the search and of every proxy training")
      ->check(nasoa_samples::non_negative_integer())  // "-1" would otherwise wrap to 2^64 - 1
      ->capture_default_str();
  app.add_option("--input", a.proxy.input_size, "Input side in pixels")->check(CLI::Range(8, 1024))->capture_default_str();
  app.add_option("--batch", a.proxy.batch_size, "Batch size of the timing and the proxy training")->check(CLI::Range(1, 4096))->capture_default_str();
  app.add_option("--proxy-epochs", a.proxy.epochs, "Epochs of the proxy training")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--proxy-lr", a.proxy.learning_rate, "Peak learning rate of the proxy training")->check(nasoa_samples::finite_number(0, true))->capture_default_str();
  app.add_option("--train-per-class", a.proxy.train_per_class, "Corpus images per class trained on")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--validation-per-class", a.proxy.validation_per_class, "Corpus images per class held out")->check(CLI::Range(1, 1000000))->capture_default_str();
  app.add_option("--timing-repetitions", a.proxy.timing_repetitions, "Timed steps per candidate (the fastest counts)")->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--block-samples", a.search.block_samples, "Random blocks evaluated at the block level")->capture_default_str();
  app.add_option("--seed-block", a.search.seed_blocks, "A block evaluated besides the random ones (repeatable)");
  app.add_option("--keep-blocks", a.search.keep_blocks, "Blocks carried into the macro level")->capture_default_str();
  app.add_option("--reference-macro", a.search.reference_macro, "Macro of the block level")->capture_default_str();
  app.add_option("--reference-c0", a.search.reference_c0, "C0 of the block level")->capture_default_str();
  app.add_option("--population", a.search.population, "Macro-level population")->capture_default_str();
  app.add_option("--generations", a.search.generations, "Macro-level generations")->capture_default_str();
  app.add_option("--children", a.search.children, "Children per generation")->capture_default_str();
  app.add_option("--batch-evaluations", a.search.batch, "Block-level evaluations between two state saves")->capture_default_str();
  app.add_option("--c0", a.search.space.c0_choices, "C0 choices")
      ->delimiter(',')->check(nasoa_samples::list_values())->capture_default_str();
  app.add_option("--min-blocks", a.search.space.min_blocks, "Fewest blocks of a macro")->capture_default_str();
  app.add_option("--max-blocks", a.search.space.max_blocks, "Most blocks of a macro")->capture_default_str();
  app.add_option("--min-stages", a.search.space.min_stages, "Fewest stages of a macro")->capture_default_str();
  app.add_option("--max-stages", a.search.space.max_stages, "Most stages of a macro")->capture_default_str();
  app.add_option("--max-channels", a.search.space.max_channels, "Widest block output")->capture_default_str();
  app.add_option("--max-macs", a.max_macs_text, "Candidates above this many MACs per image are not evaluated");
  app.add_option("--max-step-ms", a.max_step_ms, "Candidates slower per step are timed but not trained (0: no limit)")
      ->check(nasoa_samples::finite_number(0, false));
  app.add_option("--baseline", a.baselines, "NAME=ENCODING of a hand-designed network evaluated for comparison (repeatable)");
  app.add_option("--select", a.select, "Front members to pick for the zoo, spread over step time")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--threads", a.threads, "Compute threads per process (default: its share of the cores less a quarter of them for the batch loader)")
      ->check(CLI::Range(0, nasoa::zoo::usable_cores()));  // more only waits on itself
  if (const std::optional<int> status = nasoa_samples::parse_command_line(app, argc, argv)) return *status;
  a.proxy.seed = a.search.seed;

#ifdef NASOA_WITH_MPI
  const bool under_mpi = std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr;
  if (under_mpi) MPI_Init(&argc, &argv);
#endif
  const int status = nasoa_samples::run_reporting_errors("nasoa-search", [&] { return run(a); });
#ifdef NASOA_WITH_MPI
  if (under_mpi) {
    // A failure on one rank would leave the others waiting in a collective.
    if (status != 0) MPI_Abort(MPI_COMM_WORLD, status);
    MPI_Finalize();
  }
#endif
  return status;
}
