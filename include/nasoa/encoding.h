// nasoa/encoding.h: ET-NAS architecture encodings, `BLOCK_C0_MACRO`.
//
// An Encoding is a validated value: every Encoding object describes a network
// that can be built (see docs/search-space.md for the grammar and semantics).
// Construction validates and throws nasoa::Error{kInvalidEncoding} with a
// message naming the rule broken and the 0-based position in the string.
// Encodings are plain copyable values; all members are safe to call from
// several threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nasoa/export.h"

namespace nasoa {

// Layer operations, by their digit in the encoding. Every op is followed by BN.
enum class Op : int {
  kConv3x3 = 0,
  kConv1x1 = 1,
  kConv3x3Groups2 = 2,
  kConv3x3Groups4 = 3,
  kConv3x3Depthwise = 4,    // groups = input channels
  kConv3x3Group32 = 5,      // 32 channels per group (all channels if fewer)
  kSeparable = 6,           // depthwise 3x3, then 1x1
};
inline constexpr int kNumOps = 7;
inline constexpr int kMaxWidthCode = 4;     // width = block_out * 2^code / 4
inline constexpr int kMaxLayersPerBlock = 9;  // node numbers are single digits
inline constexpr int kMaxChannels = 65536;  // no tensor of the network is wider

// Width code of a block's last layer, whose width is always the block's output.
inline constexpr int kOutputWidth = -1;

struct Layer {
  Op op = Op::kConv3x3;
  int width_code = kOutputWidth;  // 0..4, or kOutputWidth for the last layer
  bool operator==(const Layer& o) const { return op == o.op && width_code == o.width_code; }
};

enum class ConnectionKind { kAdd, kConcat };

// From node `from` to node `to`; node 0 is the block input, node i layer i's output.
struct Connection {
  ConnectionKind kind = ConnectionKind::kAdd;
  int from = 0;
  int to = 0;
  bool operator==(const Connection& o) const {
    return kind == o.kind && from == o.from && to == o.to;
  }
};

// The block used everywhere in the network. `connections` are the explicit
// ones of the string; the residual add from node 0 to the last node is
// implicit and never listed.
struct BlockSpec {
  std::vector<Layer> layers;
  std::vector<Connection> connections;
  bool operator==(const BlockSpec& o) const {
    return layers == o.layers && connections == o.connections;
  }
};

// One block of the macro: its channel multiplier (1, 2 or 4) and whether it
// downsamples (a '-' before its digit).
struct MacroBlock {
  int multiplier = 1;
  bool downsample = false;
  bool operator==(const MacroBlock& o) const {
    return multiplier == o.multiplier && downsample == o.downsample;
  }
};

class NASOA_API Encoding {
 public:
  // Parses and validates `text`. Throws Error{kInvalidEncoding}.
  static Encoding parse(std::string_view text);

  // Validates parts built in code (by the search, say). Throws
  // Error{kInvalidEncoding}, with positions in the string the parts print as.
  static Encoding from_parts(BlockSpec block, int c0, std::vector<MacroBlock> macro);

  // The canonical string; parse(e.to_string()) == e and, for any string s that
  // parses, parse(s).to_string() == s.
  std::string to_string() const;
  std::string block_string() const;  // "LAYERS-CONNECTIONS"
  std::string macro_string() const;

  const BlockSpec& block() const { return block_; }
  int c0() const { return c0_; }
  const std::vector<MacroBlock>& macro() const { return macro_; }

  // Stage 0 is the stem; stage i >= 1 is the i-th '-'-separated macro segment.
  int num_stages() const;

  bool operator==(const Encoding& o) const {
    return c0_ == o.c0_ && block_ == o.block_ && macro_ == o.macro_;
  }
  bool operator!=(const Encoding& o) const { return !(*this == o); }

 private:
  Encoding() = default;
  BlockSpec block_;
  int c0_ = 0;
  std::vector<MacroBlock> macro_;
};

// Size of a network, computed from the encoding alone (nothing is built).
// Parameters count every convolution and BN weight and bias and the linear
// head; MACs count convolutions and the linear layer per image.
struct NetworkCost {
  std::int64_t parameters = 0;
  std::int64_t macs = 0;
};

// Throws Error{kInvalidArgument} when num_classes < 1 or input_size < 1, or
// when a count would not fit 64 bits (an absurd encoding at a huge input).
NASOA_API NetworkCost count_cost(const Encoding& encoding, int num_classes = 1000,
                                 int input_size = 224);

}  // namespace nasoa
