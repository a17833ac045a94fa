// runtime/data/split.h: stratified train/validation splits.
#pragma once

#include <cstdint>
#include <vector>

namespace nasoa::runtime {

struct Split {
  std::vector<std::size_t> train;       // indices into the labels given
  std::vector<std::size_t> validation;
};

// Per class, a seeded shuffle puts round(fraction x count) images into
// validation: at least one when the class has two or more images, never all
// of them. Deterministic for (labels, fraction, seed). Throws
// Error{kInvalidArgument} unless 0 < fraction < 1.
Split stratified_split(const std::vector<int>& labels, double validation_fraction,
                       std::uint64_t seed);

}  // namespace nasoa::runtime
