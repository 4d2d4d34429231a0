// The executor of a micro-batch job: the user's topology with its components wrapped in batch
// tasks (batch_tasks.h), run by the continuous runtime, batches dispatched to it and committed.
#include "topology_pipeline.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "batch_link.h"
#include "batch_tasks.h"
#include "gale/core/incremental_state.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"
#include "source_watermarks.h"

namespace gale {

TopologyPipeline::TopologyPipeline(const Topology& topology, Continuous runtimeConfig,
                                   WatermarkOptions watermarks, std::optional<Worker> worker)
    : shared_(std::make_shared<BatchShared>()),
      runtimeConfig_(std::move(runtimeConfig)),
      worker_(std::move(worker)) {
  shared_->timing = watermarks.timing;
  runtimeConfig_.acking = false;  // a batch is replayed whole under its txid, never per tuple
  if (runtimeConfig_.clock) shared_->clock = runtimeConfig_.clock;
  std::vector<SourceWatermarks::SourceSpec> watermarkSpecs;
  ComponentWrappers wrappers;
  wrappers.spout = [&](const ComponentSpec& c) -> std::unique_ptr<Spout> {
    shared_->spoutTasks += c.parallelism;
    watermarkSpecs.push_back({c.name, c.watermark ? std::optional(c.watermark->delay)
                                                  : std::nullopt});
    if (!c.source) {
      throw std::invalid_argument(
          "micro-batch mode needs replayable sources, but spout '" + c.name +
          "' is a custom Spout; declare it with setSpout(name, SourcePtr)");
    }
    size_t index = sources_.size();
    sources_.push_back({c.name, c.source});
    return makeBatchSpout(shared_, c.source, index, c.watermark);
  };
  wrappers.bolt = [&](const ComponentSpec& c) -> std::unique_ptr<Bolt> {
    // Micro-batch mode commits an IncrementalState operator's state as a head and per-task
    // entries, but restores a component with key groups from key-group blobs, never written.
    if (c.maxParallelism && dynamic_cast<const IncrementalState*>(c.op.get()))
      throw std::invalid_argument(
          "micro-batch mode: operator '" + c.name + "' has maxParallelism (state split by key "
          "group) but also keeps incremental state (IncrementalState), whose entries this mode "
          "stores per task; drop maxParallelism or run it in continuous mode");
    if (dynamic_cast<const ExactReplaySink*>(c.op.get()) ||
        dynamic_cast<const ExactReplaySink*>(c.bolt.get())) {
      exactReplay_ = true;
    }
    if (c.op) return makeBatchOperatorBolt(shared_, c.op);
    return makeBatchBoltWrapper(shared_, c.bolt);
  };
  batchTopology_ = std::make_unique<Topology>(wrapComponents(topology, wrappers));
  shared_->reporters = topology.taskCount();  // every spout and bolt task
  if (worker_ && !worker_->coordinator) {
    shared_->follower = true;
    shared_->reporters = static_cast<int>(std::count(worker_->assignment.workerOfTask.begin(),
                                                     worker_->assignment.workerOfTask.end(),
                                                     worker_->assignment.self));
  }
  shared_->sourceCount = sources_.size();
  shared_->watermarks = std::make_unique<SourceWatermarks>(
      std::move(watermarkSpecs), watermarks.policy, watermarks.idleTimeout);
}

TopologyPipeline::~TopologyPipeline() {
  if (running_) running_->kill();
}

void TopologyPipeline::start(const RecoveredState& recovered, Finished finished, Failed failed) {
  shared_->recovered = recovered;
  auto blob = recovered.snapshots.find(kSourceWatermarksKey);
  shared_->watermarks->restore(recovered.watermark,
                               blob == recovered.snapshots.end() ? std::string() : blob->second);
  std::exception_ptr failedBeforeStart;
  {
    std::lock_guard lk(shared_->mutex);  // a follower's link may already use them
    shared_->finished = std::move(finished);
    shared_->failed = std::move(failed);
    shared_->committed = recovered.lastTxid;
    shared_->offsetLogDurable = recovered.offsetLogDurable.value_or(UINT64_MAX);
    failedBeforeStart = shared_->failedBeforeStart;
  }
  if (failedBeforeStart) {
    shared_->failed(failedBeforeStart);
    return;
  }
  if (beforeLaunch) beforeLaunch(recovered);
  auto running = std::make_unique<RunningTopology>(
      worker_ ? runWorker(*batchTopology_, runtimeConfig_, worker_->assignment)
              : runContinuous(*batchTopology_, runtimeConfig_));
  std::lock_guard lk(runningMutex_);
  running_ = std::move(running);
}

void TopologyPipeline::dispatch(const BatchPlan& plan) {
  auto p = std::make_shared<const BatchPlan>(plan);
  std::lock_guard lk(shared_->mutex);
  shared_->plans[plan.txid] = std::move(p);
}

void TopologyPipeline::committed(uint64_t txid) {
  std::lock_guard lk(shared_->mutex);
  if (txid <= shared_->committed && txid != 0) return;
  shared_->committed = std::max(shared_->committed, txid);
  shared_->plans.erase(shared_->plans.begin(), shared_->plans.upper_bound(txid));
  auto& w = shared_->batchWatermarks;
  w.erase(w.begin(), w.upper_bound(txid));
  auto& e = shared_->eventTimesOut;
  e.erase(e.begin(), e.upper_bound(txid));
  auto& f = shared_->finishedWorkers;
  f.erase(f.begin(), f.upper_bound(txid));
  auto& p = shared_->pending;
  p.erase(p.begin(), p.upper_bound(txid));
}

void TopologyPipeline::offsetLogDurable(uint64_t txid) { shared_->setOffsetLogDurable(txid); }

std::vector<std::shared_ptr<const BatchPlan>> TopologyPipeline::uncommittedPlans() const {
  std::lock_guard lk(shared_->mutex);
  std::vector<std::shared_ptr<const BatchPlan>> out;
  // Only plans whose offset log entry is durable: a follower's ExactReplaySink does not wait for
  // it itself (its worker cannot see the flush).
  for (const auto& [txid, plan] : shared_->plans)
    if (txid <= shared_->offsetLogDurable) out.push_back(plan);
  return out;
}

std::vector<batchlink::Watermark> TopologyPipeline::readyWatermarks() const {
  std::lock_guard lk(shared_->mutex);
  std::vector<batchlink::Watermark> out;
  for (const auto& [txid, b] : shared_->batchWatermarks)
    if (b.ready) out.push_back({txid, b.watermark, b.snapshot});
  return out;
}

void TopologyPipeline::reportEventTime(const batchlink::EventTime& e) {
  if (e.source >= shared_->sourceCount)
    throw SnapshotError("micro-batch link: an event time of source " + std::to_string(e.source) +
                        " of " + std::to_string(shared_->sourceCount));
  shared_->reportEventTime(e.txid, e.spoutTask, e.source, e.maxEvent, e.endOfInput);
}

void TopologyPipeline::reportRemote(int worker, batchlink::Result r) {
  shared_->report(
      r.txid,
      [&](BatchResult& into) {
        // Entries of a follower's incremental operators: committed as Plain puts and erases.
        for (auto& [state, changes] : r.result.entryChanges) {
          KeyedStateUpdates& u = into.keyed[state];
          u.kind = StateKind::Plain;
          for (auto& [k, v] : changes)
            u.updates[k] = [v = std::move(v)](std::optional<std::string_view>) { return v; };
        }
        r.result.entryChanges.clear();
        mergeBatchResult(into, std::move(r.result));
      },
      r.tasks, worker);
}

std::vector<uint64_t> TopologyPipeline::heldFrom(int worker) const {
  std::lock_guard lk(shared_->mutex);
  std::vector<uint64_t> out;
  for (const auto& [txid, p] : shared_->pending)
    if (p.workers.count(worker)) out.push_back(txid);
  for (const auto& [txid, workers] : shared_->finishedWorkers)
    if (workers.count(worker)) out.push_back(txid);
  std::sort(out.begin(), out.end());
  return out;
}

void TopologyPipeline::setWatermark(const batchlink::Watermark& w) {
  std::lock_guard lk(shared_->mutex);
  if (w.txid <= shared_->committed) return;
  BatchShared::BatchWatermark& b = shared_->batchWatermarks[w.txid];
  b.watermark = w.watermark;
  b.snapshot = w.snapshot;
  b.ready = true;
  shared_->eventTimesOut.erase(w.txid);
}

std::vector<batchlink::EventTime> TopologyPipeline::pendingEventTimes() const {
  std::lock_guard lk(shared_->mutex);
  std::vector<batchlink::EventTime> out;
  for (const auto& [txid, reports] : shared_->eventTimesOut)
    out.insert(out.end(), reports.begin(), reports.end());
  return out;
}

void TopologyPipeline::fail(const std::string& why) {
  shared_->fail(std::make_exception_ptr(std::runtime_error(why)));
}

uint64_t TopologyPipeline::lastCommitted() const {
  std::lock_guard lk(shared_->mutex);
  return shared_->committed;
}

void TopologyPipeline::stop() {
  if (!running_) return;
  shared_->stopWaiting();  // a sink task waiting for the offset log must not hold up the stop
  // Over several workers the others' tasks are not drained by a graceful stop here: every batch
  // this run dispatched was committed or is replayed, so the runtime is killed.
  if (shared_->hasFailed || worker_) {
    running_->kill();
  } else {
    running_->stop();
  }
  std::lock_guard lk(runningMutex_);
  finalMetrics_ = running_->metrics();
  running_.reset();
}

TopologyMetrics TopologyPipeline::metrics() const {
  std::lock_guard lk(runningMutex_);
  return running_ ? running_->metrics() : finalMetrics_;
}

void mergeBatchResult(BatchResult& into, BatchResult&& from) {
  for (auto& [key, blob] : from.snapshots) into.snapshots[key] = std::move(blob);
  mergeKeyedUpdates(into.keyed, std::move(from.keyed));
  if (from.watermark) into.watermark = from.watermark;
  into.sinks.insert(into.sinks.end(), from.sinks.begin(), from.sinks.end());
  into.originSamples.insert(into.originSamples.end(), from.originSamples.begin(),
                            from.originSamples.end());
  into.stateEntries += from.stateEntries;
  into.unrouted += from.unrouted;
  into.eventTimeMin = std::min(into.eventTimeMin, from.eventTimeMin);
  into.eventTimeMax = std::max(into.eventTimeMax, from.eventTimeMax);
  into.eventTimeSum += from.eventTimeSum;
  into.eventTimeCount += from.eventTimeCount;
  for (const auto& [name, o] : from.operators) {
    auto& t = into.operators[name];
    t.stateRows += o.stateRows;
    t.rowsEmitted += o.rowsEmitted;
    t.droppedByWatermark += o.droppedByWatermark;
  }
  for (auto& [state, changes] : from.entryChanges) {
    auto& t = into.entryChanges[state];
    for (auto& [k, v] : changes) t[k] = std::move(v);
  }
}

void mergeKeyedUpdates(std::map<std::string, KeyedStateUpdates>& into,
                       std::map<std::string, KeyedStateUpdates>&& from) {
  for (auto& [name, upd] : from) {
    auto [it, fresh] = into.try_emplace(name, std::move(upd));
    if (fresh) continue;
    if (it->second.kind != upd.kind) {
      throw std::logic_error("keyed state '" + name + "' is written as " +
                             stateKindName(it->second.kind) + " and as " +
                             stateKindName(upd.kind) + " in one batch");
    }
    for (auto& [key, f] : upd.updates) {
      auto [kt, added] = it->second.updates.try_emplace(key, f);
      if (!added) {
        Update first = std::move(kt->second);
        kt->second = [first, second = std::move(f)](std::optional<std::string_view> old) {
          std::optional<std::string> mid = first(old);
          return second(mid ? std::optional<std::string_view>(*mid) : std::nullopt);
        };
      }
    }
  }
}

}  // namespace gale
