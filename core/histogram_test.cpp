#include "gale/core/histogram.h"

#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace gale {
namespace {

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (int i = 1; i <= 50; ++i) h.record(i);
  EXPECT_EQ(h.percentile(0.5), 25);
  EXPECT_EQ(h.percentile(1.0), 50);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.count(), 50u);
}

TEST(Histogram, PercentilesAreWithinTheRelativeErrorOfTheExactOnes) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(10, 2);
  std::vector<int64_t> xs;
  Histogram h;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<int64_t>(dist(rng));
    xs.push_back(v);
    h.record(v);
  }
  std::sort(xs.begin(), xs.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    int64_t exact = xs[static_cast<size_t>(q * xs.size()) - 1];
    int64_t got = h.percentile(q);
    EXPECT_LE(std::abs(got - exact), exact / 30 + 1) << "q=" << q;
  }
  EXPECT_EQ(h.max(), xs.back());
}

TEST(Histogram, BucketsCoverEveryValueInOrder) {
  int prev = -1;
  for (int64_t v : {0LL, 1LL, 63LL, 64LL, 65LL, 127LL, 128LL, 1000000LL, (1LL << 40) + 5}) {
    int b = Histogram::bucketOf(v);
    EXPECT_GE(b, prev);
    EXPECT_GE(Histogram::bucketUpper(b), v);
    prev = b;
  }
}

// bucketOf (one formula for small and large values) is the inverse of bucketUpper: every value
// lies above the previous bucket's upper edge and at or below its own bucket's.
TEST(Histogram, EveryValueLiesBetweenItsBucketsEdges) {
  auto check = [](int64_t v) {
    int b = Histogram::bucketOf(v);
    ASSERT_LE(v, Histogram::bucketUpper(b)) << v;
    if (b > 0) {
      ASSERT_GT(v, Histogram::bucketUpper(b - 1)) << v;
    }
  };
  for (int64_t v = 0; v < (1 << 16); ++v) check(v);
  for (int k = 6; k < 63; ++k) {
    int64_t p = int64_t{1} << k;
    for (int64_t d = -3; d <= 3; ++d) check(p + d);
  }
  check(INT64_MAX);
  EXPECT_EQ(Histogram::bucketOf(-5), 0);
  EXPECT_EQ(Histogram::bucketOf(63), 63);
  EXPECT_EQ(Histogram::bucketOf(64), 64);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  for (int i = 0; i < 1000; ++i) {
    (i % 2 ? a : b).record(i * 37);
    all.record(i * 37);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.percentile(0.99), all.percentile(0.99));
  EXPECT_EQ(a.max(), all.max());
}

TEST(Histogram, CountAtOrBelowIsCumulativeExactAtBucketEdgesAndCountsTheSum) {
  Histogram h;
  EXPECT_EQ(h.countAtOrBelow(100), 0u);
  for (int64_t v : {5, 10, 10, 63, 1000, 5000, 1'000'000}) h.record(v);
  EXPECT_EQ(h.countAtOrBelow(-1), 0u);
  EXPECT_EQ(h.countAtOrBelow(4), 0u);
  EXPECT_EQ(h.countAtOrBelow(5), 1u);    // small values have exact buckets
  EXPECT_EQ(h.countAtOrBelow(10), 3u);
  EXPECT_EQ(h.countAtOrBelow(63), 4u);
  // 1000 sits in a bucket wider than one value: a bound inside it does not count it, its upper
  // edge does.
  int upper = static_cast<int>(Histogram::bucketUpper(Histogram::bucketOf(1000)));
  EXPECT_EQ(h.countAtOrBelow(999), 4u);
  EXPECT_EQ(h.countAtOrBelow(upper), 5u);
  EXPECT_EQ(h.countAtOrBelow(999'999), 6u);
  EXPECT_EQ(h.countAtOrBelow(1'000'000), 7u);
  EXPECT_EQ(h.countAtOrBelow(INT64_MAX), 7u);
  uint64_t prev = 0;
  for (int64_t v = 0; v < 2'000'000; v = v * 2 + 1) {
    EXPECT_GE(h.countAtOrBelow(v), prev);
    prev = h.countAtOrBelow(v);
  }
  EXPECT_DOUBLE_EQ(h.sum(), 5 + 10 + 10 + 63 + 1000 + 5000 + 1'000'000);
}

}  // namespace
}  // namespace gale
