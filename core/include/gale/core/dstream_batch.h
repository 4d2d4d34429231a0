// Spark Streaming's (DStream) per-batch operators and output operations, one object for both gale
// modes: transform, join / cogroup of two streams per batch, print, foreachBatch (foreachRDD)
// and saveAsTextFiles; plus union of streams and the windowed join / cogroup.
//
// What a "batch" is (BatchInfo):
//  - micro-batch mode: the micro-batch. Its rows are those between onBatchBegin(txid) and
//    onBatchEnd(txid); id = txid, the same when a batch is replayed after a failure; time = the
//    processing time at the batch end; every batch is one call, even an empty one.
//  - continuous mode: the rows a task received between two advances of its input watermark
//    (by default), or between two processing-time ticks (ContinuousBatches::ProcessingTime, for
//    inputs without a watermark; until a first watermark arrives, and without eventTime(...),
//    ticks cut the batches too, so an input without a watermark is not held until its end); the
//    rest at the end of input. With eventTime(...) set, a
//    watermark advance to w closes the batch of the buffered rows with event time <= w, and
//    rows ahead of w wait for a later batch: rows of one event-time range meet in one batch even
//    when they come over different paths (a row and a copy of it derived by another bolt). id = 1, 2, ... per task (not
//    kept across a restart: continuous mode does not checkpoint operators); time = the processing
//    time when it closed; an empty interval is not a batch (no call). Rows are acked when they
//    are buffered and continuous mode does not checkpoint operators: a crashed task loses its
//    open batch (as it loses a window's state).
// Each task of a parallel bolt sees its own share of the batch's rows (group by key upstream to
// have all rows of a key in one call), as each Spark partition sees its own.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <functional>
#include <iosfwd>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gale/core/join.h"
#include "gale/core/operator.h"
#include "gale/core/stream_join.h"
#include "gale/core/watermark.h"

namespace gale {

struct BatchInfo {
  uint64_t id = 0;
  Timestamp time;                  // processing time at the batch's end
  Timestamp watermark = kNoWatermark;  // the input watermark when the batch closed
  bool microBatch = false;
};

enum class ContinuousBatches { Watermark, ProcessingTime };

// The batching shared by the operators below: rows are buffered until the batch closes, then
// onBatch(batch, rows) runs once.
class PerBatchOperator : public Operator {
 public:
  void open(const OperatorContext& context) override { context_ = context; }
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onProcessingTime(Timestamp now, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;
  // Rows of the open batch (for tests and metrics).
  size_t stateSize() const override { return rows_.size(); }
  // Continuous mode only; micro-batch mode always uses the micro-batch.
  PerBatchOperator& continuousBatches(ContinuousBatches b) {
    boundary_ = b;
    return *this;
  }
  // Continuous mode, watermark batches: cut by event time (see above).
  PerBatchOperator& eventTime(EventTime e) {
    eventTime_ = std::move(e);
    return *this;
  }

 protected:
  virtual void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) = 0;
  // clone() of a subclass copies the configuration, not the buffered rows.
  void copyConfig(const PerBatchOperator& o) {
    boundary_ = o.boundary_;
    eventTime_ = o.eventTime_;
  }
  const OperatorContext& context() const { return context_; }

 private:
  void close(Timestamp now, Emitter& out, Timestamp upTo = kEndOfTime);
  OperatorContext context_;
  EventTime eventTime_;
  ContinuousBatches boundary_ = ContinuousBatches::Watermark;
  std::vector<Tuple> rows_;
  bool micro_ = false, inBatch_ = false;
  uint64_t txid_ = 0, seq_ = 0;
  Timestamp now_, wm_ = kNoWatermark;
};

// transform(f): f(batch, rows) returns the batch's output rows (e.g. the rows joined with a
// static table, or sorted, or the top N), emitted with `outputFields`. A row of another length
// is an error naming the batch (std::invalid_argument), not a silently shifted column.
using TransformFn = std::function<std::vector<Values>(const BatchInfo&, const std::vector<Tuple>&)>;
class Transform final : public PerBatchOperator {
 public:
  Transform(Fields outputFields, TransformFn fn);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(fields_); }
  std::unique_ptr<Operator> clone() const override;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) override;

 private:
  Fields fields_;
  TransformFn fn_;
};

// print(n): Spark's DStream.print — per batch a header with the batch time, then the first n
// rows as (v1,v2,...), then "..." when there were more:
//   -------------------------------------------
//   Time: 1700000000000 ms
//   -------------------------------------------
//   (hello,3)
//   ...
// A sink (no output streams). Lines of one batch are written together (tasks do not interleave).
class Print final : public PerBatchOperator {
 public:
  explicit Print(size_t n = 10, std::ostream* os = nullptr);  // nullptr: std::cout
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) override;

 private:
  size_t n_;
  std::ostream* os_;
};
// The line print() and saveAsTextFiles() write for a row: (v1,v2,...).
std::string rowText(const Values& values);

// foreachBatch(f) / foreachRDD(f): f(batch, rows) once per batch. In micro-batch mode f runs
// at the batch end, before the batch commits; a failed or crashed batch is run again with the
// same id and the same rows, so the output is exactly once when f is idempotent per batch id
// (e.g. writes keyed by batch.id, or skips ids it has already written) — Spark's rule. An
// exception from f fails the batch (nothing of it commits). Continuous mode: no replay — the
// rows of an open batch were acked on arrival and go with a crashed task (as any continuous-mode
// operator state, which is not checkpointed).
using ForeachBatchFn = std::function<void(const BatchInfo&, const std::vector<Tuple>&)>;
class ForeachBatch final : public PerBatchOperator {
 public:
  explicit ForeachBatch(ForeachBatchFn fn);
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter&) override;

 private:
  ForeachBatchFn fn_;
};

// DStream.foreachRDD's name for the same operator.
using ForeachRDD = ForeachBatch;

// saveAsTextFiles(prefix, suffix): per batch a directory `<prefix>-<batch time in ms>[.<suffix>]`
// (Spark's naming) holding part-<task>, one rowText line per row. The part file is written to
// a hidden temp file and renamed, so a reader sees it whole or not at all. No two batches share
// a directory: a batch ending in the millisecond of an earlier one takes the next millisecond.
// Micro-batch mode: the batch time is fixed the first time batch `id` ends (a marker file
// `.<prefix name>-batch-<id>` beside the directories, written under a lock file
// `.<prefix name>.lock`, first task wins; `.<prefix name>-last` holds the last time handed out)
// and read back on a replay, so a replayed batch writes the same names and replaces its files:
// exactly once. The marker of batch id - markerHistory is removed when batch id first ends (it
// can no longer be replayed: keep markerHistory above MicroBatch::maxBatchesInFlight).
// Continuous mode: one directory per task and batch; an open batch is lost with a crashed task.
class SaveAsTextFiles final : public PerBatchOperator {
 public:
  // Throws std::invalid_argument for an empty prefix or a zero marker history.
  SaveAsTextFiles(std::string prefix, std::string suffix = {}, uint64_t markerHistory = 1024);
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  // The directory of batch time `time`.
  std::string directoryFor(Timestamp time) const;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter&) override;

 private:
  Timestamp batchTime(const BatchInfo& batch);
  std::string markerPath(uint64_t id) const;
  std::string prefix_, suffix_;
  uint64_t markerHistory_;
  int64_t lastMs_ = std::numeric_limits<int64_t>::min() / 2;  // continuous mode
};

// join of two streams per batch (DStream.join / leftOuterJoin / rightOuterJoin / fullOuterJoin):
// at the batch end, every pair of a left and a right row of that batch with equal keys; outer
// joins add the rows without a match with nulls on the other side; left semi emits each left row
// with a match once. Output fields as StreamJoin's (left fields, then right fields, a clashing
// right name renamed `<right input>_<name>`). JoinSide::eventTime is not used.
class BatchJoin final : public PerBatchOperator {
 public:
  BatchJoin(JoinSide left, JoinSide right, JoinType type = JoinType::Inner);
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  std::string checkPlacement(const std::vector<std::string>& inputs, bool) const override;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) override;

 private:
  JoinSide side_[2];
  JoinType type_;
  std::vector<int> keyIdx_[2];
};

// cogroup of two streams (DStream.cogroup): per key, the rows of each side, emitted as
// (keys..., left, right) where left and right are Bytes holding the rows (decode with
// cogroupRows). Per batch by default; with a tumbling event-time window of `window` (the
// windowed cogroup, `a.window(w).cogroup(b.window(w))`), rows are grouped per key and window and
// emitted as (keys..., window_start, window_end, left, right) when the watermark passes the
// window's end; a row whose window was already emitted goes to the "late" stream.
class Cogroup final : public PerBatchOperator {
 public:
  Cogroup(JoinSide left, JoinSide right, Duration window = Duration::zero());
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  std::string checkPlacement(const std::vector<std::string>& inputs,
                             bool everySpoutUpstreamHasAWatermark) const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp watermark, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  bool stateful() const override { return window_ > 0; }
  std::string snapshot() const override;
  void restore(std::string_view bytes) override;
  size_t stateSize() const override;

 protected:
  void onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) override;

 private:
  int sideOf(const Tuple& t) const;
  JoinSide side_[2];
  int64_t window_;
  std::vector<int> keyIdx_[2];
  int timeIdx_[2] = {-1, -1};
  // Windowed mode: window start -> key values -> rows per side.
  std::map<int64_t, std::map<Values, std::array<std::vector<Values>, 2>>> windows_;
  Timestamp wm_ = kNoWatermark;
};
// The rows a cogroup output column holds.
std::vector<Values> cogroupRows(const Value& column);

// The windowed join of two streams (`a.window(w).join(b.window(w))` over tumbling windows): the
// event-time StreamJoin with sameTumblingWindow(window) — pairs with equal keys in the same
// window, in both modes, with its watermark rules.
StreamJoin windowedJoin(JoinSide left, JoinSide right, JoinType type, Duration window);

// union of streams (DStream.union): a bolt subscribed to every input passes their tuples on
// unchanged as one stream. The inputs must have the same field names in the same order (checked
// here); the topology builder rejects the bolt unless it subscribes to exactly these inputs, and
// a tuple with other fields at run time is an error naming its stream.
class Union final : public Operator {
 public:
  struct Input {
    std::string component;
    Fields fields;
  };
  // Throws std::invalid_argument naming the inputs whose fields differ.
  explicit Union(std::vector<Input> inputs);
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Union>(inputs_); }
  std::string checkPlacement(const std::vector<std::string>& inputs, bool) const override;
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  std::vector<Input> inputs_;
  std::vector<std::string> names_;
};

}  // namespace gale
