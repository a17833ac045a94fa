// Parsing, validation, printing and analytic costs of ET-NAS encodings.
#include "nasoa/encoding.h"

#include <gtest/gtest.h>

#include <random>

#include "nasoa/error.h"
#include "tests/support/expect_error.h"
#include "zoo/search_space/sampler.h"

namespace nasoa {
namespace {

struct Reference {
  const char* encoding;
  std::int64_t parameters;
  std::int64_t macs;
};

// DESIGN.md's reference networks at 1000 classes and 224x224 input.
constexpr Reference kReferences[] = {
    {"2-_32_2-11-112-1121112", 2615320, 229113856},          // ET-NAS-A
    {"031-_64_1-1-221-11121", 15235528, 1551151104},         // ET-NAS-D
    {"020-_64_11-21-21-21", 11708744, 1880305664},           // ResNet-18-like
    {"10001-_64_411-2111-211111-211", 25576264, 4155416576},  // ResNet-50-like
};

TEST(EncodingTest, ReferenceNetworksHaveTheDesignedCosts) {
  for (const Reference& r : kReferences) {
    const NetworkCost cost = count_cost(Encoding::parse(r.encoding));
    EXPECT_EQ(cost.parameters, r.parameters) << r.encoding;
    EXPECT_EQ(cost.macs, r.macs) << r.encoding;
  }
}

TEST(EncodingTest, ParsesTheStructure) {
  const Encoding e = Encoding::parse("23311-a02c12_64_1-21");
  ASSERT_EQ(e.block().layers.size(), 3u);
  EXPECT_EQ(e.block().layers[0], (Layer{Op::kConv3x3Groups2, 3}));
  EXPECT_EQ(e.block().layers[1], (Layer{Op::kConv3x3Groups4, 1}));
  EXPECT_EQ(e.block().layers[2], (Layer{Op::kConv1x1, kOutputWidth}));
  ASSERT_EQ(e.block().connections.size(), 2u);
  EXPECT_EQ(e.block().connections[0], (Connection{ConnectionKind::kAdd, 0, 2}));
  EXPECT_EQ(e.block().connections[1], (Connection{ConnectionKind::kConcat, 1, 2}));
  EXPECT_EQ(e.c0(), 64);
  ASSERT_EQ(e.macro().size(), 3u);
  EXPECT_EQ(e.macro()[0], (MacroBlock{1, false}));
  EXPECT_EQ(e.macro()[1], (MacroBlock{2, true}));
  EXPECT_EQ(e.macro()[2], (MacroBlock{1, false}));
  EXPECT_EQ(e.num_stages(), 3);  // stem + two segments
  EXPECT_EQ(e.block_string(), "23311-a02c12");
  EXPECT_EQ(e.macro_string(), "1-21");
  EXPECT_EQ(Encoding::parse("2-_32_2-11-112-1121112").num_stages(), 5);
}

TEST(EncodingTest, SampledEncodingsRoundTripExactly) {
  std::mt19937_64 rng(1);
  const zoo::SamplerOptions options;
  for (int i = 0; i < 600; ++i) {
    const Encoding e = zoo::sample_encoding(rng, options);
    const std::string text = e.to_string();
    const Encoding again = Encoding::parse(text);
    EXPECT_EQ(again, e) << text;
    EXPECT_EQ(again.to_string(), text);
    EXPECT_EQ(Encoding::from_parts(e.block(), e.c0(), e.macro()), e) << text;
  }
}

struct Malformed {
  const char* text;
  const char* rule;
  std::size_t position;
};

class MalformedEncodingTest : public ::testing::TestWithParam<Malformed> {};

TEST_P(MalformedEncodingTest, IsRefusedNamingTheRuleAndPosition) {
  const Malformed& m = GetParam();
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { Encoding::parse(m.text); }, ErrorCode::kInvalidEncoding,
                                                {m.rule, "at position " + std::to_string(m.position) + ":"}))
      << "'" << m.text << "'";
}

const std::string kTooManyBlocks = "2-_32_" + std::string(257, '1');

INSTANTIATE_TEST_SUITE_P(
    Rules, MalformedEncodingTest,
    ::testing::Values(
        Malformed{"", "expected BLOCK_C0_MACRO", 0},
        Malformed{"2-_32", "expected BLOCK_C0_MACRO", 5},
        Malformed{"2-_32_1_1", "expected BLOCK_C0_MACRO", 7},
        Malformed{"7-_32_1", "unknown op digit", 0},
        Malformed{"02813-_32_1", "unknown op digit", 2},
        Malformed{"051-_32_1", "width digit out of range", 1},
        Malformed{"02-_32_1", "layers need an odd number of digits", 2},
        Malformed{"0x1-_32_1", "layers are digits", 1},
        Malformed{"2_32_1", "block needs a '-'", 1},
        Malformed{"-_32_1", "block has no layers", 0},
        Malformed{"1111111111111111111-_32_1", "too many layers", 0},
        Malformed{"020-a05_32_1", "connection to a missing node", 6},
        Malformed{"020-a10_32_1", "connection must point forward", 5},
        Malformed{"020-a11_32_1", "connection must point forward", 5},
        Malformed{"020-c02_32_1", "concat may not target the last node", 4},
        Malformed{"020-x01_32_1", "unknown connection kind", 4},
        Malformed{"020-a0_32_1", "connections are 3-character items", 4},
        Malformed{"020-a0x_32_1", "connection nodes are digits", 6},
        Malformed{"020-a02_32_1", "redundant residual", 4},
        Malformed{"02020-a01a01_32_1", "duplicate connection", 9},
        Malformed{"02020-a12a01_32_1", "connections must be listed in order of target node", 9},
        Malformed{"2-_30_1", "malformed C0", 3},
        Malformed{"2-_032_1", "malformed C0", 3},
        Malformed{"2-__1", "malformed C0", 3},
        Malformed{"2-_3x_1", "malformed C0", 4},
        Malformed{"2-_8192_1", "malformed C0", 3},
        Malformed{"2-_32_", "empty macro", 6},
        Malformed{"2-_32_-1", "macro must start with a block", 6},
        Malformed{"2-_32_1--2", "'-' must be followed by a block digit", 8},
        Malformed{"2-_32_11-", "'-' must be followed by a block digit", 8},
        Malformed{"2-_32_13", "unknown channel multiplier", 7},
        Malformed{"202-_4_1", "groups do not divide a width", 0},   // 1 channel, groups=2
        Malformed{"404-_32_2", "groups do not divide a width", 0},  // depthwise 32 -> 16
        Malformed{"5-_48_1", "groups do not divide a width", 0},    // 48 channels, groups of 32
        Malformed{"035-_24_1", "groups do not divide a width", 2},  // 48 channels, groups of 32
        Malformed{"2-_4096_44444", "width above the channel limit", 10},
        Malformed{kTooManyBlocks.c_str(), "too many blocks", 6 + 256}));

TEST(EncodingTest, ALongEncodingIsShownAroundTheFaultNotWhole) {
  const std::string text = "2-_32_" + std::string(100000, '1') + "3";
  std::string message;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { Encoding::parse(text); }, ErrorCode::kInvalidEncoding,
      {std::to_string(text.size()) + " characters", "too many blocks"}, &message));
  EXPECT_LT(message.size(), 400u) << message.substr(0, 400);
}

TEST(EncodingTest, FromPartsRefusesValuesWithoutADigit) {
  BlockSpec block{{{Op::kConv3x3, kOutputWidth}}, {}};
  EXPECT_NO_THROW(Encoding::from_parts(block, 32, {{1, false}}));
  EXPECT_THROW(Encoding::from_parts(block, 32, {{3, false}}), Error);
  EXPECT_THROW(Encoding::from_parts(block, 32, {{12, false}}), Error);
  EXPECT_THROW(Encoding::from_parts(block, 30, {{1, false}}), Error);
  block.connections.push_back({ConnectionKind::kAdd, 0, 12});
  EXPECT_THROW(Encoding::from_parts(block, 32, {{1, false}}), Error);
}

TEST(EncodingTest, AByteOfAMultiByteCharacterQuotedAloneIsShownAsHex) {
  // "é" is two bytes; the message quotes the first alone: as \xc3, since the
  // byte by itself would be invalid UTF-8 on the user's terminal.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Encoding::parse("\xc3\xa9-_8_1"); }, ErrorCode::kInvalidEncoding,
                                           "'\\xc3'"));
  EXPECT_TRUE(nasoa::testing::throws_error([&] { Encoding::parse("\xc3\xa9-_8_1"); }, ErrorCode::kInvalidEncoding,
                                           "'\xc3\xa9-_8_1'"))
      << "the whole text stays readable";
}

TEST(EncodingTest, AControlByteInTheTextIsShownEscapedSoTheMessageIsWhole) {
  std::string what;
  EXPECT_TRUE(nasoa::testing::throws_error_with([&] { Encoding::parse(std::string("0-_8\0_1", 7)); },
                                                ErrorCode::kInvalidEncoding, {"0-_8\\x00_1", "at position"}, &what));
  EXPECT_EQ(what.find('\0'), std::string::npos);
}

TEST(EncodingTest, CountCostRefusesBadArguments) {
  const Encoding e = Encoding::parse("2-_32_1");
  EXPECT_THROW(count_cost(e, 0, 224), Error);
  EXPECT_THROW(count_cost(e, 10, 0), Error);
}

TEST(EncodingTest, CountCostRefusesCountsBeyond64BitsInsteadOfWrapping) {
  // A 16,384 -> 65,536-channel 3x3 convolution at a side of 250,000: about 6e20 MACs.
  const Encoding huge = Encoding::parse("0-_4096_44");
  std::int64_t wrapped = 0;
  EXPECT_TRUE(nasoa::testing::throws_error([&] { wrapped = count_cost(huge, 10, 1000000).macs; },
                                           ErrorCode::kInvalidArgument, "0-_4096_44"))
      << "wrapped to " << wrapped << " MACs";
  // The same network at a small input fits, and the count is exact.
  const NetworkCost small = count_cost(huge, 10, 32);
  EXPECT_GT(small.macs, 0);
  EXPECT_GT(small.parameters, std::int64_t{65536} * 16384 * 9);  // the last conv alone
}

TEST(EncodingTest, CostScalesWithClassesAndInput) {
  const Encoding e = Encoding::parse("020-_64_11-21-21-21");
  const NetworkCost base = count_cost(e, 1000, 224);
  const NetworkCost ten = count_cost(e, 10, 224);
  EXPECT_EQ(base.parameters - ten.parameters, 990 * (512 + 1));
  // Doubling the input quadruples every conv's output area (all sides halve evenly).
  const NetworkCost twice = count_cost(e, 1000, 448);
  EXPECT_EQ(twice.macs - 512000, 4 * (base.macs - 512000));
}

}  // namespace
}  // namespace nasoa
