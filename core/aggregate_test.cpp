#include "gale/core/aggregate.h"

#include <gtest/gtest.h>

#include <random>

namespace gale {
namespace {

Value run(const Aggregator& a, const Values& in) {
  Acc acc = a.init();
  int64_t t = 0;
  for (const auto& v : in) a.add(acc, v, Timestamp{t++});
  return a.result(acc);
}

TEST(Aggregators, BuiltInsComputeTheirResults) {
  Values xs{int64_t{4}, int64_t{-2}, Value{}, int64_t{9}, int64_t{4}};
  EXPECT_EQ(run(Count{}, xs), Value{int64_t{5}});
  EXPECT_EQ(run(Count{"x"}, xs), Value{int64_t{4}}) << "count(x) skips nulls";
  EXPECT_EQ(run(Sum{"x"}, xs), Value{int64_t{15}});
  EXPECT_EQ(run(Min{"x"}, xs), Value{int64_t{-2}});
  EXPECT_EQ(run(Max{"x"}, xs), Value{int64_t{9}});
  EXPECT_EQ(run(Avg{"x"}, xs), Value{15.0 / 4});
  EXPECT_EQ(run(First{"x"}, xs), Value{int64_t{4}});
  EXPECT_EQ(run(Last{"x"}, xs), Value{int64_t{4}});
  EXPECT_EQ(run(DistinctCount{"x"}, xs), Value{int64_t{3}});
  EXPECT_EQ(run(Sum{"x"}, Values{int64_t{1}, 2.5}), Value{3.5}) << "a double makes the sum double";
  EXPECT_EQ(run(Max{"x"}, Values{int64_t{3}, 2.5}), Value{int64_t{3}}) << "numbers compare by value";
  EXPECT_EQ(run(Min{"s"}, Values{std::string("pear"), std::string("apple")}), Value{std::string("apple")});
  EXPECT_EQ(run(Avg{"x"}, Values{}), Value{}) << "avg of nothing is null";
  EXPECT_EQ(Sum{"price"}.as("revenue").outputName(), "revenue");
  EXPECT_EQ(Avg{"price"}.outputName(), "avg_price");
}

TEST(Aggregators, NonNumericInputToANumericAggregateIsAClearError) {
  try {
    run(Sum{"price"}, Values{std::string("ten")});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'price'"), std::string::npos);
  }
  EXPECT_THROW(run(Avg{"x"}, Values{true}), std::invalid_argument);
}

TEST(Aggregators, MergingPartialsOfAnySplitEqualsAddingEverythingInOrder) {
  std::mt19937_64 rng(5);
  UserAggregate product("product", "x", int64_t{1},
                        [](Value& s, const Value& v) { s = std::get<int64_t>(s) * std::get<int64_t>(v); },
                        [](Value& s, const Value& o) { s = std::get<int64_t>(s) * std::get<int64_t>(o); });
  std::vector<std::unique_ptr<Aggregator>> aggs;
  aggs.push_back(Count{}.clone());
  aggs.push_back(Sum{"x"}.clone());
  aggs.push_back(Min{"x"}.clone());
  aggs.push_back(Max{"x"}.clone());
  aggs.push_back(Avg{"x"}.clone());
  aggs.push_back(First{"x"}.clone());
  aggs.push_back(Last{"x"}.clone());
  aggs.push_back(DistinctCount{"x"}.clone());
  aggs.push_back(product.clone());
  for (int round = 0; round < 200; ++round) {
    int n = 1 + rng() % 12;
    Values xs;
    // Built in place: GCC 12 warns (falsely) that a moved temporary Value's string may be
    // used uninitialized.
    for (int i = 0; i < n; ++i)
      xs.emplace_back(std::in_place_type<int64_t>, static_cast<int64_t>(rng() % 7) - 3);
    int cut1 = rng() % (n + 1), cut2 = cut1 + rng() % (n - cut1 + 1);
    for (const auto& a : aggs) {
      Acc whole = a->init();
      Acc parts[3] = {a->init(), a->init(), a->init()};
      for (int i = 0; i < n; ++i) {
        a->add(whole, xs[i], Timestamp{i});
        a->add(parts[i < cut1 ? 0 : i < cut2 ? 1 : 2], xs[i], Timestamp{i});
      }
      Acc merged = a->init();
      for (auto& p : parts) a->merge(merged, p);
      ASSERT_EQ(a->result(merged), a->result(whole)) << a->outputName() << " round " << round;
      // A partial survives the snapshot encoding.
      StateWriter w;
      encodeAcc(w, merged);
      StateReader r(w.bytes(), "test");
      Acc back = decodeAcc(r);
      ASSERT_EQ(a->result(back), a->result(whole)) << a->outputName();
    }
  }
}

TEST(Aggregators, UserAggregateNeedsAddAndMerge) {
  EXPECT_THROW(UserAggregate("p", "x", int64_t{1}, nullptr, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace gale
