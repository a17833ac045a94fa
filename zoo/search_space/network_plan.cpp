#include "zoo/search_space/network_plan.h"

#include <algorithm>

#include "nasoa/error.h"

namespace nasoa::zoo {
namespace {

// Group count of `op` reading `in` channels, or 0 when `in`/`out` do not allow it.
int groups_for(Op op, int in, int out) {
  int groups = 1;
  switch (op) {
    case Op::kConv3x3:
    case Op::kConv1x1:
      return 1;
    case Op::kConv3x3Groups2:
      groups = 2;
      break;
    case Op::kConv3x3Groups4:
      groups = 4;
      break;
    case Op::kConv3x3Depthwise:
    case Op::kSeparable:
      groups = in;
      break;
    case Op::kConv3x3Group32:
      groups = in / std::min(32, in);
      if (in % std::min(32, in) != 0) return 0;
      break;
  }
  if (in % groups != 0) return 0;
  // The separable op's depthwise part maps in -> in; its 1x1 is dense.
  if (op != Op::kSeparable && out % groups != 0) return 0;
  return groups;
}

const char* op_name(Op op) {
  switch (op) {
    case Op::kConv3x3: return "conv3x3";
    case Op::kConv1x1: return "conv1x1";
    case Op::kConv3x3Groups2: return "conv3x3 groups=2";
    case Op::kConv3x3Groups4: return "conv3x3 groups=4";
    case Op::kConv3x3Depthwise: return "conv3x3 groups=in_channels";
    case Op::kConv3x3Group32: return "conv3x3 32 channels per group";
    case Op::kSeparable: return "separable";
  }
  return "?";
}

// The layer that carries the block's stride: the first that is not a 1x1
// conv, or the last if all are (1-based layer index = its output node).
int stride_layer(const BlockSpec& block) {
  for (std::size_t i = 0; i < block.layers.size(); ++i)
    if (block.layers[i].op != Op::kConv1x1) return static_cast<int>(i) + 1;
  return static_cast<int>(block.layers.size());
}

std::optional<BlockPlan> plan_block(const BlockSpec& block, int in, int out, int stride,
                                    PlanIssue* issue) {
  const int num_layers = static_cast<int>(block.layers.size());
  const int strided = stride_layer(block);
  auto node_stride = [&](int node) { return node >= strided ? stride : 1; };

  BlockPlan plan;
  plan.in_channels = in;
  plan.out_channels = out;
  plan.stride = stride;
  plan.stride_node = strided;
  plan.node_widths.assign(num_layers + 1, 0);
  plan.node_widths[0] = in;

  // Connections in application order: by target node, stable, residual last.
  std::vector<Connection> ordered = block.connections;
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Connection& a, const Connection& b) { return a.to < b.to; });
  ordered.push_back({ConnectionKind::kAdd, 0, num_layers});

  auto fail = [&](int layer, std::string rule, std::string detail) {
    if (issue) *issue = {layer, -1, std::move(rule), std::move(detail)};
    return std::nullopt;
  };

  std::size_t next = 0;
  for (int i = 1; i <= num_layers; ++i) {
    const Layer& layer = block.layers[i - 1];
    const int layer_in = plan.node_widths[i - 1];
    const int layer_out =
        i == num_layers ? out : static_cast<int>((static_cast<long long>(out) << layer.width_code) / 4);
    if (layer_out < 1)
      return fail(i - 1, "width below one channel",
                  "layer " + std::to_string(i) + " would have " + std::to_string(layer_out) +
                      " channels");
    const int groups = groups_for(layer.op, layer_in, layer_out);
    if (groups == 0)
      return fail(i - 1, "groups do not divide a width",
                  "layer " + std::to_string(i) + " (" + op_name(layer.op) + ") maps " +
                      std::to_string(layer_in) + " to " + std::to_string(layer_out) +
                      " channels");
    plan.layers.push_back({layer.op, layer_in, layer_out, i == strided ? stride : 1, groups});
    int width = layer_out;
    for (; next < ordered.size() && ordered[next].to == i; ++next) {
      const Connection& c = ordered[next];
      const int src_width = plan.node_widths[c.from];
      const bool stride_differs = node_stride(c.from) != node_stride(i);
      ConnectionPlan cp{c, std::nullopt};
      if (c.kind == ConnectionKind::kAdd) {
        if (stride_differs || src_width != width)
          cp.projection = ProjectionPlan{src_width, width, stride_differs ? stride : 1};
      } else {
        if (stride_differs) cp.projection = ProjectionPlan{src_width, src_width, stride};
        width += src_width;
      }
      plan.connections.push_back(cp);
    }
    if (width > kMaxChannels)
      return fail(i - 1, "width above the channel limit",
                  "node " + std::to_string(i) + " would have " + std::to_string(width) +
                      " channels (limit " + std::to_string(kMaxChannels) + ")");
    plan.node_widths[i] = width;
  }
  return plan;
}

}  // namespace

std::optional<NetworkPlan> try_plan_network(const BlockSpec& block, int c0,
                                            const std::vector<MacroBlock>& macro,
                                            PlanIssue* issue) {
  NetworkPlan plan;
  plan.stem[0] = {3, c0 / 2, 3, 2, 1};
  plan.stem[1] = {c0 / 2, c0 / 2, 3, 1, 1};
  plan.stem[2] = {c0 / 2, c0, 3, 2, 1};
  long long width = c0;
  for (std::size_t b = 0; b < macro.size(); ++b) {
    const MacroBlock& m = macro[b];
    const long long out = width * m.multiplier;
    if (out > kMaxChannels) {
      if (issue)
        *issue = {-1, static_cast<int>(b), "width above the channel limit",
                  "block " + std::to_string(b + 1) + " would have " + std::to_string(out) +
                      " channels (limit " + std::to_string(kMaxChannels) + ")"};
      return std::nullopt;
    }
    if (m.downsample || plan.stages.empty()) plan.stages.emplace_back();
    auto bp = plan_block(block, static_cast<int>(width), static_cast<int>(out),
                         m.downsample ? 2 : 1, issue);
    if (!bp) {
      if (issue) issue->macro_block = static_cast<int>(b);
      return std::nullopt;
    }
    plan.stages.back().push_back(std::move(*bp));
    width = out;
  }
  plan.feature_channels = static_cast<int>(width);
  return plan;
}

NetworkPlan plan_network(const Encoding& encoding) {
  PlanIssue issue;
  auto plan = try_plan_network(encoding.block(), encoding.c0(), encoding.macro(), &issue);
  if (!plan)
    throw Error(ErrorCode::kInternal,
                "validated encoding '" + encoding.to_string() + "' cannot be planned: " +
                    issue.rule + ": " + issue.detail);
  return std::move(*plan);
}

}  // namespace nasoa::zoo
