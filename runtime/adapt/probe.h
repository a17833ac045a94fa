// runtime/adapt/probe.h: the transferability probe the predictor may use as
// an extra feature: the LogME score of a pretrained model's frozen features
// on a small sample of the task, from a few forward passes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nasoa::zoo {
class NetworkImpl;
}

namespace nasoa::runtime {

class ImageStore;

// Up to `per_class` indices of each class among `indices`, in their order.
std::vector<std::size_t> probe_sample(const ImageStore& store, const std::vector<std::size_t>& indices, int per_class);

// LogME of `network`'s pooled features (its head is not used) on `indices`
// of the store, normalised with `mean`/`std`, in eval mode, without
// gradients, on the CPU or wherever the network lives. Throws what
// logme_score throws (fewer than two images or classes).
double logme_probe(zoo::NetworkImpl& network, const ImageStore& store, const std::vector<std::size_t>& indices,
                   const std::array<float, 3>& mean, const std::array<float, 3>& std, int workers = 1);

}  // namespace nasoa::runtime
