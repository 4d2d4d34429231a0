#include "private/exactly_once.h"

#include <stdexcept>

#include "gale/core/two_phase_commit.h"
#include "gale/topology/adapters.h"
#include "private/checkpoint_coordinator.h"

namespace gale {

namespace {

// The last watermark a spout task sends once its input ended, ahead of the final barrier: every
// window fires and every operator ends its input BEFORE the final checkpoint, so that output is
// covered by it. One below kEndOfTime, which the runtime keeps for its EndOfStream control.
constexpr Timestamp kEndOfInput{kEndOfTime.micros - 1};

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
                  std::shared_ptr<const SourceSpout> proto)
      : coord_(std::move(coordinator)), proto_(std::move(proto)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<CheckpointSpout>(coord_, proto_);
  }

  void open(const TopologyContext& ctx, SpoutOutputCollector& out) override {
    component_ = ctx.component;
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
    uint64_t due = coord_->due();
    if (due > lastBarrier_) {
      // The barrier follows every record emitted so far, and the offsets say which those are.
      std::map<int, int64_t> at = inner_->positions();
      coord_->report(due, TaskReport{.source = component_, .offsets = at});
      out.emitBarrier(due);
      lastBarrier_ = due;
      uncommitted_[due] = std::move(at);
      coord_->point(CheckpointPoint::BarrierInjected, due);
      return true;
    }
    if (!forward_.ended) return inner_->nextTuple(forward_);
    if (!endSignalled_) {
      endSignalled_ = true;
      out.emitWatermark(kEndOfInput, false);
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
  std::unique_ptr<SourceSpout> inner_;
  ForwardingCollector forward_;
  std::string component_;
  uint64_t lastBarrier_ = 0;
  bool endSignalled_ = false;
  std::map<uint64_t, std::map<int, int64_t>> uncommitted_;
};

// What the checkpointing bolts share: the barrier (snapshot, pre-commit, report), the commit of
// a two-phase-commit sink once its checkpoint completed, and the wait for the final checkpoint.
class CheckpointTask {
 protected:
  explicit CheckpointTask(std::shared_ptr<CheckpointCoordinator> c) : coord_(std::move(c)) {}

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

  // Gives the task's snapshot in the last completed checkpoint (if any) to `restore`.
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

  void barrier(uint64_t id, TaskReport report) {
    if (sink_) {
      sink_->preCommit(id);
      if (auto s = sink_->preCommitState()) {
        if (stateKey_.empty() || !report.snapshotKey.empty()) {
          throw std::logic_error("a two-phase-commit sink with pre-commit state must be a Bolt "
                                 "and not a CheckpointedBolt (its task's snapshot holds that "
                                 "state)");
        }
        report.snapshotKey = stateKey_;
        report.snapshot = std::move(*s);
      }
      coord_->point(CheckpointPoint::SinkPreCommitted, id);
    }
    coord_->report(id, std::move(report));
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
    uint64_t last = coord_->finalCheckpoint();
    if (sink_ && last != 0 && lastBarrier_ >= last && coord_->awaitCompleted(last))
      commitCompleted();
  }

  // An operator that threw has lost the input it was given; skipping it would break
  // exactly-once. The topology stops; the next run resumes from the last checkpoint.
  [[noreturn]] static void stop(const std::string& key, const char* what,
                                const std::exception& e) {
    throw StopTopology("exactly-once task '" + key + "': " + what + " threw: " + e.what());
  }

  std::shared_ptr<CheckpointCoordinator> coord_;
  TwoPhaseCommitSink* sink_ = nullptr;
  std::string stateKey_;
  uint64_t committed_ = 0;
  uint64_t lastBarrier_ = 0;
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
                         std::shared_ptr<const Operator> proto)
      : CheckpointTask(std::move(c)), proto_(std::move(proto)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<CheckpointOperatorBolt>(coord_, proto_);
  }

  void prepare(const TopologyContext& ctx, OutputCollector&) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    op_ = proto_->clone();
    op_->open(OperatorContext{.component = ctx.component, .task = ctx.task,
                              .taskIndex = ctx.taskIndex, .parallelism = ctx.parallelism,
                              .clock = &coord_->clock()});
    restoreSnapshot(key_, [&](const std::string& s) { op_->restore(s); });
    attachSink(dynamic_cast<TwoPhaseCommitSink*>(op_.get()));
  }

  void execute(const Tuple& input, OutputCollector& out) override {
    OriginEmitter e(out, &input);
    call("onTuple", [&] {
      op_->onTuple(input, e);
      commitCompleted();
    });
  }

  void onWatermark(Timestamp wm, OutputCollector& out) override {
    // The end of input comes as kEndOfInput before the final barrier, then (from the runtime, at
    // end of stream) as kEndOfTime: the operator sees it once.
    if (inputEnded_) return;
    OriginEmitter e(out, nullptr);
    call("onWatermark", [&] {
      if (wm.micros < kEndOfInput.micros) return op_->onWatermark(wm, e);
      inputEnded_ = true;
      op_->onWatermark(kEndOfTime, e);
      op_->onEndOfInput(e);
    });
  }

  void onTick(Timestamp now, OutputCollector& out) override {
    OriginEmitter e(out, nullptr);
    call("onProcessingTime", [&] {
      op_->onProcessingTime(now, e);
      commitCompleted();
    });
  }

  void onBarrier(uint64_t id, OutputCollector&) override {
    call("checkpoint", [&] {
      TaskReport r;
      if (op_->stateful()) {
        r.snapshotKey = key_;
        r.snapshot = op_->snapshot();
      }
      barrier(id, std::move(r));
    });
  }

  void onEndOfStream(OutputCollector&) override {
    call("onEndOfStream", [&] { endOfStream(); });
  }

 private:
  template <class F>
  void call(const char* what, F&& f) {
    try {
      f();
    } catch (const StopTopology&) {
      throw;
    } catch (const std::exception& e) {
      stop(key_, what, e);
    }
  }

  std::shared_ptr<const Operator> proto_;
  OperatorPtr op_;
  std::string key_;
  bool inputEnded_ = false;
};

// A user's own Bolt: it runs as it is. A CheckpointedBolt's state is its task's snapshot. A bolt
// that is a TwoPhaseCommitSink takes part in the commit, and its pre-commit state (if any) is
// its task's snapshot.
class CheckpointBoltWrapper final : public Bolt, CheckpointTask {
 public:
  CheckpointBoltWrapper(std::shared_ptr<CheckpointCoordinator> c, std::shared_ptr<const Bolt> proto)
      : CheckpointTask(std::move(c)), proto_(std::move(proto)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<CheckpointBoltWrapper>(coord_, proto_);
  }
  void prepare(const TopologyContext& ctx, OutputCollector& out) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    bolt_ = proto_->clone();
    bolt_->prepare(ctx, out);
    state_ = dynamic_cast<CheckpointedBolt*>(bolt_.get());
    if (state_) restoreSnapshot(key_, [&](const std::string& s) { state_->restoreState(s); });
    attachSink(dynamic_cast<TwoPhaseCommitSink*>(bolt_.get()), state_ ? std::string{} : key_);
  }
  void execute(const Tuple& input, OutputCollector& out) override {
    try {
      bolt_->execute(input, out);
      commitCompleted();
    } catch (const std::exception& e) {
      stop(key_, "execute", e);
    }
  }
  void cleanup() override { bolt_->cleanup(); }
  void onWatermark(Timestamp wm, OutputCollector& out) override {
    if (inputEnded_) return;  // as for operators: the end of input once
    inputEnded_ = wm >= kEndOfInput;
    bolt_->onWatermark(inputEnded_ ? kEndOfTime : wm, out);
  }
  void onTick(Timestamp now, OutputCollector& out) override {
    bolt_->onTick(now, out);
    try {
      commitCompleted();  // a sink that cannot commit must not go on as if it had
    } catch (const std::exception& e) {
      stop(key_, "commit", e);
    }
  }
  void onBarrier(uint64_t id, OutputCollector&) override {
    try {
      TaskReport r;
      if (state_) {
        r.snapshotKey = key_;
        r.snapshot = state_->snapshotState(id);
      }
      barrier(id, std::move(r));
    } catch (const std::exception& e) {
      stop(key_, "checkpoint", e);
    }
  }
  void onEndOfStream(OutputCollector& out) override {
    try {
      endOfStream();
    } catch (const std::exception& e) {
      stop(key_, "commit", e);
    }
    bolt_->onEndOfStream(out);
  }

 private:
  std::shared_ptr<const Bolt> proto_;
  std::unique_ptr<Bolt> bolt_;
  CheckpointedBolt* state_ = nullptr;  // bolt_ itself, if it checkpoints its state
  std::string key_;
  bool inputEnded_ = false;
};

}  // namespace

RunningTopology runExactlyOnce(const Topology& topology, Continuous config) {
  if (config.checkpointDir.empty())
    throw std::invalid_argument("gale::Continuous: exactly-once needs a checkpointDir");
  if (config.checkpointInterval.count() <= 0)
    throw std::invalid_argument("gale::Continuous: checkpointInterval must be positive");
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
  auto coordinator = std::make_shared<CheckpointCoordinator>(
      CheckpointCoordinator::Options{
          .directory = config.checkpointDir,
          .jobId = "continuous-" + topologyFingerprint(topology),
          .interval = config.checkpointInterval,
          .clock = config.clock ? config.clock : &SystemClock::instance(),
          .sync = config.checkpointSync,
          .onPoint = config.onCheckpointPoint},
      topology.taskCount(), spoutTasks);
  Topology wrapped = wrapComponents(
      topology,
      {.spout = [&](const ComponentSpec& c) -> std::unique_ptr<Spout> {
         return std::make_unique<CheckpointSpout>(
             coordinator, std::make_shared<SourceSpout>(c.source, c.watermark));
       },
       .bolt = [&](const ComponentSpec& c) -> std::unique_ptr<Bolt> {
         if (c.op) return std::make_unique<CheckpointOperatorBolt>(coordinator, c.op);
         return std::make_unique<CheckpointBoltWrapper>(coordinator, c.bolt);
       }});
  config.guarantee = Guarantee::None;  // checkpoints replace the acker
  config.acking = false;
  return runContinuous(wrapped, std::move(config));
}

}  // namespace gale
