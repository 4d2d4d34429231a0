// A bolt task: its InputGate aligns the inputs; execute() runs the bolt, and acks go to the
// ackers XOR-combined per root (holdAck). See docs/runtime.md.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "private/anchored_emitter.h"
#include "private/executor.h"
#include "private/input_gate.h"

namespace gale {

class BoltExecutor final : public Executor, private InputGate::Listener {
 public:
  BoltExecutor(RuntimeShared& sh, TaskId id)
      : Executor(sh, id), gate_(*this, name() + " task " + std::to_string(id)) {
    gate_.setUnalignedBarriers(sh.config.unalignedCheckpoints);
  }

  void onTuple(TaskId src, Tuple&& t) override { gate_.tuple(src, std::move(t)); }
  // A tuple lent by the task that hosts this one (Executor::lendFused), Flink's chained call:
  // executed at once when the gate would deliver it at once anyway (no barrier, batch end or
  // unaligned checkpoint holds `src` back), else handed to the gate as from a channel. Markers
  // still go through the gate (onControl), so their order against tuples is the channel's.
  void runLent(TaskId src, Tuple& t) {
    if (gate_.deliversAtOnce(src))
      execute(t);
    else
      gate_.tuple(src, std::move(t));
  }
  void onControl(TaskId src, Control&& c) override;

 private:
  struct HeldAck {
    uint64_t root = 0;
    uint64_t value = 0;
    bool held = false;
  };

  class Collector final : public OutputCollector {
   public:
    explicit Collector(BoltExecutor& t) : t_(t) {}
    void ack(const Tuple& input) override { t_.ack(input); }
    void fail(const Tuple& input) override { t_.fail(input); }

   protected:
    void emitTuple(TaskId direct, std::string_view stream, const Tuple* const* anchors, size_t n,
                   Values&& values) override {
      t_.emitTuple(direct, stream, anchors, n, std::move(values));
    }
    void emitBorrowedTuple(std::string_view stream, const Tuple* anchor,
                           Values& values) override {
      t_.emitBorrowedTuple(stream, anchor, values);
    }

   private:
    BoltExecutor& t_;
  };

  // ---- Executor
  void extraTargets(std::vector<TaskId>& targets) override;
  void afterConnect() override;
  void open(const TopologyContext& ctx) override;
  const char* openVerb() const override { return "prepare"; }
  void close() override {
    if (bolt_) bolt_->cleanup();
  }
  void beforeLoop(int64_t now) override;
  void timers(int64_t now) override;
  bool finishedStream() const override { return gate_.ended(); }
  void beforeFlushAll() override {
    for (size_t a = 0; a < heldAcks_.size(); ++a) releaseAck(a);
  }
  KindMetrics kindMetrics() const override;

  // ---- InputGate::Listener
  void deliver(Tuple& t) override { execute(t); }
  void watermarkAdvanced(Timestamp wm) override;
  void batchBegun(uint64_t txid) override;
  void batchAligned(uint64_t txid) override;
  void barrierAligned(uint64_t id) override;
  void barrierCompleted(uint64_t id, std::vector<Tuple>&& inFlight) override;
  void inputsEnded() override;
  void forward(const Control& c) override { broadcast(c); }

  void execute(Tuple& t);
  void emitTuple(TaskId direct, std::string_view streamName, const Tuple* const* anchors,
                 size_t numAnchors, Values&& values);
  void emitBorrowedTuple(std::string_view streamName, const Tuple* anchor, Values& values);
  // An OperatorBolt's operator called from execute() itself (runOperator(*op_, t, *this)): what
  // OperatorBolt::execute does through the collector, here without the bolt, the collector and
  // its virtual call between (three virtual calls and two frames a tuple). emitTuple and
  // emitBorrowedTuple: the collector's names, which AnchoredEmitter calls on either.
  template <class>
  friend class AnchoredEmitter;
  template <class Out>
  friend void runOperator(Operator& op, const Tuple& input, Out& out);
  // Inline: the operator path (runOperator) acks every input from execute().
  void ack(const Tuple& input) {
    ++acked_;
    if ((acked_ & 15) == 0) processLat_.record(steadyNow() - drainStartNanos());
    if (sh_.config.acking) ackAnchors(input);
  }
  void ackAnchors(const Tuple& input);
  void holdAck(uint64_t root, uint64_t value);
  void releaseAck(size_t a);
  void fail(const Tuple& input);

  InputGate gate_;
  Collector collector_{*this};
  std::unique_ptr<Bolt> bolt_;
  Operator* op_ = nullptr;  // bolt_'s operator when bolt_ is an OperatorBolt (runOperator)
  std::string failWhy_;  // the exception text while failing an input whose execute() threw
  bool slowExecute_ = false;  // the last sampled execute() took more than kSlowExecuteNanos
  std::vector<HeldAck> heldAcks_;  // by acker index
  int64_t tickEvery_ = 0, nextTick_ = 0;  // wall clock, ns
};

inline BoltExecutor* Executor::fusedBolt(Executor* fused) {
  return static_cast<BoltExecutor*>(fused);
}

inline BoltExecutor* Executor::onlyFusedTarget(const OutStream& os,
                                               const std::vector<TaskId>& targets) const {
  if (targets.size() != 1 || os.fusedTupleBusy) return nullptr;
  return fusedBolt(senders_[static_cast<size_t>(targets.front())]->fused);
}

[[gnu::always_inline]] inline const std::vector<TaskId>* Executor::routeUnlessFused(
    OutStream& os, TaskId direct, bool tracked, Values& values, int64_t originNanos) {
  if (!tracked && direct < 0 && os.fusedOnly && !os.fusedTupleBusy) {  // a fused chain
    ++emitted_;
    sendFused(os, *os.fusedOnly, std::move(values), originNanos);
    return nullptr;
  }
  const std::vector<TaskId>& targets = route(os, values, direct);
  ++emitted_;
  if (targets.empty() && os.unsubscribed) unrouted(os);
  if (!tracked)
    if (BoltExecutor* to = onlyFusedTarget(os, targets)) {
      sendFused(os, *to, std::move(values), originNanos);
      return nullptr;
    }
  return &targets;
}

// Here, inlined into each emit that lends: its own call's prologue and epilogue cost ~20
// instructions a tuple.
[[gnu::always_inline]] inline void Executor::lendFused(OutStream& os, BoltExecutor& to,
                                                       Values& values, int64_t originNanos) {
  ++transferred_;
  Tuple& t = os.fusedTuple;
  if (!t.schema()) t = Tuple(os.schema, {});  // the first, or the last one was kept (InputGate)
  t.mutableValues().swap(values);  // os.fusedTuple holds an empty list between calls
  t.setOriginNanos(originNanos);
  struct GiveBack {
    OutStream& os;
    Values& values;
    ~GiveBack() {
      os.fusedTupleBusy = false;
      values.swap(os.fusedTuple.mutableValues());
    }
  } giveBack{os, values};
  os.fusedTupleBusy = true;
  to.runLent(id_, t);
}

inline void Executor::sendFused(OutStream& os, BoltExecutor& to, Values&& values,
                                int64_t originNanos) {
  lendFused(os, to, values, originNanos);
  recycleValues(std::move(values));
}

}  // namespace gale
