#include "offline_tools/search/pareto.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace nasoa::search {

bool dominates(const Objectives& a, const Objectives& b) {
  const bool no_worse = a.accuracy >= b.accuracy && a.step_seconds <= b.step_seconds;
  const bool better = a.accuracy > b.accuracy || a.step_seconds < b.step_seconds;
  return no_worse && better;
}

std::vector<int> pareto_ranks(const std::vector<Objectives>& points) {
  // Deb's fast non-dominated sort: O(n^2) comparisons, fine for the few
  // hundred candidates a search evaluates.
  const std::size_t n = points.size();
  std::vector<std::vector<std::size_t>> dominated(n);
  std::vector<int> dominators(n, 0), rank(n, -1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      if (dominates(points[i], points[j])) dominated[i].push_back(j);
      else if (dominates(points[j], points[i])) ++dominators[i];
    }
  std::vector<std::size_t> front;
  for (std::size_t i = 0; i < n; ++i)
    if (dominators[i] == 0) rank[i] = 0, front.push_back(i);
  for (int r = 0; !front.empty(); ++r) {
    std::vector<std::size_t> next;
    for (std::size_t i : front)
      for (std::size_t j : dominated[i])
        if (--dominators[j] == 0) rank[j] = r + 1, next.push_back(j);
    front = std::move(next);
  }
  return rank;
}

std::vector<double> crowding_distances(const std::vector<Objectives>& points, const std::vector<int>& ranks) {
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> distance(points.size(), 0.0);
  const int fronts = ranks.empty() ? 0 : *std::max_element(ranks.begin(), ranks.end()) + 1;
  for (int f = 0; f < fronts; ++f) {
    std::vector<std::size_t> members;
    for (std::size_t i = 0; i < ranks.size(); ++i)
      if (ranks[i] == f) members.push_back(i);
    if (members.size() <= 2) {
      for (std::size_t i : members) distance[i] = inf;
      continue;
    }
    for (int objective = 0; objective < 2; ++objective) {
      auto value = [&](std::size_t i) { return objective == 0 ? points[i].accuracy : points[i].step_seconds; };
      std::stable_sort(members.begin(), members.end(),
                       [&](std::size_t a, std::size_t b) { return value(a) < value(b); });
      const double span = value(members.back()) - value(members.front());
      distance[members.front()] = distance[members.back()] = inf;
      if (span <= 0) continue;
      for (std::size_t k = 1; k + 1 < members.size(); ++k)
        distance[members[k]] += (value(members[k + 1]) - value(members[k - 1])) / span;
    }
  }
  return distance;
}

std::vector<int> select_best(const std::vector<Objectives>& points, int count) {
  const std::vector<int> rank = pareto_ranks(points);
  const std::vector<double> crowd = crowding_distances(points, rank);
  std::vector<int> order(points.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (rank[a] != rank[b]) return rank[a] < rank[b];
    return crowd[a] > crowd[b];
  });
  if (count < static_cast<int>(order.size())) order.resize(static_cast<std::size_t>(std::max(count, 0)));
  return order;
}

}  // namespace nasoa::search
