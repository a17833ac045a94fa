#include "runtime/adapt/probe.h"

#include <torch/torch.h>

#include <map>

#include "runtime/adapt/logme.h"
#include "runtime/data/batch_loader.h"
#include "runtime/data/image_store.h"
#include "zoo/builder/network.h"

namespace nasoa::runtime {

std::vector<std::size_t> probe_sample(const ImageStore& store, const std::vector<std::size_t>& indices, int per_class) {
  std::map<int, int> taken;
  std::vector<std::size_t> out;
  for (std::size_t i : indices)
    if (taken[store.label(i)]++ < per_class) out.push_back(i);
  return out;
}

double logme_probe(zoo::NetworkImpl& network, const ImageStore& store, const std::vector<std::size_t>& indices,
                   const std::array<float, 3>& mean, const std::array<float, 3>& std, int workers) {
  LoaderOptions options;
  options.batch_size = 64;
  options.shuffle = false;
  options.mean = mean;
  options.std = std;
  options.workers = workers;
  BatchLoader loader(store, indices, options);
  loader.start_epoch(0);
  const bool was_training = network.is_training();
  network.eval();
  torch::NoGradGuard no_grad;
  const torch::Device device = network.parameters().empty() ? torch::Device(torch::kCPU)
                                                            : network.parameters().front().device();
  std::vector<float> features;
  std::vector<int> labels;
  int d = 0;
  while (auto batch = loader.next()) {
    const torch::Tensor f = network.features(batch->images.to(device)).to(torch::kCPU).contiguous();
    d = static_cast<int>(f.size(1));
    features.insert(features.end(), f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
    for (std::int64_t k = 0; k < batch->labels.size(0); ++k) labels.push_back(static_cast<int>(batch->labels[k].item<std::int64_t>()));
  }
  network.train(was_training);
  return logme_score(features, static_cast<int>(labels.size()), d, labels,
                     static_cast<int>(store.class_names().size()));
}

}  // namespace nasoa::runtime
