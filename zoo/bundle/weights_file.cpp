#include "zoo/bundle/weights_file.h"

#include <cstring>
#include <map>
#include <set>

#include "nasoa/error.h"
#include "zoo/text/printable.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the weights format is little-endian and this code assumes a little-endian host"
#endif

namespace nasoa::zoo {
namespace {

// A tensor name read from a file, for a message: escaped (a damaged file's
// name bytes are any bytes, a NUL among them would cut the message short)
// and cut to a length a reader can take in.
std::string shown(const std::string& name) {
  const std::string text = printable(name);
  return text.size() <= 120 ? text : text.substr(0, 120) + "...";
}

constexpr char kMagic[] = "NASOAW01";
constexpr char kTrailer[] = "NASOAEND";
constexpr std::size_t kTagSize = 8;
constexpr int kMaxDims = 8;

struct DtypeCode {
  std::uint8_t code;
  torch::ScalarType type;
};
constexpr DtypeCode kDtypes[] = {
    {1, torch::kFloat32}, {2, torch::kFloat64}, {3, torch::kFloat16}, {4, torch::kBFloat16},
    {5, torch::kInt64},   {6, torch::kInt32},   {7, torch::kUInt8},   {8, torch::kInt8},
    {9, torch::kBool},
};

std::uint8_t code_of(torch::ScalarType type, const std::string& name) {
  for (const auto& d : kDtypes)
    if (d.type == type) return d.code;
  throw Error(ErrorCode::kInvalidArgument,
              "tensor '" + name + "' has dtype " + std::string(c10::toString(type)) +
                  ", which the weights format does not store");
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(T));
}

// Bounds-checked reader over the file's bytes.
class Reader {
 public:
  Reader(std::string_view bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(ErrorCode::kCorrupt, source_ + ": not a valid weights file: " + what +
                                         " (at byte " + std::to_string(pos_) + " of " +
                                         std::to_string(bytes_.size()) + ")");
  }
  std::string_view take(std::size_t n, const char* what) {
    if (n > bytes_.size() - pos_) fail(std::string("truncated in ") + what);
    std::string_view s = bytes_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  T get(const char* what) {
    T value;
    std::memcpy(&value, take(sizeof(T), what).data(), sizeof(T));
    return value;
  }
  bool at_end() const { return pos_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

}  // namespace

void encode_weights(const NamedTensors& tensors, const ByteSink& sink) {
  std::string head(kMagic, kTagSize);
  put<std::uint32_t>(head, static_cast<std::uint32_t>(tensors.size()));
  sink(head);
  for (const auto& [name, tensor] : tensors) {
    if (name.empty() || name.size() > 0xffff)
      throw Error(ErrorCode::kInvalidArgument, "tensor name '" + name + "' is empty or too long");
    if (tensor.dim() > kMaxDims)
      throw Error(ErrorCode::kInvalidArgument, "tensor '" + name + "' has more than 8 dimensions");
    const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    head.clear();
    put<std::uint16_t>(head, static_cast<std::uint16_t>(name.size()));
    head += name;
    put<std::uint8_t>(head, code_of(t.scalar_type(), name));
    put<std::uint8_t>(head, static_cast<std::uint8_t>(t.dim()));
    for (const std::int64_t d : t.sizes()) put<std::int64_t>(head, d);
    sink(head);
    sink(std::string_view(static_cast<const char*>(t.data_ptr()), std::size_t(t.numel() * t.element_size())));
  }
  sink(std::string_view(kTrailer, kTagSize));
}

std::string encode_weights(const NamedTensors& tensors) {
  std::string out;
  encode_weights(tensors, [&](std::string_view bytes) { out.append(bytes); });
  return out;
}

NamedTensors decode_weights(std::string_view bytes, const std::string& source) {
  Reader r(bytes, source);
  if (r.take(kTagSize, "the magic") != std::string_view(kMagic, kTagSize))
    r.fail("bad magic (expected NASOAW01)");
  const auto count = r.get<std::uint32_t>("the tensor count");
  NamedTensors out;
  std::set<std::string> seen;
  for (std::uint32_t i = 0; i < count; ++i) {
    const auto name_length = r.get<std::uint16_t>("a tensor name length");
    std::string name(r.take(name_length, "a tensor name"));
    if (name.empty() || !seen.insert(name).second) r.fail("empty or repeated tensor name '" + shown(name) + "'");
    const auto code = r.get<std::uint8_t>("a dtype");
    const DtypeCode* dtype = nullptr;
    for (const auto& d : kDtypes)
      if (d.code == code) dtype = &d;
    if (!dtype) r.fail("tensor '" + shown(name) + "' has unknown dtype code " + std::to_string(code));
    const auto ndim = r.get<std::uint8_t>("a dimension count");
    if (ndim > kMaxDims) r.fail("tensor '" + shown(name) + "' has " + std::to_string(ndim) + " dimensions");
    std::vector<std::int64_t> dims;
    // Bounded by the dimensions other than 0, so that a zero one cannot let
    // the others grow past what strides can hold (an empty tensor of
    // [0, 2^62, 2^62] overflows them).
    constexpr std::uint64_t kMaxElements = std::uint64_t{1} << 40;
    std::uint64_t numel = 1, nonzero = 1;
    for (int d = 0; d < ndim; ++d) {
      const auto size = r.get<std::int64_t>("a dimension");
      if (size < 0 || (size > 0 && nonzero > kMaxElements / static_cast<std::uint64_t>(size)))
        r.fail("tensor '" + shown(name) + "' has an impossible dimension " + std::to_string(size));
      if (size > 0) nonzero *= static_cast<std::uint64_t>(size);
      numel *= static_cast<std::uint64_t>(size);
      dims.push_back(size);
    }
    // The bytes are taken before the tensor is made: dimensions that a damaged
    // file inflates must fail as a short file, not as a terabyte allocation.
    const std::size_t element_size = c10::elementSize(dtype->type);
    const std::string_view data = r.take(numel * element_size, "tensor data");
    torch::Tensor t = torch::empty(dims, torch::TensorOptions().dtype(dtype->type));
    std::memcpy(t.data_ptr(), data.data(), data.size());
    out.emplace_back(std::move(name), std::move(t));
  }
  if (r.take(kTagSize, "the trailer") != std::string_view(kTrailer, kTagSize))
    r.fail("bad trailer (expected NASOAEND)");
  if (!r.at_end()) r.fail("extra bytes after the trailer");
  return out;
}

NamedTensors module_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous());
  return out;
}

void load_module_state(torch::nn::Module& module, const NamedTensors& state,
                       const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters(true)) targets.emplace(item.key(), item.value());
  for (const auto& item : module.named_buffers(true)) targets.emplace(item.key(), item.value());

  auto fail = [&](const std::string& what) {
    throw Error(ErrorCode::kCorrupt, source + ": weights do not fit the network: " + what);
  };
  // Check everything first, so that a mismatch leaves the module untouched.
  std::set<std::string> provided;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) fail("unexpected tensor '" + shown(name) + "'");
    if (it->second.sizes() != tensor.sizes())
      fail("tensor '" + shown(name) + "' has shape " + c10::str(tensor.sizes()) + ", the network needs " +
           c10::str(it->second.sizes()));
    if (it->second.scalar_type() != tensor.scalar_type())
      fail("tensor '" + shown(name) + "' has dtype " + std::string(c10::toString(tensor.scalar_type())) +
           ", the network needs " + std::string(c10::toString(it->second.scalar_type())));
    provided.insert(name);
  }
  for (const auto& [name, tensor] : targets)
    if (!provided.count(name)) fail("missing tensor '" + shown(name) + "'");

  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) targets.at(name).copy_(tensor);
}

}  // namespace nasoa::zoo
