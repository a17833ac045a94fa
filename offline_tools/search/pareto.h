// offline_tools/search/pareto.h: two-objective Pareto ranking for the search.
//
// The search trades accuracy (higher is better) against training step time
// (lower is better). These are the two pieces of NSGA-II the evolution needs:
// non-dominated sorting into fronts and the crowding distance inside a front.
// Pure functions of their inputs; safe from any thread.
#pragma once

#include <vector>

namespace nasoa::search {

struct Objectives {
  double accuracy = 0;      // maximised
  double step_seconds = 0;  // minimised
};

// True when `a` is at least as good as `b` in both objectives and better in one.
bool dominates(const Objectives& a, const Objectives& b);

// Front number of every point: 0 for the non-dominated ones, 1 for those
// dominated only by front 0, and so on. Equal points share a front.
std::vector<int> pareto_ranks(const std::vector<Objectives>& points);

// NSGA-II crowding distance of each point within its own front (`ranks` as
// pareto_ranks returns them): the sum over objectives of the normalised gap
// between its neighbours; a front's extremes get infinity so they survive.
std::vector<double> crowding_distances(const std::vector<Objectives>& points, const std::vector<int>& ranks);

// Indices of the `count` best points by (rank ascending, crowding descending),
// ties broken by index so the choice is deterministic.
std::vector<int> select_best(const std::vector<Objectives>& points, int count);

}  // namespace nasoa::search
