// The weights format: bit-exact round trips, and damage is always refused.
#include "zoo/bundle/weights_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "tests/support/scrambled_state.h"
#include "tests/support/temp_dir.h"
#include "zoo/builder/network.h"

namespace nasoa::zoo {
namespace {

NamedTensors sample_tensors() {
  return {
      {"f32", torch::randn({3, 4, 5})},
      {"f64", torch::randn({7}, torch::kFloat64)},
      {"f16", torch::randn({2, 2}).to(torch::kFloat16)},
      {"bf16", torch::randn({5}).to(torch::kBFloat16)},
      {"i64", torch::randint(-1000, 1000, {6}, torch::kInt64)},
      {"i32", torch::randint(-1000, 1000, {2, 3}, torch::kInt32)},
      {"u8", torch::randint(0, 255, {9}, torch::kUInt8)},
      {"i8", torch::randint(-128, 127, {9}, torch::kInt8)},
      {"b", torch::randint(0, 2, {4}).to(torch::kBool)},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::empty({0, 4})},
      {"strided", torch::randn({4, 6}).t()},  // not contiguous
  };
}

TEST(WeightsFileTest, RoundTripIsBitExactForEveryDtype) {
  const NamedTensors in = sample_tensors();
  const NamedTensors out = decode_weights(encode_weights(in), "mem");
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].first, in[i].first);
    EXPECT_EQ(out[i].second.scalar_type(), in[i].second.scalar_type());
    EXPECT_EQ(out[i].second.sizes(), in[i].second.sizes());
    const torch::Tensor a = in[i].second.contiguous(), b = out[i].second;
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()), 0) << in[i].first;
  }
  // NaN payloads and signed zeros survive too: the bytes are copied, not the values.
  const torch::Tensor odd = torch::tensor({std::nanf("0x1234"), -0.0f, INFINITY});
  const NamedTensors back = decode_weights(encode_weights({{"odd", odd}}), "mem");
  EXPECT_EQ(std::memcmp(odd.data_ptr(), back[0].second.data_ptr(), odd.nbytes()), 0);
}

// Streamed to a file a tensor at a time (as checkpoints are), the bytes are
// those of the in-memory encoding; a writer that fails part-way leaves the
// file as it was and no temporary behind.
TEST(WeightsFileTest, StreamedToAFileTheBytesAreTheSameAndAFailureLeavesTheOldFile) {
  const NamedTensors tensors = sample_tensors();
  nasoa::testing::TempDir dir;
  const std::string path = dir / "w.bin";
  write_file_atomic(path, [&](const ByteSink& sink) { encode_weights(tensors, sink); });
  EXPECT_EQ(read_file(path), encode_weights(tensors));

  struct Failed {};
  EXPECT_THROW(write_file_atomic(path,
                                 [&](const ByteSink& sink) {
                                   sink(std::string(3 << 20, 'x'));  // past the buffer: on disk already
                                   throw Failed{};
                                 }),
               Failed);
  EXPECT_EQ(read_file(path), encode_weights(tensors));
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp."), std::string::npos) << entry.path();
}

TEST(WeightsFileTest, EveryTruncationIsRefused) {
  const std::string bytes = encode_weights({{"a", torch::randn({3})}, {"bb", torch::randn({2, 2})}});
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_TRUE(nasoa::testing::throws_error(
        [&] { decode_weights(std::string_view(bytes).substr(0, length), "w.weights"); }, ErrorCode::kCorrupt,
        "w.weights"))
        << "accepted a file truncated to " << length << " bytes";
  }
  EXPECT_THROW(decode_weights(bytes + "x", "w"), Error);
}

TEST(WeightsFileTest, ANameOfAnyBytesIsShownEscapedAndTheMessageKeepsItsReason) {
  // A damaged file's name bytes are any bytes: a NUL among them must not cut
  // the message short, nor raw bytes reach a terminal.
  std::string bytes = encode_weights({{std::string("a\0\x1b", 3), torch::randn({3})}});
  bytes[8 + 4 + 2 + 3] = 99;  // count(4) name_len(2) the name(3), then its dtype
  std::string message;
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { decode_weights(bytes, "w.weights"); }, ErrorCode::kCorrupt,
                                                {"a\\x00\\x1b", "unknown dtype code 99", "w.weights"}, &message));
  EXPECT_EQ(message.find('\0'), std::string::npos);
  EXPECT_EQ(message.find('\x1b'), std::string::npos);
}

TEST(WeightsFileTest, DamagedHeadersAreRefusedBeforeAnyTensorIsRead) {
  std::string bytes = encode_weights({{"a", torch::randn({3})}});
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_THROW(decode_weights(bad_magic, "w"), Error);
  std::string huge_dim = bytes;
  // count(4) name_len(2) "a"(1) dtype(1) ndim(1), then the first dimension.
  const std::size_t dim_at = 8 + 4 + 2 + 1 + 1 + 1;
  const std::int64_t huge = std::int64_t{1} << 50;
  std::memcpy(&huge_dim[dim_at], &huge, sizeof huge);
  EXPECT_THROW(decode_weights(huge_dim, "w"), Error);
  std::string bad_dtype = bytes;
  bad_dtype[8 + 4 + 2 + 1] = 99;
  EXPECT_THROW(decode_weights(bad_dtype, "w"), Error);
  // A dimension within the element cap but far beyond the file: refused as
  // truncated before any allocation (2^38 floats would be a terabyte).
  std::string big_dim = bytes;
  const std::int64_t big = std::int64_t{1} << 38;
  std::memcpy(&big_dim[dim_at], &big, sizeof big);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { decode_weights(big_dim, "w.weights"); }, ErrorCode::kCorrupt,
                                           "truncated in tensor data"))
      << "a dimension past the file's bytes was accepted";
}

TEST(WeightsFileTest, AnEmptyTensorWithHugeOtherDimensionsIsRefusedAsDamage) {
  // [0, 4] encodes 0 elements; with its 4 made 2^62 and a third dimension
  // of 2^62 added the tensor is still empty, but its strides overflow.
  std::string bytes = encode_weights({{"e", torch::empty({0, 4})}});
  const std::size_t ndim_at = 8 + 4 + 2 + 1 + 1;
  ASSERT_EQ(bytes[ndim_at], 2);
  const std::int64_t huge = std::int64_t{1} << 62;
  std::string edited = bytes.substr(0, ndim_at);
  edited += char(3);
  const std::int64_t zero = 0;
  edited.append(reinterpret_cast<const char*>(&zero), 8);
  edited.append(reinterpret_cast<const char*>(&huge), 8);
  edited.append(reinterpret_cast<const char*>(&huge), 8);
  edited += bytes.substr(ndim_at + 1 + 16);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { decode_weights(edited, "e.weights"); }, ErrorCode::kCorrupt,
                                           "e.weights"));
  // The unedited file is fine (the edit, not the tensor, is refused).
  EXPECT_EQ(decode_weights(bytes, "e.weights").at(0).second.sizes(), (std::vector<std::int64_t>{0, 4}));
}

TEST(WeightsFileTest, ModuleStateLoadsOnlyIntoAMatchingNetwork) {
  Network a(Encoding::parse("020-_16_11-21"), 5);
  Network b(Encoding::parse("020-_16_11-21"), 5);
  nasoa::testing::scramble_state(*a, 1);  // BatchNorm statistics included
  load_module_state(*b, decode_weights(encode_weights(module_state(*a)), "a"), "a");
  const auto sa = module_state(*a), sb = module_state(*b);
  ASSERT_EQ(sa.size(), sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) EXPECT_TRUE(torch::equal(sa[i].second, sb[i].second)) << sa[i].first;

  Network other_classes(Encoding::parse("020-_16_11-21"), 6);
  const torch::Tensor before = other_classes->named_parameters()["stem.0.conv.weight"].clone();
  EXPECT_TRUE(nasoa::testing::throws_error([&] { load_module_state(*other_classes, sa, "a.weights"); },
                                           ErrorCode::kCorrupt, "head.weight"))
      << "loaded 5-class weights into a 6-class network";
  EXPECT_TRUE(torch::equal(before, other_classes->named_parameters()["stem.0.conv.weight"]))
      << "a refused load must leave the module unchanged";

  Network other_arch(Encoding::parse("0-_16_11-21"), 5);
  EXPECT_THROW(load_module_state(*other_arch, sa, "a"), Error);
}

}  // namespace
}  // namespace nasoa::zoo
