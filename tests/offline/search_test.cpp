// The search on a formula instead of proxy training: Pareto ranking, the
// evolution converging to a front known by brute force, deterministic resume
// after a kill, and refusal of a state made with other options.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "offline_tools/search/pareto.h"
#include "offline_tools/search/report.h"
#include "offline_tools/search/search.h"
#include "tests/support/expect_error.h"
#include "tests/support/temp_dir.h"
#include "zoo/bundle/atomic_file.h"

namespace nasoa::search {
namespace {

TEST(ParetoTest, RanksFrontsAndKeepsExtremesByCrowding) {
  // (acc, step): 0 and 1 are non-dominated, 2 is dominated by 1 only, 3 by all.
  const std::vector<Objectives> p = {{0.9, 3.0}, {0.7, 1.0}, {0.6, 2.0}, {0.5, 4.0}};
  EXPECT_EQ(pareto_ranks(p), (std::vector<int>{0, 0, 1, 2}));
  EXPECT_TRUE(dominates(p[1], p[2]));
  EXPECT_FALSE(dominates(p[0], p[1]));
  const std::vector<Objectives> line = {{0.1, 1}, {0.2, 2}, {0.3, 3}, {0.4, 4}, {0.45, 10}};
  const std::vector<double> crowd = crowding_distances(line, pareto_ranks(line));
  EXPECT_TRUE(std::isinf(crowd[0]));
  EXPECT_TRUE(std::isinf(crowd[4]));
  EXPECT_GT(crowd[3], crowd[1]);  // its neighbours are farther apart in step time
  EXPECT_EQ(select_best(p, 2), (std::vector<int>{0, 1}));
}

TEST(ParetoTest, SpreadOverFrontKeepsBothEndsAndSpacesInLogTime) {
  std::vector<Evaluation> front;
  for (double ms : {1.0, 1.1, 2.0, 4.0, 4.4, 8.0, 16.0}) {
    Evaluation e;
    e.encoding = std::to_string(ms);
    e.step_seconds = ms / 1000;
    e.accuracy = std::log(ms);
    front.push_back(e);
  }
  const std::vector<Evaluation> chosen = spread_over_front(front, 5);
  ASSERT_EQ(chosen.size(), 5u);
  std::vector<double> ms;
  for (const Evaluation& e : chosen) ms.push_back(std::round(e.step_seconds * 1e4) / 10);
  EXPECT_EQ(ms, (std::vector<double>{1.0, 2.0, 4.0, 8.0, 16.0}));
  EXPECT_EQ(spread_over_front(front, 10).size(), front.size());
}

// Accuracy and step time from the block, C0 and depth alone: richer blocks
// and bigger networks are more accurate and slower, with diminishing returns,
// so the front over (block, C0, depth) can be found by brute force.
struct Formula {
  static double quality(const std::string& block) { return block == "020-" ? 1.3 : 1.0; }
  static double cost(const std::string& block) { return block == "020-" ? 2.0 : 1.0; }
  static Objectives of(const Encoding& e) {
    const double n = static_cast<double>(e.macro().size()), c0 = e.c0();
    const std::string b = e.block_string();
    return {1.0 - 1.0 / (1.0 + 0.01 * c0 * std::sqrt(n) * quality(b)), 1e-3 * c0 * n * cost(b)};
  }
};

class FormulaEvaluator : public Evaluator {
 public:
  int calls = 0;
  int fail_after = -1;  // throws on this call, as a killed process would stop
  std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) override {
    if (fail_after >= 0 && calls >= fail_after) throw std::runtime_error("killed");
    ++calls;
    std::vector<Evaluation> out;
    for (const std::string& text : encodings) {
      const Objectives o = Formula::of(Encoding::parse(text));
      Evaluation e;
      e.encoding = text;
      e.accuracy = o.accuracy;
      e.step_seconds = o.step_seconds;
      out.push_back(e);
    }
    return out;
  }
};

SearchOptions formula_options() {
  SearchOptions o;
  o.seed = 7;
  o.space.c0_choices = {8, 16, 24, 32};
  o.space.min_blocks = 3;
  o.space.max_blocks = 8;
  o.space.min_stages = 2;
  o.space.max_stages = 3;
  o.space.max_channels = 1024;
  o.reference_macro = "1-21-2";
  o.reference_c0 = 16;
  o.seed_blocks = {"0-", "020-"};
  o.block_samples = 0;
  o.keep_blocks = 2;
  o.population = 10;
  o.generations = 25;
  o.children = 10;
  return o;
}

// Area dominated by a set of points, from (accuracy 0, step `ref`).
double hypervolume(std::vector<Objectives> pts, double ref) {
  std::sort(pts.begin(), pts.end(), [](const Objectives& a, const Objectives& b) { return a.step_seconds < b.step_seconds; });
  double area = 0, best = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    best = std::max(best, pts[i].accuracy);
    const double next = i + 1 < pts.size() ? pts[i + 1].step_seconds : ref;
    area += best * (next - pts[i].step_seconds);
  }
  return area;
}

TEST(SearchTest, EvolutionOnAFormulaReachesTheBruteForceFront) {
  const SearchOptions o = formula_options();
  std::vector<Objectives> all;
  for (const char* b : {"0-", "020-"})
    for (int c0 : o.space.c0_choices)
      for (int n = o.space.min_blocks; n <= o.space.max_blocks; ++n) {
        std::string macro = "1-2";
        while (static_cast<int>(macro.size()) - 1 < n) macro += "1";
        all.push_back(Formula::of(Encoding::parse(std::string(b) + "_" + std::to_string(c0) + "_" + macro)));
      }
  std::vector<Objectives> true_front;
  const std::vector<int> rank = pareto_ranks(all);
  for (std::size_t i = 0; i < all.size(); ++i)
    if (rank[i] == 0) true_front.push_back(all[i]);
  double ref = 0;
  for (const Objectives& p : all) ref = std::max(ref, p.step_seconds * 1.1);

  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  const SearchResult r = run_search(o, evaluator, dir / "state");
  std::vector<Objectives> found;
  for (const Evaluation& e : r.front) found.push_back({e.accuracy, e.step_seconds});
  const double hv_true = hypervolume(true_front, ref), hv_found = hypervolume(found, ref);
  EXPECT_GT(hv_found, 0.97 * hv_true) << "found " << found.size() << " front points of " << true_front.size();
  EXPECT_LE(hv_found, hv_true * (1 + 1e-9));  // nothing beats the brute-force front
  // Evolution did the work: the initial population alone falls short.
  SearchOptions none = o;
  none.generations = 0;
  nasoa::testing::TempDir dir0;
  FormulaEvaluator evaluator0;
  std::vector<Objectives> initial;
  for (const Evaluation& e : run_search(none, evaluator0, dir0 / "state").front) initial.push_back({e.accuracy, e.step_seconds});
  EXPECT_LT(hypervolume(initial, ref), hv_found);
}

TEST(SearchTest, ResumeAfterAKillEndsAsAnUninterruptedRun) {
  SearchOptions o = formula_options();
  o.block_samples = 12;  // the block level runs in several saved batches
  o.batch = 4;
  o.generations = 6;
  o.seed_blocks = {"0-", "020-", "10001-"};
  o.keep_blocks = 2;
  nasoa::testing::TempDir dir;
  FormulaEvaluator whole;
  const SearchResult expected = run_search(o, whole, dir / "whole");
  ASSERT_GT(whole.calls, 6);

  // A kill at every evaluator call: within a saved batch, at its first or
  // last candidate, at either level and between generations.
  for (int kill_at = 1; kill_at < whole.calls; ++kill_at) {
    const std::string state = dir / ("killed-" + std::to_string(kill_at));
    FormulaEvaluator killed;
    killed.fail_after = kill_at;
    EXPECT_THROW(run_search(o, killed, state), std::runtime_error);
    FormulaEvaluator rest;
    const SearchResult resumed = run_search(o, rest, state);
    EXPECT_EQ(killed.calls + rest.calls, whole.calls) << "kill at call " << kill_at << ": a saved batch was redone";
    ASSERT_EQ(resumed.evaluated.size(), expected.evaluated.size());
    for (std::size_t i = 0; i < expected.evaluated.size(); ++i)
      EXPECT_EQ(resumed.evaluated[i].encoding, expected.evaluated[i].encoding);
    EXPECT_EQ(resumed.population, expected.population);
    EXPECT_EQ(resumed.kept_blocks, expected.kept_blocks);
  }
  // A finished search started again evaluates nothing.
  FormulaEvaluator again;
  EXPECT_EQ(run_search(o, again, dir / "whole").evaluated.size(), expected.evaluated.size());
  EXPECT_EQ(again.calls, 0);
}

TEST(SearchTest, RaisingTheGenerationsExtendsAFinishedSearchAsIfAskedFromTheStart) {
  SearchOptions o = formula_options();
  o.generations = 6;
  nasoa::testing::TempDir dir;
  FormulaEvaluator whole;
  const SearchResult expected = run_search(o, whole, dir / "whole");
  SearchOptions shorter = o;
  shorter.generations = 3;
  FormulaEvaluator first, second;
  EXPECT_EQ(run_search(shorter, first, dir / "extended").generations_done, 3);
  const SearchResult extended = run_search(o, second, dir / "extended");
  EXPECT_EQ(extended.generations_done, 6);
  EXPECT_GT(second.calls, 0);
  ASSERT_EQ(extended.evaluated.size(), expected.evaluated.size());
  for (std::size_t i = 0; i < expected.evaluated.size(); ++i)
    EXPECT_EQ(extended.evaluated[i].encoding, expected.evaluated[i].encoding);
  EXPECT_EQ(extended.population, expected.population);
}

TEST(SearchTest, RefusesAStateMadeWithOtherOptionsNamingTheOption) {
  SearchOptions o = formula_options();
  o.generations = 1;
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  run_search(o, evaluator, dir / "state");
  o.population = 12;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "state"); },
                                           ErrorCode::kInvalidArgument, "population"))
      << "a state made with another population was accepted";
  // Named by the flags of nasoa-search, not by the state's keys alone: the
  // key "batch" is --batch-evaluations (--batch is the proxy training's).
  struct Case {
    std::function<void(SearchOptions&)> edit;
    std::string needle;
  };
  const std::vector<Case> cases{
      {[](SearchOptions& c) { c.batch = 4; }, "made with --batch-evaluations (batch) = 8, this run has 4"},
      {[](SearchOptions& c) { c.space.c0_choices = {8, 16}; },
       "made with --c0 (space.c0_choices) = [8,16,24,32], this run has [8,16]"},
      {[](SearchOptions& c) { c.block_samples = 2; }, "made with --block-samples = 0, this run has 2"},
      {[](SearchOptions& c) { c.seed = 8; }, "made with --seed = 7, this run has 8"},
  };
  for (const Case& c : cases) {
    SearchOptions other = formula_options();
    other.generations = 1;
    c.edit(other);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(other, evaluator, dir / "state"); },
                                             ErrorCode::kInvalidArgument, c.needle));
  }
  dir.write("broken/state.json", "{\"format\": 1, \"opt");
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "broken"); }, ErrorCode::kCorrupt, ""));
}

TEST(SearchTest, AStateFromBeforeTheCorpusWasRecordedResumesAndThenRecordsIt) {
  SearchOptions o = formula_options();
  o.generations = 1;
  o.evaluator = R"({"proxy_lr":0.1})";
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  run_search(o, evaluator, dir / "state");
  o.evaluator = R"({"corpus_sample":"aaa","proxy_lr":0.1})";
  o.generations = 2;
  EXPECT_NO_THROW(run_search(o, evaluator, dir / "state"));
  o.evaluator = R"({"corpus_sample":"bbb","proxy_lr":0.1})";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "state"); },
                                           ErrorCode::kInvalidArgument,
                                           "--corpus (evaluator.corpus_sample) = \"aaa\", this run has \"bbb\""))
      << "another corpus was accepted once the state had recorded one";
  o.evaluator = R"({"corpus_sample":"aaa"})";  // a setting dropped is still a difference
  EXPECT_THROW(run_search(o, evaluator, dir / "state"), Error);
}

TEST(SearchTest, RefusesDamagedStatesAndSpacesTheSamplerCannotDrawFrom) {
  SearchOptions o = formula_options();
  o.generations = 1;
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  run_search(o, evaluator, dir / "state");
  const std::string good = nasoa::zoo::read_file(dir / "state/state.json");
  // An empty population (the tournament indexed it), a generation count that
  // would run a million empty generations, an accuracy above 1.
  // A population member never evaluated (the tournament drew from nothing
  // and read past the end), and one whose evaluations were removed.
  const std::vector<std::pair<std::string, std::string>> damage{
      {"population", "[]"}, {"generation", "-1000000"}, {"population", "[\"0-_8_11-11\"]"}, {"evaluations", "[]"}};
  for (const auto& [field, value] : damage) {
    nlohmann::json j = nlohmann::json::parse(good);
    j[field] = nlohmann::json::parse(value);
    dir.write("damaged/state.json", j.dump());
    EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "damaged"); }, ErrorCode::kCorrupt,
                                             field))
        << field << " = " << value;
  }
  // Values no evaluation gives, which would reach the CSV, the plot or the
  // zoo's names.
  const std::vector<std::pair<std::string, std::function<void(nlohmann::json&)>>> bad_values{
      {"accuracy 1e308", [](nlohmann::json& j) { j["evaluations"][0]["accuracy"] = 1e308; }},
      {"step 0", [](nlohmann::json& j) { j["evaluations"][0]["step_seconds"] = 0; }},
      {"step 1e308", [](nlohmann::json& j) { j["evaluations"][0]["step_seconds"] = 1e308; }},
      {"cost -1", [](nlohmann::json& j) { j["evaluations"][0]["cost_seconds"] = -1; }},
      {"not an encoding", [](nlohmann::json& j) { j["evaluations"][0]["encoding"] = "not-an-encoding"; }},
      {"generation 0.5", [](nlohmann::json& j) { j["generation"] = 0.5; }},
      {"kept block zz", [](nlohmann::json& j) { j["kept_blocks"].push_back("zz"); }},
      {"kept blocks in phase block",
       [](nlohmann::json& j) {
         j["phase"] = "block";
         j["block_done"] = 0;
       }},
  };
  for (const auto& [what, edit] : bad_values) {
    nlohmann::json j = nlohmann::json::parse(good);
    edit(j);
    dir.write("damaged/state.json", j.dump());
    EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "damaged"); }, ErrorCode::kCorrupt,
                                             ""))
        << what;
  }

  SearchOptions empty_range = formula_options();
  empty_range.space.min_blocks = 7;
  empty_range.space.max_blocks = 6;
  EXPECT_THROW(run_search(empty_range, evaluator, dir / "other"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "other/state.json"));

  // 3,000,000 samples made the sampler's retry bound (1000 per sample) wrap.
  SearchOptions too_many = formula_options();
  too_many.block_samples = 3000000;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(too_many, evaluator, dir / "many"); },
                                           ErrorCode::kInvalidArgument, "--block-samples 3000000"))
      << "block_samples 3000000 was accepted";
}

TEST(SearchTest, CandidatesOutsideTheMacroBoundsAreNeverEvaluated) {
  SearchOptions o = formula_options();
  o.reference_macro = "1-21";  // 3 blocks, 2 stages
  o.space.min_blocks = 3;
  o.space.max_blocks = 4;
  o.space.min_stages = 2;
  o.space.max_stages = 2;
  o.generations = 8;
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  const SearchResult r = run_search(o, evaluator, dir / "state");
  ASSERT_FALSE(r.evaluated.empty());
  for (const Evaluation& e : r.evaluated)
    EXPECT_EQ(zoo::macro_outside(Encoding::parse(e.encoding), o.space), "") << e.encoding;
}

TEST(SearchTest, OptionsThatCannotBeSearchedAreRefusedNamingTheirValues) {
  SearchOptions o = formula_options();
  o.space.max_blocks = 4;  // the reference macro 1-21-2 has 4 blocks, 3 stages
  o.space.max_stages = 2;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { validate_search_options(o); }, ErrorCode::kInvalidArgument,
                                           "reference macro _16_1-21-2: 3 stages, outside 2..2"));
  o = formula_options();
  o.space.min_stages = 3;
  o.space.max_stages = 2;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { validate_search_options(o); }, ErrorCode::kInvalidArgument,
                                           "stages per macro: need 1 <= min (3) <= max (2)"));

  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  o = formula_options();
  o.max_macs = 1;
  o.input_size = 32;
  o.classes = 10;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "seed"); },
                                           ErrorCode::kInvalidArgument, "seed block 0-"));
  o.seed_blocks.clear();
  o.block_samples = 2;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "none"); },
                                           ErrorCode::kInvalidArgument, "fits max_macs 1"));
  EXPECT_EQ(evaluator.calls, 0);
}

TEST(SearchTest, BadSeedBlocksAndOptionsThatWouldOverflowAreRefusedUpFront) {
  // validate_search_options() is what nasoa-search calls before it reads the
  // corpus: each of these must be refused there, naming the option and value.
  struct Case {
    std::function<void(SearchOptions&)> edit;
    std::string needle;
  };
  const int huge = std::numeric_limits<int>::max();
  const std::vector<Case> cases{
      {[](SearchOptions& o) { o.seed_blocks = {"0-", "9-"}; }, "seed block '9-'"},
      {[](SearchOptions& o) { o.seed_blocks = {"020-_8_1-2"}; }, "seed block '020-_8_1-2'"},
      {[](SearchOptions& o) { o.seed_blocks = {"0-ab"}; }, "connections are 3-character items"},
      {[](SearchOptions& o) {
         o.seed_blocks.clear();
         o.block_samples = 0;
       },
       "--block-samples is 0 and no seed block (--seed-block) was given"},
      {[&](SearchOptions& o) { o.children = huge; }, "children 2147483647 is outside 1..1000000"},
      {[&](SearchOptions& o) { o.population = huge; }, "population 2147483647 is outside 2..1000000"},
      {[&](SearchOptions& o) { o.keep_blocks = huge; }, "--keep-blocks 2147483647 is outside 1..1000000"},
      {[&](SearchOptions& o) { o.generations = huge; }, "generations 2147483647 is outside 0..1000000"},
      {[&](SearchOptions& o) { o.space.max_channels = huge; }, "--max-channels 2147483647 is outside 1..65536"},
      {[](SearchOptions& o) { o.space.max_layers = 10; }, "max layers per block (10) above 9"},
      {[](SearchOptions& o) { o.batch = 0; }, "--batch-evaluations (batch) must be >= 1, got 0"},
      {[](SearchOptions& o) { o.space.c0_choices = {8, 6}; }, "--c0 (space.c0_choices): 6 is not a multiple of 4"},
      {[](SearchOptions& o) { o.space.c0_choices.clear(); }, "--c0 (space.c0_choices) must not be empty"},
      {[](SearchOptions& o) { o.block_samples = -1; }, "--block-samples -1 is outside 0..1000000"},
  };
  for (const Case& c : cases) {
    SearchOptions o = formula_options();
    c.edit(o);
    EXPECT_TRUE(nasoa::testing::throws_error([&] { validate_search_options(o); }, ErrorCode::kInvalidArgument,
                                             c.needle));
  }
  // The bounds themselves are searchable options.
  SearchOptions edge = formula_options();
  edge.children = edge.population = edge.keep_blocks = edge.generations = 1000000;
  edge.space.max_channels = kMaxChannels;
  EXPECT_NO_THROW(validate_search_options(edge));
  // A search given a bad seed block makes no state and evaluates nothing.
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  SearchOptions o = formula_options();
  o.seed_blocks = {"9-"};
  EXPECT_THROW(run_search(o, evaluator, dir / "state"), Error);
  EXPECT_FALSE(std::filesystem::exists(dir / "state/state.json"));
  EXPECT_EQ(evaluator.calls, 0);
}

TEST(SearchTest, ResumeUnderOtherComputeThreadsDeviceOrCorpusPixelsIsRefused) {
  SearchOptions o = formula_options();
  o.generations = 1;
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  // A state from before the threads and the device were recorded resumes
  // (and records them at its next save: one more generation).
  o.evaluator = R"({"corpus_sample":"aaa","proxy_lr":0.1})";
  run_search(o, evaluator, dir / "state");
  o.evaluator = R"({"compute_threads":1,"corpus_sample":"aaa","cuda":false,"proxy_lr":0.1})";
  o.generations = 2;
  EXPECT_NO_THROW(run_search(o, evaluator, dir / "state"));
  // Once recorded, other values are refused, naming the setting.
  o.evaluator = R"({"compute_threads":2,"corpus_sample":"aaa","cuda":false,"proxy_lr":0.1})";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "state"); },
                                           ErrorCode::kInvalidArgument,
                                           "--threads (evaluator.compute_threads) = 1, this run has 2"));
  o.evaluator = R"({"compute_threads":1,"corpus_sample":"aaa","cuda":true,"proxy_lr":0.1})";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "state"); },
                                           ErrorCode::kInvalidArgument, "evaluator.cuda = false, this run has true"));
  // A corpus rebuilt under the same file names has other pixels: recorded
  // once, a change is refused too.
  o.evaluator = R"({"compute_threads":1,"corpus_pixels":"mean 0.5","corpus_sample":"aaa","cuda":false,"proxy_lr":0.1})";
  o.generations = 3;
  EXPECT_NO_THROW(run_search(o, evaluator, dir / "state"));
  o.evaluator = R"({"compute_threads":1,"corpus_pixels":"mean 0.25","corpus_sample":"aaa","cuda":false,"proxy_lr":0.1})";
  EXPECT_TRUE(nasoa::testing::throws_error([&] { run_search(o, evaluator, dir / "state"); },
                                           ErrorCode::kInvalidArgument, "evaluator.corpus_pixels"));
}

// Fails every candidate of C0 24, as a step above --max-step-ms or an out of
// memory would, with a reason that holds a comma, a quote and a line break.
class FailingC0Evaluator : public FormulaEvaluator {
 public:
  std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) override {
    std::vector<Evaluation> out = FormulaEvaluator::evaluate(encodings);
    for (Evaluation& e : out)
      if (Encoding::parse(e.encoding).c0() == 24) {
        e.error = "out of memory, \"CPU\"\nallocator";
        e.accuracy = 0;
      }
    return out;
  }
};

TEST(SearchTest, FailedEvaluationsAreKeptAndWrittenWithTheirErrors) {
  SearchOptions o = formula_options();
  o.generations = 4;
  nasoa::testing::TempDir dir;
  FailingC0Evaluator evaluator;
  const SearchResult r = run_search(o, evaluator, dir / "state");
  std::size_t failed = 0;
  for (const Evaluation& e : r.attempted) failed += !e.ok();
  ASSERT_GT(failed, 0u) << "no candidate of C0 24 was drawn; the test needs one";
  EXPECT_EQ(r.attempted.size(), r.evaluated.size() + failed);
  for (const Evaluation& e : r.evaluated) EXPECT_TRUE(e.ok()) << e.encoding;

  std::vector<NamedEvaluation> rows;
  for (const Evaluation& e : r.attempted) rows.push_back({"candidate", e});
  write_csv(dir / "evaluations.csv", rows, /*error_column=*/true);
  std::istringstream csv(nasoa::zoo::read_file(dir / "evaluations.csv"));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "name,encoding,step_ms,accuracy,parameters,macs,cost_s,seed,rank,error");
  std::size_t lines = 0, failed_lines = 0;
  while (std::getline(csv, line)) {
    ++lines;
    if (line.find("out of memory") == std::string::npos) {
      EXPECT_EQ(line.substr(line.size() - 3), ",\"\"") << "a success has an empty error: " << line;
      continue;
    }
    ++failed_lines;
    // One line, the error quoted with its quotes doubled, no accuracy.
    EXPECT_NE(line.find(",\"out of memory, \"\"CPU\"\"\\nallocator\""), std::string::npos) << line;
    EXPECT_NE(line.find(",,"), std::string::npos) << "a failure's accuracy must be empty: " << line;
  }
  EXPECT_EQ(lines, r.attempted.size());
  EXPECT_EQ(failed_lines, failed);

  // Without the error column (front.csv and the others), the columns are as before.
  write_csv(dir / "front.csv", {{"front-1", r.front.at(0)}});
  EXPECT_EQ(nasoa::zoo::read_file(dir / "front.csv").rfind("name,encoding,step_ms,accuracy,parameters,macs,cost_s,seed,rank\n", 0), 0u);
}

TEST(SearchTest, CandidatesAboveTheMacBoundAreNeverEvaluated) {
  SearchOptions o = formula_options();
  o.max_macs = 3'000'000;
  o.input_size = 32;
  o.classes = 10;
  o.generations = 5;
  nasoa::testing::TempDir dir;
  FormulaEvaluator evaluator;
  const SearchResult r = run_search(o, evaluator, dir / "state");
  ASSERT_FALSE(r.evaluated.empty());
  for (const Evaluation& e : r.evaluated)
    EXPECT_LE(count_cost(Encoding::parse(e.encoding), 10, 32).macs, o.max_macs) << e.encoding;
}

}  // namespace
}  // namespace nasoa::search
