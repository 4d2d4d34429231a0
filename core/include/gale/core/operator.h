// The mode-agnostic operator: the shape every stateful or stateless operator of gale has, so the
// same object runs inside a continuous-mode bolt (called per tuple and per watermark) and inside
// a micro-batch job (fed a batch, then a watermark at the batch end, then snapshotted under the
// batch's txid). Windows, aggregations and joins are written once against this interface.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/tuple.h"
#include "gale/core/value.h"

namespace gale {

// Collects the output streams a component declares (Storm's OutputFieldsDeclarer).
class OutputFieldsDeclarer {
 public:
  void declare(Fields fields) { declareStream(kDefaultStream, std::move(fields)); }
  void declareStream(std::string stream, Fields fields);
  const std::vector<std::pair<std::string, Fields>>& streams() const { return streams_; }
  const Fields* find(std::string_view stream) const;

 private:
  std::vector<std::pair<std::string, Fields>> streams_;
};

// Where an operator's output goes. In continuous mode, emitted tuples are anchored to the input
// being processed (if any) and sent downstream; in micro-batch mode they join the current batch.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual void emit(std::string_view stream, Values values) = 0;
  void emit(Values values) { emit(kDefaultStream, std::move(values)); }
  // Emits `input`, the tuple being processed, unchanged on the default stream (whose declared
  // fields must be the input's): a filter's or a meter's pass-through. Inside a chain the next
  // operator gets the same tuple, not a copy; elsewhere its values are copied.
  virtual void forward(const Tuple& input);
  // Emits `values`, which stay the caller's (e.g. a parser's output, parsed into again for the
  // next input so that its strings keep their capacity): inside a chain, or in a bolt whose
  // next task is fused to it, the next operator gets them as its input, no copy, and they are
  // given back when it returns (or throws). Elsewhere they are copied, or taken and the caller
  // gets an empty list back: the caller must rebuild an empty list.
  virtual void emitBorrowed(std::string_view stream, Values& values);
};

// What an operator learns about where it runs.
struct OperatorContext {
  std::string component;
  TaskId task = 0;         // global task id
  int taskIndex = 0;       // 0 .. parallelism-1 within the component
  int parallelism = 1;
  const Clock* clock = &SystemClock::instance();
};

class Operator {
 public:
  virtual ~Operator() = default;

  // The streams this operator emits on, with their fields.
  virtual void declareOutputFields(OutputFieldsDeclarer& declarer) const = 0;
  // A fresh instance with the same configuration and empty state: one per task.
  virtual std::unique_ptr<Operator> clone() const = 0;

  virtual void open(const OperatorContext& context) {}
  virtual void onTuple(const Tuple& tuple, Emitter& out) = 0;
  // The input watermark moved to `watermark`: everything with event time <= watermark has
  // arrived (modulo allowed lateness). Event-time windows fire here.
  virtual void onWatermark(Timestamp watermark, Emitter& out) {}
  // Processing time moved to `now` (a timer tick, or the end of a batch).
  virtual void onProcessingTime(Timestamp now, Emitter& out) {}
  // The input ended (a bounded source, available-now trigger, graceful drain). The watermark
  // has already been advanced to the end of time by the runtime.
  virtual void onEndOfInput(Emitter& out) {}

  // Micro-batch mode only: batch `txid` begins, and ends once all of its input was delivered
  // (after the batch-end watermark). A sink that must write each batch exactly once keys its
  // output by txid (a replayed batch replaces, never appends).
  virtual void onBatchBegin(uint64_t txid) {}
  virtual void onBatchEnd(uint64_t txid, Emitter& out) {}

  // State, as bytes that restore() accepts, for checkpoints and micro-batch commits. Stateless
  // operators keep the defaults.
  virtual bool stateful() const { return false; }
  virtual std::string snapshot() const { return {}; }
  virtual void restore(std::string_view snapshot) {}
  // A rough count of the state entries held (for metrics, eviction tests and the UI).
  virtual size_t stateSize() const { return 0; }
  // Input rows dropped (or sent to a late stream) for being behind the watermark so far (kept
  // across snapshot/restore where the operator can; for progress records and metrics).
  virtual uint64_t droppedByWatermark() const { return 0; }
  // Build-time check of where the operator sits in a topology: `inputs` are the components it
  // subscribes to. Returns why it cannot run there (empty: it can); the topology builder rejects
  // the topology with that message, naming the component.
  virtual std::string checkPlacement(const std::vector<std::string>& inputs,
                                     bool everySpoutUpstreamHasAWatermark) const {
    return {};
  }
};

using OperatorPtr = std::unique_ptr<Operator>;

// Marks a sink (an Operator or a Bolt) whose output for a batch, once written, cannot be replaced
// by a replay of that batch (a committed Kafka transaction stays). It skips a txid it already
// wrote, which is exact only when a replayed txid carries the same records as its first attempt:
// a micro-batch job with such a sink logs each batch's offsets before running it
// (MicroBatch::offsetLog) and cuts a replay to exactly those offsets.
class ExactReplaySink {
 public:
  virtual ~ExactReplaySink() = default;
};

}  // namespace gale
