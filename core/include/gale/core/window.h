// The window operator: one implementation of tumbling, sliding, session, global and count
// windows, keyed or not, with event-time / processing-time / count firing, allowed lateness, a
// late stream, and Spark's output modes. Both runtimes call it through gale::Operator; its
// precise rules are in docs/semantics.md.
//
//   auto op = gale::windowed(gale::Sliding(10s, 1s), gale::Sum{"bytes"}, gale::Count{})
//                 .keyBy({"host"})
//                 .eventTime("ts")
//                 .allowedLateness(5s)
//                 .outputMode(gale::OutputMode::Update)
//                 .build();
//
// Output fields: the key fields, window_start, window_end (Timestamp; int64 tuple positions for
// count windows), then one field per aggregate (outputName()). Late tuples go to the stream
// "late" (lateStream()) as (reason, event_time, watermark, values) where values is
// encodeValues(tuple.values()).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gale/core/aggregate.h"
#include "gale/core/async_snapshot.h"
#include "gale/core/key_group.h"
#include "gale/core/operator.h"
#include "gale/core/watermark.h"

namespace gale {

// Spark's output modes.
//  Append:   each window's rows once, when final (watermark >= window max time + lateness).
//  Update:   at each firing, the rows that changed since the previous firing.
//  Complete: the whole result table, as Spark's: every group is kept and late rows are never
//            dropped (the watermark only says which windows are complete). Continuous mode
//            writes it at each firing; micro-batch mode once per batch, at the batch end, with
//            every group (complete or not), however many firings the batch had.
enum class OutputMode { Append, Update, Complete };
const char* outputModeName(OutputMode m);

struct WindowKind {
  enum Kind { Tumbling, Sliding, Session, Global, CountTumbling, CountSliding };
  Kind kind = Tumbling;
  int64_t size = 0;    // µs (time windows), tuples (count windows), gap (session)
  int64_t slide = 0;   // µs or tuples
  int64_t offset = 0;  // µs, shifts the epoch-aligned grid
  bool isCount() const { return kind == CountTumbling || kind == CountSliding; }
  std::string describe() const;
};

// [k*size + offset, (k+1)*size + offset), aligned to the Unix epoch.
WindowKind Tumbling(Duration size, Duration offset = Duration::zero());
// Windows of `size` starting every `slide` (slide <= size), aligned to the epoch.
WindowKind Sliding(Duration size, Duration slide, Duration offset = Duration::zero());
// Per key, tuples closer than `gap` share a session [first, last + gap).
WindowKind Session(Duration gap);
// One window per key for all time; fires on early triggers and at the end of input.
WindowKind GlobalWindow();
// Storm's count windows, per key: every n tuples, the last n tuples.
WindowKind CountTumbling(int64_t n);
// Every `slide` tuples, the last n tuples (fewer at the start).
WindowKind CountSliding(int64_t n, int64_t slide);

// When a time window fires besides its end. Event-time windows always fire when the watermark
// passes their end; these add early firings.
struct Trigger {
  enum Kind { EventTime, ProcessingTime, Count, CountPerKey };
  Kind kind = EventTime;
  int64_t every = 0;  // µs of processing time, or input tuples (operator-wide or per key)
  // Flink's PurgingTrigger: every firing (early, on time, late) clears what it emitted, so the
  // next firing of the window carries only the elements that came after it — e.g. a late firing
  // carries only the late elements. Update mode only, on windows that own their elements
  // (tumbling, session, global): a sliding window shares its elements with its neighbours.
  bool purge = false;
  Trigger purging() const {
    Trigger t = *this;
    t.purge = true;
    return t;
  }
  static Trigger eventTime() { return {}; }
  // Fire at the first onProcessingTime(now) with now >= last firing + interval (0: every call;
  // with the micro-batch runtime calling it at each batch end that is Spark's update-per-batch).
  static Trigger processingTime(Duration interval) { return {ProcessingTime, interval.count()}; }
  // Fire after every n input tuples (operator-wide).
  static Trigger count(int64_t n) { return {Count, n}; }
  // Flink's CountTrigger.of(n) on a keyed window: a window fires for one key — that key's row
  // only — each time that key has added n elements to it since its last count firing (a
  // sliding window counts every element it holds; merged sessions add their counts). The
  // watermark still fires windows at their end (Update mode; Append and Complete reject it).
  // GlobalWindow() with countPerKey(n).purging() is Flink's countWindow(n).
  static Trigger countPerKey(int64_t n) { return {CountPerKey, n}; }
};

struct WindowConfig {
  WindowKind window;
  std::vector<std::shared_ptr<const Aggregator>> aggregates;
  std::vector<std::string> keys;
  EventTime eventTime;
  // Flink's processing-time windows: a tuple belongs to the windows of the processing time at
  // which it arrives (the operator's clock), and a window fires when that clock passes its end
  // (onProcessingTime), not on watermarks. Nothing is ever late.
  bool processingTime = false;
  int64_t lateness = 0;  // µs
  OutputMode mode = OutputMode::Update;
  Trigger trigger;
  std::string lateStream = "late";
};

// A keyed window is a KeyGroupedState (its keys' panes, sessions, counts and finished rows split
// by key group; window_key_groups.cpp), so a component declared with maxParallelism can be
// rescaled. In exactly-once continuous mode its whole snapshot is asynchronous (AsyncSnapshot): at
// the barrier the task copies its state (flat arrays of slots and partials, the interned keys; no
// encoding), and the checkpoint writer's thread encodes the copy with snapshot(). Same bytes, same
// restore().
class WindowOperator final : public Operator, public KeyGroupedState, public AsyncSnapshot {
 public:
  // Validates `config` (throws std::invalid_argument saying what is wrong and how to fix it).
  explicit WindowOperator(WindowConfig config);
  ~WindowOperator() override;

  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override { clock_ = context.clock; }
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onProcessingTime(Timestamp now, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  // A copy of the state now; the function encodes it (window_async.cpp).
  Write snapshotAsync(uint64_t checkpointId) override;
  void restore(std::string_view snapshot) override;
  std::vector<std::string> keyGroupFields() const override { return config_.keys; }
  Split snapshotKeyGroups(uint32_t maxParallelism) const override;
  // Several old tasks' heads merge only when their watermarks are equal (an aligned cut);
  // dirty tracking (what an update-mode firing re-emits) is rebased onto one sequence, which
  // a sliding window cannot do (its panes are dirty per window): refused there
  // (whyTasksCannotMerge).
  void restoreKeyGroups(const std::vector<Head>& heads,
                        const std::map<uint32_t, std::string_view>& groups,
                        uint32_t maxParallelism) override;
  std::string whyTasksCannotMerge() const override;
  // Partial aggregates held (per key per pane, session or count pane) plus kept result rows.
  size_t stateSize() const override;

  // Tuples sent to the late stream so far (kept across snapshot/restore).
  uint64_t lateCount() const;
  uint64_t droppedByWatermark() const override { return lateCount(); }
  // Distinct keys the time windows currently intern (for metrics and tests: key churn must
  // not grow it without bound).
  size_t internedKeys() const;
  Timestamp watermark() const;
  const WindowConfig& config() const { return config_; }

 private:
  struct State;
  struct Encoded;  // window_async.cpp
  std::string encodeState(const State& s) const;
  std::unique_ptr<State> decodeState(std::string_view bytes) const;
  WindowConfig config_;
  std::unique_ptr<State> state_;
  // The last asynchronous snapshot's copy once encoded, freed on the task's thread.
  std::shared_ptr<Encoded> encoded_;
  const Clock* clock_ = &SystemClock::instance();
};

class WindowBuilder {
 public:
  WindowBuilder(WindowKind window, std::vector<std::shared_ptr<const Aggregator>> aggregates);
  WindowBuilder& keyBy(std::vector<std::string> fields);
  WindowBuilder& eventTime(std::string field);
  WindowBuilder& eventTime(std::function<Timestamp(const Tuple&)> extractor);
  // Windows over processing time instead of event time (see WindowConfig::processingTime).
  WindowBuilder& processingTime();
  WindowBuilder& allowedLateness(Duration lateness);
  WindowBuilder& outputMode(OutputMode mode);
  WindowBuilder& trigger(Trigger trigger);
  WindowBuilder& lateStream(std::string stream);
  // Validates the whole configuration; throws std::invalid_argument on nonsense.
  std::unique_ptr<WindowOperator> build() const;
  operator OperatorPtr() const { return build(); }

 private:
  WindowConfig config_;
};

template <class... Aggs>
WindowBuilder windowed(WindowKind window, const Aggs&... aggregates) {
  std::vector<std::shared_ptr<const Aggregator>> v;
  (v.push_back(std::shared_ptr<const Aggregator>(aggregates.clone())), ...);
  return WindowBuilder(window, std::move(v));
}

}  // namespace gale
