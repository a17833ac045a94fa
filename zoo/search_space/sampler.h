// zoo/search_space/sampler.h: random sampling and mutation of encodings.
//
// Used by the architecture search. Every function returns a valid Encoding
// within the options: candidates are drawn, validated with
// Encoding::from_parts, and redrawn when invalid; a mutation that finds no
// valid neighbour returns its parent, and sample_macro() gives none when no
// macro of the options takes the block.
// Deterministic for a given generator state. Not thread-safe per generator.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "nasoa/encoding.h"

namespace nasoa::zoo {

struct SamplerOptions {
  int min_layers = 1;            // per block
  int max_layers = 4;
  int max_extra_connections = 2;  // add/concat items besides the residual
  std::vector<int> c0_choices = {16, 24, 32, 48, 64};
  int min_blocks = 3;            // per macro
  int max_blocks = 16;
  int min_stages = 2;            // '-'-separated segments (the stem not counted)
  int max_stages = 5;
  int max_channels = 2048;       // widest block output
};

BlockSpec sample_block(std::mt19937_64& rng, const SamplerOptions& options);

// Why `encoding`'s macro lies outside `options` (its blocks, stages or widest
// channels); "" when inside. What the functions below draw is inside; a
// mutation of a parent outside may stay outside.
std::string macro_outside(const Encoding& encoding, const SamplerOptions& options);

// A macro and C0 around a fixed block (std::nullopt when none of the draws
// takes it, e.g. its groups divide no width the options allow), and a whole
// random encoding (Error{kInvalidArgument} when the options admit none).
std::optional<Encoding> sample_macro(const BlockSpec& block, std::mt19937_64& rng, const SamplerOptions& options);
Encoding sample_encoding(std::mt19937_64& rng, const SamplerOptions& options);

// Block-level neighbour: one layer's op or width, one layer added or removed,
// or one extra connection added, removed or changed; macro and C0 kept.
Encoding mutate_block(const Encoding& parent, std::mt19937_64& rng, const SamplerOptions& options);

// Macro-level neighbour: insert or remove a block, move a channel doubling,
// move a downsampling, or change C0; the block kept.
Encoding mutate_macro(const Encoding& parent, std::mt19937_64& rng, const SamplerOptions& options);

}  // namespace nasoa::zoo
