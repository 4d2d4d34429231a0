// The Storm-style component API of continuous mode: spouts emit tuples (optionally with a message
// id, which makes them reliable), bolts process them. Both are prototypes: the runtime clone()s
// one instance per task and runs each on its own thread, so an instance never sees two threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/operator.h"
#include "gale/core/tuple.h"
#include "gale/core/value.h"

namespace gale {

class Topology;

// Thrown by a component (or a runtime wrapper) that cannot go on without losing what it was
// given: the runtime stops the topology at once, as for a bad emit, and waitUntilDone() / stop()
// throw std::runtime_error with the message. Any other exception only fails the input.
class StopTopology : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A spout's id for one reliable tuple: handed back in ack()/fail(). 64 bits so the hot path does
// not allocate; a SourceSpout packs (partition << 48 | offset) into it.
using MessageId = uint64_t;

// Every spout declares this stream: a message whose tree failed more than Continuous::maxRetries
// times is emitted on it (unanchored) instead of being replayed, as
// (stream, values, component, error, attempts, msg_id): the stream it was emitted on, its values
// (encodeValues(); decode with decodeValues() from gale/core/state_codec.h), the component that
// failed it ("" for a timeout), the exception text or reason, how many trees of it failed, and
// its msgId. Subscribe to it like any stream: b.setBolt(...).shuffleGrouping("spout", kDeadLetterStream).
inline constexpr const char* kDeadLetterStream = "__dlq";
Fields deadLetterFields();

// What a component instance learns about where it runs.
struct TopologyContext {
  std::string component;
  TaskId task = 0;       // global task id
  int taskIndex = 0;     // 0 .. parallelism-1 within the component
  int parallelism = 1;
  const Clock* clock = &SystemClock::instance();
  bool acking = true;    // false: msgIds are ignored, ack/fail are no-ops
  const Topology* topology = nullptr;  // structure, e.g. tasksOf("x") for emitDirect

  // The same task seen by the Operator it runs (an OperatorBolt or a mode's own wrapper), on
  // `clock`: the task's own, or the mode's (exactly-once's coordinator, micro-batch's driver).
  OperatorContext operatorContext(const Clock* clock) const {
    return {.component = component, .task = task, .taskIndex = taskIndex,
            .parallelism = parallelism, .clock = clock};
  }
};

class SpoutOutputCollector {
 public:
  virtual ~SpoutOutputCollector() = default;

  // With a msgId (and acking on) the tuple is reliable: the spout gets ack(msgId) once the whole
  // tuple tree is processed, or fail(msgId) on failure or timeout. Without, it is fire-and-forget.
  void emit(Values values, std::optional<MessageId> msgId = std::nullopt) {
    emitTuple(-1, kDefaultStream, std::move(values), msgId, 0);
  }
  void emit(std::string_view stream, Values values,
            std::optional<MessageId> msgId = std::nullopt) {
    emitTuple(-1, stream, std::move(values), msgId, 0);
  }
  // originNanos: when the data was born (monotonic ns, Clock::monoNanos of the runtime's clock);
  // 0 = now. Sinks measure end-to-end latency from it.
  void emitWithOrigin(std::string_view stream, Values values, std::optional<MessageId> msgId,
                      int64_t originNanos) {
    emitTuple(-1, stream, std::move(values), msgId, originNanos);
  }
  // To one task of a bolt that subscribed with directGrouping; throws std::invalid_argument if
  // no direct subscriber of `stream` has that task.
  void emitDirect(TaskId task, std::string_view stream, Values values,
                  std::optional<MessageId> msgId = std::nullopt) {
    emitTuple(task, stream, std::move(values), msgId, 0);
  }
  void emitDirect(TaskId task, Values values, std::optional<MessageId> msgId = std::nullopt) {
    emitTuple(task, kDefaultStream, std::move(values), msgId, 0);
  }

  // In-band control, sent to every downstream task of every output stream, in order with the
  // tuples emitted before it. `idle`: this task has no data for now and must not hold back the
  // min-over-inputs watermark of its consumers (see docs/runtime.md).
  virtual void emitWatermark(Timestamp watermark, bool idle = false) = 0;
  virtual void emitBatchBegin(uint64_t txid) = 0;
  virtual void emitBatchEnd(uint64_t txid) = 0;
  // Exactly-once continuous mode: checkpoint barrier `id`, after every tuple this task emitted
  // for the checkpoint (docs/runtime.md, "Exactly-once").
  virtual void emitBarrier(uint64_t id) = 0;
  // The spout task will emit nothing more; nextTuple() is not called again.
  virtual void emitEndOfStream() = 0;

 protected:
  virtual void emitTuple(TaskId directTask, std::string_view stream, Values&& values,
                         std::optional<MessageId> msgId, int64_t originNanos) = 0;
};

class OutputCollector {
 public:
  virtual ~OutputCollector() = default;

  void emit(Values values) { emitTuple(-1, kDefaultStream, nullptr, 0, std::move(values)); }
  void emit(std::string_view stream, Values values) {
    emitTuple(-1, stream, nullptr, 0, std::move(values));
  }
  // Anchored: the output joins the tuple tree(s) of `anchor`, so its failure fails them.
  void emit(const Tuple& anchor, Values values) {
    const Tuple* a = &anchor;
    emitTuple(-1, kDefaultStream, &a, 1, std::move(values));
  }
  void emit(std::string_view stream, const Tuple& anchor, Values values) {
    const Tuple* a = &anchor;
    emitTuple(-1, stream, &a, 1, std::move(values));
  }
  void emit(std::string_view stream, const std::vector<const Tuple*>& anchors, Values values) {
    emitTuple(-1, stream, anchors.data(), anchors.size(), std::move(values));
  }
  void emitDirect(TaskId task, std::string_view stream, const std::vector<const Tuple*>& anchors,
                  Values values) {
    emitTuple(task, stream, anchors.data(), anchors.size(), std::move(values));
  }
  void emitDirect(TaskId task, Values values) {
    emitTuple(task, kDefaultStream, nullptr, 0, std::move(values));
  }
  // Emits `values` lent by the caller (Emitter::emitBorrowed): a fused next task reads them in
  // place as its input and they are given back when it returns. Anywhere else, or when that
  // task kept its input (buffered behind a barrier), the caller gets an empty list back.
  void emitBorrowed(std::string_view stream, Values& values) {
    emitBorrowedTuple(stream, nullptr, values);
  }
  void emitBorrowed(std::string_view stream, const Tuple& anchor, Values& values) {
    emitBorrowedTuple(stream, &anchor, values);
  }

  // Every input tuple must be acked or failed exactly once (Storm's rule); an input never acked
  // fails its spout tuple by timeout.
  virtual void ack(const Tuple& input) = 0;
  virtual void fail(const Tuple& input) = 0;

 protected:
  template <class>
  friend class AnchoredEmitter;  // an operator's emitter in a bolt (topology/private)
  virtual void emitTuple(TaskId directTask, std::string_view stream, const Tuple* const* anchors,
                         size_t numAnchors, Values&& values) = 0;
  // The default (a collector with no fused successor) takes the list.
  virtual void emitBorrowedTuple(std::string_view stream, const Tuple* anchor, Values& values) {
    Values taken = std::exchange(values, recycledValues());
    emitTuple(-1, stream, &anchor, anchor ? 1 : 0, std::move(taken));
  }
};

class Spout {
 public:
  virtual ~Spout() = default;
  virtual void declareOutputFields(OutputFieldsDeclarer& declarer) const = 0;
  // A fresh instance with the same configuration: one per task.
  virtual std::unique_ptr<Spout> clone() const = 0;

  virtual void open(const TopologyContext& context, SpoutOutputCollector& collector) {}
  // Emits zero or more tuples. Returns false when it had nothing to emit now (the executor backs
  // off briefly before asking again).
  virtual bool nextTuple(SpoutOutputCollector& collector) = 0;
  virtual void ack(MessageId msgId) {}
  virtual void fail(MessageId msgId) {}
  // The message failed too often and went to the dead-letter stream: it will not be replayed
  // and is finished for the spout. The default treats it like ack() (e.g. a SourceSpout commits
  // past it).
  virtual void deadLettered(MessageId msgId) { ack(msgId); }
  virtual void close() {}
  // A file descriptor that becomes readable when nextTuple() may have something to emit again
  // (an eventfd: the executor reads it empty), or -1. With one, an idle spout task blocks on it
  // and its inbox (up to 1 ms, for its timers) instead of yielding and sleeping its back-off.
  // Valid from open() until close().
  virtual int wakeFd() const { return -1; }
};

class Bolt {
 public:
  virtual ~Bolt() = default;
  virtual void declareOutputFields(OutputFieldsDeclarer& declarer) const = 0;
  virtual std::unique_ptr<Bolt> clone() const = 0;

  virtual void prepare(const TopologyContext& context, OutputCollector& collector) {}
  virtual void execute(const Tuple& input, OutputCollector& collector) = 0;
  virtual void cleanup() {}

  // Control hooks. Each is called once the condition holds over ALL upstream tasks, and the
  // runtime forwards the marker downstream after the hook returns (so what the hook emits
  // precedes it):
  // the input watermark (min over upstream tasks, idle ones excluded) advanced;
  virtual void onWatermark(Timestamp watermark, OutputCollector& collector) {}
  // the first upstream task began batch txid;
  virtual void onBatchBegin(uint64_t txid, OutputCollector& collector) {}
  // every upstream task ended batch txid (items from tasks that already did are held back
  // until then: barrier alignment);
  virtual void onBatchEnd(uint64_t txid, OutputCollector& collector) {}
  // every upstream task delivered checkpoint barrier `id` (exactly-once continuous mode; items
  // from tasks that already did are held back until then, as for onBatchEnd);
  virtual void onBarrier(uint64_t id, OutputCollector& collector) {}
  // With Continuous::unalignedCheckpoints, onBarrier(id) runs at the FIRST input's barrier
  // (nothing is held back) and this once every input delivered it, with the tuples that came in
  // between from the inputs that had not yet (each already given to execute(), after onBarrier).
  virtual void onBarrierComplete(uint64_t id, std::vector<Tuple>&& inFlight,
                                 OutputCollector& collector) {}
  // every upstream task ended its stream (after the watermark moved to the end of time).
  virtual void onEndOfStream(OutputCollector& collector) {}
  // Processing time moved on by Continuous::tickInterval (from the configured Clock).
  virtual void onTick(Timestamp now, OutputCollector& collector) {}
};

// A Bolt whose own state is checkpointed (Flink's CheckpointedFunction, Storm's IStatefulBolt;
// an Operator's snapshot()/restore() are the same for operators) by exactly-once continuous mode
// and micro-batch mode, so the bolt is exactly-once in both. Derive from both:
// `class Counter : public Bolt, public CheckpointedBolt`. In at-least-once and at-most-once
// continuous mode nothing calls these, and the state is the bolt's own business.
class CheckpointedBolt {
 public:
  virtual ~CheckpointedBolt() = default;
  // At checkpoint barrier `checkpointId` (micro-batch mode: at the end of batch txid
  // `checkpointId`), on the task's thread: the state after every input the barrier follows and
  // before any input after it. The bytes go into the checkpoint under
  // "component#taskIndex"; they must be the whole state (what restoreState() needs). A bolt that
  // is also an AsyncSnapshot (gale/core/async_snapshot.h) has exactly-once continuous mode call
  // its snapshotAsync() instead; micro-batch mode still calls this.
  virtual std::string snapshotState(uint64_t checkpointId) = 0;
  // After prepare(), before any input, when the run resumes from a completed checkpoint that
  // holds this task's state. A throw stops the start, naming the task.
  virtual void restoreState(std::string_view state) = 0;
};

}  // namespace gale
