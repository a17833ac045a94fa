// offline_tools/search/search.h: NASOA's two-level architecture search.
//
// Block level: blocks are sampled (1 to 4 layers, any of the 7 ops, widths,
// 0 to 2 extra add/concat connections), each placed in one fixed reference
// macro and evaluated; the blocks on or nearest the accuracy/step-time Pareto
// front are kept. Macro level: a multi-objective evolution (NSGA-II: non-
// dominated sorting with crowding; parents by binary tournament from the
// population) over macros built from the kept blocks. A child is a macro
// mutation of its parent (insert or remove a block, move a channel doubling,
// move a downsampling, change C0: zoo::mutate_macro) or, less often, the
// parent's macro with another kept block.
//
// State: after every batch of evaluations the whole state (every evaluation,
// the population, the phase, the random generator) is written atomically to
// STATE_DIR/state.json, so a killed search resumes where it stopped and,
// given the same evaluations, ends exactly as an uninterrupted one would.
// A state written with other options is refused, naming the option, except
// that --generations may be raised: a finished search then runs the extra
// generations, exactly as if it had been asked for them from the start.
//
// Threads: run_search() calls the evaluator on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "offline_tools/search/evaluation.h"
#include "zoo/search_space/sampler.h"

namespace nasoa::search {

struct SearchOptions {
  std::uint64_t seed = 1;
  zoo::SamplerOptions space;                  // depth and width bounds, C0 choices, block shape
  std::int64_t max_macs = 0;                  // candidates above it (at input_size) are not evaluated; 0: none
  int input_size = 32;                        // for max_macs
  int classes = 100;                          // for max_macs
  // Block level.
  std::string reference_macro = "1-21-21";    // the fixed macro blocks are placed in
  int reference_c0 = 16;
  std::vector<std::string> seed_blocks;       // evaluated besides the sampled ones (e.g. known blocks)
  int block_samples = 24;
  int keep_blocks = 4;
  // Macro level.
  int population = 8;
  int generations = 6;
  int children = 8;                           // per generation
  double block_swap_probability = 0.2;        // a child takes another kept block instead of a macro mutation
  int batch = 8;                              // evaluations between two state saves in the block phase
  // The evaluator's settings (proxy training, timing), as text: a resumed
  // search must evaluate as the state's did, or its results would not compare.
  std::string evaluator;
};

struct SearchResult {
  std::vector<Evaluation> evaluated;   // every successful evaluation, in the order made
  std::vector<Evaluation> attempted;   // every evaluation, failures (error set) included, in the order made
  std::vector<Evaluation> front;       // the non-dominated ones, by step time
  std::vector<std::string> kept_blocks;
  std::vector<std::string> population; // the final macro-level population
  int generations_done = 0;
};

// Throws Error{kInvalidArgument}, naming the option and its value, when
// `options` cannot be searched (an empty range, a reference macro outside the
// space, ...). run_search() calls it; a program may call it before the
// hours of reading a corpus.
void validate_search_options(const SearchOptions& options);

using SearchLog = std::function<void(const std::string&)>;

// Runs (or resumes from `state_dir`, when it holds a state) the whole search.
// Throws Error{kInvalidArgument} for bad options or a state made with other
// options, Error{kCorrupt} for an unreadable state, and whatever the
// evaluator throws.
SearchResult run_search(const SearchOptions& options, Evaluator& evaluator, const std::string& state_dir,
                        const SearchLog& log = {});

// The non-dominated evaluations, sorted by step time.
std::vector<Evaluation> pareto_front(const std::vector<Evaluation>& evaluations);

// `count` members of a front spread evenly in log step time: the fastest,
// from a count of two on the slowest, then the one nearest each evenly
// spaced target.
std::vector<Evaluation> spread_over_front(const std::vector<Evaluation>& front, int count);

// JSON of the options, as recorded in the state (what a resume must match).
std::string options_json(const SearchOptions& options);

}  // namespace nasoa::search
