// zoo/search_space/network_plan.h: the channel, stride and group layout of a
// network, derived from its encoding.
//
// This is the single place where the encoding's semantics (widths, where the
// stride goes, projections, concat widening, group counts) are decided. The
// analytic cost model, the validator and the LibTorch builder all read a
// NetworkPlan, so that they cannot disagree.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "nasoa/encoding.h"

namespace nasoa::zoo {

struct ConvPlan {
  int in_channels = 0;
  int out_channels = 0;
  int kernel = 3;
  int stride = 1;
  int groups = 1;
};

// A layer: its op realised on concrete channel counts. For Op::kSeparable,
// `groups` is that of the depthwise part (= in_channels); the 1x1 that
// follows is dense.
struct LayerPlan {
  Op op = Op::kConv3x3;
  int in_channels = 0;
  int out_channels = 0;
  int stride = 1;
  int groups = 1;
};

// A 1x1 conv + BN that adapts a connection's source to its target.
struct ProjectionPlan {
  int in_channels = 0;
  int out_channels = 0;
  int stride = 1;
};

struct ConnectionPlan {
  Connection connection;
  std::optional<ProjectionPlan> projection;
};

struct BlockPlan {
  int in_channels = 0;
  int out_channels = 0;
  int stride = 1;
  // Layer (1-based, = its output node) that carries the stride: nodes from
  // here on are at the block's output resolution, earlier ones at its input's.
  int stride_node = 1;
  std::vector<LayerPlan> layers;
  // Every connection in the order it is applied (by target node, then as
  // listed), the implicit residual last.
  std::vector<ConnectionPlan> connections;
  std::vector<int> node_widths;  // after concats; node_widths[0] = in_channels
};

struct NetworkPlan {
  std::array<ConvPlan, 3> stem;
  std::vector<std::vector<BlockPlan>> stages;  // stages[0] is stage 1 (stage 0 is the stem)
  int feature_channels = 0;
};

// Why a block/C0/macro combination cannot be built.
struct PlanIssue {
  int layer = -1;        // 0-based layer of the block at fault, or -1
  int macro_block = -1;  // 0-based macro block where it shows, or -1
  std::string rule;      // short name of the rule broken
  std::string detail;
};

// Plans the network, or returns the first issue in `issue` and std::nullopt.
std::optional<NetworkPlan> try_plan_network(const BlockSpec& block, int c0,
                                            const std::vector<MacroBlock>& macro,
                                            PlanIssue* issue);

// Plans a validated encoding; cannot fail.
NetworkPlan plan_network(const Encoding& encoding);

// Spatial side after a 3x3 (pad 1) or 1x1 (pad 0) conv with this stride.
inline int conv_output_side(int side, int stride) { return (side - 1) / stride + 1; }

}  // namespace nasoa::zoo
