// The coordinator of one micro-batch job: one thread that asks the trigger when to cut, cuts
// batches, hands them to the pipeline, and commits finished ones strictly in txid order.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "gale/batch/microbatch.h"
#include "job_registry.h"
#include "offset_log.h"
#include "offset_log_file.h"
#include "topology_pipeline.h"
#include "gale/core/log.h"
#include "gale/core/partition_order.h"
#include "gale/core/thread_name.h"

namespace gale {

namespace {

// kPartitionOrderState (topology_pipeline.h): the partition order of each source that names its
// partitions (Source::partitionIds): key = source name, value = the ids, one a line, in the
// numbering the offsets are keyed by. Written in a batch's commit when it changed; handed back to
// the source on restart, so offsets stay keyed by (topic, partition) although partitions were
// added among the known ones.

// The UI's view of the checkpoint: a read that fails (LMDB trouble) is logged, not thrown.
std::optional<CheckpointSummary> readCheckpoint(const StateStore& store, size_t commits) {
  try {
    return summarizeCheckpoint(store, commits);
  } catch (const std::exception& e) {
    logWarn("checkpoint " + store.directory() + ": cannot read its summary: " + e.what());
    return std::nullopt;
  }
}

}  // namespace

class BatchJob {
 public:
  BatchJob(std::vector<NamedSource> sources, std::unique_ptr<BatchPipeline> pipeline,
           std::string jobId, MicroBatch config)
      : config_(std::move(config)),
        planner_(std::move(sources), config_.maxRecordsPerBatch),
        schedule_(config_.trigger),
        pipeline_(std::move(pipeline)) {
    name_ = config_.name.empty() ? config_.checkpoint : config_.name;
    progress_.name = name_;
    if (config_.trigger.kind == BatchTrigger::Kind::Continuous) {
      throw std::invalid_argument("micro-batch job '" + name_ +
                                  "': the continuous trigger runs the topology in continuous mode; "
                                  "use runMicroBatch(topology, ...) or runContinuous");
    }
    if (config_.checkpoint.empty()) {
      throw std::invalid_argument("micro-batch job '" + name_ +
                                  "': MicroBatch::checkpoint is empty; give the job a checkpoint "
                                  "directory for its state, offsets and commit log");
    }
    if (config_.maxBatchesInFlight < 1) {
      throw std::invalid_argument("micro-batch job '" + name_ +
                                  "': maxBatchesInFlight must be at least 1");
    }
    if (config_.maxRecordsPerBatch < 0) {
      throw std::invalid_argument("micro-batch job '" + name_ +
                                  "': maxRecordsPerBatch must be >= 0 (0 = no limit)");
    }
    StateStoreOptions so;
    so.jobId = std::move(jobId);
    so.initialMapSize = config_.initialMapSize;
    so.maxMapSize = config_.maxMapSize;
    so.sync = config_.syncCommits;
    so.clock = config_.clock;
    so.onCommitPoint = config_.onCommitPoint;
    so.startOverIfDamaged = config_.startOverIfDamaged;
    so.verifyOnOpen = config_.verifyCheckpointOnOpen;
    try {
      store_ = std::make_unique<StateStore>(config_.checkpoint, std::move(so));
    } catch (const CheckpointDamaged& e) {  // keeps its type: callers may offer the way out
      throw CheckpointDamaged(e, "micro-batch job '" + name_ + "' cannot open its checkpoint: ");
    } catch (const std::exception& e) {
      throw StateError("micro-batch job '" + name_ + "' cannot open its checkpoint: " + e.what());
    }
    try {
      recovered_.lastTxid = store_->lastCommittedTxid();
      recovered_.snapshots = store_->snapshots();
      recovered_.watermark = store_->committedWatermark();
      recovered_.store = store_.get();
      committedOffsets_ = fromStateOffsets(store_->committedOffsets());
      resumePartitionOrders();
      planner_.resume(recovered_.lastTxid, committedOffsets_);
      if (config_.offsetLog) openOffsetLog();
    } catch (const CheckpointDamaged& e) {
      throw CheckpointDamaged(e, "micro-batch job '" + name_ + "' cannot resume from its "
                                 "checkpoint: ");
    } catch (const std::exception& e) {
      throw StateError("micro-batch job '" + name_ + "' cannot resume from checkpoint '" +
                       config_.checkpoint + "': " + e.what());
    }
    progress_.lastTxid = recovered_.lastTxid;
    progress_.offsets = committedOffsets_;
    progress_.watermark = recovered_.watermark;
    if (recovered_.lastTxid > 0) {
      logInfo("micro-batch job '" + name_ + "' resumes after txid " +
              std::to_string(recovered_.lastTxid) + " at offsets " +
              offsetsToString(committedOffsets_));
    }
  }

  // BatchTrigger::continuous(): the topology runs in continuous mode; this job only owns it.
  BatchJob(std::unique_ptr<RunningTopology> running, MicroBatch config)
      : config_(std::move(config)),
        planner_({}, 0),
        schedule_(BatchTrigger::unspecified()),
        continuous_(std::move(running)) {
    name_ = config_.name.empty() ? config_.checkpoint : config_.name;
    progress_.name = name_;
  }

  ~BatchJob() {
    stop();
    joinThread();
  }

  void start() {
    if (continuous_) {
      startNanos_ = SystemClock::steadyNanos();
      progress_.running = true;
      thread_ = std::thread([this] { loop(); });
      return;
    }
    // Tell each source where the job resumes before it opens, so a source that fetches ahead
    // (Kafka) starts there (Source::commit).
    for (const auto& s : planner_.sources()) {
      auto it = planner_.position().find(s.name);
      if (it == planner_.position().end()) continue;
      for (size_t p = 0; p < it->second.size(); ++p) {
        s.source->commit(static_cast<int>(p), it->second[p]);
      }
    }
    for (const auto& s : planner_.sources()) s.source->open(*config_.clock);
    if (offsetLog_) offsetLog_->start(offsetLogStart_);
    // The pipeline is stopped (its threads joined) before this job can be destroyed, so the
    // callbacks may hold `this`.
    pipeline_->start(
        recovered_, [this](uint64_t txid, BatchResult r) { onFinished(txid, std::move(r)); },
        [this](std::exception_ptr e) { onFailed(e); });
    startNanos_ = SystemClock::steadyNanos();
    {
      std::lock_guard lk(mutex_);
      progress_.running = true;
    }
    thread_ = std::thread([this] { loop(); });
  }

  const std::string& name() const { return name_; }

  void stop() {
    std::lock_guard lk(mutex_);
    stopRequested_ = true;
    wake_.notify_all();
  }

  bool done() const {
    std::lock_guard lk(mutex_);
    return done_;
  }

  bool waitUntilDone(std::optional<std::chrono::milliseconds> timeout) {
    std::exception_ptr error;
    {
      std::unique_lock lk(mutex_);
      if (timeout) {
        if (!doneCv_.wait_for(lk, *timeout, [&] { return done_; })) return false;
      } else {
        doneCv_.wait(lk, [&] { return done_; });
      }
      error = error_;
    }
    // The job stays in the registry (awaitAnyTermination sees it), so it may outlive its last
    // handle; its ended thread is joined by whoever waits first rather than left running.
    joinThread();
    if (error) std::rethrow_exception(error);
    return true;
  }

  void joinThread() {
    std::lock_guard g(joinMutex_);
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

  bool processAllAvailable(std::optional<std::chrono::milliseconds> timeout) {
    if (continuous_) {
      throw std::logic_error("micro-batch job '" + name_ + "' runs with the continuous trigger: "
                             "processAllAvailable() needs batches");
    }
    std::exception_ptr error;
    bool drained;
    {
      std::unique_lock lk(mutex_);
      const uint64_t id = ++drainRequested_;
      wake_.notify_all();
      auto ready = [&] { return drainDone_ >= id || done_; };
      if (timeout) {
        if (!drainCv_.wait_for(lk, *timeout, ready)) return false;
      } else {
        drainCv_.wait(lk, ready);
      }
      drained = drainDone_ >= id;
      error = error_;
    }
    if (error) std::rethrow_exception(error);
    if (!drained) {
      throw std::logic_error("micro-batch job '" + name_ +
                             "' ended before processAllAvailable() was done");
    }
    return true;
  }

  void setPaused(bool paused) {
    if (continuous_) {
      paused ? continuous_->deactivate() : continuous_->activate();
    }
    std::lock_guard lk(mutex_);
    progress_.paused = paused;
    wake_.notify_all();
  }

  TopologyMetrics metrics() const {
    if (continuous_) return continuous_->metrics();
    return pipeline_ ? pipeline_->metrics() : TopologyMetrics{};
  }
  std::optional<CheckpointSummary> checkpoint(size_t commits) const {
    commits = std::min(commits, kKeptCommits);
    std::lock_guard lk(storeMutex_);
    if (store_) return readCheckpoint(*store_, commits);
    if (!finalCheckpoint_) return std::nullopt;
    CheckpointSummary s = *finalCheckpoint_;
    if (s.commits.size() > commits)
      s.commits.erase(s.commits.begin(), s.commits.end() - static_cast<ptrdiff_t>(commits));
    return s;
  }
  const Topology* topology() const {
    if (continuous_) return &continuous_->topology();
    return pipeline_ ? pipeline_->topology() : nullptr;
  }

  BatchProgress progress() const {
    std::lock_guard lk(mutex_);
    BatchProgress p = progress_;
    p.runNanos = SystemClock::steadyNanos() - startNanos_;
    return p;
  }

 private:
  void onFinished(uint64_t txid, BatchResult r) {
    std::lock_guard lk(mutex_);
    finishedNanos_[txid] = SystemClock::steadyNanos();
    finishedQueue_.emplace_back(txid, std::move(r));
    wake_.notify_all();
  }
  void onFailed(std::exception_ptr e) {
    std::lock_guard lk(mutex_);
    if (!pipelineError_) pipelineError_ = e;
    wake_.notify_all();
  }

  Timestamp now() const { return config_.clock->now(); }

  void runContinuous() {
    std::unique_lock lk(mutex_);
    while (!stopRequested_ && !terminationRequested()) {
      lk.unlock();
      bool ended = continuous_->waitUntilDone(std::chrono::milliseconds(5));
      lk.lock();
      if (ended) return;
    }
    lk.unlock();
    continuous_->stop();
  }

  void loop() {
    nameThisThread("gale-mb-job");
    std::exception_ptr error;
    try {
      if (continuous_) {
        runContinuous();
      } else {
        run();
      }
    } catch (...) {
      error = std::current_exception();
    }
    try {
      if (pipeline_) pipeline_->stop();
    } catch (const std::exception& e) {
      logError("micro-batch job '" + name_ + "': stopping the pipeline failed: " + e.what());
      if (!error) error = std::current_exception();
    }
    for (const auto& s : planner_.sources()) s.source->close();
    offsetLog_.reset();  // its flusher reports to the pipeline, stopped above
    // Release the checkpoint directory (its lock) as soon as the job has ended, so a new run may
    // open it while this handle still exists; keep its summary for the UI.
    try {
      std::lock_guard lk(storeMutex_);
      if (store_) finalCheckpoint_ = readCheckpoint(*store_, kKeptCommits);
      store_.reset();
    } catch (const std::exception& e) {
      logError("micro-batch job '" + name_ + "': closing the checkpoint failed: " + e.what());
    }
    {
      std::lock_guard lk(mutex_);
      error_ = error;
      done_ = true;
      progress_.running = false;
      if (error) {
        progress_.failed = true;
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          progress_.error = e.what();
        } catch (...) {
          progress_.error = "unknown error";
        }
        logError("micro-batch job '" + name_ + "' failed: " + progress_.error);
      }
      doneCv_.notify_all();
      drainCv_.notify_all();
    }
    jobs::ended();
  }

  void run() {
    const bool availableNow = config_.trigger.kind == BatchTrigger::Kind::AvailableNow;
    std::optional<Offsets> target;
    if (availableNow) target = planner_.available();
    bool scheduleRunning = false;
    bool idle = false;  // the last look found no new data

    std::unique_lock lk(mutex_);
    while (true) {
      if (pipelineError_) std::rethrow_exception(pipelineError_);
      // Commit what finished, in txid order.
      while (!finishedQueue_.empty()) {
        auto [txid, result] = std::move(finishedQueue_.front());
        finishedQueue_.pop_front();
        sequencer_.finished(txid, std::move(result));
      }
      while (auto ready = sequencer_.popReady()) {
        lk.unlock();
        commit(ready->first, std::move(ready->second));
        lk.lock();
      }
      if (scheduleRunning && static_cast<int>(sequencer_.inFlight()) < config_.maxBatchesInFlight) {
        schedule_.finished(now());
        scheduleRunning = false;
      }
      progress_.triggerOverruns = schedule_.overruns();

      if (terminationRequested()) stopRequested_ = true;
      // Every source is bounded and read to its end, and that batch is committed: the job is
      // done, as a continuous-mode topology is at the end of a bounded input.
      if (inputEnded_ && sequencer_.inFlight() == 0) return;
      if (stopRequested_ && sequencer_.inFlight() == 0) return;
      if (availableNow && sequencer_.inFlight() == 0 && planner_.reached(*target)) {
        if (!noDataDue_) return;
        dispatchLocked(noDataBatch(), lk);  // let the last watermark fire its windows
        continue;
      }

      // Batches cut but not committed before a restart run first, whatever the trigger (Spark
      // re-runs the batches of its offset log at start).
      if (!loggedPlans_.empty() && !stopRequested_ &&
          static_cast<int>(sequencer_.inFlight()) < config_.maxBatchesInFlight) {
        lk.unlock();
        std::optional<BatchPlan> plan = cutBatch(target ? &*target : nullptr);
        lk.lock();
        if (plan) {
          dispatchLocked(std::move(*plan), lk);
          continue;
        }
      }
      // processAllAvailable(): batches over what is available now, whatever the trigger, until
      // all of it is committed.
      if (drainRequested_ > drainStarted_) {
        drainStarted_ = drainRequested_;
        lk.unlock();
        Offsets now = planner_.available();
        lk.lock();
        drainTarget_ = std::move(now);
      }
      if (drainTarget_) {
        if (sequencer_.inFlight() == 0 && planner_.reached(*drainTarget_) && noDataDue_) {
          dispatchLocked(noDataBatch(), lk);
          continue;
        }
        if (sequencer_.inFlight() == 0 && planner_.reached(*drainTarget_) &&
            loggedPlans_.empty()) {
          drainTarget_.reset();
          drainDone_ = drainStarted_;
          drainCv_.notify_all();
        } else if (!stopRequested_ &&
                   static_cast<int>(sequencer_.inFlight()) < config_.maxBatchesInFlight) {
          lk.unlock();
          std::optional<BatchPlan> plan = cutBatch(&*drainTarget_);
          lk.lock();
          if (plan) {
            dispatchLocked(std::move(*plan), lk);
            continue;
          }
        }
      }
      // The trigger's time is read once, before the cut (Spark's triggerTimeMs): the next tick
      // follows the one checked. Read again after a cut that took time, it could be past the
      // next tick, and a skipped or started batch would then wait a whole interval more (with a
      // ManualClock that nobody advances again: for ever).
      const Timestamp triggerTime = now();
      if (!stopRequested_ && !progress_.paused && !scheduleRunning &&
          schedule_.due(triggerTime)) {
        lk.unlock();
        std::optional<BatchPlan> plan = cutBatch(target ? &*target : nullptr);
        lk.lock();
        if (!plan && noDataDue_) plan = noDataBatch();
        if (plan) {
          schedule_.started(triggerTime);
          scheduleRunning = true;
          dispatchLocked(std::move(*plan), lk);
          if (static_cast<int>(sequencer_.inFlight()) < config_.maxBatchesInFlight) {
            schedule_.finished(now());
            scheduleRunning = false;
          }
          ++progress_.schedulerTurns;
          continue;
        }
        schedule_.skipped(triggerTime);
        idle = true;
      }
      // Sleep until a batch finishes, a stop, or the next due time. The clock may be a
      // ManualClock, so never sleep long on its word: poll every millisecond at most.
      auto wait = std::chrono::microseconds(idle ? config_.idlePoll.count() : 1000);
      if (auto due = schedule_.nextDue(); due && config_.clock == &SystemClock::instance()) {
        int64_t us = due->micros - now().micros;
        wait = std::max(wait, std::chrono::microseconds(std::clamp<int64_t>(us, 0, 50'000)));
      }
      idle = false;
      ++progress_.schedulerTurns;
      // (A stop wakes the loop only when nothing is in flight: until then it waits for results.)
      wake_.wait_for(lk, wait, [&] {
        return !finishedQueue_.empty() || pipelineError_ != nullptr ||
               drainRequested_ > drainStarted_ || (stopRequested_ && sequencer_.inFlight() == 0);
      });
    }
  }

  // Hands a cut batch to the pipeline (the lock is released around the hand-over).
  void dispatchLocked(BatchPlan plan, std::unique_lock<std::mutex>& lk) {
    noDataDue_ = false;  // any batch carries the last watermark to the operators
    sequencer_.started(plan.txid);
    plan.replay = false;
    plans_[plan.txid] = plan;
    cutNanos_[plan.txid] = SystemClock::steadyNanos();
    cutMicros_[plan.txid] = now().micros;
    lk.unlock();
    pipeline_->dispatch(plan);
    lk.lock();
  }

  // The next batch (up to `limit`), or the replay of a batch logged before a restart; written to
  // the offset log before it runs. Called without the lock, on the job's thread.
  std::optional<BatchPlan> cutBatch(const Offsets* limit) {
    std::optional<BatchPlan> plan;
    if (!loggedPlans_.empty()) {
      // A replay after a restart: exactly the offsets the first attempt was cut to, so it
      // waits until the sources have fetched that far again.
      const LoggedPlan& logged = loggedPlans_.front();
      if (!logged.endOfInput && logged.end == planner_.position()) {
        // A logged no-data batch (Spark's timing): replayed as one, under its own txid, so a
        // sink that skips replayed txids never mistakes the next batch with data for it.
        loggedPlans_.pop_front();
        plan = planner_.noDataBatch();
        logPlan(*plan);
        return plan;
      }
      Offsets bound = limit ? minOffsets(logged.end, *limit) : logged.end;
      if (reachable(bound)) {
        plan = planner_.next(&bound, logged.endOfInput);
        loggedPlans_.pop_front();
      }
    } else {
      plan = planner_.next(limit);
    }
    if (plan) logPlan(*plan);
    return plan;
  }

  // Spark's no-data batch (NextBatch timing), logged like any other.
  BatchPlan noDataBatch() {
    BatchPlan plan = planner_.noDataBatch();
    logPlan(plan);
    return plan;
  }

  // The offset log file (offset_log_file.h), and the batches it (or, in a checkpoint written
  // before it, LMDB's kOffsetLogState) logged but the store did not commit: replayed first.
  void openOffsetLog() {
    std::map<uint64_t, std::string> logged;
    for (const StateInfo& st : store_->states()) {
      if (st.name != kOffsetLogState) continue;
      legacyOffsetLog_ = &store_->keyedState(kOffsetLogState, StateKind::Plain);
      legacyOffsetLog_->forEach([&](std::string_view key, std::string_view value) {
        uint64_t txid = std::stoull(std::string(key));
        logged[txid] = std::string(value);
        legacyTxids_.insert(txid);
        return true;
      });
    }
    OffsetLogFile::Options lo;
    lo.sync = config_.syncCommits;
    lo.onPoint = config_.onOffsetLog;
    lo.durable = [this](uint64_t txid, int64_t flushNanos) {
      pipeline_->offsetLogDurable(txid);
      std::lock_guard lk(mutex_);
      progress_.offsetLogFlushNanos.record(flushNanos);
    };
    lo.failed = [this](std::exception_ptr e) { onFailed(e); };
    offsetLog_ = std::make_unique<OffsetLogFile>(config_.checkpoint, std::move(lo));
    for (const auto& [txid, payload] : offsetLog_->recovered()) logged[txid] = payload;
    uint64_t durable = recovered_.lastTxid;
    for (const auto& [txid, payload] : logged) {
      durable = std::max(durable, txid);  // read back from a synced file or LMDB
      if (txid > recovered_.lastTxid) loggedPlans_.push_back(decodeOffsets(payload));
    }
    offsetLog_->committed(recovered_.lastTxid);  // older entries are obsolete (compaction)
    offsetLogStart_ = durable;
    if (config_.syncCommits) recovered_.offsetLogDurable = durable;
  }

  // Sources that name their partitions get the order of the checkpoint back (before open).
  void resumePartitionOrders() {
    for (const auto& s : planner_.sources()) {
      std::vector<std::string> ids = s.source->partitionIds();
      if (ids.empty()) continue;
      if (!partitionOrder_) {
        partitionOrder_ = &store_->keyedState(kPartitionOrderState, StateKind::Plain);
      }
      if (auto stored = partitionOrder_->get(s.name)) {
        s.source->resumePartitionOrder(decodePartitionOrder(*stored));
        writtenOrder_[s.name] = *stored;
      }
    }
  }

  // In batch `c`: the partition order of each source whose order changed since last written.
  void commitPartitionOrders(BatchCommit& c) {
    if (!partitionOrder_) return;
    for (const auto& s : planner_.sources()) {
      std::string order = encodePartitionOrder(s.source->partitionIds());
      if (order.empty() || writtenOrder_[s.name] == order) continue;
      c.put(*partitionOrder_, s.name, order);
      pendingOrder_[s.name] = std::move(order);
    }
  }

  // One write() to the offset log file; its flusher makes it durable while the batch runs.
  void logPlan(const BatchPlan& plan) {
    if (!offsetLog_) return;
    offsetLog_->append(plan.txid, encodeOffsets(plan.end, plan.endOfInput));
  }

  // True when every replayable source can serve `limit` now (available() has reached it).
  bool reachable(const Offsets& limit) const {
    Offsets avail = planner_.available();
    for (const auto& s : planner_.sources()) {
      auto l = limit.find(s.name);
      if (l == limit.end() || !s.source->replayable()) continue;
      const auto& a = avail.at(s.name);
      for (size_t p = 0; p < l->second.size() && p < a.size(); ++p) {
        if (a[p] < l->second[p]) return false;
      }
    }
    return true;
  }

  void commit(uint64_t txid, BatchResult result) {
    const BatchPlan& plan = plans_.at(txid);
    int64_t t0 = SystemClock::steadyNanos();
    BatchCommit c = store_->beginCommit(txid);
    for (auto& [key, blob] : result.snapshots) c.putSnapshot(key, std::move(blob));
    for (auto& [state, upd] : result.keyed) {
      c.apply(store_->keyedState(state, upd.kind), std::move(upd.updates));
    }
    c.setOffsets(toStateOffsets(plan.end));
    commitPartitionOrders(c);
    if (result.watermark) c.setWatermark(*result.watermark);
    for (auto& s : result.sinks) c.markSinkCommitted(s);
    // The commit record supersedes a logged entry (one in LMDB, from before offsets.log, is
    // erased with it).
    if (legacyTxids_.erase(txid)) c.erase(*legacyOffsetLog_, offsetLogKey(txid));
    c.commit();
    if (offsetLog_) offsetLog_->committed(txid);
    for (auto& [name, order] : pendingOrder_) writtenOrder_[name] = std::move(order);
    pendingOrder_.clear();
    int64_t t1 = SystemClock::steadyNanos();

    pipeline_->committed(txid);
    for (size_t i = 0; i < planner_.sources().size(); ++i) {
      for (const auto& r : plan.ranges[i]) planner_.sources()[i].source->commit(r.partition, r.to);
    }

    std::unique_lock lk(mutex_);
    if (plan.endOfInput) inputEnded_ = true;
    // Spark's timing: a batch with data that moved the watermark is followed by a no-data batch
    // so its windows fire without waiting for more data.
    if (config_.watermarkTiming == WatermarkTiming::NextBatch && config_.noDataMicroBatches &&
        plan.records > 0 && result.watermark &&
        (!progress_.watermark || *result.watermark > *progress_.watermark)) {
      noDataDue_ = true;
    }
    progress_.batches++;
    progress_.lastTxid = txid;
    progress_.records += plan.records;
    progress_.offsets = plan.end;
    if (result.watermark) progress_.watermark = result.watermark;
    progress_.stateEntries = result.stateEntries;
    progress_.unroutedRecords += result.unrouted;
    progress_.commitNanos.record(t1 - t0);
    progress_.commitTotalNanos += t1 - t0;
    progress_.batchNanos.record(t1 - cutNanos_.at(txid));
    BatchRecord rec;
    rec.txid = txid;
    rec.records = plan.records;
    rec.cutMicros = cutMicros_.at(txid);
    int64_t finished = finishedNanos_.count(txid) ? finishedNanos_.at(txid) : t0;
    rec.executeNanos = finished - cutNanos_.at(txid);
    rec.waitNanos = std::max<int64_t>(0, t0 - finished);
    rec.commitNanos = t1 - t0;
    rec.watermark = progress_.watermark;
    rec.stateEntries = result.stateEntries;
    const int64_t cut = cutNanos_.at(txid);
    if (lastCutNanos_ > 0 && cut > lastCutNanos_)
      rec.inputRowsPerSecond = static_cast<double>(plan.records) * 1e9 / static_cast<double>(cut - lastCutNanos_);
    lastCutNanos_ = cut;
    if (t1 > cut) rec.processedRowsPerSecond = static_cast<double>(plan.records) * 1e9 / static_cast<double>(t1 - cut);
    if (result.eventTimeCount > 0) {
      rec.eventTime = BatchRecord::EventTimeStats{
          Timestamp{result.eventTimeMin}, Timestamp{result.eventTimeMax},
          Timestamp{static_cast<int64_t>(result.eventTimeSum / static_cast<double>(result.eventTimeCount))}};
    }
    for (size_t i = 0; i < planner_.sources().size(); ++i) {
      const std::string& name = planner_.sources()[i].name;
      BatchRecord::SourceProgress sp{name, {}, {}, 0};
      if (auto it = plan.start.find(name); it != plan.start.end()) sp.startOffsets = it->second;
      if (auto it = plan.end.find(name); it != plan.end.end()) sp.endOffsets = it->second;
      for (const auto& r : plan.ranges[i]) sp.rows += r.to - r.from;
      rec.sources.push_back(std::move(sp));
    }
    for (const auto& [name, o] : result.operators) {
      rec.stateOperators.push_back({name, o.stateRows, o.rowsEmitted, o.droppedByWatermark});
    }
    if (progress_.recent.size() == BatchProgress::kRecentBatches)
      progress_.recent.erase(progress_.recent.begin());
    progress_.recent.push_back(rec);
    finishedNanos_.erase(txid);
    cutMicros_.erase(txid);
    for (const auto& s : result.originSamples) {
      if (s.originNanos > 0) {
        progress_.recordNanos.recordN(std::max<int64_t>(0, t1 - s.originNanos), s.weight);
      }
    }
    plans_.erase(txid);
    cutNanos_.erase(txid);
    // The listener runs unlocked (it may read progress()), on this job's thread.
    lk.unlock();
    if (config_.onProgress) {
      try {
        config_.onProgress(rec);
      } catch (const std::exception& e) {
        logWarn("micro-batch job '" + name_ + "': the progress listener threw: " + e.what());
      }
    }
  }

  MicroBatch config_;
  std::string name_;
  BatchPlanner planner_;
  TriggerSchedule schedule_;
  std::unique_ptr<BatchPipeline> pipeline_;
  std::unique_ptr<RunningTopology> continuous_;
  std::unique_ptr<StateStore> store_;
  // Held by other threads while they read store_, and by the job's thread while it closes it.
  mutable std::mutex storeMutex_;
  std::optional<CheckpointSummary> finalCheckpoint_;  // once store_ is closed
  static constexpr size_t kKeptCommits = BatchProgress::kRecentBatches;
  RecoveredState recovered_;
  Offsets committedOffsets_;
  std::unique_ptr<OffsetLogFile> offsetLog_;  // with MicroBatch::offsetLog
  uint64_t offsetLogStart_ = 0;               // durable through this when opened
  KeyedState* legacyOffsetLog_ = nullptr;     // kOffsetLogState of an older checkpoint
  std::set<uint64_t> legacyTxids_;            // its entries, erased by their commits
  KeyedState* partitionOrder_ = nullptr;  // with a source that names its partitions
  std::map<std::string, std::string> writtenOrder_, pendingOrder_;  // source -> encoded order
  std::deque<LoggedPlan> loggedPlans_;   // logged batches to replay, oldest first

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable doneCv_;
  std::condition_variable drainCv_;
  // processAllAvailable() requests: asked, taken up by the loop, completed.
  uint64_t drainRequested_ = 0, drainStarted_ = 0, drainDone_ = 0;
  std::optional<Offsets> drainTarget_;
  bool noDataDue_ = false;  // NextBatch timing: a no-data batch should run next
  bool stopRequested_ = false;
  bool done_ = false;
  std::exception_ptr error_;
  std::exception_ptr pipelineError_;
  std::deque<std::pair<uint64_t, BatchResult>> finishedQueue_;
  CommitSequencer<BatchResult> sequencer_;
  std::map<uint64_t, BatchPlan> plans_;
  bool inputEnded_ = false;  // the endOfInput batch was committed
  std::map<uint64_t, int64_t> cutNanos_;
  std::map<uint64_t, int64_t> cutMicros_;
  int64_t lastCutNanos_ = 0;  // of the last committed batch, for its input rate
  std::map<uint64_t, int64_t> finishedNanos_;
  BatchProgress progress_;
  int64_t startNanos_ = 0;
  std::mutex joinMutex_;
  std::thread thread_;
};

const std::string& MicroBatchJob::name() const { return job_->name(); }
void MicroBatchJob::stop() { job_->stop(); }
void MicroBatchJob::waitUntilDone() { job_->waitUntilDone(std::nullopt); }
bool MicroBatchJob::waitUntilDone(std::chrono::milliseconds timeout) {
  return job_->waitUntilDone(timeout);
}
bool MicroBatchJob::done() const { return job_->done(); }
BatchProgress MicroBatchJob::progress() const { return job_->progress(); }
void MicroBatchJob::processAllAvailable() { job_->processAllAvailable(std::nullopt); }
bool MicroBatchJob::processAllAvailable(std::chrono::milliseconds timeout) {
  return job_->processAllAvailable(timeout);
}
void MicroBatchJob::deactivate() { job_->setPaused(true); }
void MicroBatchJob::activate() { job_->setPaused(false); }
TopologyMetrics MicroBatchJob::metrics() const { return job_->metrics(); }
const Topology* MicroBatchJob::topology() const { return job_->topology(); }
std::optional<CheckpointSummary> MicroBatchJob::checkpoint(size_t commits) const {
  return job_->checkpoint(commits);
}

namespace {
MicroBatchJob registerJob(std::shared_ptr<BatchJob> job) {
  job->start();
  MicroBatchJob handle(std::move(job));
  jobs::add(handle);
  return handle;
}
}  // namespace

MicroBatchJob runBatchPipeline(std::vector<NamedSource> sources,
                               std::unique_ptr<BatchPipeline> pipeline, std::string jobId,
                               MicroBatch config) {
  return registerJob(std::make_shared<BatchJob>(std::move(sources), std::move(pipeline),
                                                std::move(jobId), std::move(config)));
}

MicroBatchJob runMicroBatch(const Topology& topology, MicroBatch config) {
  if (config.runtime.clock) config.clock = config.runtime.clock;
  if (config.trigger.kind == BatchTrigger::Kind::Continuous) {
    Continuous rc = config.runtime;
    if (!rc.clock) rc.clock = config.clock;
    return registerJob(std::make_shared<BatchJob>(
        std::make_unique<RunningTopology>(gale::runContinuous(topology, rc)), std::move(config)));
  }
  std::string name = config.name.empty() ? config.checkpoint : config.name;
  Continuous rc = config.runtime;
  rc.clock = config.clock;
  std::unique_ptr<TopologyPipeline> pipeline;
  try {
    pipeline = std::make_unique<TopologyPipeline>(
        topology, rc,
        TopologyPipeline::WatermarkOptions{config.multipleWatermarkPolicy,
                                           config.watermarkIdleTimeout, config.watermarkTiming});
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("micro-batch job '" + name + "': " + e.what());
  }
  std::vector<NamedSource> sources = pipeline->sources();
  if (pipeline->needsExactReplay()) config.offsetLog = true;
  return runBatchPipeline(std::move(sources), std::move(pipeline), topologyFingerprint(topology),
                          std::move(config));
}

}  // namespace gale
