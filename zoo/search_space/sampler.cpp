#include "zoo/search_space/sampler.h"

#include <algorithm>
#include <optional>

#include "nasoa/error.h"

namespace nasoa::zoo {
namespace {

// Enough for any sensible options; the fallbacks below keep results valid
// even when options leave almost nothing valid to find.
constexpr int kMaxAttempts = 2000;

int uniform(std::mt19937_64& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

template <typename T>
const T& pick(std::mt19937_64& rng, const std::vector<T>& items) {
  return items[uniform(rng, 0, static_cast<int>(items.size()) - 1)];
}

std::optional<Encoding> try_parts(BlockSpec block, int c0, std::vector<MacroBlock> macro) {
  try {
    return Encoding::from_parts(std::move(block), c0, std::move(macro));
  } catch (const Error&) {
    return std::nullopt;
  }
}

int widest(int c0, const std::vector<MacroBlock>& macro) {
  long long w = c0, most = c0;
  for (const MacroBlock& m : macro) most = std::max(most, w *= m.multiplier);
  return static_cast<int>(std::min<long long>(most, kMaxChannels + 1LL));
}

// Valid connection items for a block of `num_layers` layers, sorted by target.
std::vector<Connection> random_connections(std::mt19937_64& rng, int num_layers, int count) {
  std::vector<Connection> out;
  for (int tries = 0; static_cast<int>(out.size()) < count && tries < 50; ++tries) {
    if (num_layers < 2) break;  // the only forward pair would be the residual
    Connection c;
    c.to = uniform(rng, 1, num_layers);
    c.from = uniform(rng, 0, c.to - 1);
    c.kind = uniform(rng, 0, 1) == 0 ? ConnectionKind::kAdd : ConnectionKind::kConcat;
    if (c.to == num_layers) {
      if (c.from == 0) continue;               // the implicit residual
      c.kind = ConnectionKind::kAdd;           // no concat into the output
    }
    if (std::find(out.begin(), out.end(), c) != out.end()) continue;
    out.push_back(c);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Connection& a, const Connection& b) { return a.to < b.to; });
  return out;
}

BlockSpec random_block(std::mt19937_64& rng, const SamplerOptions& o) {
  BlockSpec block;
  const int n = uniform(rng, o.min_layers, o.max_layers);
  for (int i = 0; i < n; ++i)
    block.layers.push_back({static_cast<Op>(uniform(rng, 0, kNumOps - 1)),
                            i + 1 < n ? uniform(rng, 0, kMaxWidthCode) : kOutputWidth});
  block.connections = random_connections(rng, n, uniform(rng, 0, o.max_extra_connections));
  return block;
}

std::vector<MacroBlock> random_macro(std::mt19937_64& rng, int c0, const SamplerOptions& o) {
  const int stages = uniform(rng, o.min_stages, o.max_stages);
  const int blocks = uniform(rng, std::max(o.min_blocks, stages), std::max(o.max_blocks, stages));
  std::vector<MacroBlock> macro(blocks);
  // Downsample at the start of stages 2..stages: choose distinct blocks 1..n-1.
  std::vector<int> idx;
  for (int i = 1; i < blocks; ++i) idx.push_back(i);
  std::shuffle(idx.begin(), idx.end(), rng);
  for (int s = 0; s < stages - 1; ++s) macro[idx[s]].downsample = true;
  // Channel doublings, as many as the width bound allows, on random blocks.
  int width = c0, doublings = 0;
  while (width * 2 <= o.max_channels && doublings < stages + 1) width *= 2, ++doublings;
  doublings = uniform(rng, 0, doublings);
  for (int d = 0; d < doublings; ++d) macro[uniform(rng, 0, blocks - 1)].multiplier *= 2;
  for (MacroBlock& m : macro)
    if (m.multiplier != 1 && m.multiplier != 2 && m.multiplier != 4) m.multiplier = 4;
  return macro;
}

// The fallback block: one 3x3 conv, valid for every C0 and macro.
BlockSpec plain_block() { return BlockSpec{{{Op::kConv3x3, kOutputWidth}}, {}}; }

}  // namespace

std::string macro_outside(const Encoding& e, const SamplerOptions& options) {
  const int blocks = static_cast<int>(e.macro().size()), stages = e.num_stages() - 1;
  if (blocks < options.min_blocks || blocks > options.max_blocks)
    return std::to_string(blocks) + " blocks, outside " + std::to_string(options.min_blocks) + ".." +
           std::to_string(options.max_blocks);
  if (stages < options.min_stages || stages > options.max_stages)
    return std::to_string(stages) + " stages, outside " + std::to_string(options.min_stages) + ".." +
           std::to_string(options.max_stages);
  if (const int w = widest(e.c0(), e.macro()); w > options.max_channels)
    return std::to_string(w) + " channels, wider than " + std::to_string(options.max_channels);
  return {};
}

BlockSpec sample_block(std::mt19937_64& rng, const SamplerOptions& options) {
  // A block is valid when it builds on a small reference network.
  const std::vector<MacroBlock> reference = {{1, false}, {2, true}, {2, true}};
  for (int i = 0; i < kMaxAttempts; ++i) {
    BlockSpec block = random_block(rng, options);
    if (try_parts(block, 32, reference)) return block;
  }
  return plain_block();
}

std::optional<Encoding> sample_macro(const BlockSpec& block, std::mt19937_64& rng, const SamplerOptions& options) {
  for (int i = 0; i < kMaxAttempts; ++i) {
    const int c0 = pick(rng, options.c0_choices);
    std::vector<MacroBlock> macro = random_macro(rng, c0, options);
    if (widest(c0, macro) > options.max_channels) continue;
    if (auto e = try_parts(block, c0, std::move(macro))) return e;
  }
  return std::nullopt;
}

Encoding sample_encoding(std::mt19937_64& rng, const SamplerOptions& options) {
  for (int i = 0; i < kMaxAttempts; ++i) {
    BlockSpec block = sample_block(rng, options);
    const int c0 = pick(rng, options.c0_choices);
    std::vector<MacroBlock> macro = random_macro(rng, c0, options);
    if (widest(c0, macro) > options.max_channels) continue;
    if (auto e = try_parts(std::move(block), c0, std::move(macro))) return *e;
  }
  // The plain block fits every macro: still a network of these options.
  if (auto e = sample_macro(plain_block(), rng, options)) return *e;
  throw Error(ErrorCode::kInvalidArgument, "sampler options admit no network: every macro drawn is wider than " +
                                               std::to_string(options.max_channels) + " channels");
}

Encoding mutate_block(const Encoding& parent, std::mt19937_64& rng, const SamplerOptions& o) {
  for (int i = 0; i < kMaxAttempts; ++i) {
    BlockSpec b = parent.block();
    const int n = static_cast<int>(b.layers.size());
    switch (uniform(rng, 0, 4)) {
      case 0:  // change one layer's op
        b.layers[uniform(rng, 0, n - 1)].op =
            static_cast<Op>(uniform(rng, 0, kNumOps - 1));
        break;
      case 1:  // change one inner layer's width
        if (n < 2) continue;
        b.layers[uniform(rng, 0, n - 2)].width_code = uniform(rng, 0, kMaxWidthCode);
        break;
      case 2: {  // add a layer at the front (node numbers shift by one)
        if (n >= o.max_layers) continue;
        b.layers.insert(b.layers.begin(), {static_cast<Op>(uniform(rng, 0, kNumOps - 1)),
                                           uniform(rng, 0, kMaxWidthCode)});
        for (Connection& c : b.connections) ++c.from, ++c.to;
        break;
      }
      case 3: {  // drop the first layer, with the connections it takes part in
        if (n <= o.min_layers || n < 2) continue;
        b.layers.erase(b.layers.begin());
        std::vector<Connection> kept;
        for (Connection c : b.connections) {
          if (c.from == 1 || c.to == 1) continue;
          c.from = c.from == 0 ? 0 : c.from - 1;
          --c.to;
          if (c.kind == ConnectionKind::kAdd && c.from == 0 && c.to == n - 1) continue;
          kept.push_back(c);
        }
        b.connections = kept;
        break;
      }
      default:  // redraw the extra connections
        b.connections = random_connections(rng, n, uniform(rng, 0, o.max_extra_connections));
        break;
    }
    if (b == parent.block()) continue;
    if (auto e = try_parts(std::move(b), parent.c0(), parent.macro())) return *e;
  }
  return parent;
}

Encoding mutate_macro(const Encoding& parent, std::mt19937_64& rng, const SamplerOptions& o) {
  for (int i = 0; i < kMaxAttempts; ++i) {
    std::vector<MacroBlock> m = parent.macro();
    int c0 = parent.c0();
    const int n = static_cast<int>(m.size());
    switch (uniform(rng, 0, 4)) {
      case 0:  // insert a plain block
        if (n >= o.max_blocks) continue;
        m.insert(m.begin() + uniform(rng, 1, n), MacroBlock{1, false});
        break;
      case 1: {  // remove a plain block
        if (n <= o.min_blocks) continue;
        const int at = uniform(rng, 0, n - 1);
        if (m[at].multiplier != 1 || m[at].downsample) continue;
        if (at == 0 && n > 1 && m[1].downsample) continue;  // the macro must not start with '-'
        m.erase(m.begin() + at);
        break;
      }
      case 2: {  // move a channel doubling to another block
        const int from = uniform(rng, 0, n - 1), to = uniform(rng, 0, n - 1);
        if (from == to || m[from].multiplier != 2 || m[to].multiplier != 1) continue;
        std::swap(m[from].multiplier, m[to].multiplier);
        break;
      }
      case 3: {  // move a downsampling one block earlier or later
        const int from = uniform(rng, 1, std::max(1, n - 1));
        const int to = from + (uniform(rng, 0, 1) == 0 ? -1 : 1);
        if (from >= n || to < 1 || to >= n || !m[from].downsample || m[to].downsample) continue;
        std::swap(m[from].downsample, m[to].downsample);
        break;
      }
      default:  // change C0
        c0 = pick(rng, o.c0_choices);
        if (c0 == parent.c0()) continue;
        break;
    }
    if (widest(c0, m) > o.max_channels) continue;
    if (auto e = try_parts(parent.block(), c0, std::move(m))) return *e;
  }
  return parent;
}

}  // namespace nasoa::zoo
