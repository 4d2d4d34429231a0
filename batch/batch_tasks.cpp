// The tasks of a micro-batch topology (batch_tasks.h).
#include "batch_tasks.h"

#include <algorithm>
#include <stdexcept>

#include "gale/core/incremental_state.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"

namespace gale {

namespace {

// An Operator's Emitter inside a batch bolt. Micro-batch mode does not ack (a lost batch is
// replayed whole under its txid), so outputs are unanchored.
class CollectorEmitter final : public Emitter {
 public:
  explicit CollectorEmitter(OutputCollector& out, const Tuple* input = nullptr,
                            uint64_t* emitted = nullptr)
      : out_(out), input_(input), emitted_(emitted) {}
  void emit(std::string_view stream, Values values) override {
    if (emitted_ && stream == kDefaultStream) ++*emitted_;
    // Anchored to the input being executed so the output keeps its originNanos (acking is off
    // in micro-batch mode, so the anchor carries nothing else): sinks measure latency from it.
    if (input_) out_.emit(stream, *input_, std::move(values));
    else out_.emit(stream, std::move(values));
  }

 private:
  OutputCollector& out_;
  const Tuple* input_;
  uint64_t* emitted_;  // rows on the default stream, for the batch's progress record
};

std::string taskKey(const std::string& component, int taskIndex) {
  return component + "#" + std::to_string(taskIndex);
}

// A key-grouped task's restore reads the blobs of the old tasks that held its groups.
void restoreKeyGroups(const KeyGroupedTask& task, const RecoveredState& recovered) {
  task.restore([&](const std::string& key) -> std::optional<std::string> {
    auto it = recovered.snapshots.find(key);
    if (it == recovered.snapshots.end()) return std::nullopt;
    return it->second;
  });
}

constexpr size_t kReadChunk = 1024;
constexpr size_t kOriginSamplesPerTask = 256;

class BatchSpout final : public Spout {
 public:
  BatchSpout(std::shared_ptr<BatchShared> shared, SourcePtr source, size_t sourceIndex,
             std::optional<WatermarkSpec> watermark)
      : shared_(std::move(shared)),
        source_(std::move(source)),
        sourceIndex_(sourceIndex),
        watermark_(std::move(watermark)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    source_->declareOutputFields(d);
  }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<BatchSpout>(shared_, source_, sourceIndex_, watermark_);
  }

  void open(const TopologyContext& ctx, SpoutOutputCollector&) override {
    taskIndex_ = ctx.taskIndex;
    task_ = ctx.task;
    parallelism_ = ctx.parallelism;
    component_ = ctx.component;
    lastTxid_ = shared_->recovered.lastTxid;
    // Streams of the source nobody subscribes to (e.g. "errors"): their records are dropped by
    // the runtime, which logs them; the batch counts them so the job's progress shows them.
    OutputFieldsDeclarer decl;
    source_->declareOutputFields(decl);
    for (const auto& [stream, fields] : decl.streams())
      if (ctx.topology && ctx.topology->subscribers(component_, stream).empty())
        unsubscribed_.insert(stream);
    if (watermark_) {
      OutputFieldsDeclarer d;
      source_->declareOutputFields(d);
      const Fields* f = d.find(kDefaultStream);
      eventField_ = f ? f->indexOf(watermark_->field) : -1;
      if (eventField_ < 0) {
        throw std::invalid_argument("micro-batch spout '" + component_ + "': the source has no "
                                    "event-time field '" + watermark_->field + "'");
      }
    }
  }

  bool nextTuple(SpoutOutputCollector& out) override {
    try {
      return step(out);
    } catch (...) {
      // E.g. a record that does not fit the declared fields: the job stops with this error, as
      // for an operator's (the runtime stops the topology underneath too).
      shared_->fail(std::current_exception());
      throw;
    }
  }

 private:
  bool step(SpoutOutputCollector& out) {
    if (!plan_) {
      plan_ = shared_->planAfter(lastTxid_);
      if (!plan_) return false;
      ranges_.clear();
      for (const auto& r : plan_->ranges[sourceIndex_]) {
        if (r.partition % parallelism_ == taskIndex_) ranges_.push_back(r);
      }
      rangeIdx_ = 0;
      pos_ = ranges_.empty() ? 0 : ranges_[0].from;
      records_ = 0;
      unrouted_ = 0;
      for (const auto& r : ranges_) records_ += r.to - r.from;
      maxEvent_ = INT64_MIN;
      partitionMax_.clear();
      minEvent_ = INT64_MAX;
      sumEvent_ = 0;
      countEvent_ = 0;
      reported_ = false;
      stride_ = std::max<int64_t>(1, records_ / static_cast<int64_t>(kOriginSamplesPerTask));
      samples_.clear();
      seen_ = 0;
      out.emitBatchBegin(plan_->txid);
      return true;
    }
    if (rangeIdx_ < ranges_.size()) {
      const PartitionRange& r = ranges_[rangeIdx_];
      int64_t to = std::min<int64_t>(r.to, pos_ + static_cast<int64_t>(kReadChunk));
      buf_.clear();
      source_->read(r.partition, pos_, to, buf_);
      for (auto& rec : buf_) {
        if (seen_++ % stride_ == 0 && rec.originNanos > 0) {
          samples_.push_back({rec.originNanos, static_cast<uint64_t>(stride_)});
        }
        const std::string& stream = rec.stream.empty() ? kDefault : rec.stream;
        if (!unsubscribed_.empty() && unsubscribed_.count(stream)) ++unrouted_;
        if (rec.stream.empty()) {
          if (eventField_ >= 0) noteEventTime(r.partition, rec.values);
          out.emitWithOrigin(kDefaultStream, std::move(rec.values), std::nullopt, rec.originNanos);
        } else {
          out.emitWithOrigin(rec.stream, std::move(rec.values), std::nullopt, rec.originNanos);
        }
      }
      // Fewer records than offsets: an opaque source lost some. The range still ends at `to`.
      pos_ = to;
      if (pos_ >= r.to && ++rangeIdx_ < ranges_.size()) pos_ = ranges_[rangeIdx_].from;
      return true;
    }
    uint64_t txid = plan_->txid;
    if (!reported_) {
      shared_->reportEventTime(txid, task_, sourceIndex_, partitionMax_, plan_->endOfInput);
      reported_ = true;
    }
    // Wait for the other spout tasks' part of the batch (they run on their own threads).
    auto b = shared_->takeWatermark(txid);
    if (!b) return false;
    if (b->watermark) out.emitWatermark(*b->watermark, /*idle=*/false);
    shared_->report(txid, [&](BatchResult& r) {
      r.watermark = b->watermark;
      if (!b->snapshot.empty()) r.snapshots[kSourceWatermarksKey] = b->snapshot;
      r.originSamples.insert(r.originSamples.end(), samples_.begin(), samples_.end());
      if (countEvent_ > 0) {
        r.eventTimeMin = std::min(r.eventTimeMin, minEvent_);
        r.eventTimeMax = std::max(r.eventTimeMax, maxEvent_);
        r.eventTimeSum += sumEvent_;
        r.eventTimeCount += countEvent_;
      }
      r.unrouted += unrouted_;
    });
    out.emitBatchEnd(txid);
    lastTxid_ = txid;
    plan_.reset();
    return true;
  }

 private:
  void noteEventTime(int partition, const Values& v) {
    if (static_cast<size_t>(eventField_) >= v.size()) return;
    const Value& x = v[eventField_];
    int64_t t;
    if (auto p = std::get_if<Timestamp>(&x)) {
      t = p->micros;
    } else if (auto q = std::get_if<int64_t>(&x)) {
      t = *q;
    } else {
      return;
    }
    maxEvent_ = std::max(maxEvent_, t);
    auto [it, fresh] = partitionMax_.try_emplace(partition, t);
    if (!fresh) it->second = std::max(it->second, t);
    minEvent_ = std::min(minEvent_, t);
    sumEvent_ += static_cast<double>(t);
    ++countEvent_;
  }

  std::shared_ptr<BatchShared> shared_;
  SourcePtr source_;
  size_t sourceIndex_;
  std::optional<WatermarkSpec> watermark_;
  std::string component_;
  int taskIndex_ = 0;
  TaskId task_ = 0;
  int parallelism_ = 1;
  int eventField_ = -1;
  int64_t maxEvent_ = INT64_MIN;  // in the batch being read
  SourceWatermarks::PartitionMax partitionMax_;  // the same per partition (the job's watermark)
  int64_t minEvent_ = INT64_MAX;
  double sumEvent_ = 0;
  uint64_t countEvent_ = 0;
  bool reported_ = false;         // maxEvent_ went to the job's watermark
  uint64_t lastTxid_ = 0;
  std::shared_ptr<const BatchPlan> plan_;
  std::vector<PartitionRange> ranges_;
  size_t rangeIdx_ = 0;
  int64_t pos_ = 0;
  int64_t records_ = 0;
  int64_t stride_ = 1;
  int64_t seen_ = 0;
  std::vector<BatchResult::OriginSample> samples_;
  std::vector<SourceRecord> buf_;
  inline static const std::string kDefault = kDefaultStream;
  std::set<std::string> unsubscribed_;
  uint64_t unrouted_ = 0;  // records of this batch on unsubscribed streams
};

// Runs an Operator per batch: tuples as they come, the batch-end watermark, processing time and
// onBatchEnd at the aligned end of the batch, then its snapshot goes to the commit.
class BatchOperatorBolt final : public Bolt {
 public:
  BatchOperatorBolt(std::shared_ptr<BatchShared> shared, std::shared_ptr<const Operator> proto)
      : shared_(std::move(shared)), proto_(std::move(proto)) {}

  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<BatchOperatorBolt>(shared_, proto_);
  }

  void prepare(const TopologyContext& ctx, OutputCollector&) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    taskIndex_ = ctx.taskIndex;
    component_ = ctx.component;
    op_ = proto_->clone();
    op_->open(ctx.operatorContext(shared_->clock));
    // An incremental operator's state is its snapshot (the head) plus its entries in the store.
    if (shared_->recovered.store || shared_->follower)
      incremental_ = dynamic_cast<IncrementalState*>(op_.get());
    keyGroups_ = keyGroupedTask(*ctx.topology, ctx.component, ctx.taskIndex, ctx.parallelism,
                                op_.get());
    auto it = shared_->recovered.snapshots.find(key_);
    if (it == shared_->recovered.snapshots.end() && !keyGroups_) {
      if (incremental_) incremental_->trackChanges();
    } else {
      try {
        if (keyGroups_) restoreKeyGroups(keyGroups_, shared_->recovered);
        else if (incremental_) incremental_->restoreIncremental(it->second, storedEntries());
        else op_->restore(it->second);
        droppedBefore_ = op_->droppedByWatermark();
      } catch (const std::exception& e) {
        throw std::runtime_error("micro-batch operator '" + key_ +
                                 "' cannot restore its snapshot from the checkpoint: " + e.what());
      }
    }
    if (shared_->recovered.watermark) {
      // The operator's snapshot holds the watermark it had applied. With Spark's timing the
      // committed one is still to be applied, in the next batch.
      if (shared_->timing == WatermarkTiming::NextBatch) carried_ = *shared_->recovered.watermark;
      else applied_ = *shared_->recovered.watermark;
    }
    exactReplay_ = dynamic_cast<ExactReplaySink*>(op_.get()) != nullptr;
    writer_ = dynamic_cast<BatchStateWriter*>(op_.get());
    if (writer_) {
      if (!shared_->recovered.store) {
        throw std::logic_error("micro-batch operator '" + key_ + "' needs the job's state store");
      }
      writer_->attachStore(*shared_->recovered.store);
    }
    OutputFieldsDeclarer d;
    proto_->declareOutputFields(d);
    sink_ = d.streams().empty();
  }

  void execute(const Tuple& input, OutputCollector& out) override {
    CollectorEmitter e(out, &input, &emitted_);
    try {
      applyCarried(out);
      op_->onTuple(input, e);
    } catch (...) {
      // A dropped tuple would break exactly-once: the job stops and nothing of the batch commits.
      shared_->fail(std::current_exception());
      throw;
    }
  }

  void onWatermark(Timestamp wm, OutputCollector&) override {
    // Micro-batch semantics: the watermark moves at the batch end only (see the header).
    pending_ = std::max(pending_.value_or(wm), wm);
  }

  void onBatchBegin(uint64_t txid, OutputCollector&) override { op_->onBatchBegin(txid); }

  void onBatchEnd(uint64_t txid, OutputCollector& out) override {
    CollectorEmitter e(out, nullptr, &emitted_);
    std::string snap;
    size_t entries = 0;
    std::map<std::string, KeyedStateUpdates> keyed;
    IncrementalState::Changes changes;
    try {
      applyCarried(out);
      const bool nextBatch = shared_->timing == WatermarkTiming::NextBatch;
      if (pending_ && (!applied_ || *pending_ > *applied_)) {
        if (*pending_ >= kBatchEndOfInput) {
          // The input ended (BatchPlan::endOfInput): as at the end of a bounded stream in
          // continuous mode, the watermark goes to the end of time, then onEndOfInput. (At once
          // in either timing: the job ends with this batch, and Spark has no end of input.)
          op_->onWatermark(kEndOfTime, e);
          op_->onEndOfInput(e);
          applied_ = pending_;
        } else if (nextBatch) {
          carried_ = pending_;  // Spark: in force from the next batch on (applyCarried)
        } else {
          op_->onWatermark(*pending_, e);
          applied_ = pending_;
        }
      }
      op_->onProcessingTime(shared_->clock->now(), e);
      if (exactReplay_) shared_->waitOffsetLogDurable(txid);  // before its external commit
      op_->onBatchEnd(txid, e);
      if (incremental_) {
        snap = incremental_->snapshotHead();
        changes = incremental_->takeChanges();
      } else if (op_->stateful()) {
        snap = keyGroups_ ? keyGroups_.snapshot() : op_->snapshot();
      }
      if (writer_) writer_->collectUpdates(txid, keyed);
      entries = op_->stateSize();
    } catch (...) {
      shared_->fail(std::current_exception());
      throw;
    }
    bool stateful = op_->stateful();
    BatchResult::OperatorStats stats;
    if (stateful) {
      const uint64_t dropped = op_->droppedByWatermark();
      stats = {entries, emitted_, dropped - std::min(dropped, droppedBefore_)};
      droppedBefore_ = dropped;
    }
    emitted_ = 0;
    shared_->report(txid, [&](BatchResult& r) {
      if (stateful) r.snapshots[key_] = std::move(snap);
      r.stateEntries += entries;
      if (stateful) {
        auto& o = r.operators[component_];
        o.stateRows += stats.stateRows;
        o.rowsEmitted += stats.rowsEmitted;
        o.droppedByWatermark += stats.droppedByWatermark;
      }
      if (!keyed.empty()) mergeKeyedUpdates(r.keyed, std::move(keyed));
      if (!changes.empty()) addChanges(r, std::move(changes));
      if (sink_ && taskIndex0()) r.sinks.push_back(component_);
    });
  }

  // Spark's watermark timing: the watermark of the previous batch reaches the operator before
  // this batch's first row (which it may make late), or at this batch's end if it has none.
  void applyCarried(OutputCollector& out) {
    if (!carried_ || (applied_ && *carried_ <= *applied_)) return;
    CollectorEmitter e(out, nullptr, &emitted_);
    op_->onWatermark(*carried_, e);
    applied_ = carried_;
  }

  // Where an incremental operator's entries live: one Plain keyed state per component, each
  // task's entries under its "<task index>#" prefix (so the store's key order keeps each task's
  // entries in their own order).
  std::string entriesState() const { return incrementalEntriesState(component_); }
  std::string entryPrefix() const { return std::to_string(taskIndex_) + "#"; }

  // From the job's store, or (a follower worker) from what START brought.
  std::vector<std::pair<std::string, std::string>> storedEntries() const {
    std::vector<std::pair<std::string, std::string>> entries;
    const std::string prefix = entryPrefix();
    auto add = [&](std::string_view k, std::string_view v) {
      if (k.substr(0, prefix.size()) == prefix)
        entries.emplace_back(std::string(k.substr(prefix.size())), std::string(v));
      return true;
    };
    if (shared_->recovered.store) {
      shared_->recovered.store->keyedState(entriesState(), StateKind::Plain).forEach(add);
    } else if (auto it = shared_->recovered.entries.find(entriesState());
               it != shared_->recovered.entries.end()) {
      for (const auto& [k, v] : it->second) add(k, v);
    }
    return entries;
  }

  // The entries changed in this batch, committed with it (a put or an erase, so a replayed
  // batch writes the same again); a follower's travel as data to the coordinator's worker.
  void addChanges(BatchResult& r, IncrementalState::Changes changes) {
    const std::string prefix = entryPrefix();
    if (shared_->follower) {
      auto& out = r.entryChanges[entriesState()];
      for (auto& [k, v] : changes) out[prefix + k] = std::move(v);
      return;
    }
    KeyedStateUpdates& u = r.keyed[entriesState()];
    u.kind = StateKind::Plain;
    for (auto& [k, v] : changes) {
      u.updates[prefix + k] = [v = std::move(v)](std::optional<std::string_view>) { return v; };
    }
  }

  // Graceful stop of a micro-batch job: everything was committed; windows are NOT flushed (the
  // next run continues them from the snapshot).
  void onEndOfStream(OutputCollector&) override {}
  // Processing time reaches operators at batch ends only.
  void onTick(Timestamp, OutputCollector&) override {}

 private:
  bool taskIndex0() const { return taskIndex_ == 0; }

  std::shared_ptr<BatchShared> shared_;
  std::shared_ptr<const Operator> proto_;
  OperatorPtr op_;
  KeyGroupedTask keyGroups_;  // op_ itself, if its component has key groups
  BatchStateWriter* writer_ = nullptr;
  IncrementalState* incremental_ = nullptr;
  std::string key_;
  std::string component_;
  int taskIndex_ = 0;
  bool sink_ = false;
  std::optional<Timestamp> pending_;
  std::optional<Timestamp> applied_;
  std::optional<Timestamp> carried_;  // NextBatch timing: computed by the last batch, not applied
  uint64_t emitted_ = 0;              // rows emitted in the batch being run
  uint64_t droppedBefore_ = 0;        // op_->droppedByWatermark() at the last batch end
  bool exactReplay_ = false;          // op_ is an ExactReplaySink
};

// A user's own Bolt in a micro-batch topology: it gets the batch hooks itself; the wrapper
// reports the batch's end, with the bolt's state if it is a CheckpointedBolt (committed with the
// batch, restored on recovery).
class BatchBoltWrapper final : public Bolt {
 public:
  BatchBoltWrapper(std::shared_ptr<BatchShared> shared, std::shared_ptr<const Bolt> proto)
      : shared_(std::move(shared)), proto_(std::move(proto)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    proto_->declareOutputFields(d);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<BatchBoltWrapper>(shared_, proto_);
  }
  void prepare(const TopologyContext& ctx, OutputCollector& out) override {
    key_ = taskKey(ctx.component, ctx.taskIndex);
    bolt_ = proto_->clone();
    bolt_->prepare(ctx, out);
    exactReplay_ = dynamic_cast<ExactReplaySink*>(bolt_.get()) != nullptr;
    state_ = dynamic_cast<CheckpointedBolt*>(bolt_.get());
    keyGroups_ = keyGroupedTask(*ctx.topology, ctx.component, ctx.taskIndex, ctx.parallelism,
                                state_);
    auto it = shared_->recovered.snapshots.find(key_);
    if (!state_ || (it == shared_->recovered.snapshots.end() && !keyGroups_)) return;
    try {
      if (keyGroups_) restoreKeyGroups(keyGroups_, shared_->recovered);
      else state_->restoreState(it->second);
    } catch (const std::exception& e) {
      throw std::runtime_error("micro-batch bolt '" + key_ +
                               "' cannot restore its state from the checkpoint: " + e.what());
    }
  }
  void execute(const Tuple& input, OutputCollector& out) override {
    try {
      bolt_->execute(input, out);
    } catch (...) {
      shared_->fail(std::current_exception());
      throw;
    }
  }
  void cleanup() override { bolt_->cleanup(); }
  void onWatermark(Timestamp wm, OutputCollector& out) override { bolt_->onWatermark(wm, out); }
  void onBatchBegin(uint64_t txid, OutputCollector& out) override {
    bolt_->onBatchBegin(txid, out);
  }
  void onBatchEnd(uint64_t txid, OutputCollector& out) override {
    std::string state;
    try {
      // An ExactReplaySink commits the batch externally here (a Kafka transaction), which a
      // replay cannot undo: the batch's offset log entry must be durable first.
      if (exactReplay_) shared_->waitOffsetLogDurable(txid);
      bolt_->onBatchEnd(txid, out);  // e.g. a sink's transaction commit
      if (state_) state = keyGroups_ ? keyGroups_.snapshot() : state_->snapshotState(txid);
    } catch (...) {
      // The batch did not complete: the job stops and nothing of it commits.
      shared_->fail(std::current_exception());
      throw;
    }
    shared_->report(txid, [&](BatchResult& r) {
      if (state_) r.snapshots[key_] = std::move(state);
    });
  }
  void onEndOfStream(OutputCollector& out) override { bolt_->onEndOfStream(out); }
  void onTick(Timestamp now, OutputCollector& out) override { bolt_->onTick(now, out); }

 private:
  std::shared_ptr<BatchShared> shared_;
  std::shared_ptr<const Bolt> proto_;
  std::unique_ptr<Bolt> bolt_;
  CheckpointedBolt* state_ = nullptr;  // bolt_ itself, if it checkpoints its state
  bool exactReplay_ = false;           // bolt_ is an ExactReplaySink
  KeyGroupedTask keyGroups_;           // state_ itself, if its component has key groups
  std::string key_;
};

}  // namespace

std::unique_ptr<Spout> makeBatchSpout(std::shared_ptr<BatchShared> shared, SourcePtr source,
                                      size_t sourceIndex, std::optional<WatermarkSpec> watermark) {
  return std::make_unique<BatchSpout>(std::move(shared), std::move(source), sourceIndex,
                                      std::move(watermark));
}

std::unique_ptr<Bolt> makeBatchOperatorBolt(std::shared_ptr<BatchShared> shared,
                                            std::shared_ptr<const Operator> proto) {
  return std::make_unique<BatchOperatorBolt>(std::move(shared), std::move(proto));
}

std::unique_ptr<Bolt> makeBatchBoltWrapper(std::shared_ptr<BatchShared> shared,
                                           std::shared_ptr<const Bolt> proto) {
  return std::make_unique<BatchBoltWrapper>(std::move(shared), std::move(proto));
}

}  // namespace gale
