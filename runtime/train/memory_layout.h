// runtime/train/memory_layout.h: the memory layout a network trains in.
//
// oneDNN's CPU convolutions run faster on channels-last (NHWC) tensors for
// wide networks and slower for narrow ones: on a 2-core x86 machine a step of
// 32-channel zoo models ran up to 1.8x faster in NHWC, while 8- and
// 12-channel ones ran 1.2-1.6x slower (bench/README.md). Which layout wins
// depends on the network and the processor, so it is measured, never assumed:
// the device profile times both per model, and a fine-tune without a profile
// tries both on its first steps (LayoutTrial). Both layouts compute the same
// function; only the speed differs.
//
// The layout is an execution detail: saved weights, checkpoints and the
// network handed back to the caller are always in the default (channels-
// first) layout. On a GPU the default stays (not measured there).
#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace at {
class Tensor;
}
namespace torch::nn {
class Module;
}

namespace nasoa::runtime {

enum class MemoryLayout { kChannelsFirst, kChannelsLast };

// "channels-first" / "channels-last"; parse accepts exactly these.
const char* to_string(MemoryLayout layout);
std::optional<MemoryLayout> parse_memory_layout(std::string_view text);

// Moves every 4-D parameter and buffer of `module` to `layout`, in place (the
// same tensor objects, so optimisers holding them stay valid).
void set_memory_layout(torch::nn::Module& module, MemoryLayout layout);

// A batch of images (N x C x H x W) in `layout`; no copy when it already is.
at::Tensor in_memory_layout(const at::Tensor& images, MemoryLayout layout);

// Picks a layout from the first steps of a run, which train for real: they
// alternate channels-first and channels-last, the first of each layout sets
// its kernels up and is not counted, and the layout whose fastest counted
// step is faster wins (the fastest, because other load on the machine can
// only slow a step down).
class LayoutTrial {
 public:
  // 8 per layout, 7 of them counted: with fewer, one step that other load
  // did not touch decided, and the choice flipped between runs where the two
  // layouts are within 10 % of each other.
  static constexpr int kSteps = 16;

  // The layout step `index` (0-based, of this run) trains in: alternating
  // while the trial runs, then the choice.
  MemoryLayout layout_for(long long index) const;
  // Records the seconds step `index` took; steps past the trial are ignored.
  void record(long long index, double seconds);
  bool decided() const { return recorded_ >= kSteps; }
  // The faster layout; channels-first until decided() or when they tie.
  MemoryLayout choice() const;
  // The fastest counted step of each layout (+inf before one is counted).
  double fastest(MemoryLayout layout) const { return fastest_[layout == MemoryLayout::kChannelsLast]; }

 private:
  std::array<double, 2> fastest_{1e300, 1e300};
  int recorded_ = 0;
};

}  // namespace nasoa::runtime
