// Event time and watermarks: extracting a tuple's event time, generating a watermark at a
// source (bounded out-of-orderness, periodic emission, idleness), and combining the watermarks
// of several inputs (min, or max as Spark's spark.sql.streaming.multipleWatermarkPolicy).
//
// A watermark W is a promise: every tuple with event time <= W has arrived (tuples that break
// it are late). Time here comes only from tuples and from the `now` the caller passes, never
// from a clock, so the same classes run in both modes and in tests without sleeping.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>

#include "gale/core/tuple.h"
#include "gale/core/value.h"

namespace gale {

// No watermark yet (nothing is known to be complete).
inline constexpr Timestamp kNoWatermark{std::numeric_limits<int64_t>::min()};
// The end of time: the input ended, everything is complete.
inline constexpr Timestamp kEndOfTime{std::numeric_limits<int64_t>::max()};

// Where a tuple's event time comes from: a field (Timestamp or int64 microseconds) or a function.
class EventTime {
 public:
  EventTime() = default;
  explicit EventTime(std::string field) : field_(std::move(field)) {}
  explicit EventTime(std::function<Timestamp(const Tuple&)> fn) : fn_(std::move(fn)) {}
  bool configured() const { return !field_.empty() || fn_; }
  const std::string& field() const { return field_; }
  // Throws std::out_of_range / std::invalid_argument naming the field when it is missing or has
  // another type.
  Timestamp of(const Tuple& t) const {
    if (fn_) return fn_(t);
    return t.getTimestamp(field_);
  }

 private:
  std::string field_;
  std::function<Timestamp(const Tuple&)> fn_;
};

// Flink's BoundedOutOfOrdernessWatermarks: watermark = max event time seen - delay - 1 µs, so a
// tuple exactly `delay` behind the maximum is still on time. (With delay 0, a tuple equal to the
// max seen is on time too.) Idle detection: an input that saw no tuple for `idleTimeout` of
// processing time is idle (0 = never idle), so a combiner can exclude it from the min.
class BoundedOutOfOrderness {
 public:
  explicit BoundedOutOfOrderness(Duration delay, Duration idleTimeout = Duration::zero());

  // A tuple with this event time arrived at processing time `now`. Returns true when the
  // watermark moved.
  bool observe(Timestamp eventTime, Timestamp now = Timestamp{0});
  // The current watermark (kNoWatermark before the first tuple).
  Timestamp current() const { return current_; }
  // Periodic emission (Flink's autoWatermarkInterval; call it every interval): the watermark
  // to send downstream if it moved since the last call that returned one, else nullopt.
  std::optional<Timestamp> onPeriodic(Timestamp now);
  // No tuple for idleTimeout up to `now` (and idleness is enabled).
  bool idle(Timestamp now) const;
  // For source checkpoints: the max event time seen, to rebuild the generator on restore.
  Timestamp maxEventTime() const { return maxSeen_; }
  void restore(Timestamp maxEventTime);

 private:
  int64_t delay_;
  int64_t idleTimeout_;
  Timestamp maxSeen_ = kNoWatermark;
  Timestamp current_ = kNoWatermark;
  Timestamp lastEmitted_ = kNoWatermark;
  std::optional<Timestamp> lastActivity_;
};

// How the watermarks of several inputs combine. Min (the default, Flink and Spark): the slowest
// input holds everything back and nothing it sends later is late. Max (Spark's "max" policy):
// the fastest input drives time, and the others' older tuples may become late.
enum class WatermarkPolicy { Min, Max };

// The combined watermark of an operator with several inputs (upstream tasks or streams, named
// by an integer id). Rules:
//  - an input's own watermark never goes backwards (a lower value is ignored);
//  - idle inputs are excluded; an input that sends a watermark is active again;
//  - until every registered, active input has sent a watermark, the combined one (Min) is
//    kNoWatermark; if every input is idle, the combined watermark stays where it was;
//  - the combined watermark never goes backwards (an input that wakes up behind it cannot
//    pull it back; its tuples behind it are late).
class WatermarkTracker {
 public:
  using InputId = int64_t;
  explicit WatermarkTracker(WatermarkPolicy policy = WatermarkPolicy::Min) : policy_(policy) {}

  // Declares an input up front, so the combined watermark waits for it (Min policy).
  void addInput(InputId input);
  // Input `input` reports watermark `wm` (registering it if new). Returns the new combined
  // watermark if it advanced.
  std::optional<Timestamp> update(InputId input, Timestamp wm);
  // Marks an input idle (excluded) or active again. Returns the new combined watermark if it
  // advanced (an idle laggard no longer holds the others back).
  std::optional<Timestamp> setIdle(InputId input, bool idle);
  Timestamp current() const { return combined_; }
  size_t inputs() const { return inputs_.size(); }

 private:
  struct Input {
    Timestamp wm = kNoWatermark;
    bool idle = false;
  };
  std::optional<Timestamp> recompute();
  WatermarkPolicy policy_;
  std::unordered_map<InputId, Input> inputs_;
  Timestamp combined_ = kNoWatermark;
};

}  // namespace gale
