// runtime/data/batching.h: how an epoch's images fall into batches, for the
// loader that builds them and the planner that predicts their cost.
#pragma once

#include <algorithm>
#include <cstdint>

namespace nasoa::runtime {

// An epoch of `images` at `batch_size` never ends in a batch of one when
// `no_batch_of_one` (training): one image over joins the batch before.
// BatchNorm cannot normalise a single value per channel (a network whose
// last feature maps are 1x1), and dropping the image would leave it out.

// The batches of such an epoch.
inline std::int64_t batches_per_epoch(std::int64_t images, int batch_size, bool no_batch_of_one) {
  const std::int64_t b = std::max(1, batch_size);
  // (Not images + b - 1, which overflows near the int64 maximum.)
  const std::int64_t full = images / b + (images % b != 0);
  return no_batch_of_one && b > 1 && images > b && images % b == 1 ? full - 1 : full;
}

// The images its largest batch holds.
inline std::int64_t largest_batch(std::int64_t images, int batch_size, bool no_batch_of_one) {
  const std::int64_t b = std::max(1, batch_size);
  if (images <= b) return std::max<std::int64_t>(images, 0);
  return no_batch_of_one && b > 1 && images % b == 1 ? b + 1 : b;
}

}  // namespace nasoa::runtime
