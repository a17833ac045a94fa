#include "runtime/data/split.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "nasoa/error.h"

namespace nasoa::runtime {

Split stratified_split(const std::vector<int>& labels, double fraction, std::uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0))
    throw Error(ErrorCode::kInvalidArgument,
                "validation fraction must lie strictly between 0 and 1, got " + std::to_string(fraction));
  std::map<int, std::vector<std::size_t>> by_class;
  for (std::size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(i);
  Split split;
  std::mt19937_64 rng(seed);
  for (auto& [label, indices] : by_class) {
    std::shuffle(indices.begin(), indices.end(), rng);
    const std::size_t n = indices.size();
    std::size_t held = n < 2 ? 0 : std::size_t(std::lround(fraction * double(n)));
    held = std::clamp<std::size_t>(held, n < 2 ? 0 : 1, n - 1);
    split.validation.insert(split.validation.end(), indices.begin(), indices.begin() + std::ptrdiff_t(held));
    split.train.insert(split.train.end(), indices.begin() + std::ptrdiff_t(held), indices.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.validation.begin(), split.validation.end());
  return split;
}

}  // namespace nasoa::runtime
