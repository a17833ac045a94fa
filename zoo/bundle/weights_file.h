// zoo/bundle/weights_file.h: the weights format of zoo bundles and models.
//
// A flat, little-endian archive of named tensors: no pickle, no TorchScript,
// nothing is executed or interpreted when it is read. Every length is checked
// against the bytes there are, so a truncated or damaged file is refused with
// Error{kCorrupt}, never read out of bounds. Tensors round-trip bit-exactly.
//
//   "NASOAW01"                      8-byte magic, the format version in its last two characters
//   u32 tensor_count
//   per tensor: u16 name_length, name (UTF-8), u8 dtype, u8 ndim,
//               i64 dims[ndim], raw data (row-major, numel * element size)
//   "NASOAEND"                      8-byte trailer
#pragma once

#include <torch/torch.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "zoo/bundle/atomic_file.h"

namespace nasoa::zoo {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

std::string encode_weights(const NamedTensors& tensors);
// The same bytes, handed to `sink` a tensor at a time, so that only one
// tensor's copy is ever held (a checkpoint of a large model).
void encode_weights(const NamedTensors& tensors, const ByteSink& sink);

// `source` names the file in error messages. Throws Error{kCorrupt}.
NamedTensors decode_weights(std::string_view bytes, const std::string& source);

// All parameters and buffers of `module`, by their dotted names, as
// contiguous CPU tensors (copies only where the device or layout requires).
NamedTensors module_state(const torch::nn::Module& module);

// Copies `state` into `module`'s parameters and buffers. The names, shapes and
// dtypes must match exactly, in both directions; otherwise throws
// Error{kCorrupt} naming `source` and the first tensor at fault, and leaves
// the module unchanged.
void load_module_state(torch::nn::Module& module, const NamedTensors& state,
                       const std::string& source);

}  // namespace nasoa::zoo
