// A log-linear latency histogram (HdrHistogram-like): constant memory, ~1.5 % relative error,
// values from 0 to 2^62. Percentiles come from here, never from an average.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <string>

namespace gale {

class Histogram {
 public:
  // 2^kSubBits linear sub-buckets per power of two: 64 -> relative error <= 1/64.
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = (64 - kSubBits) * kSub;

  // Inline with bucketOf: a per-tuple call in operators (word count's latency per word), where
  // the two calls out of line cost as much as the work (callgrind, docs/benchmarks.md).
  void record(int64_t value) {
    if (value < 0) value = 0;
    ++counts_[std::min(bucketOf(value), kBuckets - 1)];
    ++count_;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
    sum_ += value;
  }
  void recordN(int64_t value, uint64_t n);
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return count_ ? max_ : 0; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at quantile q in [0, 1] (upper edge of its bucket, clamped to the max seen).
  int64_t percentile(double q) const;
  // Samples in buckets whose values are all <= v: Prometheus' cumulative `le` bucket (exact at
  // bucket edges, else short by the samples of v's own bucket, within the ~1.5 % resolution).
  uint64_t countAtOrBelow(int64_t v) const;
  // The sum of the recorded values (Prometheus' _sum).
  double sum() const { return static_cast<double>(sum_); }

  // "p50=.. p99=.. p99.9=.. max=.." with values divided by `scale` and suffixed by `unit`.
  std::string summary(double scale = 1.0, const char* unit = "") const;

  // Values below kSub map to themselves; above, each power of two [2^k, 2^(k+1)) is split
  // into kSub/2 .. kSub linear sub-buckets, like HdrHistogram with 6 significant bits. One
  // formula for both without a branch: u | (kSub - 1) has its top bit at kSubBits - 1 for u < kSub
  // (shift 0, the bucket is u) and at u's own top bit above.
  static int bucketOf(int64_t v) {
    auto u = static_cast<uint64_t>(std::max<int64_t>(v, 0));
    int msb = 63 - std::countl_zero(u | static_cast<uint64_t>(kSub - 1));
    int shift = msb - kSubBits + 1;  // keep kSubBits top bits
    return shift * (kSub / 2) + static_cast<int>(u >> shift);
  }
  static int64_t bucketUpper(int b);

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  __int128 sum_ = 0;
};

}  // namespace gale
