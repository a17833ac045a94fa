// offline_tools/corpus/rng.h: the corpus builder's seeded randomness.
//
// Every random choice the corpus makes comes from a generator keyed by the
// seed and a string naming what is being decided (for example
// "glyph/source/greek-upper/greek-upper-Gamma/17"), so a choice never depends
// on the order in which threads get to it. The generator and the
// distributions are written out here rather than taken from <random>: the
// standard fixes mt19937_64's sequence but leaves uniform_*_distribution to
// each library, and the corpus must come out the same with any compiler.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

namespace nasoa::corpus {

inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a over the key, then mixed with the seed: distinct keys give
// unrelated streams, and so do distinct seeds for one key.
inline std::uint64_t derive_seed(std::uint64_t seed, std::string_view key) {
  std::uint64_t h = 0xCBF29CE484222325ULL;
  for (const char c : key) h = (h ^ std::uint8_t(c)) * 0x100000001B3ULL;
  return splitmix64(splitmix64(seed) ^ h);
}

class Rng {
 public:
  Rng(std::uint64_t seed, std::string_view key) : engine_(derive_seed(seed, key)) {}

  std::uint64_t next() { return engine_(); }
  // [0, 1) with 53 random bits.
  double uniform() { return double(engine_() >> 11) * (1.0 / 9007199254740992.0); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [0, n); the modulo bias is below 2^-40 for the n used here.
  std::size_t below(std::size_t n) { return std::size_t(engine_() % n); }
  int between(int lo, int hi) { return lo + int(below(std::size_t(hi - lo + 1))); }
  bool chance(double p) { return uniform() < p; }

  template <typename T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

}  // namespace nasoa::corpus
