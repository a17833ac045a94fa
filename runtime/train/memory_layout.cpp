#include "runtime/train/memory_layout.h"

#include <torch/torch.h>

#include <algorithm>

namespace nasoa::runtime {
namespace {

torch::MemoryFormat format_of(MemoryLayout layout) {
  return layout == MemoryLayout::kChannelsLast ? torch::MemoryFormat::ChannelsLast
                                               : torch::MemoryFormat::Contiguous;
}

}  // namespace

const char* to_string(MemoryLayout layout) {
  return layout == MemoryLayout::kChannelsLast ? "channels-last" : "channels-first";
}

std::optional<MemoryLayout> parse_memory_layout(std::string_view text) {
  if (text == "channels-first") return MemoryLayout::kChannelsFirst;
  if (text == "channels-last") return MemoryLayout::kChannelsLast;
  return std::nullopt;
}

void set_memory_layout(torch::nn::Module& module, MemoryLayout layout) {
  const torch::MemoryFormat format = format_of(layout);
  torch::NoGradGuard no_grad;
  auto convert = [&](torch::Tensor& t) {
    if (t.dim() != 4 || t.is_contiguous(format)) return;
    t.set_data(t.contiguous(format));
    // A gradient left in the old layout would keep that layout for every
    // later step's accumulation; the next backward pass makes a new one.
    if (t.grad().defined()) t.mutable_grad() = torch::Tensor();
  };
  for (torch::Tensor& p : module.parameters()) convert(p);
  for (torch::Tensor& b : module.buffers()) convert(b);
}

at::Tensor in_memory_layout(const at::Tensor& images, MemoryLayout layout) {
  if (images.dim() != 4) return images;
  return images.contiguous(format_of(layout));
}

MemoryLayout LayoutTrial::layout_for(long long index) const {
  if (index >= 0 && index < kSteps) return index % 2 == 0 ? MemoryLayout::kChannelsFirst : MemoryLayout::kChannelsLast;
  return choice();
}

void LayoutTrial::record(long long index, double seconds) {
  if (index < 0 || index >= kSteps) return;
  recorded_ = std::max<int>(recorded_, int(index) + 1);
  if (index < 2) return;  // each layout's first step sets its kernels up
  double& fastest = fastest_[layout_for(index) == MemoryLayout::kChannelsLast];
  fastest = std::min(fastest, seconds);
}

MemoryLayout LayoutTrial::choice() const {
  if (!decided()) return MemoryLayout::kChannelsFirst;
  return fastest_[1] < fastest_[0] ? MemoryLayout::kChannelsLast : MemoryLayout::kChannelsFirst;
}

}  // namespace nasoa::runtime
