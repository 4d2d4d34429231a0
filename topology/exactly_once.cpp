#include "private/exactly_once.h"

#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "gale/core/async_snapshot.h"
#include "gale/core/frame.h"
#include "gale/core/partition_order.h"
#include "gale/core/state_codec.h"
#include "gale/core/two_phase_commit.h"
#include "gale/state/state_store.h"
#include "gale/topology/adapters.h"
#include "gale/topology/rescale.h"
#include "private/checkpoint_coordinator.h"
#include "private/checkpoint_link.h"
#include "private/input_gate.h"

namespace gale {

namespace {

std::string taskKey(const std::string& component, int taskIndex) {
  return component + "#" + std::to_string(taskIndex);
}

// Forwards a SourceSpout's output, except its end of stream: the checkpointing spout ends the
// stream only after the final checkpoint's barrier.
class ForwardingCollector final : public SpoutOutputCollector {
 public:
  SpoutOutputCollector* out = nullptr;
  bool ended = false;
  void emitWatermark(Timestamp wm, bool idle) override { out->emitWatermark(wm, idle); }
  void emitBatchBegin(uint64_t txid) override { out->emitBatchBegin(txid); }
  void emitBatchEnd(uint64_t txid) override { out->emitBatchEnd(txid); }
  void emitBarrier(uint64_t id) override { out->emitBarrier(id); }
  void emitEndOfStream() override { ended = true; }

 protected:
  void emitTuple(TaskId, std::string_view stream, Values&& values, std::optional<MessageId> msgId,
                 int64_t originNanos) override {
    out->emitWithOrigin(stream, std::move(values), msgId, originNanos);
  }
};

class CheckpointSpout final : public Spout {
 public:
  CheckpointSpout(std::shared_ptr<CheckpointCoordinator> coordinator,
                  std::shared_ptr<const SourceSpout> proto,
                  std::shared_ptr<std::once_flag> ordered = std::make_shared<std::once_flag>())
      : coord_(std::move(coordinator)), proto_(std::move(proto)), ordered_(std::move(ordered)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<CheckpointSpout>(coord_, proto_, ordered_);
  }

  void open(const TopologyContext& ctx, SpoutOutputCollector& out) override {
    component_ = ctx.component;
    task_ = ctx.task;
    // Before any task opens the (shared) source: the offsets below are keyed by its numbering.
    std::call_once(*ordered_, [&] {
      std::vector<std::string> order = resumedPartitionOrder(ctx);
      if (!order.empty()) proto_->source()->resumePartitionOrder(order);
    });
    inner_.reset(static_cast<SourceSpout*>(proto_->clone().release()));
    inner_->resumeFromCheckpoint(coord_->offsets(component_));
    forward_.out = &out;
    inner_->open(ctx, forward_);
    lastBarrier_ = coord_->lastCompleted();
  }

  bool nextTuple(SpoutOutputCollector& out) override {
    try {
      return step(out);
    } catch (const std::exception& e) {
      // E.g. the checkpoint store failed: going on would checkpoint nothing more.
      throw StopTopology("exactly-once spout '" + component_ + "': " + e.what());
    }
  }

  // Idle, the task blocks on its source's fd as an at-least-once one does (no back-off polling).
  // A checkpoint coming due is seen after at most Continuous::spoutWakeTimeout (1 ms), when
  // the task looks again at its timers.
  int wakeFd() const override { return inner_ ? inner_->wakeFd() : -1; }

  // A spout task that did not send the final barrier (the topology was stopped or killed first)
  // releases the sinks waiting for the final checkpoint: it will not complete.
  void close() override {
    uint64_t last = coord_->finalCheckpoint();
    if (last == 0 || lastBarrier_ < last) coord_->close();
    if (inner_) inner_->close();
  }

 private:
  bool step(SpoutOutputCollector& out) {
    commitCompletedOffsets();
    if (uint64_t due = coord_->due(); due > lastBarrier_) {
      // Every id in turn: a checkpoint aborted (timeout) before this task injected its barrier
      // still has it, so every input of a bolt brings the same ids in the same order.
      due = lastBarrier_ + 1;
      // The barrier follows every record emitted so far, and the offsets say which those are.
      std::map<int, int64_t> at = inner_->positions();
      // Read after the positions: partitions are only ever numbered on, so this names them all.
      coord_->report(due, TaskReport{.task = task_, .source = component_, .offsets = at,
                                     .partitionIds = inner_->source()->partitionIds()});
      out.emitBarrier(due);
      lastBarrier_ = due;
      uncommitted_[due] = std::move(at);
      coord_->point(CheckpointPoint::BarrierInjected, due);
      return true;
    }
    if (!forward_.ended) return inner_->nextTuple(forward_);
    if (!endSignalled_) {
      endSignalled_ = true;
      out.emitWatermark(kEndOfInputWatermark, false);
      coord_->inputEnded();
      return true;
    }
    uint64_t last = coord_->finalCheckpoint();
    if (last != 0 && lastBarrier_ >= last) {
      out.emitEndOfStream();
      return true;
    }
    return false;  // waiting for the final checkpoint to be triggered
  }

  // The numbering the checkpoint's offsets are keyed by, for a source that names its partitions
  // (Kafka's: each worker process numbers the partitions it discovers while running in its own
  // order): the coordinator keys them by the names' order, stored as "<component>/partitions".
  // A checkpoint of an older version stored each task's own numbering ("#i/partitions"), all
  // of one process: the longest covers the others.
  std::vector<std::string> resumedPartitionOrder(const TopologyContext& ctx) const {
    if (auto order = coord_->snapshot(component_ + "/partitions"))
      return decodePartitionOrder(*order);
    std::vector<std::string> longest;
    for (int i = 0; i < ctx.parallelism; ++i) {
      std::vector<std::string> ids = decodePartitionOrder(
          coord_->snapshot(taskKey(component_, i) + "/partitions").value_or(""));
      if (ids.size() > longest.size()) longest = std::move(ids);
    }
    return longest;
  }

  // The source may forget what a completed checkpoint covers (Source::commit).
  void commitCompletedOffsets() {
    uint64_t done = coord_->lastCompleted();
    while (!uncommitted_.empty() && uncommitted_.begin()->first <= done) {
      for (auto [p, off] : uncommitted_.begin()->second) inner_->source()->commit(p, off);
      uncommitted_.erase(uncommitted_.begin());
    }
  }

  std::shared_ptr<CheckpointCoordinator> coord_;
  std::shared_ptr<const SourceSpout> proto_;
  std::shared_ptr<std::once_flag> ordered_;  // shared by the tasks: the order is handed over once
  std::unique_ptr<SourceSpout> inner_;
  ForwardingCollector forward_;
  std::string component_;
  int task_ = -1;
  uint64_t lastBarrier_ = 0;
  bool endSignalled_ = false;
  std::map<uint64_t, std::map<int, int64_t>> uncommitted_;
};

// An unaligned checkpoint's in-flight tuples as bytes: the checkpoint's id, then each tuple with
// its stream (by component and name: the wire's stream ids are of one run), origin and values.
// Written only when there are some, so the id says whether they belong to the checkpoint a run
// resumes from (an older checkpoint's entry stays in the store, and is not replayed).
std::string encodeInFlight(uint64_t checkpointId, const std::vector<Tuple>& tuples) {
  StateWriter w;
  w.header("INFL", 2);
  w.varint(checkpointId);
  w.varint(tuples.size());
  for (const Tuple& t : tuples) {
    w.str(t.schema()->component);
    w.str(t.schema()->stream);
    w.svarint(t.originNanos());
    w.values(t.values());
  }
  return w.take();
}

// The in-flight tuples to replay when resuming from checkpoint `resumed`. Version 1 (no id) was
// written, empty or not, in every checkpoint: it is always the resumed checkpoint's.
std::vector<Tuple> decodeInFlight(std::string_view bytes, uint64_t resumed,
                                  const SchemaRegistry& registry) {
  std::vector<Tuple> out;
  if (bytes.empty()) return out;
  StateReader r(bytes, "in-flight tuples");
  if (r.header("INFL", 1, 2) == 2 && r.varint("checkpoint id") != resumed) return out;
  for (uint64_t n = r.count("tuples", 3); n > 0; --n) {
    std::string component = r.str("component"), stream = r.str("stream");
    int64_t origin = r.svarint("origin");
    Values values = r.values("values");
    int id = registry.idOf(component, stream);
    if (id < 0) r.fail("stream '" + stream + "' of '" + component + "' is not in the topology");
    out.emplace_back(*registry.find(static_cast<StreamId>(id)), std::move(values));
    out.back().setOriginNanos(origin);
  }
  r.expectEnd();
  return out;
}

// What the checkpointing bolts share: the barrier (snapshot, pre-commit, report), an unaligned
// checkpoint's in-flight tuples (stored with the report, replayed on recovery), the commit of a
// two-phase-commit sink once its checkpoint completed, and the wait for the final checkpoint.
class CheckpointTask {
 protected:
  CheckpointTask(std::shared_ptr<CheckpointCoordinator> c, bool unaligned)
      : coord_(std::move(c)), unaligned_(unaligned) {}

  // The wrapped component's input, for the in-flight tuples replayed on recovery.
  virtual void executeReplayed(const Tuple& t, OutputCollector& out) = 0;

  // prepare(), after the task restored its state: the in-flight tuples of the last completed
  // checkpoint, replayed before anything else the task is given (replayInFlight).
  void loadInFlight(const TopologyContext& ctx) {
    restoreSnapshot(inFlightKey(), [&](const std::string& s) {
      replay_ = decodeInFlight(s, coord_->lastCompleted(), *ctx.topology->registry());
    });
  }
  // First thing in every hook: on prepare() the other tasks may not be running yet.
  void replayInFlight(OutputCollector& out) {
    if (replay_.empty()) return;
    std::vector<Tuple> replay = std::move(replay_);
    replay_.clear();
    for (const Tuple& t : replay) executeReplayed(t, out);
  }

  // `stateKey`: the task's snapshot key when the snapshot is free for a write-ahead sink's
  // pre-commit state (a user's bolt; an operator's snapshot is the operator's).
  void attachSink(TwoPhaseCommitSink* sink, const std::string& stateKey = {}) {
    sink_ = sink;
    stateKey_ = stateKey;
    committed_ = coord_->lastCompleted();
    if (!sink_) return;
    if (!stateKey_.empty()) {
      if (auto s = coord_->snapshot(stateKey_)) sink_->restorePreCommitState(*s);
    }
    sink_->recover(committed_);
  }

  // A key-grouped task restores the groups of its range from the blobs of whichever old tasks
  // held them. Another parallelism than the checkpoint's cannot take an unaligned checkpoint's
  // in-flight tuples: they were routed to the old tasks.
  void restoreKeyGroups(const TopologyContext& ctx, const KeyGroupedTask& task) {
    auto first = coord_->snapshot(taskKey(task.component, 0));
    if (!first) return;
    try {
      SnapshotLookup snapshot = [&](const std::string& k) { return coord_->snapshot(k); };
      task.restore(snapshot);
      std::string why = inFlightRescaleRefusal(snapshot, task.component,
                                               keyGroupSnapshotParallelism(*first),
                                               ctx.parallelism, coord_->lastCompleted(),
                                               *ctx.topology->registry());
      if (!why.empty()) throw std::runtime_error(why);
    } catch (const std::exception& e) {
      throw std::runtime_error("exactly-once task '" + key_ +
                               "' cannot restore its key groups from the checkpoint: " + e.what());
    }
  }

  // Gives the task's snapshot `key` in the last completed checkpoint (if any) to `restore`.
  template <class F>
  void restoreSnapshot(const std::string& key, F&& restore) {
    auto snap = coord_->snapshot(key);
    if (!snap) return;
    try {
      restore(*snap);
    } catch (const std::exception& e) {
      throw std::runtime_error("exactly-once task '" + key +
                               "' cannot restore its snapshot from the checkpoint: " + e.what());
    }
  }

  // At the barrier (the first input's, when unaligned): the snapshot and a sink's pre-commit.
  // Aligned, the report goes at once; unaligned, with the in-flight tuples (barrierComplete).
  void barrier(uint64_t id, TaskReport report) {
    if (sink_) {
      sink_->preCommit(id);
      if (auto s = sink_->preCommitState()) {
        if (stateKey_.empty() || report.snapshots.count(stateKey_)) {
          throw std::logic_error("a two-phase-commit sink with pre-commit state must be a Bolt "
                                 "and not a CheckpointedBolt (its task's snapshot holds that "
                                 "state)");
        }
        report.snapshots[stateKey_] = std::move(*s);
      }
      coord_->point(CheckpointPoint::SinkPreCommitted, id);
    }
    pending_ = std::move(report);
    if (!unaligned_) barrierComplete(id, {});
  }

  // The in-flight key is written only when tuples were in flight (never when aligned); it names
  // its checkpoint, so a recovery never replays an older checkpoint's.
  void barrierComplete(uint64_t id, std::vector<Tuple>&& inFlight) {
    if (!inFlight.empty()) pending_.snapshots[inFlightKey()] = encodeInFlight(id, inFlight);
    pending_.task = task_;
    coord_->report(id, std::move(pending_));
    pending_ = TaskReport{};
    coord_->point(CheckpointPoint::SnapshotTaken, id);
    lastBarrier_ = id;
    commitCompleted();
  }

  void commitCompleted() {
    if (!sink_) return;
    uint64_t done = coord_->lastCompleted();
    if (done <= committed_) return;
    sink_->commit(done);
    committed_ = done;
    coord_->point(CheckpointPoint::SinkCommitted, done);
  }

  // The stream ended. After the final checkpoint (every input ended), a sink waits for it to
  // complete and commits it, so the job ends with all of its output visible. After stop(), what
  // came after the last checkpoint stays uncommitted: the next run replays it.
  void endOfStream() {
    uint64_t last = coord_->finalCheckpointAfter(lastBarrier_);
    if (sink_ && last != 0 && lastBarrier_ >= last && coord_->awaitCompleted(last))
      commitCompleted();
  }

  // An operator that threw has lost the input it was given; skipping it would break
  // exactly-once. The topology stops; the next run resumes from the last checkpoint.
  [[noreturn]] static void stop(const std::string& key, const char* what,
                                const std::exception& e) {
    throw StopTopology("exactly-once task '" + key + "': " + what + " threw: " + e.what());
  }

  std::string inFlightKey() const { return key_ + "/in-flight"; }

  std::shared_ptr<CheckpointCoordinator> coord_;
  bool unaligned_;
  std::string key_;  // "component#taskIndex", set by prepare()
  int task_ = -1;    // its global id, set by prepare()
  TwoPhaseCommitSink* sink_ = nullptr;
  std::string stateKey_;
  uint64_t committed_ = 0;
  uint64_t lastBarrier_ = 0;
  TaskReport pending_;         // the barrier's report, until the checkpoint's input is complete
  std::vector<Tuple> replay_;  // in-flight tuples to replay
};

// An operator's Emitter: outputs anchored to the input so they keep its originNanos (there is
// no acker; sinks measure latency from it).
class OriginEmitter final : public Emitter {
 public:
  OriginEmitter(OutputCollector& out, const Tuple* input) : out_(out), input_(input) {}
  void emit(std::string_view stream, Values values) override {
    if (input_) out_.emit(stream, *input_, std::move(values));
    else out_.emit(stream, std::move(values));
  }

 private:
  OutputCollector& out_;
  const Tuple* input_;
};

class CheckpointOperatorBolt final : public Bolt, CheckpointTask {
 public:
  CheckpointOperatorBolt(std::shared_ptr<CheckpointCoordinator> c,
                         std::shared_ptr<const Operator> proto, bool unaligned)
      : CheckpointTask(std::move(c), unaligned), proto_(std::move(proto)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<CheckpointOperatorBolt>(coord_, proto_, unaligned_);
  }

  void prepare(const TopologyContext& ctx, OutputCollector&) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    task_ = ctx.task;
    op_ = proto_->clone();
    op_->open(ctx.operatorContext(&coord_->clock()));
    keyGroups_ = keyGroupedTask(*ctx.topology, ctx.component, ctx.taskIndex, ctx.parallelism,
                                op_.get());
    if (keyGroups_) restoreKeyGroups(ctx, keyGroups_);
    else restoreSnapshot(key_, [&](const std::string& s) { op_->restore(s); });
    // A key-grouped snapshot is split on the task's thread (not asynchronously).
    async_ = op_->stateful() && !keyGroups_ ? dynamic_cast<AsyncSnapshot*>(op_.get()) : nullptr;
    attachSink(dynamic_cast<TwoPhaseCommitSink*>(op_.get()));
    loadInFlight(ctx);
  }

  void execute(const Tuple& input, OutputCollector& out) override {
    call("onTuple", out, [&] {
      OriginEmitter e(out, &input);
      op_->onTuple(input, e);
      commitCompleted();
    });
  }

  void onWatermark(Timestamp wm, OutputCollector& out) override {
    // The end of input comes as kEndOfInputWatermark before the final barrier, then (from the runtime, at
    // end of stream) as kEndOfTime: the operator sees it once.
    if (inputEnded_) return;
    call("onWatermark", out, [&] {
      OriginEmitter e(out, nullptr);
      if (wm.micros < kEndOfInputWatermark.micros) return op_->onWatermark(wm, e);
      inputEnded_ = true;
      op_->onWatermark(kEndOfTime, e);
      op_->onEndOfInput(e);
    });
  }

  void onTick(Timestamp now, OutputCollector& out) override {
    call("onProcessingTime", out, [&] {
      OriginEmitter e(out, nullptr);
      op_->onProcessingTime(now, e);
      commitCompleted();
    });
  }

  void onBarrier(uint64_t id, OutputCollector& out) override {
    call("checkpoint", out, [&] {
      TaskReport r;
      // An asynchronous snapshot only freezes the state here; the coordinator's thread writes it.
      if (async_) r.deferred[key_] = async_->snapshotAsync(id);
      else if (keyGroups_) r.snapshots[key_] = keyGroups_.snapshot();
      else if (op_->stateful()) r.snapshots[key_] = op_->snapshot();
      barrier(id, std::move(r));
    });
  }

  void onBarrierComplete(uint64_t id, std::vector<Tuple>&& inFlight,
                         OutputCollector& out) override {
    call("checkpoint", out, [&] { barrierComplete(id, std::move(inFlight)); });
  }

  void onEndOfStream(OutputCollector& out) override {
    call("onEndOfStream", out, [&] { endOfStream(); });
  }

 private:
  void executeReplayed(const Tuple& t, OutputCollector& out) override {
    OriginEmitter e(out, &t);
    op_->onTuple(t, e);
  }

  template <class F>
  void call(const char* what, OutputCollector& out, F&& f) {
    try {
      replayInFlight(out);
      f();
    } catch (const StopTopology&) {
      throw;
    } catch (const std::exception& e) {
      stop(key_, what, e);
    }
  }

  std::shared_ptr<const Operator> proto_;
  OperatorPtr op_;
  AsyncSnapshot* async_ = nullptr;  // op_ itself, if it snapshots asynchronously
  KeyGroupedTask keyGroups_;        // op_ itself, if its component has key groups
  bool inputEnded_ = false;
};

// A user's own Bolt: it runs as it is. A CheckpointedBolt's state is its task's snapshot. A bolt
// that is a TwoPhaseCommitSink takes part in the commit, and its pre-commit state (if any) is
// its task's snapshot.
class CheckpointBoltWrapper final : public Bolt, CheckpointTask {
 public:
  CheckpointBoltWrapper(std::shared_ptr<CheckpointCoordinator> c, std::shared_ptr<const Bolt> proto,
                        bool unaligned)
      : CheckpointTask(std::move(c), unaligned), proto_(std::move(proto)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<CheckpointBoltWrapper>(coord_, proto_, unaligned_);
  }
  void prepare(const TopologyContext& ctx, OutputCollector& out) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    task_ = ctx.task;
    bolt_ = proto_->clone();
    bolt_->prepare(ctx, out);
    state_ = dynamic_cast<CheckpointedBolt*>(bolt_.get());
    keyGroups_ = keyGroupedTask(*ctx.topology, ctx.component, ctx.taskIndex, ctx.parallelism,
                                state_);
    async_ = state_ && !keyGroups_ ? dynamic_cast<AsyncSnapshot*>(bolt_.get()) : nullptr;
    if (keyGroups_) restoreKeyGroups(ctx, keyGroups_);
    else if (state_) restoreSnapshot(key_, [&](const std::string& s) { state_->restoreState(s); });
    attachSink(dynamic_cast<TwoPhaseCommitSink*>(bolt_.get()), state_ ? std::string{} : key_);
    loadInFlight(ctx);
  }
  void execute(const Tuple& input, OutputCollector& out) override {
    call("execute", out, [&] {
      bolt_->execute(input, out);
      commitCompleted();
    });
  }
  void cleanup() override { bolt_->cleanup(); }
  void onWatermark(Timestamp wm, OutputCollector& out) override {
    if (inputEnded_) return;  // as for operators: the end of input once
    replayFirst(out);
    inputEnded_ = wm >= kEndOfInputWatermark;
    bolt_->onWatermark(inputEnded_ ? kEndOfTime : wm, out);
  }
  void onTick(Timestamp now, OutputCollector& out) override {
    replayFirst(out);
    bolt_->onTick(now, out);
    call("commit", out, [&] { commitCompleted(); });  // a sink that cannot commit must stop
  }
  void onBarrier(uint64_t id, OutputCollector& out) override {
    call("checkpoint", out, [&] {
      TaskReport r;
      if (async_) r.deferred[key_] = async_->snapshotAsync(id);
      else if (keyGroups_) r.snapshots[key_] = keyGroups_.snapshot();
      else if (state_) r.snapshots[key_] = state_->snapshotState(id);
      barrier(id, std::move(r));
    });
  }
  void onBarrierComplete(uint64_t id, std::vector<Tuple>&& inFlight,
                         OutputCollector& out) override {
    call("checkpoint", out, [&] { barrierComplete(id, std::move(inFlight)); });
  }
  void onEndOfStream(OutputCollector& out) override {
    call("commit", out, [&] { endOfStream(); });
    bolt_->onEndOfStream(out);
  }

 private:
  void executeReplayed(const Tuple& t, OutputCollector& out) override { bolt_->execute(t, out); }

  // The in-flight tuples to replay first; an exception from them, or from `f`, stops the
  // topology (the input it was given would be lost).
  template <class F>
  void call(const char* what, OutputCollector& out, F&& f) {
    try {
      replayInFlight(out);
      f();
    } catch (const std::exception& e) {
      stop(key_, what, e);
    }
  }
  // Tuples an unaligned checkpoint stored go to the bolt before the watermark or tick does.
  void replayFirst(OutputCollector& out) { call("execute", out, [] {}); }

  std::shared_ptr<const Bolt> proto_;
  std::unique_ptr<Bolt> bolt_;
  CheckpointedBolt* state_ = nullptr;  // bolt_ itself, if it checkpoints its state
  KeyGroupedTask keyGroups_;           // state_ itself, if its component has key groups
  AsyncSnapshot* async_ = nullptr;     // bolt_ itself, if that state snapshots asynchronously
  bool inputEnded_ = false;
};

}  // namespace

std::string inFlightRescaleRefusal(const SnapshotLookup& snapshot, const std::string& component,
                                   int oldParallelism, int parallelism, uint64_t resumed,
                                   const SchemaRegistry& registry) {
  for (int i = 0; i < oldParallelism && oldParallelism != parallelism; ++i) {
    auto s = snapshot(taskKey(component, i) + "/in-flight");
    if (s && !decodeInFlight(*s, resumed, registry).empty())
      return "the checkpoint is unaligned with tuples in flight to task " + std::to_string(i) +
             " of " + std::to_string(oldParallelism) + ": it resumes only at that parallelism";
  }
  return {};
}

std::string rescaleRefusal(const Topology& topology, const std::string& checkpointDir) {
  std::error_code ec;
  if (checkpointDir.empty() || !std::filesystem::exists(checkpointDir, ec)) return {};
  std::unique_ptr<StateStore> store;
  try {
    store = StateStore::inspect(checkpointDir);
  } catch (const std::exception&) {
    return {};  // nothing readable here: the restore says what is wrong
  }
  SnapshotLookup snapshot = [&](const std::string& k) { return store->snapshot(k); };
  for (const ComponentSpec& c : topology.components()) {
    if (c.maxParallelism == 0) continue;
    // Everything that reads the checkpoint is inside the try: a damaged entry or a failing read
    // is a refusal naming the component (the restore would fail on it the same way), never an
    // exception out of the program's description.
    int old = 0;
    try {
      std::optional<std::string> first = snapshot(taskKey(c.name, 0));
      try {
        old = first ? keyGroupSnapshotParallelism(*first) : 0;
      } catch (const std::exception& e) {
        throw SnapshotError("its entry '" + taskKey(c.name, 0) + "': " + e.what());
      }
      if (old == 0 || old == c.parallelism) continue;
      // A dry run of the restore itself, task by task, into fresh instances: the check and the
      // restore are one implementation, so no refusal of the restore is missed here.
      for (int t = 0; t < c.parallelism; ++t) {
        std::unique_ptr<Operator> op = c.op ? c.op->clone() : nullptr;
        std::unique_ptr<Bolt> bolt = !op && c.bolt ? c.bolt->clone() : nullptr;
        auto* state = op ? dynamic_cast<KeyGroupedState*>(op.get())
                         : dynamic_cast<KeyGroupedState*>(bolt.get());
        if (!state) break;  // not key-grouped state: its restore reads no key groups
        restoreKeyGroupSnapshot(snapshot, c.name, t, c.parallelism, c.maxParallelism, *state);
      }
      std::string why = inFlightRescaleRefusal(snapshot, c.name, old, c.parallelism,
                                               store->lastCommittedTxid(), *topology.registry());
      if (!why.empty())
        return "'" + c.name + "' cannot resume its checkpoint of " + std::to_string(old) +
               " tasks in " + std::to_string(c.parallelism) + ": " + why;
    } catch (const std::exception& e) {
      if (old == 0)
        return "'" + c.name + "' cannot resume its checkpoint in " + checkpointDir + ": " +
               e.what();
      return "'" + c.name + "' cannot resume its checkpoint of " + std::to_string(old) +
             " tasks in " + std::to_string(c.parallelism) + ": " + e.what();
    }
  }
  return {};
}

RunningTopology runExactlyOnce(const Topology& topology, Continuous config,
                               const WorkerAssignment* assignment) {
  if (config.checkpointDir.empty())
    throw std::invalid_argument("gale::Continuous: exactly-once needs a checkpointDir");
  if (config.checkpointInterval.count() <= 0 || config.checkpointTimeout.count() <= 0)
    throw std::invalid_argument(
        "gale::Continuous: checkpointInterval and checkpointTimeout must be positive");
  int spoutTasks = 0;
  for (const ComponentSpec& c : topology.components()) {
    if (!c.isSpout()) continue;
    spoutTasks += c.parallelism;
    if (!c.source) {
      throw std::invalid_argument(
          "exactly-once needs replayable sources, but spout '" + c.name +
          "' is a custom Spout; declare it with setSpout(name, SourcePtr)");
    }
  }
  CheckpointCoordinator::Options options{
      .directory = config.checkpointDir,
      .jobId = "continuous-" + topologyFingerprint(topology),
      .interval = config.checkpointInterval,
      .clock = config.clock ? config.clock : &SystemClock::instance(),
      .sync = config.checkpointSync,
      .onPoint = config.onCheckpointPoint,
      .timeout = config.checkpointTimeout};
  std::shared_ptr<CheckpointCoordinator> coordinator;
  std::shared_ptr<CheckpointLink> link;
  if (!assignment || assignment->self == CheckpointLink::coordinatorWorker(topology, *assignment)) {
    coordinator = std::make_shared<CheckpointCoordinator>(options, topology.taskCount(), spoutTasks);
    if (assignment) {
      link = std::make_shared<CheckpointLink>(topology, *assignment, config.curve, coordinator);
      link->waitStarted();
    }
  } else {
    link = std::make_shared<CheckpointLink>(topology, *assignment, config.curve);
    coordinator = std::make_shared<CheckpointCoordinator>(options, link->waitStarted());
    link->follow(coordinator);
  }
  Topology wrapped = wrapComponents(
      topology,
      {.spout = [&](const ComponentSpec& c) -> std::unique_ptr<Spout> {
         return std::make_unique<CheckpointSpout>(
             coordinator, std::make_shared<SourceSpout>(c.source, c.watermark));
       },
       .bolt = [&](const ComponentSpec& c) -> std::unique_ptr<Bolt> {
         bool unaligned = config.unalignedCheckpoints;
         if (c.op) return std::make_unique<CheckpointOperatorBolt>(coordinator, c.op, unaligned);
         return std::make_unique<CheckpointBoltWrapper>(coordinator, c.bolt, unaligned);
       }});
  config.guarantee = Guarantee::None;  // checkpoints replace the acker
  config.acking = false;
  // The link goes (only) to the running topology: on launch's error path it is destroyed, its
  // thread joined, before the state its abort handler points to.
  return launchCheckpointed(wrapped, std::move(config), assignment, std::move(coordinator),
                            std::move(link));
}

}  // namespace gale
