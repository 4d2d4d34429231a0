// How many trees a spout task may have in flight: Continuous::maxSpoutPending, lowered so that a
// tree does not wait longer than a target complete latency (a fraction of the message timeout).
// By Little's law, trees in flight = completion rate x complete latency, so a limit of
// (measured completion rate x target latency) keeps the time a new tree spends queued behind the
// others near the target: a slow bolt costs throughput, not timeouts and replays.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace gale {

class PendingLimit {
 public:
  // Starts at min(max, kInitial): small, so that even a bolt taking seconds per tree does not
  // time out the first trees; each tree that completes within half the target adds one (slow
  // start: the limit doubles per round trip while trees are fast).
  PendingLimit(size_t max, int64_t targetLatencyNanos, bool adaptive)
      : max_(max), target_(targetLatencyNanos), adaptive_(adaptive),
        limit_(adaptive ? std::min(max, kInitial) : max) {}

  size_t limit() const { return limit_; }
  void completed(int64_t latencyNanos) {
    ++completions_;
    if (adaptive_ && latencyNanos < target_ / 2 && limit_ < max_) ++limit_;
  }
  // Called often with the steady time; re-estimates the rate once enough was seen.
  void update(int64_t now);

  static constexpr size_t kInitial = 8;
  static constexpr size_t kFloor = 4;
  // A measurement needs this many completions (a rate from fewer is noise) and this much time
  // (at least a 32nd of the target latency: completions come in bursts of a frame's acks), or,
  // when completions are rare, one target latency.
  static constexpr uint64_t kMinCompletions = 16;
  static constexpr int64_t kMinWindowNanos = 10'000'000;
  int64_t minWindow() const { return std::max<int64_t>(kMinWindowNanos, target_ / 32); }

 private:
  size_t max_;
  int64_t target_;
  bool adaptive_;
  size_t limit_;
  uint64_t completions_ = 0;
  int64_t windowStart_ = 0;
};

}  // namespace gale
