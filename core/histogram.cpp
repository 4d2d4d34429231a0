#include "gale/core/histogram.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace gale {

int64_t Histogram::bucketUpper(int b) {
  if (b < kSub) return b;
  int shift = b / (kSub / 2) - 1;
  int sub = b - shift * (kSub / 2);
  // Unsigned and wide: the top bucket in use ends at 2^63 - 1 ((sub + 1) << shift is 2^63
  // there, past int64), and the ones above it (no int64 reaches them) end there too.
  const unsigned __int128 end = static_cast<unsigned __int128>(sub + 1) << shift;
  return end - 1 >= static_cast<unsigned __int128>(INT64_MAX) ? INT64_MAX
                                                              : static_cast<int64_t>(end - 1);
}

void Histogram::recordN(int64_t value, uint64_t n) {
  if (n == 0) return;
  if (value < 0) value = 0;
  int b = std::min(bucketOf(value), kBuckets - 1);
  counts_[b] += n;
  count_ += n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<__int128>(value) * n;
}

void Histogram::merge(const Histogram& o) {
  for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  if (o.count_) {
    min_ = std::min(min_, o.min_);
    max_ = std::max(max_, o.max_);
  }
  sum_ += o.sum_;
}

void Histogram::reset() { *this = Histogram(); }

uint64_t Histogram::countAtOrBelow(int64_t v) const {
  if (v < 0 || count_ == 0) return 0;
  if (v >= max_) return count_;
  int last = std::min(bucketOf(v), kBuckets - 1);
  if (bucketUpper(last) > v) --last;  // v's bucket also holds values above v
  uint64_t n = 0;
  for (int i = 0; i <= last; ++i) n += counts_[i];
  return n;
}

int64_t Histogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // Rank of the sample: the smallest value v such that at least ceil(q*n) samples are <= v.
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999999);
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(bucketUpper(i), min_, max_);
  }
  return max_;
}

std::string Histogram::summary(double scale, const char* unit) const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "p50=%.1f%s p99=%.1f%s p99.9=%.1f%s max=%.1f%s (n=%llu)",
                percentile(0.50) / scale, unit, percentile(0.99) / scale, unit,
                percentile(0.999) / scale, unit, max() / scale, unit,
                static_cast<unsigned long long>(count_));
  return buf;
}

}  // namespace gale
