// Random sampling and mutation only ever yield valid encodings.
#include "zoo/search_space/sampler.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>

namespace nasoa::zoo {
namespace {

int widest(const Encoding& e) {
  int width = e.c0(), most = e.c0();
  for (const MacroBlock& m : e.macro()) most = std::max(most, width *= m.multiplier);
  return most;
}

TEST(SamplerTest, SampledEncodingsAreValidAndWithinOptions) {
  std::mt19937_64 rng(7);
  SamplerOptions options;
  std::set<std::string> distinct;
  std::set<int> ops;
  for (int i = 0; i < 500; ++i) {
    const Encoding e = sample_encoding(rng, options);
    EXPECT_NO_THROW(Encoding::parse(e.to_string())) << e.to_string();
    const int layers = static_cast<int>(e.block().layers.size());
    EXPECT_GE(layers, options.min_layers);
    EXPECT_LE(layers, options.max_layers);
    EXPECT_LE(static_cast<int>(e.block().connections.size()), options.max_extra_connections);
    EXPECT_LE(widest(e), options.max_channels) << e.to_string();
    EXPECT_GE(e.num_stages() - 1, options.min_stages) << e.to_string();
    EXPECT_LE(e.num_stages() - 1, options.max_stages) << e.to_string();
    for (const Layer& l : e.block().layers) ops.insert(static_cast<int>(l.op));
    distinct.insert(e.to_string());
  }
  EXPECT_GT(distinct.size(), 450u) << "sampling should rarely repeat itself";
  EXPECT_EQ(ops.size(), static_cast<std::size_t>(kNumOps)) << "every op should be sampled";
}

TEST(SamplerTest, SamplingIsDeterministicForASeed) {
  std::mt19937_64 a(42), b(42);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(sample_encoding(a, {}), sample_encoding(b, {}));
}

TEST(SamplerTest, BlockMutationsKeepTheMacroAndStayValid) {
  std::mt19937_64 rng(11);
  Encoding e = Encoding::parse("10001-_64_411-2111-211111-211");
  int changed = 0;
  for (int i = 0; i < 300; ++i) {
    const Encoding child = mutate_block(e, rng, {});
    EXPECT_NO_THROW(Encoding::parse(child.to_string()));
    EXPECT_EQ(child.macro(), e.macro());
    EXPECT_EQ(child.c0(), e.c0());
    changed += !(child.block() == e.block());
    e = child;
  }
  EXPECT_GT(changed, 250);
}

TEST(SamplerTest, MacroMutationsKeepTheBlockAndStayValid) {
  std::mt19937_64 rng(13);
  Encoding e = Encoding::parse("020-_64_11-21-21-21");
  int changed = 0;
  for (int i = 0; i < 300; ++i) {
    const Encoding child = mutate_macro(e, rng, {});
    EXPECT_NO_THROW(Encoding::parse(child.to_string()));
    EXPECT_EQ(child.block(), e.block());
    changed += child != e;
    e = child;
  }
  EXPECT_GT(changed, 250);
}

TEST(SamplerTest, ABlockNoMacroOfTheOptionsTakesGetsNoMacro) {
  // Groups of 32 channels, and only C0 48 with no doubling allowed.
  SamplerOptions options;
  options.c0_choices = {48};
  options.max_channels = 48;
  std::mt19937_64 rng(3);
  EXPECT_FALSE(sample_macro(Encoding::parse("5-_64_1").block(), rng, options).has_value());
  const std::optional<Encoding> plain = sample_macro(Encoding::parse("2-_64_1").block(), rng, options);
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->block_string(), "2-");
  EXPECT_EQ(plain->c0(), 48);
}

TEST(SamplerTest, MutationWithNoValidNeighbourReturnsTheParent) {
  // With exactly one block allowed and one C0 choice, no macro move applies.
  SamplerOptions options;
  options.min_blocks = options.max_blocks = 1;
  options.c0_choices = {32};
  std::mt19937_64 rng(3);
  const Encoding e = Encoding::parse("2-_32_1");
  EXPECT_EQ(mutate_macro(e, rng, options), e);
}

}  // namespace
}  // namespace nasoa::zoo
