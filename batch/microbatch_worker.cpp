// A micro-batch job over several workers (microbatch.h, runMicroBatchWorker): the coordinator's
// worker runs the BatchJob with a TopologyPipeline of its own tasks; every other worker runs a
// TopologyPipeline of its tasks that follows the coordinator's over a WorkerLink, whose messages
// are batch_link.h's. Why it stays exactly-once: docs/batch.md, "Over several workers".
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "batch_link.h"
#include "gale/batch/microbatch.h"
#include "gale/core/clock.h"
#include "gale/core/incremental_state.h"
#include "gale/core/log.h"
#include "gale/core/partition_order.h"
#include "gale/core/state_codec.h"
#include "private/worker_link.h"
#include "topology_pipeline.h"

namespace gale {

namespace {

constexpr std::string_view kMagic = "GBTL";
constexpr int64_t kResendNanos = 100'000'000;        // plans, watermarks, status, event times
constexpr int64_t kResultResendNanos = 1'000'000'000;  // results carry snapshots: not every tick

int tasksOf(const WorkerAssignment& a, int worker) {
  return static_cast<int>(std::count(a.workerOfTask.begin(), a.workerOfTask.end(), worker));
}

// Where every task resumes: a follower reads its own tasks' snapshots and entries (each task
// restores the keys named after it, so the rest is not read).
std::string startPayload(const Topology& topology, const RecoveredState& r,
                         const std::vector<NamedSource>& sources) {
  batchlink::Start s;
  s.lastTxid = r.lastTxid;
  s.watermark = r.watermark;
  s.snapshots = r.snapshots;
  for (const ComponentSpec& c : topology.components()) {
    if (!dynamic_cast<const IncrementalState*>(c.op.get())) continue;
    std::string state = incrementalEntriesState(c.name);
    auto& entries = s.entries[state];
    r.store->keyedState(state, StateKind::Plain).forEach([&](std::string_view k, std::string_view v) {
      entries.emplace_back(std::string(k), std::string(v));
      return true;
    });
  }
  s.offsets = r.store->committedOffsets();
  KeyedState& orders = r.store->keyedState(kPartitionOrderState, StateKind::Plain);
  for (const NamedSource& source : sources)
    if (auto order = orders.get(source.name)) s.partitionOrders[source.name] = *order;
  return batchlink::encodeStart(s);
}

}  // namespace

class MicroBatchWorker::Impl {
 public:
  Impl(const Topology& topology, MicroBatch config, WorkerAssignment assignment)
      : topology_(topology), config_(std::move(config)), assignment_(std::move(assignment)) {
    coordinator_ = assignment_.self == batchCoordinatorWorker(topology_, assignment_);
  }

  ~Impl() {
    if (link_) link_->stop();  // no hook runs past here
    killTasks("the worker was destroyed");
    if (follower_) follower_->stop();
    for (const NamedSource& s : sources_) s.source->close();
  }

  void run() {
    std::string name = config_.name.empty() ? config_.checkpoint : config_.name;
    check(name);
    Continuous rc = config_.runtime;
    rc.clock = config_.clock;
    rc.guarantee = Guarantee::None;
    std::unique_ptr<TopologyPipeline> pipeline;
    try {
      pipeline = std::make_unique<TopologyPipeline>(
          topology_, rc,
          TopologyPipeline::WatermarkOptions{config_.multipleWatermarkPolicy,
                                             config_.watermarkIdleTimeout, config_.watermarkTiming},
          TopologyPipeline::Worker{assignment_, coordinator_});
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("micro-batch job '" + name + "': " + e.what());
    }
    pipeline_ = pipeline.get();
    sources_ = pipeline->sources();
    if (coordinator_) {
      if (pipeline->needsExactReplay()) config_.offsetLog = true;
      // START needs the checkpoint, which the job opens: the link starts inside its start().
      pipeline->beforeLaunch = [this](const RecoveredState& r) {
        start_ = startPayload(topology_, r, sources_);
        startLink();
      };
      auto sources = sources_;
      sources_.clear();  // the job opens and closes its own
      MicroBatchJob job;
      try {
        job = runBatchPipeline(std::move(sources), std::move(pipeline),
                               topologyFingerprint(topology_), config_);
      } catch (...) {
        if (link_) link_->stop();  // its hooks use the pipeline, gone with the job
        throw;
      }
      std::lock_guard lk(mutex_);
      job_ = job;
      return;
    }
    follower_ = std::move(pipeline);
    startLink();
    batchlink::Start s = batchlink::decodeStart(link_->waitStarted());
    RecoveredState recovered;
    recovered.lastTxid = s.lastTxid;
    recovered.watermark = s.watermark;
    recovered.snapshots = std::move(s.snapshots);
    recovered.entries = std::move(s.entries);
    // As BatchJob::start: each source learns where the job resumes before it opens.
    for (const NamedSource& source : sources_) {
      if (auto o = s.partitionOrders.find(source.name); o != s.partitionOrders.end())
        source.source->resumePartitionOrder(decodePartitionOrder(o->second));
      if (auto o = s.offsets.find(source.name); o != s.offsets.end())
        for (auto [p, off] : o->second) source.source->commit(p, off);
    }
    for (const NamedSource& source : sources_) source.source->open(*config_.clock);
    follower_->start(
        recovered, [this](uint64_t txid, BatchResult r) { finished(txid, std::move(r)); },
        [this](std::exception_ptr e) { failed(e); });
  }

  bool coordinator() const { return coordinator_; }

  MicroBatchJob job() const {
    std::lock_guard lk(mutex_);
    return job_;
  }

  std::string error() const {
    if (MicroBatchJob j = job(); j && j.done()) {
      BatchProgress p = j.progress();
      if (p.failed) return p.error;
    }
    std::lock_guard lk(mutex_);
    return error_;
  }

  bool waitUntilDone(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    if (MicroBatchJob j = job()) {
      try {
        if (!j.waitUntilDone(timeout)) return false;
      } catch (const std::exception&) {
        return true;  // error() tells why
      }
    }
    std::unique_lock lk(mutex_);
    // The coordinator's: its followers heard that the job ended (a few STATUS rounds).
    return cv_.wait_until(lk, deadline, [&] {
      return !error_.empty() || (coordinator_ ? doneSent_ >= 3 : done_);
    });
  }

  void kill() { killTasks("killed"); }

  void killTasks(const std::string& why) {
    if (MicroBatchJob j = job()) {
      if (!j.done())
        pipeline_->fail("micro-batch worker " + std::to_string(assignment_.self) + ": " + why);
      try {
        j.waitUntilDone();  // also joins the job's thread
      } catch (const std::exception&) {
        // That error, as error() says.
      }
      return;
    }
    if (!follower_) return;
    {
      std::lock_guard lk(mutex_);
      if (error_.empty() && !done_) error_ = why;
      cv_.notify_all();
    }
    follower_->stop();
  }

 private:
  void check(const std::string& name) {
    auto refuse = [&](const std::string& why) {
      throw std::invalid_argument("micro-batch job '" + name + "' over " +
                                  std::to_string(assignment_.endpoints.size()) +
                                  " workers: " + why);
    };
    if (config_.trigger.kind == BatchTrigger::Kind::Continuous)
      refuse("the continuous trigger runs in one worker");
    for (const ComponentSpec& c : topology_.components())
      if (dynamic_cast<const BatchStateWriter*>(c.op.get()))
        refuse("'" + c.name + "' keeps Trident state, whose updates run in one worker");
    if (static_cast<int>(assignment_.workerOfTask.size()) != topology_.taskCount())
      refuse("the assignment places " + std::to_string(assignment_.workerOfTask.size()) +
             " tasks, the topology has " + std::to_string(topology_.taskCount()));
    for (int w = 0; w < static_cast<int>(assignment_.endpoints.size()); ++w)
      if (tasksOf(assignment_, w) == 0) refuse("worker " + std::to_string(w) + " has no task");
  }

  void startLink() {
    WorkerLink::Hooks hooks;
    hooks.startPayload = [this](int) { return start_; };
    hooks.onMessage = [this](int w, std::string_view body) {
      coordinator_ ? atCoordinator(w, body) : atFollower(body);
    };
    hooks.onTick = [this](WorkerLink::Outbox& out) {
      coordinator_ ? leadTick(out) : followTick(out);
    };
    hooks.resumePoint = [this] { return "batch " + std::to_string(pipeline_->lastCommitted()); };
    link_ = std::make_unique<WorkerLink>(kMagic, "micro-batch job", "the batch coordinator",
                                         topology_.taskCount(), assignment_, config_.runtime.curve,
                                         coordinator_, std::move(hooks));
    // The job lost a worker: this one stops, and the job resumes from its last commit.
    link_->onAbort([this](const std::string& why) {
      {
        std::lock_guard lk(mutex_);
        if (error_.empty()) error_ = why;
        cv_.notify_all();
      }
      pipeline_->fail(why);
    });
    link_->start();
    if (coordinator_) link_->waitStarted();  // throws if aborted first
  }

  // ----------------------------------------------------------- the coordinator's worker

  void atCoordinator(int w, std::string_view body) {
    switch (batchlink::kindOf(body)) {
      case batchlink::Kind::EventTime: {
        batchlink::EventTime e = batchlink::decodeEventTime(body);
        if (e.spoutTask < 0 || e.spoutTask >= static_cast<TaskId>(assignment_.workerOfTask.size()) ||
            assignment_.workerOfTask[static_cast<size_t>(e.spoutTask)] != w)
          throw SnapshotError("worker " + std::to_string(w) + " reported for task " +
                              std::to_string(e.spoutTask) + ", not one of its own");
        pipeline_->reportEventTime(e);
        return;
      }
      case batchlink::Kind::Result: {
        batchlink::Result r = batchlink::decodeResult(body);
        if (r.tasks != tasksOf(assignment_, w)) {
          link_->abort("worker " + std::to_string(w) + " reported " + std::to_string(r.tasks) +
                       " tasks of batch " + std::to_string(r.txid) + ", it runs " +
                       std::to_string(tasksOf(assignment_, w)));
          return;
        }
        pipeline_->reportRemote(w, std::move(r));
        return;
      }
      default: throw SnapshotError("a follower's message of a coordinator's kind");
    }
  }

  void leadTick(WorkerLink::Outbox& out) {
    int64_t now = SystemClock::steadyNanos();
    if (now - lastSent_ < kResendNanos) return;
    lastSent_ = now;
    bool done = false;
    if (MicroBatchJob j = job(); j && j.done()) {
      BatchProgress p = j.progress();
      if (p.failed) {
        link_->abort(p.error);  // every follower stops too
        return;
      }
      done = true;
    }
    for (const auto& plan : pipeline_->uncommittedPlans()) out.toAll(batchlink::encode(*plan));
    for (const auto& w : pipeline_->readyWatermarks()) out.toAll(batchlink::encode(w));
    uint64_t committed = pipeline_->lastCommitted();
    for (int w = 0; w < link_->workers(); ++w) {
      if (w == assignment_.self) continue;
      out.to(w, batchlink::encode(batchlink::Status{committed, pipeline_->heldFrom(w), done}));
    }
    if (done) {
      std::lock_guard lk(mutex_);
      ++doneSent_;
      cv_.notify_all();
    }
  }

  // ----------------------------------------------------------- a follower

  void atFollower(std::string_view body) {
    switch (batchlink::kindOf(body)) {
      case batchlink::Kind::Plan: {
        BatchPlan plan = batchlink::decodePlan(body);
        if (plan.txid <= follower_->lastCommitted() || plans_.count(plan.txid)) return;
        if (plan.ranges.size() != sources_.size())
          throw SnapshotError("a plan for " + std::to_string(plan.ranges.size()) + " sources");
        follower_->dispatch(plan);
        plans_.emplace(plan.txid, std::move(plan));
        return;
      }
      case batchlink::Kind::Watermark:
        follower_->setWatermark(batchlink::decodeWatermark(body));
        return;
      case batchlink::Kind::Status: {
        batchlink::Status s = batchlink::decodeStatus(body);
        // Committed: the sources may drop what the batches read (as BatchJob::commit does).
        for (auto it = plans_.begin(); it != plans_.end() && it->first <= s.committed;
             it = plans_.erase(it))
          for (size_t i = 0; i < sources_.size(); ++i)
            for (const PartitionRange& r : it->second.ranges[i])
              sources_[i].source->commit(r.partition, r.to);
        follower_->committed(s.committed);
        std::lock_guard lk(mutex_);
        results_.erase(results_.begin(), results_.upper_bound(s.committed));
        for (uint64_t txid : s.held)
          if (auto it = results_.find(txid); it != results_.end()) it->second.held = true;
        if (s.done && !done_) {
          done_ = true;
          cv_.notify_all();
        }
        return;
      }
      default: throw SnapshotError("a coordinator's message of a follower's kind");
    }
  }

  void followTick(WorkerLink::Outbox& out) {
    int64_t now = SystemClock::steadyNanos();
    if (now - lastSent_ >= kResendNanos) {
      lastSent_ = now;
      for (const auto& e : follower_->pendingEventTimes()) out.toCoordinator(batchlink::encode(e));
    }
    std::lock_guard lk(mutex_);
    for (auto& [txid, r] : results_) {
      if (r.held || (r.sentAt != 0 && now - r.sentAt < kResultResendNanos)) continue;
      out.toCoordinator(r.bytes);
      r.sentAt = now;
    }
  }

  // Every task of this worker reported batch txid (a task thread).
  void finished(uint64_t txid, BatchResult result) {
    std::string bytes = batchlink::encode(
        batchlink::Result{txid, tasksOf(assignment_, assignment_.self), std::move(result)});
    std::lock_guard lk(mutex_);
    results_[txid] = {std::move(bytes), 0, false};
  }

  void failed(std::exception_ptr e) {
    std::string why = "micro-batch worker failed";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      why = x.what();
    } catch (...) {
    }
    {
      std::lock_guard lk(mutex_);
      if (error_.empty()) error_ = why;
      cv_.notify_all();
    }
    // The link tells the coordinator's worker, which stops the job in every worker.
    if (link_) link_->abort("worker " + std::to_string(assignment_.self) + " failed: " + why);
  }

  Topology topology_;
  MicroBatch config_;
  WorkerAssignment assignment_;
  bool coordinator_ = false;
  std::string start_;                            // the coordinator's START payload
  TopologyPipeline* pipeline_ = nullptr;         // the job's (coordinator) or follower_
  std::unique_ptr<TopologyPipeline> follower_;   // a follower's own
  std::vector<NamedSource> sources_;             // a follower's (the coordinator's job has them)
  std::unique_ptr<WorkerLink> link_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  MicroBatchJob job_;
  std::string error_;
  bool done_ = false;  // a follower: the coordinator said the job ended
  int doneSent_ = 0;   // the coordinator: STATUS rounds that said so
  struct OutResult {
    std::string bytes;
    int64_t sentAt = 0;
    bool held = false;  // the coordinator counted it
  };
  std::map<uint64_t, OutResult> results_;  // a follower's, uncommitted

  // The link thread's own.
  int64_t lastSent_ = 0;
  std::map<uint64_t, BatchPlan> plans_;  // a follower's, uncommitted
};

bool MicroBatchWorker::coordinator() const { return impl_->coordinator(); }
MicroBatchJob MicroBatchWorker::job() const { return impl_->job(); }
void MicroBatchWorker::deactivate() {
  if (MicroBatchJob j = impl_->job()) j.deactivate();
}
void MicroBatchWorker::activate() {
  if (MicroBatchJob j = impl_->job()) j.activate();
}
void MicroBatchWorker::kill() { impl_->kill(); }
std::string MicroBatchWorker::error() const { return impl_->error(); }
bool MicroBatchWorker::waitUntilDone(std::chrono::milliseconds timeout) {
  return impl_->waitUntilDone(timeout);
}

int batchCoordinatorWorker(const Topology& topology, const WorkerAssignment& assignment) {
  return WorkerLink::coordinatorWorker(topology.taskCount(), assignment);
}

MicroBatchWorker runMicroBatchWorker(const Topology& topology, MicroBatch config,
                                     WorkerAssignment assignment) {
  if (config.runtime.clock) config.clock = config.runtime.clock;
  auto impl = std::make_shared<MicroBatchWorker::Impl>(topology, std::move(config),
                                                       std::move(assignment));
  impl->run();
  return MicroBatchWorker(std::move(impl));
}

}  // namespace gale
