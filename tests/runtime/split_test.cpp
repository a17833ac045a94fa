// Stratified train/validation splits.
#include "runtime/data/split.h"

#include <gtest/gtest.h>

#include <set>

#include "nasoa/error.h"

namespace nasoa::runtime {
namespace {

TEST(SplitTest, StratifiesCoversAndIsDisjoint) {
  std::vector<int> labels;
  for (int i = 0; i < 100; ++i) labels.push_back(0);
  for (int i = 0; i < 20; ++i) labels.push_back(1);
  for (int i = 0; i < 3; ++i) labels.push_back(2);
  labels.push_back(3);  // a class with a single image
  const Split s = stratified_split(labels, 0.2, 9);
  std::set<std::size_t> all(s.train.begin(), s.train.end());
  for (std::size_t v : s.validation) EXPECT_TRUE(all.insert(v).second) << "index in both parts";
  EXPECT_EQ(all.size(), labels.size());
  std::vector<int> held(4, 0);
  for (std::size_t v : s.validation) ++held[std::size_t(labels[v])];
  EXPECT_EQ(held[0], 20);
  EXPECT_EQ(held[1], 4);
  EXPECT_EQ(held[2], 1);  // round(0.6) = 1
  EXPECT_EQ(held[3], 0);  // a single image stays in training
}

TEST(SplitTest, IsDeterministicPerSeed) {
  std::vector<int> labels(200);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = int(i % 7);
  EXPECT_EQ(stratified_split(labels, 0.25, 1).validation, stratified_split(labels, 0.25, 1).validation);
  EXPECT_NE(stratified_split(labels, 0.25, 1).validation, stratified_split(labels, 0.25, 2).validation);
}

TEST(SplitTest, RefusesFractionsOutsideTheOpenInterval) {
  for (double f : {0.0, 1.0, -0.5, 2.0}) EXPECT_THROW(stratified_split({0, 1}, f, 1), Error) << f;
}

}  // namespace
}  // namespace nasoa::runtime
