// A bolt task; see private/bolt_executor.h.
#include "private/bolt_executor.h"

#include <algorithm>
#include <utility>

#include "gale/topology/adapters.h"

namespace gale {

void BoltExecutor::extraTargets(std::vector<TaskId>& targets) {
  if (sh_.config.acking)
    for (int a = 0; a < sh_.numAckers; ++a) targets.push_back(sh_.firstAcker + a);
}

void BoltExecutor::afterConnect() {
  const auto& comps = sh_.topology.components();
  int into = sh_.fusion.into[static_cast<size_t>(comp_ - comps.data())];
  if (into >= 0) {  // fused: task i reads task i of its upstream only
    gate_.addInput(comps[static_cast<size_t>(into)].firstTask + (id_ - comp_->firstTask));
    return;
  }
  for (const ComponentSpec* up : sh_.topology.upstreamOf(comp_->name))
    for (int i = 0; i < up->parallelism; ++i) gate_.addInput(up->firstTask + i);
}

void BoltExecutor::open(const TopologyContext& ctx) {
  bolt_ = comp_->bolt->clone();
  bolt_->prepare(ctx, collector_);
  // Resolved once here, not per tuple (a wrapped bolt, e.g. exactly-once mode's, is not one).
  if (auto* ob = dynamic_cast<OperatorBolt*>(bolt_.get())) op_ = ob->instance();
}

void BoltExecutor::onControl(TaskId src, Control&& c) {
  ControlKind kind = c.kind;
  if (!gate_.control(src, std::move(c)))
    logWarn(name() + " task " + std::to_string(id_) + " got " + controlKindName(kind) +
            " from task " + std::to_string(src) + ", which is not upstream; ignored");
}

void BoltExecutor::watermarkAdvanced(Timestamp wm) {
  hook("onWatermark", [&] { bolt_->onWatermark(wm, collector_); });
}
void BoltExecutor::batchBegun(uint64_t txid) {
  hook("onBatchBegin", [&] { bolt_->onBatchBegin(txid, collector_); });
}
void BoltExecutor::batchAligned(uint64_t txid) {
  hook("onBatchEnd", [&] { bolt_->onBatchEnd(txid, collector_); });
}

void BoltExecutor::barrierAligned(uint64_t id) {
  hook("onBarrier", [&] { bolt_->onBarrier(id, collector_); });
}
void BoltExecutor::barrierCompleted(uint64_t id, std::vector<Tuple>&& inFlight) {
  hook("onBarrierComplete",
       [&] { bolt_->onBarrierComplete(id, std::move(inFlight), collector_); });
}
void BoltExecutor::inputsEnded() {
  hook("onEndOfStream", [&] { bolt_->onEndOfStream(collector_); });
}

void BoltExecutor::execute(Tuple& t) {
  bool sample = (executed_ & 15) == 0;
  bool timed = sample || slowExecute_;
  int64_t t0 = timed ? steadyNow() : 0;
  try {
    if (op_) {
      runOperator(*op_, t, *this);  // a throw: logged, counted and the input failed, as below
    } else {
      bolt_->execute(t, collector_);
    }
  } catch (const std::exception& e) {
    componentError("execute", e);
    failWhy_ = e.what();
    fail(t);
    failWhy_.clear();
  }
  ++executed_;
  if (!timed) return;
  int64_t t1 = steadyNow();
  if (sample) {
    executeLat_.record(t1 - t0);
    slowExecute_ = t1 - t0 > kSlowExecuteNanos;
  }
  if (slowExecute_ && t1 - lastFlush_ >= kMaxHoldNanos) flushAll();
}

void BoltExecutor::emitTuple(TaskId direct, std::string_view streamName,
                             const Tuple* const* anchors, size_t numAnchors, Values&& values) {
  OutStream& os = stream(streamName);
  checkValues(os, values);
  int64_t origin = 0;
  for (size_t a = 0; a < numAnchors; ++a)
    if (anchors[a] && anchors[a]->originNanos()) origin = anchors[a]->originNanos();
  bool anchored = sh_.config.acking && numAnchors > 0;
  const std::vector<TaskId>* routed = routeUnlessFused(os, direct, anchored, values, origin);
  if (!routed) return;
  const std::vector<TaskId>& targets = *routed;
  for (size_t i = 0; i < targets.size(); ++i) {
    Tuple t(os.schema, i + 1 == targets.size() ? std::move(values) : values);
    t.setOriginNanos(origin);
    if (anchored) {
      // Storm's XOR: a fresh edge id per (copy, anchor) goes into the copy under each root of
      // the anchor, and is XORed into the anchor's own value, which ack() sends to the acker.
      auto& out = t.mutableAnchors();
      for (size_t a = 0; a < numAnchors; ++a) {
        if (!anchors[a] || anchors[a]->anchors().empty()) continue;
        uint64_t edge = nextRandom();
        // The runtime owns every input tuple; a bolt sees it const only so that it cannot
        // change the values. Its anchor values are the runtime's bookkeeping.
        for (Anchor& in : const_cast<Tuple*>(anchors[a])->mutableAnchors()) {
          in.edge ^= edge;
          auto it = std::find_if(out.begin(), out.end(),
                                 [&](const Anchor& x) { return x.root == in.root; });
          if (it == out.end())
            out.push_back({in.root, edge});
          else
            it->edge ^= edge;
        }
      }
    }
    send(targets[i], os.id, std::move(t));
  }
}

// An unanchored tuple for a single fused task is lent in place (lendFused): no copy, nothing
// allocated or recycled. Anything else (anchored, several targets, a channel) takes the list
// itself, as emitTuple() would, and leaves the caller an empty recycled one: rebuilding it costs the
// caller no more than a copy here would, and with acking on the copy cost 180 instructions a word.
void BoltExecutor::emitBorrowedTuple(std::string_view streamName, const Tuple* anchor,
                                     Values& values) {
  if (!(sh_.config.acking && anchor)) {
    OutStream& os = stream(streamName);
    checkValues(os, values);
    if (os.fusedOnly && !os.fusedTupleBusy) {
      ++emitted_;
      return lendFused(os, *os.fusedOnly, values, anchor ? anchor->originNanos() : 0);
    }
  }
  Values taken = std::exchange(values, recycledValues());
  emitTuple(-1, streamName, &anchor, anchor ? 1 : 0, std::move(taken));
}

void BoltExecutor::ackAnchors(const Tuple& input) {
  for (const Anchor& a : input.anchors()) holdAck(a.root, a.edge);
}

// Consecutive acks of one root (e.g. the words of one sentence) travel as one Ack carrying
// the XOR of their values: the acker's result is the same, its traffic several times less.
// One ack per acker is held; it leaves when an ack of another root comes, or at the next
// flush (whenever the inbox runs dry), so it is never held long.
void BoltExecutor::holdAck(uint64_t root, uint64_t value) {
  size_t a = static_cast<size_t>(sh_.ackerOf(root) - sh_.firstAcker);
  if (heldAcks_.empty()) heldAcks_.resize(static_cast<size_t>(sh_.numAckers));
  HeldAck& h = heldAcks_[a];
  if (h.held && h.root == root) {
    h.value ^= value;
    return;
  }
  releaseAck(a);
  h = HeldAck{root, value, true};
}

void BoltExecutor::releaseAck(size_t a) {
  HeldAck& h = heldAcks_[a];
  if (!h.held) return;
  h.held = false;
  Control c;
  c.kind = ControlKind::Ack;
  c.root = h.root;
  c.value = h.value;
  sendControl(sh_.firstAcker + static_cast<TaskId>(a), std::move(c));
}

void BoltExecutor::fail(const Tuple& input) {
  ++failed_;
  if (!sh_.config.acking || input.anchors().empty()) return;
  // Who failed it and why travel with the Fail to the spout (for its dead-letter record).
  std::string reason =
      failReason(name(), failWhy_.empty() ? "failed by the bolt (OutputCollector::fail)"
                                          : std::string_view(failWhy_));
  for (const Anchor& a : input.anchors()) {
    Control c;
    c.kind = ControlKind::Fail;
    c.root = a.root;
    c.payload = reason;
    sendControl(sh_.ackerOf(a.root), std::move(c));
  }
}

void BoltExecutor::beforeLoop(int64_t) {
  tickEvery_ = nanos(sh_.config.tickInterval);
  nextTick_ = tickEvery_ > 0 ? sh_.clock->now().micros * 1000 + tickEvery_ : INT64_MAX;
}

void BoltExecutor::timers(int64_t) {
  if (gate_.ended()) return;
  int64_t wall = sh_.clock->now().micros * 1000;
  if (wall >= nextTick_) {
    nextTick_ = wall + tickEvery_;
    hook("onTick", [&] { bolt_->onTick(Timestamp{wall / 1000}, collector_); });
  }
}

Executor::KindMetrics BoltExecutor::kindMetrics() const {
  KindMetrics k;
  k.buffered = gate_.buffered();
  k.idleInputs = gate_.idleInputs();
  k.watermark = gate_.inputWatermark();
  k.watermarkIdle = gate_.outputIdle();
  return k;
}

}  // namespace gale
