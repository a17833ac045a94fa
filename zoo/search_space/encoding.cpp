// Parsing, validation and printing of nasoa::Encoding.
#include "nasoa/encoding.h"

#include <algorithm>

#include "nasoa/error.h"
#include "zoo/search_space/network_plan.h"
#include "zoo/text/printable.h"

namespace nasoa {
namespace {

using zoo::printable;

constexpr int kMinC0 = 4;
constexpr int kMaxC0 = 4096;
// Deeper than any network worth training (ResNet-152 has 50 blocks); a
// bound keeps a crafted string from costing gigabytes to plan and build.
constexpr std::size_t kMaxMacroBlocks = 256;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void refuse(std::string_view text, std::size_t position, const std::string& rule,
                         const std::string& detail) {
  // A long text is shown around the position: an error of 120 KB helps no one.
  constexpr std::size_t kShown = 120, kBefore = 60;
  std::string shown = "'" + printable(text) + "'";
  if (text.size() > kShown) {
    const std::size_t from = position > kBefore ? position - kBefore : 0;
    shown = std::to_string(text.size()) + " characters, '" + (from > 0 ? "..." : "") +
            printable(text.substr(from, kShown)) + (from + kShown < text.size() ? "..." : "") + "'";
  }
  throw Error(ErrorCode::kInvalidEncoding, "invalid encoding " + shown + " at position " + std::to_string(position) +
                                               ": " + rule + (detail.empty() ? "" : ": " + printable(detail)));
}

// One byte: a lone byte of a multi-byte UTF-8 character would print as
// invalid text, so bytes above ASCII are written as \xHH too.
std::string quoted(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x80) return "'" + printable(std::string_view(&c, 1)) + "'";
  constexpr const char* kHex = "0123456789abcdef";
  return std::string("'\\x") + kHex[u >> 4] + kHex[u & 15] + "'";
}

BlockSpec parse_block(std::string_view text, std::string_view block) {
  const std::size_t dash = block.find('-');
  if (dash == std::string_view::npos)
    refuse(text, block.size(), "block needs a '-' between layers and connections",
           "write e.g. '020-' for a block without extra connections");
  const std::string_view layers = block.substr(0, dash);
  const std::string_view conns = block.substr(dash + 1);

  if (layers.empty()) refuse(text, 0, "block has no layers", "");
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (!is_digit(layers[i]))
      refuse(text, i, "layers are digits", "found " + quoted(layers[i]));
  if (layers.size() % 2 == 0)
    refuse(text, layers.size(), "layers need an odd number of digits",
           "(op, width) pairs, then the last layer's op alone");
  BlockSpec spec;
  for (std::size_t i = 0; i < layers.size(); i += 2) {
    const int op = layers[i] - '0';
    if (op >= kNumOps)
      refuse(text, i, "unknown op digit", quoted(layers[i]) + " (ops are 0-6)");
    int width = kOutputWidth;
    if (i + 1 < layers.size()) {
      width = layers[i + 1] - '0';
      if (width > kMaxWidthCode)
        refuse(text, i + 1, "width digit out of range", quoted(layers[i + 1]) + " (widths are 0-4)");
    }
    spec.layers.push_back({static_cast<Op>(op), width});
  }
  const int num_layers = static_cast<int>(spec.layers.size());
  if (num_layers > kMaxLayersPerBlock)
    refuse(text, 0, "too many layers",
           std::to_string(num_layers) + " (at most " + std::to_string(kMaxLayersPerBlock) + ")");

  const std::size_t base = dash + 1;
  if (conns.size() % 3 != 0)
    refuse(text, base + conns.size() - conns.size() % 3, "connections are 3-character items",
           "kind ('a' or 'c'), source node, target node");
  for (std::size_t i = 0; i < conns.size(); i += 3) {
    const std::size_t at = base + i;
    Connection c;
    if (conns[i] == 'a') c.kind = ConnectionKind::kAdd;
    else if (conns[i] == 'c') c.kind = ConnectionKind::kConcat;
    else refuse(text, at, "unknown connection kind", quoted(conns[i]) + " (expected 'a' or 'c')");
    for (std::size_t k = 1; k <= 2; ++k)
      if (!is_digit(conns[i + k]))
        refuse(text, at + k, "connection nodes are digits", "found " + quoted(conns[i + k]));
    c.from = conns[i + 1] - '0';
    c.to = conns[i + 2] - '0';
    if (c.to > num_layers)
      refuse(text, at + 2, "connection to a missing node",
             "node " + std::to_string(c.to) + ", but the block has nodes 0-" +
                 std::to_string(num_layers));
    if (c.from >= c.to)
      refuse(text, at + 1, "connection must point forward",
             "from node " + std::to_string(c.from) + " to node " + std::to_string(c.to));
    if (c.kind == ConnectionKind::kConcat && c.to == num_layers)
      refuse(text, at, "concat may not target the last node",
             "the block's output width is fixed by its multiplier");
    if (c.kind == ConnectionKind::kAdd && c.from == 0 && c.to == num_layers)
      refuse(text, at, "redundant residual",
             "the add from node 0 to the last node is always there; leave it out");
    if (std::find(spec.connections.begin(), spec.connections.end(), c) != spec.connections.end())
      refuse(text, at, "duplicate connection", std::string(conns.substr(i, 3)));
    if (!spec.connections.empty() && spec.connections.back().to > c.to)
      refuse(text, at, "connections must be listed in order of target node", "");
    spec.connections.push_back(c);
  }
  return spec;
}

int parse_c0(std::string_view text, std::string_view c0, std::size_t base) {
  if (c0.empty()) refuse(text, base, "malformed C0", "empty; expected a channel count such as 64");
  for (std::size_t i = 0; i < c0.size(); ++i)
    if (!is_digit(c0[i])) refuse(text, base + i, "malformed C0", "found " + quoted(c0[i]));
  if (c0[0] == '0') refuse(text, base, "malformed C0", "leading zero");
  if (c0.size() > 5) refuse(text, base, "malformed C0", "too large");
  const int value = std::stoi(std::string(c0));
  if (value < kMinC0 || value > kMaxC0 || value % 4 != 0)
    refuse(text, base, "malformed C0",
           std::to_string(value) + " (a multiple of 4 in " + std::to_string(kMinC0) + "-" +
               std::to_string(kMaxC0) + ")");
  return value;
}

std::vector<MacroBlock> parse_macro(std::string_view text, std::string_view macro,
                                    std::size_t base, std::vector<std::size_t>* positions) {
  if (macro.empty()) refuse(text, base, "empty macro", "expected at least one block digit");
  if (macro[0] == '-')
    refuse(text, base, "macro must start with a block", "the first stage runs at the stem's resolution");
  std::vector<MacroBlock> blocks;
  bool pending_downsample = false;
  for (std::size_t i = 0; i < macro.size(); ++i) {
    const char ch = macro[i];
    if (ch == '-') {
      if (pending_downsample) refuse(text, base + i, "'-' must be followed by a block digit", "found '--'");
      pending_downsample = true;
      continue;
    }
    if (ch != '1' && ch != '2' && ch != '4')
      refuse(text, base + i, "unknown channel multiplier", quoted(ch) + " (expected 1, 2, 4 or '-')");
    if (blocks.size() == kMaxMacroBlocks)
      refuse(text, base + i, "too many blocks", "a macro has at most " + std::to_string(kMaxMacroBlocks));
    blocks.push_back({ch - '0', pending_downsample});
    positions->push_back(base + i);
    pending_downsample = false;
  }
  if (pending_downsample)
    refuse(text, base + macro.size() - 1, "'-' must be followed by a block digit", "macro ends in '-'");
  return blocks;
}

}  // namespace

Encoding Encoding::parse(std::string_view text) {
  const std::size_t first = text.find('_');
  const std::size_t second = first == std::string_view::npos ? first : text.find('_', first + 1);
  if (second == std::string_view::npos)
    refuse(text, text.size(), "expected BLOCK_C0_MACRO", "two '_' separate the three parts");
  if (const std::size_t third = text.find('_', second + 1); third != std::string_view::npos)
    refuse(text, third, "expected BLOCK_C0_MACRO", "a third '_'");

  Encoding e;
  e.block_ = parse_block(text, text.substr(0, first));
  e.c0_ = parse_c0(text, text.substr(first + 1, second - first - 1), first + 1);
  std::vector<std::size_t> macro_positions;
  e.macro_ = parse_macro(text, text.substr(second + 1), second + 1, &macro_positions);

  zoo::PlanIssue issue;
  if (!zoo::try_plan_network(e.block_, e.c0_, e.macro_, &issue)) {
    // Point at the layer's op digit when a layer is at fault, else at the block digit.
    const std::size_t position = issue.layer >= 0 ? static_cast<std::size_t>(issue.layer) * 2
                                                  : macro_positions[issue.macro_block];
    std::string where = issue.macro_block >= 0
                            ? " in macro block " + std::to_string(issue.macro_block + 1)
                            : std::string();
    refuse(text, position, issue.rule, issue.detail + where);
  }
  return e;
}

Encoding Encoding::from_parts(BlockSpec block, int c0, std::vector<MacroBlock> macro) {
  // Refuse values that have no single-digit spelling, then print the parts and
  // parse the string, so that parts and strings are validated by one code path.
  auto check = [](int value, int lo, int hi, const char* what) {
    if (value < lo || value > hi)
      throw Error(ErrorCode::kInvalidEncoding, std::string("invalid encoding parts: ") + what +
                                                   " " + std::to_string(value) + " outside " +
                                                   std::to_string(lo) + "-" + std::to_string(hi));
  };
  for (std::size_t i = 0; i < block.layers.size(); ++i) {
    check(static_cast<int>(block.layers[i].op), 0, 9, "op");
    if (i + 1 < block.layers.size()) check(block.layers[i].width_code, 0, 9, "width code");
  }
  for (const Connection& c : block.connections) {
    check(c.from, 0, 9, "connection source");
    check(c.to, 0, 9, "connection target");
  }
  for (const MacroBlock& m : macro) check(m.multiplier, 0, 9, "multiplier");
  Encoding raw;
  raw.block_ = std::move(block);
  raw.c0_ = c0;
  raw.macro_ = std::move(macro);
  return parse(raw.to_string());
}

std::string Encoding::block_string() const {
  std::string s;
  for (std::size_t i = 0; i < block_.layers.size(); ++i) {
    s += static_cast<char>('0' + static_cast<int>(block_.layers[i].op));
    if (i + 1 < block_.layers.size()) s += static_cast<char>('0' + block_.layers[i].width_code);
  }
  s += '-';
  for (const Connection& c : block_.connections) {
    s += c.kind == ConnectionKind::kAdd ? 'a' : 'c';
    s += static_cast<char>('0' + c.from);
    s += static_cast<char>('0' + c.to);
  }
  return s;
}

std::string Encoding::macro_string() const {
  std::string s;
  for (const MacroBlock& m : macro_) {
    if (m.downsample) s += '-';
    s += static_cast<char>('0' + m.multiplier);
  }
  return s;
}

std::string Encoding::to_string() const {
  return block_string() + "_" + std::to_string(c0_) + "_" + macro_string();
}

int Encoding::num_stages() const {
  return 1 + static_cast<int>(std::count_if(macro_.begin(), macro_.end(),
                                            [](const MacroBlock& m) { return m.downsample; })) +
         (macro_.empty() ? 0 : 1);
}

}  // namespace nasoa
