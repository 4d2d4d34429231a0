// Spark Streaming's (DStream) windowed and stateful operators, event-time driven so both gale
// modes run them: reduceByKeyAndWindow with an inverse function (incremental: each slide adds
// the newest slice and subtracts the oldest instead of re-reducing the window), countByWindow,
// countByValueAndWindow, and updateStateByKey.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/operator.h"
#include "gale/core/watermark.h"

namespace gale {

using ReduceFn = std::function<Value(const Value&, const Value&)>;
// a + b and a - b for int64 (or double, if either is double).
Value plus(const Value& a, const Value& b);
Value minus(const Value& a, const Value& b);

// Windows of `length` sliding by `slide` (length a multiple of slide), aligned to the epoch.
// When the watermark passes a window's end, the operator emits (keys..., window_start,
// window_end, <valueName>) for every key with data in that window: window value = previous
// window value `reduce` newest slice `inverse` oldest slice. Keys whose window holds no data any
// more are dropped (Spark's filterFunc), so state stays bounded. A tuple whose slice was already
// folded into an emitted window goes to the "late" stream (reason, event_time, watermark,
// values) and is counted; DStreams have no allowed lateness.
struct ReduceByKeyAndWindowConfig {
  std::vector<std::string> keys;
  std::string valueField;  // empty: every tuple contributes the constant 1 (counting)
  std::string valueName = "value";
  ReduceFn reduce;
  ReduceFn inverse;   // empty: each window is reduced afresh from its slices (no inverse)
  int64_t length = 0;  // µs
  int64_t slide = 0;   // µs
  EventTime eventTime;
  std::string lateStream = "late";
};

class ReduceByKeyAndWindow final : public Operator {
 public:
  explicit ReduceByKeyAndWindow(ReduceByKeyAndWindowConfig config);
  ~ReduceByKeyAndWindow() override;
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onEndOfInput(Emitter& out) override { onWatermark(kEndOfTime, out); }
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  void restore(std::string_view bytes) override;
  size_t stateSize() const override;
  uint64_t lateCount() const;
  uint64_t droppedByWatermark() const override { return lateCount(); }

 private:
  struct State;
  ReduceByKeyAndWindowConfig config_;
  std::unique_ptr<State> state_;
};

// reduceByKeyAndWindow(f, inverse_f, length, slide) over `valueField` grouped by `keys`.
std::unique_ptr<ReduceByKeyAndWindow> reduceByKeyAndWindow(
    std::vector<std::string> keys, std::string valueField, ReduceFn reduce, ReduceFn inverse,
    Duration length, Duration slide, EventTime eventTime);
// reduceByWindow(f[, inverse_f], length, slide): one value per window over all tuples,
// (window_start, window_end, value). Without an inverse function (nullptr) each window is
// reduced from its slices; with one, incrementally.
std::unique_ptr<ReduceByKeyAndWindow> reduceByWindow(std::string valueField, ReduceFn reduce,
                                                     ReduceFn inverse, Duration length,
                                                     Duration slide, EventTime eventTime);
// Tuples per window: (window_start, window_end, count).
std::unique_ptr<ReduceByKeyAndWindow> countByWindow(Duration length, Duration slide,
                                                    EventTime eventTime);
// Tuples per distinct value of `fields` per window: (fields..., window_start, window_end, count).
std::unique_ptr<ReduceByKeyAndWindow> countByValueAndWindow(std::vector<std::string> fields,
                                                            Duration length, Duration slide,
                                                            EventTime eventTime);

// window(length, slide): every tuple re-emitted in each sliding window that holds it, when the
// watermark passes that window's end, as (input fields..., window_start, window_end); windows
// without tuples emit nothing. Late tuples go to the "late" stream as for reduceByKeyAndWindow.
// State: the tuples of the last `length` of event time (Spark keeps the same RDDs).
class WindowRows final : public Operator {
 public:
  // Throws std::invalid_argument when length is not a positive multiple of slide, when the
  // event time is missing or the input already has a window_start / window_end field.
  WindowRows(Fields input, Duration length, Duration slide, EventTime eventTime);
  ~WindowRows() override;
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onEndOfInput(Emitter& out) override { onWatermark(kEndOfTime, out); }
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  void restore(std::string_view bytes) override;
  size_t stateSize() const override;
  uint64_t lateCount() const { return late_; }

 private:
  Fields input_;
  int64_t length_, slide_;
  EventTime eventTime_;
  std::map<int64_t, std::vector<Values>> slices_;  // slice index -> tuples
  Timestamp wm_ = kNoWatermark;
  bool started_ = false;
  int64_t lastSlice_ = 0;  // the newest slice whose window was emitted
  uint64_t late_ = 0;
};
inline std::unique_ptr<WindowRows> window(Fields input, Duration length, Duration slide,
                                          EventTime eventTime) {
  return std::make_unique<WindowRows>(std::move(input), length, slide, std::move(eventTime));
}

// Spark's updateStateByKey: per key, a state Value updated from the values that arrived since
// the last update. At every onProcessingTime(now) (a timer tick in continuous mode, the batch
// end in micro-batch mode) and at the end of input, update(newValues, state) is called for
// every key that has state or new values (newValues may be empty, as in Spark, so states can
// time out); returning nullopt removes the key. Then every key's state is emitted as
// (keys..., state).
class UpdateStateByKey final : public Operator {
 public:
  using UpdateFn = std::function<std::optional<Value>(const std::vector<Value>& newValues,
                                                      const std::optional<Value>& state)>;
  UpdateStateByKey(std::vector<std::string> keys, std::string valueField, UpdateFn update,
                   std::string stateName = "state");
  ~UpdateStateByKey() override;
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onProcessingTime(Timestamp now, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  void restore(std::string_view bytes) override;
  size_t stateSize() const override;

 private:
  struct State;
  std::vector<std::string> keys_;
  std::string valueField_, stateName_;
  UpdateFn update_;
  std::unique_ptr<State> state_;
};

}  // namespace gale
