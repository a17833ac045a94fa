// Analytic parameter and MAC counts, read off the network plan.
#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "zoo/search_space/network_plan.h"

namespace nasoa {
namespace {

// Counts in 64 bits and refuses to wrap: an absurd encoding (C0 4096 with
// many quadruplings at a large input) can exceed 2^63 MACs, and a wrapped,
// negative count would pass a --max-macs filter.
struct Counter {
  std::int64_t parameters = 0;
  std::int64_t macs = 0;
  bool overflow = false;

  static std::int64_t mul(std::int64_t a, std::int64_t b, bool& overflow) {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(a, b, &r)) overflow = true;
    return r;
  }
  static void add(std::int64_t& to, std::int64_t v, bool& overflow) {
    if (__builtin_add_overflow(to, v, &to)) overflow = true;
  }

  // A convolution (no bias) at output side `side`, plus its BN when `bn`.
  void conv(std::int64_t in, std::int64_t out, int kernel, int groups, int side, bool bn) {
    const std::int64_t weights = mul(mul(out, in / groups, overflow), kernel * kernel, overflow);
    add(parameters, weights, overflow);
    if (bn) add(parameters, 2 * out, overflow);
    add(macs, mul(weights, mul(side, side, overflow), overflow), overflow);
  }
  void linear(std::int64_t in, std::int64_t out) {
    const std::int64_t weights = mul(in, out, overflow);
    add(parameters, weights, overflow);
    add(parameters, out, overflow);
    add(macs, weights, overflow);
  }
};

}  // namespace

NetworkCost count_cost(const Encoding& encoding, int num_classes, int input_size) {
  if (num_classes < 1)
    throw Error(ErrorCode::kInvalidArgument,
                "num_classes must be at least 1, got " + std::to_string(num_classes));
  if (input_size < 1)
    throw Error(ErrorCode::kInvalidArgument,
                "input_size must be at least 1, got " + std::to_string(input_size));
  const zoo::NetworkPlan plan = zoo::plan_network(encoding);
  Counter count;
  int side = input_size;
  for (const zoo::ConvPlan& c : plan.stem) {
    side = zoo::conv_output_side(side, c.stride);
    count.conv(c.in_channels, c.out_channels, c.kernel, c.groups, side, true);
  }
  for (const auto& stage : plan.stages) {
    for (const zoo::BlockPlan& block : stage) {
      const int in_side = side;
      const int out_side = zoo::conv_output_side(side, block.stride);
      int layer_side = in_side;
      for (const zoo::LayerPlan& l : block.layers) {
        layer_side = zoo::conv_output_side(layer_side, l.stride);
        if (l.op == Op::kSeparable) {
          count.conv(l.in_channels, l.in_channels, 3, l.groups, layer_side, false);
          count.conv(l.in_channels, l.out_channels, 1, 1, layer_side, true);
        } else {
          count.conv(l.in_channels, l.out_channels, l.op == Op::kConv1x1 ? 1 : 3, l.groups,
                     layer_side, true);
        }
      }
      for (const zoo::ConnectionPlan& c : block.connections) {
        if (!c.projection) continue;
        // A projection produces a tensor at its target node's resolution.
        const int proj_side = c.connection.to >= block.stride_node ? out_side : in_side;
        count.conv(c.projection->in_channels, c.projection->out_channels, 1, 1, proj_side, true);
      }
      side = out_side;
    }
  }
  count.linear(plan.feature_channels, num_classes);
  if (count.overflow)
    throw Error(ErrorCode::kInvalidArgument,
                "encoding '" + encoding.to_string() + "' at input " + std::to_string(input_size) +
                    " with " + std::to_string(num_classes) +
                    " classes has more parameters or MACs than a 64-bit count holds");
  return {count.parameters, count.macs};
}

}  // namespace nasoa
