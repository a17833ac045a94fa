#include "offline_tools/search/search.h"

#include <algorithm>
#include <deque>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "offline_tools/search/pareto.h"
#include "runtime/adapt/json_fields.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/text/printable.h"

namespace nasoa::search {
namespace {

using Json = nlohmann::json;
constexpr int kStateFormat = 1;

Json options_to_json(const SearchOptions& o) {
  const zoo::SamplerOptions& s = o.space;
  return Json{{"seed", o.seed},
              {"space",
               {{"min_layers", s.min_layers},
                {"max_layers", s.max_layers},
                {"max_extra_connections", s.max_extra_connections},
                {"c0_choices", s.c0_choices},
                {"min_blocks", s.min_blocks},
                {"max_blocks", s.max_blocks},
                {"min_stages", s.min_stages},
                {"max_stages", s.max_stages},
                {"max_channels", s.max_channels}}},
              {"max_macs", o.max_macs},
              {"evaluator", o.evaluator},
              {"input_size", o.input_size},
              {"classes", o.classes},
              {"reference_macro", o.reference_macro},
              {"reference_c0", o.reference_c0},
              {"seed_blocks", o.seed_blocks},
              {"block_samples", o.block_samples},
              {"keep_blocks", o.keep_blocks},
              {"population", o.population},
              {"generations", o.generations},
              {"children", o.children},
              {"block_swap_probability", o.block_swap_probability},
              {"batch", o.batch}};
}

// nasoa-search's flag for an option of the state (a key of
// options_to_json(), "space." or "evaluator." before the keys within), or
// "" for one without a flag of its own. Messages name the flag the user
// typed: the keys read as other flags ("batch" is --batch-evaluations, while
// --batch is the proxy training's).
std::string flag_of(const std::string& key) {
  static const std::map<std::string, std::string> flags{
      {"seed", "--seed"},
      {"space.c0_choices", "--c0"},
      {"space.min_blocks", "--min-blocks"},
      {"space.max_blocks", "--max-blocks"},
      {"space.min_stages", "--min-stages"},
      {"space.max_stages", "--max-stages"},
      {"space.max_channels", "--max-channels"},
      {"max_macs", "--max-macs"},
      {"input_size", "--input"},
      {"classes", "--corpus"},  // its class count
      {"reference_macro", "--reference-macro"},
      {"reference_c0", "--reference-c0"},
      {"seed_blocks", "--seed-block"},
      {"block_samples", "--block-samples"},
      {"keep_blocks", "--keep-blocks"},
      {"population", "--population"},
      {"generations", "--generations"},
      {"children", "--children"},
      {"batch", "--batch-evaluations"},
      {"evaluator.input", "--input"},
      {"evaluator.batch", "--batch"},
      {"evaluator.proxy_epochs", "--proxy-epochs"},
      {"evaluator.proxy_lr", "--proxy-lr"},
      {"evaluator.train_per_class", "--train-per-class"},
      {"evaluator.validation_per_class", "--validation-per-class"},
      {"evaluator.timing_repetitions", "--timing-repetitions"},
      {"evaluator.max_step_ms", "--max-step-ms"},
      {"evaluator.compute_threads", "--threads"},
      {"evaluator.corpus_sample", "--corpus"},
      {"evaluator.corpus_pixels", "--corpus"},
  };
  const auto it = flags.find(key);
  return it == flags.end() ? std::string() : it->second;
}

// An option as a message names it: its flag, with the key when the flag is
// not simply the key's last part with dashes ("--keep-blocks", "--c0
// (space.c0_choices)"); the key alone when it has no flag.
std::string option_name(const std::string& key) {
  const std::string flag = flag_of(key);
  if (flag.empty()) return key;
  std::string plain = key.substr(key.rfind('.') == std::string::npos ? 0 : key.rfind('.') + 1);
  std::replace(plain.begin(), plain.end(), '_', '-');
  return flag == "--" + plain ? flag : flag + " (" + key + ")";
}

}  // namespace

void validate_search_options(const SearchOptions& o) {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error(ErrorCode::kInvalidArgument, "search option " + what);
  };
  const auto range = [](const char* what, int min, int max) {
    return std::string(what) + ": need 1 <= min (" + std::to_string(min) + ") <= max (" + std::to_string(max) + ")";
  };
  const auto within = [](const char* key, int value, int min, int max) {
    return option_name(key) + " " + std::to_string(value) + " is outside " + std::to_string(min) + ".." +
           std::to_string(max);
  };
  // Each sample, child or population member is a proxy training run: a
  // million is weeks of device time, so these bounds refuse no real search.
  // They keep the search's arithmetic on them (100 tries per child, the
  // population plus the kept blocks, a state's generation count plus a
  // million) inside an int.
  require(o.block_samples >= 0 && o.block_samples <= 1000000,
          within("block_samples", o.block_samples, 0, 1000000));
  require(o.keep_blocks >= 1 && o.keep_blocks <= 1000000, within("keep_blocks", o.keep_blocks, 1, 1000000));
  require(o.population >= 2 && o.population <= 1000000, within("population", o.population, 2, 1000000));
  require(o.generations >= 0 && o.generations <= 1000000, within("generations", o.generations, 0, 1000000));
  require(o.children >= 1 && o.children <= 1000000, within("children", o.children, 1, 1000000));
  require(o.batch >= 1, option_name("batch") + " must be >= 1, got " + std::to_string(o.batch));
  require(o.block_swap_probability >= 0 && o.block_swap_probability <= 1, "block_swap_probability must be in [0, 1]");
  require(o.max_macs >= 0, option_name("max_macs") + " must be >= 0");
  require(!o.space.c0_choices.empty(), option_name("space.c0_choices") + " must not be empty");
  for (int c0 : o.space.c0_choices)
    require(c0 >= 4 && c0 <= 4096 && c0 % 4 == 0, option_name("space.c0_choices") + ": " + std::to_string(c0) +
                                                       " is not a multiple of 4 in 4..4096 (the encoding's C0)");
  // The sampler draws from these ranges: an empty one never ends.
  require(o.space.min_layers >= 1 && o.space.min_layers <= o.space.max_layers,
          range("layers per block", o.space.min_layers, o.space.max_layers));
  // The sampler draws a block of that many layers before it checks it.
  require(o.space.max_layers <= kMaxLayersPerBlock, "space: max layers per block (" +
                                                        std::to_string(o.space.max_layers) + ") above " +
                                                        std::to_string(kMaxLayersPerBlock) +
                                                        ", the most an encoding's block has");
  require(o.space.min_blocks >= 1 && o.space.min_blocks <= o.space.max_blocks,
          range("blocks per macro", o.space.min_blocks, o.space.max_blocks) + " (--min-blocks, --max-blocks)");
  require(o.space.min_stages >= 1 && o.space.min_stages <= o.space.max_stages,
          range("stages per macro", o.space.min_stages, o.space.max_stages) + " (--min-stages, --max-stages)");
  require(o.space.max_blocks <= 256, "space: max blocks (" + std::to_string(o.space.max_blocks) +
                                         ") above 256, the most an encoding's macro has (--max-blocks)");
  require(o.space.max_stages <= o.space.max_blocks, "space: max stages (" + std::to_string(o.space.max_stages) +
                                                        ") must not exceed max blocks (" +
                                                        std::to_string(o.space.max_blocks) +
                                                        ") (--max-stages, --max-blocks)");
  require(o.space.max_extra_connections >= 0, "space.max_extra_connections must be >= 0");
  // No tensor of an encoding's network is wider than kMaxChannels; a wider
  // bound admits nothing more, and the sampler doubles widths up to it.
  require(o.space.max_channels >= 1 && o.space.max_channels <= kMaxChannels,
          within("space.max_channels", o.space.max_channels, 1, kMaxChannels) +
              " (no network of the encoding is wider than " + std::to_string(kMaxChannels) + ")");
  // Without a seed block the block level has only the random ones.
  require(o.block_samples > 0 || !o.seed_blocks.empty(),
          option_name("block_samples") + " is 0 and no seed block (--seed-block) was given");
  // The block level places every block in the reference macro, whose
  // networks then start the macro level: it must lie in the space.
  std::optional<Encoding> reference;
  try {
    reference = Encoding::parse("0-_" + std::to_string(o.reference_c0) + "_" + o.reference_macro);
  } catch (const Error& e) {
    require(false, "reference macro or C0: " + std::string(e.what()));
  }
  if (const std::string why = zoo::macro_outside(*reference, o.space); !why.empty())
    require(false, "reference macro _" + std::to_string(o.reference_c0) + "_" + o.reference_macro + ": " + why);
  // Each seed block is evaluated in the reference macro: it must make an
  // encoding there (valid ops and connections, and a network that plans in
  // that macro). Its MACs are checked when the search starts, once the
  // class count is known.
  for (const std::string& b : o.seed_blocks) {
    try {
      Encoding::parse(b + "_" + std::to_string(o.reference_c0) + "_" + o.reference_macro);
    } catch (const Error& e) {
      require(false, "seed block '" + zoo::printable(b) + "' in the reference macro: " + std::string(e.what()));
    }
  }
}

namespace {

// The state as it is kept in memory and in state.json.
struct State {
  std::string phase = "block";  // "block", "macro", "done"
  std::vector<std::string> block_queue;
  std::size_t block_done = 0;
  std::vector<std::string> kept_blocks;
  std::vector<std::string> population;
  int generation = 0;
  std::mt19937_64 rng;
  // Failures included, so they are not retried. A deque: the search holds
  // pointers into it across appends.
  std::deque<Evaluation> evaluations;
};

std::string state_path(const std::string& dir) { return (std::filesystem::path(dir) / "state.json").string(); }

void save(const State& s, const SearchOptions& o, const std::string& dir) {
  std::ostringstream rng;
  rng << s.rng;
  const Json j{{"format", kStateFormat},          {"options", options_to_json(o)}, {"phase", s.phase},
               {"block_queue", s.block_queue},     {"block_done", s.block_done},   {"kept_blocks", s.kept_blocks},
               {"population", s.population},       {"generation", s.generation},   {"rng", rng.str()},
               {"evaluations", s.evaluations}};
  zoo::write_file_atomic(state_path(dir), j.dump(1));
}

State load(const SearchOptions& o, const std::string& dir) {
  const std::string path = state_path(dir);
  State s;
  Json j;
  try {
    j = Json::parse(zoo::read_file(path));
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kCorrupt, path + ": not a search state (" + e.what() + ")");
  }
  try {
    if (j.at("format").get<int>() != kStateFormat)
      throw Error(ErrorCode::kUnsupportedVersion, path + ": search state format " + j.at("format").dump() +
                                                      ", this build reads " + std::to_string(kStateFormat));
    const Json want = options_to_json(o), have = j.at("options");
    // A value as the user wrote it when it is a scalar or a short list of
    // them (--c0); anything deeper is only described: the state file may be
    // hand-edited.
    const auto shown = [](const Json& v) {
      const bool flat_list = v.is_array() && v.size() <= 32 &&
                             std::all_of(v.begin(), v.end(), [](const Json& x) { return x.is_primitive(); });
      return v.is_primitive() || flat_list ? v.dump() : nasoa::runtime::detail::describe_value(v);
    };
    // The space option is a JSON object, the evaluator option one in a
    // string; within them, the setting that differs is named.
    const auto settings = [](const Json& v) {
      if (v.is_object()) return v;
      if (!v.is_string()) return Json();
      Json parsed = Json::parse(v.get<std::string>(), nullptr, /*allow_exceptions=*/false);
      return parsed.is_object() ? parsed : Json();
    };
    // Keys in the order their differences are reported: a derived value (the
    // evaluator's settings, and within them the corpus sample, which the seed
    // and the sample sizes change too) after what it derives from, so that
    // the message names the option the user changed.
    const auto report_order = [](const Json& object, const std::string& last) {
      std::vector<std::string> keys;
      for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
      std::stable_partition(keys.begin(), keys.end(), [&](const std::string& k) { return k != last; });
      return keys;
    };
    // (More generations continue the search; fewer end it where it is.)
    for (const std::string& key : report_order(want, "evaluator")) {
      const Json& value = want.at(key);
      if (key == "generations" || (have.contains(key) && have.at(key) == value)) continue;
      std::string name = key, had = have.contains(key) ? shown(have.at(key)) : "(absent)", now = shown(value);
      const Json old_settings = have.contains(key) ? settings(have.at(key)) : Json();
      const Json new_settings = settings(value);
      if (old_settings.is_object() && new_settings.is_object()) {
        bool differs = false;
        for (const std::string& sub : report_order(new_settings, "corpus_sample")) {
          if (old_settings.contains(sub) && old_settings.at(sub) == new_settings.at(sub)) continue;
          // A state from before the corpus, the compute threads or the
          // use of CUDA was recorded: trusted, and it records this run's
          // from its next save on.
          if ((sub == "corpus_sample" || sub == "corpus_pixels" || sub == "compute_threads" || sub == "cuda") &&
              !old_settings.contains(sub))
            continue;
          differs = true;
          name += "." + sub;
          had = old_settings.contains(sub) ? shown(old_settings.at(sub)) : "(absent)";
          now = shown(new_settings.at(sub));
          break;
        }
        bool old_keys_kept = true;
        for (auto it = old_settings.begin(); it != old_settings.end(); ++it)
          old_keys_kept = old_keys_kept && new_settings.contains(it.key());
        if (!differs && old_keys_kept) continue;
      }
      const std::string option = flag_of(name).empty() ? "option " + name : option_name(name);
      throw Error(ErrorCode::kInvalidArgument, path + ": the state was made with " + option + " = " + had +
                                                   ", this run has " + now +
                                                   "; use the same options or another state folder");
    }
    s.phase = j.at("phase").get<std::string>();
    s.block_queue = j.at("block_queue").get<std::vector<std::string>>();
    s.block_done = j.at("block_done").get<std::size_t>();
    s.kept_blocks = j.at("kept_blocks").get<std::vector<std::string>>();
    s.population = j.at("population").get<std::vector<std::string>>();
    if (!j.at("generation").is_number_integer())
      throw Error(ErrorCode::kCorrupt, path + ": field generation = " + j.at("generation").dump() +
                                           " is not a whole number");
    s.generation = j.at("generation").get<int>();
    std::istringstream rng(j.at("rng").get<std::string>());
    rng >> s.rng;
    if (!rng) throw Error(ErrorCode::kCorrupt, path + ": field rng is not a generator state");
    for (const Evaluation& e : j.at("evaluations").get<std::vector<Evaluation>>()) s.evaluations.push_back(e);
  } catch (const Json::exception& e) {
    throw Error(ErrorCode::kCorrupt, path + ": " + e.what());
  }
  if (s.block_done > s.block_queue.size() || (s.phase != "block" && s.phase != "macro" && s.phase != "done"))
    throw Error(ErrorCode::kCorrupt, path + ": fields phase/block_done are inconsistent");
  if (s.generation < 0 || s.generation > o.generations + 1000000)
    throw Error(ErrorCode::kCorrupt, path + ": field generation = " + std::to_string(s.generation) + " is out of range");
  if (s.phase != "block" && s.population.empty())
    throw Error(ErrorCode::kCorrupt, path + ": field population is empty in phase " + s.phase);
  if (s.phase == "block" && !s.kept_blocks.empty())
    throw Error(ErrorCode::kCorrupt, path + ": field kept_blocks is filled in phase block (the macro level fills it)");
  // Everything that reaches the outputs must be what a search could make.
  const auto check_encoding = [&](const std::string& field, const std::string& text) {
    try {
      Encoding::parse(text);
    } catch (const Error& e) {
      throw Error(ErrorCode::kCorrupt, path + ": field " + field + " holds '" + text + "': " + e.what());
    }
  };
  for (const std::string& enc : s.population) check_encoding("population", enc);
  for (const std::string& enc : s.block_queue) check_encoding("block_queue", enc);
  for (const std::string& block : s.kept_blocks)
    check_encoding("kept_blocks", block + "_" + std::to_string(o.reference_c0) + "_" + o.reference_macro);
  std::set<std::string> evaluated;
  for (const Evaluation& e : s.evaluations) {
    check_encoding("evaluations", e.encoding);
    // A step of over a day, or of no time, is no measurement (log(0) would
    // reach the plot); costs and counts cannot be negative.
    const bool numbers = e.cost_seconds >= 0 && std::isfinite(e.cost_seconds) && e.rank >= 0 &&
                         e.parameters >= 0 && e.macs >= 0;
    if (!numbers || (e.ok() && (!(e.accuracy >= 0 && e.accuracy <= 1) || !(e.step_seconds > 0) ||
                                !(e.step_seconds < 86400))))
      throw Error(ErrorCode::kCorrupt, path + ": evaluation of '" + e.encoding +
                                           "' has a value no evaluation gives (accuracy outside [0, 1], a step time "
                                           "outside (0, 1 day), or a negative cost, rank or count)");
    if (e.ok()) evaluated.insert(e.encoding);
  }
  // The next generation's parents come from the population's evaluations.
  for (const std::string& enc : s.population)
    if (evaluated.count(enc) == 0)
      throw Error(ErrorCode::kCorrupt, path + ": field population holds '" + enc +
                                           "', which has no successful evaluation in field evaluations");
  return s;
}

class Search {
 public:
  Search(const SearchOptions& o, Evaluator& evaluator, std::string dir, const SearchLog& log)
      : o_(o), evaluator_(evaluator), dir_(std::move(dir)), log_(log) {}

  SearchResult run() {
    validate_search_options(o_);
    std::filesystem::create_directories(dir_);
    if (std::filesystem::exists(state_path(dir_))) {
      s_ = load(o_, dir_);
      for (const Evaluation& e : s_.evaluations) seen_.insert(e.encoding);
      say("resuming: phase " + s_.phase + ", " + std::to_string(s_.evaluations.size()) + " evaluations, " +
          std::to_string(s_.generation) + " generation(s) done");
    } else {
      start();
    }
    // More generations than a finished search ran extend it; fewer end it as it is.
    if (s_.phase == "done" && s_.generation < o_.generations) s_.phase = "macro";
    while (s_.phase == "block" && s_.block_done < s_.block_queue.size()) block_batch();
    if (s_.phase == "block") begin_macro();
    while (s_.phase == "macro" && s_.generation < o_.generations) generation();
    if (s_.phase == "macro") {
      s_.phase = "done";
      save(s_, o_, dir_);
    }
    SearchResult r;
    for (const Evaluation& e : s_.evaluations) {
      r.attempted.push_back(e);
      if (e.ok()) r.evaluated.push_back(e);
    }
    r.front = pareto_front(r.evaluated);
    r.kept_blocks = s_.kept_blocks;
    r.population = s_.population;
    r.generations_done = s_.generation;
    return r;
  }

 private:
  void say(const std::string& line) const {
    if (log_) log_(line);
  }

  // The space's macro bounds and --max-macs: candidates outside are never
  // evaluated (a mutation of a macro at a bound may step over it).
  bool within_bounds(const Encoding& e) const { return zoo::macro_outside(e, o_.space).empty() && within_macs(e); }

  bool within_macs(const Encoding& e) const {
    if (o_.max_macs <= 0) return true;
    try {
      return count_cost(e, o_.classes, o_.input_size).macs <= o_.max_macs;
    } catch (const Error& error) {
      if (error.code() != ErrorCode::kInvalidArgument) throw;
      return false;  // more MACs than 64 bits count: certainly above the bound
    }
  }

  std::string reference(const std::string& block) const {
    return block + "_" + std::to_string(o_.reference_c0) + "_" + o_.reference_macro;
  }

  void start() {
    s_.rng.seed(o_.seed);
    std::set<std::string> queued;
    for (const std::string& b : o_.seed_blocks) {
      const Encoding e = Encoding::parse(reference(b));  // a bad seed block is the caller's error
      if (!within_macs(e))
        throw Error(ErrorCode::kInvalidArgument, "seed block " + b + ": in the reference macro (" + e.to_string() +
                                                     ") it has more MACs than max_macs " +
                                                     std::to_string(o_.max_macs));
      if (queued.insert(e.to_string()).second) s_.block_queue.push_back(e.to_string());
    }
    // Checks the reference macro and C0 once; every sampled block goes into its macro.
    const std::vector<MacroBlock> reference_macro = Encoding::parse(reference("0-")).macro();
    int added = 0;
    const long long max_tries = 1000LL * std::max(1, o_.block_samples);
    for (long long tries = 0; added < o_.block_samples && tries < max_tries; ++tries) {
      const BlockSpec block = zoo::sample_block(s_.rng, o_.space);
      try {
        const Encoding e = Encoding::from_parts(block, o_.reference_c0, reference_macro);
        if (!within_bounds(e) || !queued.insert(e.to_string()).second) continue;
        s_.block_queue.push_back(e.to_string());
        ++added;
      } catch (const Error&) {
        // a block whose groups do not divide the reference widths: draw another
      }
    }
    // validate_search_options() saw to a seed block or some random ones.
    if (s_.block_queue.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  "no block to search: none of " + std::to_string(max_tries) + " random blocks fits max_macs " +
                      std::to_string(o_.max_macs) + " in the reference macro _" + std::to_string(o_.reference_c0) +
                      "_" + o_.reference_macro + " (raise max_macs, or lower the reference C0)");
    say("block level: " + std::to_string(s_.block_queue.size()) + " blocks in macro _" +
        std::to_string(o_.reference_c0) + "_" + o_.reference_macro);
    save(s_, o_, dir_);
  }

  std::vector<Evaluation> evaluate(const std::vector<std::string>& encodings) {
    std::vector<Evaluation> out = evaluator_.evaluate(encodings);
    if (out.size() != encodings.size())
      throw Error(ErrorCode::kInternal, "the evaluator returned " + std::to_string(out.size()) + " results for " +
                                            std::to_string(encodings.size()) + " candidates");
    for (const Evaluation& e : out) {
      seen_.insert(e.encoding);
      s_.evaluations.push_back(e);
      char line[256];
      if (e.ok())
        std::snprintf(line, sizeof line, "  %-40s acc %6.2f %%  step %8.2f ms  (%.0f s, rank %d)", e.encoding.c_str(),
                      100 * e.accuracy, 1000 * e.step_seconds, e.cost_seconds, e.rank);
      else
        std::snprintf(line, sizeof line, "  %-40s failed: %s", e.encoding.c_str(), e.error.c_str());
      say(line);
    }
    return out;
  }

  void block_batch() {
    const std::size_t end = std::min(s_.block_queue.size(), s_.block_done + static_cast<std::size_t>(o_.batch));
    say("block level: candidates " + std::to_string(s_.block_done + 1) + "-" + std::to_string(end) + " of " +
        std::to_string(s_.block_queue.size()));
    evaluate({s_.block_queue.begin() + static_cast<long>(s_.block_done), s_.block_queue.begin() + static_cast<long>(end)});
    s_.block_done = end;
    save(s_, o_, dir_);
  }

  const Evaluation* find(const std::string& encoding) const {
    for (const Evaluation& e : s_.evaluations)
      if (e.encoding == encoding && e.ok()) return &e;
    return nullptr;
  }

  static std::vector<Objectives> objectives(const std::vector<const Evaluation*>& items) {
    std::vector<Objectives> out;
    for (const Evaluation* e : items) out.push_back({e->accuracy, e->step_seconds});
    return out;
  }

  void begin_macro() {
    std::vector<const Evaluation*> blocks;
    for (const std::string& enc : s_.block_queue)
      if (const Evaluation* e = find(enc)) blocks.push_back(e);
    if (blocks.empty())
      throw Error(ErrorCode::kInvalidArgument, "none of the " + std::to_string(s_.block_queue.size()) +
                                                   " block-level candidates trained successfully (the log above "
                                                   "gives each one's error)");
    for (int i : select_best(objectives(blocks), o_.keep_blocks))
      s_.kept_blocks.push_back(Encoding::parse(blocks[static_cast<std::size_t>(i)]->encoding).block_string());
    std::string kept;
    for (const std::string& b : s_.kept_blocks) kept += " " + b;
    say("macro level: kept blocks" + kept);

    // The initial population: each kept block in its reference macro (already
    // evaluated) and in random macros, as many as fill the population.
    std::vector<std::string> fresh;
    const int per_block = std::max(0, (o_.population + static_cast<int>(s_.kept_blocks.size()) - 1) /
                                          static_cast<int>(s_.kept_blocks.size()) - 1);
    for (const std::string& b : s_.kept_blocks) {
      const BlockSpec block = Encoding::parse(reference(b)).block();
      for (int k = 0, tries = 0; k < per_block && tries < 200; ++tries) {
        const std::optional<Encoding> e = zoo::sample_macro(block, s_.rng, o_.space);
        if (!e) {
          say("macro level: no macro of the space takes block " + b + "; it keeps its reference macro only");
          break;
        }
        const std::string text = e->to_string();
        if (!within_bounds(*e) || seen_.count(text) ||
            std::find(fresh.begin(), fresh.end(), text) != fresh.end())
          continue;
        fresh.push_back(text);
        ++k;
      }
    }
    if (!fresh.empty()) evaluate(fresh);
    std::vector<const Evaluation*> pool;
    for (const std::string& b : s_.kept_blocks)
      if (const Evaluation* e = find(reference(b))) pool.push_back(e);
    for (const std::string& text : fresh)
      if (const Evaluation* e = find(text)) pool.push_back(e);
    for (int i : select_best(objectives(pool), o_.population))
      s_.population.push_back(pool[static_cast<std::size_t>(i)]->encoding);
    s_.phase = "macro";
    save(s_, o_, dir_);
  }

  std::string tournament(const std::vector<const Evaluation*>& pop, const std::vector<int>& rank,
                         const std::vector<double>& crowd) {
    std::uniform_int_distribution<std::size_t> pick(0, pop.size() - 1);
    const std::size_t a = pick(s_.rng), b = pick(s_.rng);
    const bool a_wins = rank[a] != rank[b] ? rank[a] < rank[b] : crowd[a] >= crowd[b];
    return pop[a_wins ? a : b]->encoding;
  }

  void generation() {
    std::vector<const Evaluation*> pop;
    for (const std::string& enc : s_.population)
      if (const Evaluation* e = find(enc)) pop.push_back(e);
    if (pop.empty())  // load() refuses such a state; a tournament over nothing would read past the end
      throw Error(ErrorCode::kCorrupt, dir_ + ": no member of the population has a successful evaluation");
    const std::vector<Objectives> obj = objectives(pop);
    const std::vector<int> rank = pareto_ranks(obj);
    const std::vector<double> crowd = crowding_distances(obj, rank);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    std::vector<std::string> children;
    for (int c = 0, tries = 0; c < o_.children && tries < 100 * o_.children; ++tries) {
      const Encoding parent = Encoding::parse(tournament(pop, rank, crowd));
      std::optional<Encoding> child;
      if (s_.kept_blocks.size() > 1 && unit(s_.rng) < o_.block_swap_probability) {
        std::uniform_int_distribution<std::size_t> pick(0, s_.kept_blocks.size() - 1);
        const std::string block = s_.kept_blocks[pick(s_.rng)];
        try {
          child = Encoding::parse(block + "_" + std::to_string(parent.c0()) + "_" + parent.macro_string());
        } catch (const Error&) {
          continue;  // the block's groups do not divide this macro's widths
        }
      } else {
        child = zoo::mutate_macro(parent, s_.rng, o_.space);
      }
      const std::string text = child->to_string();
      if (!within_bounds(*child) || seen_.count(text) ||
          std::find(children.begin(), children.end(), text) != children.end())
        continue;
      children.push_back(text);
      ++c;
    }
    say("generation " + std::to_string(s_.generation + 1) + "/" + std::to_string(o_.generations) + ": " +
        std::to_string(children.size()) + " children");
    if (!children.empty()) evaluate(children);
    std::vector<const Evaluation*> pool = pop;
    for (const std::string& text : children)
      if (const Evaluation* e = find(text)) pool.push_back(e);
    std::vector<std::string> next;
    for (int i : select_best(objectives(pool), o_.population)) next.push_back(pool[static_cast<std::size_t>(i)]->encoding);
    s_.population = next;
    ++s_.generation;
    save(s_, o_, dir_);
  }

  const SearchOptions& o_;
  Evaluator& evaluator_;
  std::string dir_;
  SearchLog log_;
  State s_;
  std::set<std::string> seen_;
};

}  // namespace

SearchResult run_search(const SearchOptions& options, Evaluator& evaluator, const std::string& state_dir,
                        const SearchLog& log) {
  return Search(options, evaluator, state_dir, log).run();
}

std::vector<Evaluation> pareto_front(const std::vector<Evaluation>& evaluations) {
  std::vector<Evaluation> ok;
  for (const Evaluation& e : evaluations)
    if (e.ok()) ok.push_back(e);
  std::vector<Objectives> obj;
  for (const Evaluation& e : ok) obj.push_back({e.accuracy, e.step_seconds});
  const std::vector<int> rank = pareto_ranks(obj);
  std::vector<Evaluation> front;
  std::set<std::string> in_front;
  for (std::size_t i = 0; i < ok.size(); ++i)
    if (rank[i] == 0 && in_front.insert(ok[i].encoding).second) front.push_back(ok[i]);
  std::stable_sort(front.begin(), front.end(),
                   [](const Evaluation& a, const Evaluation& b) { return a.step_seconds < b.step_seconds; });
  return front;
}

std::vector<Evaluation> spread_over_front(const std::vector<Evaluation>& front, int count) {
  std::vector<Evaluation> sorted = front;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Evaluation& a, const Evaluation& b) { return a.step_seconds < b.step_seconds; });
  if (count <= 0) return {};
  if (static_cast<int>(sorted.size()) <= count) return sorted;
  const double lo = std::log(sorted.front().step_seconds), hi = std::log(sorted.back().step_seconds);
  std::vector<bool> taken(sorted.size(), false);
  for (int k = 0; k < count; ++k) {
    const double target = count == 1 ? lo : lo + (hi - lo) * k / (count - 1);
    std::size_t best = sorted.size();
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      if (taken[i]) continue;
      if (best == sorted.size() ||
          std::abs(std::log(sorted[i].step_seconds) - target) < std::abs(std::log(sorted[best].step_seconds) - target))
        best = i;
    }
    taken[best] = true;
  }
  std::vector<Evaluation> out;
  for (std::size_t i = 0; i < sorted.size(); ++i)
    if (taken[i]) out.push_back(sorted[i]);
  return out;
}

std::string options_json(const SearchOptions& options) { return options_to_json(options).dump(); }

}  // namespace nasoa::search
