// The continuous-mode runtime's handle: launching the executors (one thread per task, see
// private/executor.h and docs/runtime.md), stopping them and reading their metrics.
#include "gale/topology/runtime.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <set>
#include <stdexcept>

#include "gale/core/log.h"
#include "private/acker_executor.h"
#include "private/bolt_executor.h"
#include "private/checkpoint_link.h"
#include "private/exactly_once.h"
#include "private/runtime_shared.h"
#include "private/spout_executor.h"

namespace gale {

namespace {

std::atomic<uint64_t> gInstances{0};

// How many fused links a task is from the head of its chain (0: it runs its own thread).
int chainDepth(const RuntimeShared& sh, TaskId t) {
  const auto& comps = sh.topology.components();
  int c = static_cast<int>(&sh.topology.componentOfTask(t) - comps.data());
  int depth = 0;
  for (; sh.fusion.into[static_cast<size_t>(c)] >= 0; c = sh.fusion.into[static_cast<size_t>(c)])
    ++depth;
  return depth;
}

std::unique_ptr<Executor> makeExecutor(RuntimeShared& sh, TaskId t) {
  if (sh.isAcker(t)) return std::make_unique<AckerExecutor>(sh, t);
  if (sh.topology.componentOfTask(t).isSpout()) return std::make_unique<SpoutExecutor>(sh, t);
  return std::make_unique<BoltExecutor>(sh, t);
}

}  // namespace

// ------------------------------------------------------------------ the handle

class RunningTopology::Impl {
 public:
  std::unique_ptr<RuntimeShared> sh;
  std::vector<std::unique_ptr<Executor>> tasks;  // local tasks only
  bool joined = false;
  // Exactly-once: the checkpoint coordinator (metrics), and a worker's link to its job's
  // coordinator (checkpoint_link.h), declared after `sh`, so it is gone (its thread stopped)
  // before `sh` is.
  std::shared_ptr<CheckpointCoordinator> coordinator;
  std::shared_ptr<CheckpointLink> link;

  void shutdownAndJoin() {
    if (joined) return;
    sh->shutdown = true;
    sh->stopWake.signal();
    for (auto& t : tasks) t->join();
    joined = true;
    flushLogRepeats();  // the counts of repeated lines still held back are written now
  }
  bool allFinished() {
    std::lock_guard lock(sh->mutex);
    return sh->remaining == 0;
  }
};

RunningTopology::RunningTopology(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RunningTopology::RunningTopology(RunningTopology&&) noexcept = default;
RunningTopology& RunningTopology::operator=(RunningTopology&&) noexcept = default;
RunningTopology::~RunningTopology() {
  if (impl_ && !impl_->joined) kill();
}

void RunningTopology::stop() {
  impl_->sh->stopping = true;
  impl_->sh->stopWake.signal();
  waitUntilDone();
}

std::string RunningTopology::error() const {
  std::lock_guard lock(impl_->sh->mutex);
  return impl_->sh->failure;
}

void RunningTopology::kill() {
  impl_->sh->killed = true;
  impl_->sh->stopWake.signal();
  impl_->shutdownAndJoin();
}

void RunningTopology::waitUntilDone() {
  {
    std::unique_lock lock(impl_->sh->mutex);
    impl_->sh->cv.wait(lock, [&] { return impl_->sh->remaining == 0 || impl_->sh->killed; });
  }
  impl_->shutdownAndJoin();
  if (std::string e = error(); !e.empty()) throw std::runtime_error(e);
}

bool RunningTopology::waitUntilDone(Duration timeout) {
  {
    std::unique_lock lock(impl_->sh->mutex);
    if (!impl_->sh->cv.wait_for(lock, timeout, [&] {
          return impl_->sh->remaining == 0 || impl_->sh->killed;
        }))
      return false;
  }
  impl_->shutdownAndJoin();
  if (std::string e = error(); !e.empty()) throw std::runtime_error(e);
  return true;
}

bool RunningTopology::done() const { return impl_->joined || impl_->allFinished(); }

void RunningTopology::deactivate() { impl_->sh->deactivated = true; }
void RunningTopology::activate() { impl_->sh->deactivated = false; }
bool RunningTopology::active() const { return !impl_->sh->deactivated.load(); }
void RunningTopology::requestStop() {
  impl_->sh->stopping = true;
  impl_->sh->stopWake.signal();
}
const Topology& RunningTopology::topology() const { return impl_->sh->topology; }

int RunningTopology::taskCount() const { return impl_->sh->numTasks; }
PeerStats RunningTopology::peerStats() const { return impl_->sh->transport.peerStats(); }

std::vector<TaskId> RunningTopology::ackerTasks() const {
  std::vector<TaskId> out;
  for (int a = 0; a < impl_->sh->numAckers; ++a) out.push_back(impl_->sh->firstAcker + a);
  return out;
}

std::string RunningTopology::endpointOf(TaskId task) const {
  return impl_->sh->endpoints.at(static_cast<size_t>(task));
}

TaskMetrics ComponentMetrics::total() const {
  TaskMetrics t;
  t.task = tasks.empty() ? -1 : tasks.front().task;
  for (const auto& m : tasks) {
    t.emitted += m.emitted;
    t.transferred += m.transferred;
    t.executed += m.executed;
    t.acked += m.acked;
    t.failed += m.failed;
    t.errors += m.errors;
    t.framesReceived += m.framesReceived;
    t.framesSentToTask += m.framesSentToTask;
    t.malformedFrames += m.malformedFrames;
    t.blockedFlushes += m.blockedFlushes;
    t.bufferedItems += m.bufferedItems;
    t.pending += m.pending;
    t.pendingLimit += m.pendingLimit;
    t.timedOut += m.timedOut;
    t.retried += m.retried;
    t.deadLettered += m.deadLettered;
    t.unrouted += m.unrouted;
    t.capacity = std::max(t.capacity, m.capacity);
    t.busyTimeMsPerSecond = std::max(t.busyTimeMsPerSecond, m.busyTimeMsPerSecond);
    t.backPressuredTimeMsPerSecond =
        std::max(t.backPressuredTimeMsPerSecond, m.backPressuredTimeMsPerSecond);
    t.idleTimeMsPerSecond = &m == &tasks.front()
                                ? m.idleTimeMsPerSecond
                                : std::min(t.idleTimeMsPerSecond, m.idleTimeMsPerSecond);
    t.idleInputs += m.idleInputs;
    if (!m.lastError.empty() && (t.lastError.empty() || m.lastErrorTime > t.lastErrorTime)) {
      t.lastError = m.lastError;
      t.lastErrorTime = m.lastErrorTime;
    }
    t.executeLatency.merge(m.executeLatency);
    t.processLatency.merge(m.processLatency);
    t.completeLatency.merge(m.completeLatency);
  }
  // The component's watermark: the min over its tasks that are not idle (all idle: the min
  // over all of them, marked idle).
  for (bool idleToo : {false, true}) {
    for (const auto& m : tasks)
      if (m.watermark && (idleToo || !m.watermarkIdle) && (!t.watermark || *m.watermark < *t.watermark))
        t.watermark = m.watermark;
    if (t.watermark) {
      t.watermarkIdle = idleToo;
      break;
    }
  }
  return t;
}

const ComponentMetrics* TopologyMetrics::find(std::string_view name) const {
  for (const auto& c : components)
    if (c.name == name) return &c;
  return nullptr;
}

TopologyMetrics RunningTopology::metrics() const {
  RuntimeShared& sh = *impl_->sh;
  TopologyMetrics out;
  auto fill = [&](TaskId t) {
    TaskMetrics m;
    MetricsCell& c = *sh.cells[static_cast<size_t>(t)];
    m.task = t;
    m.emitted = c.emitted.load(std::memory_order_relaxed);
    m.transferred = c.transferred.load(std::memory_order_relaxed);
    m.executed = c.executed.load(std::memory_order_relaxed);
    m.acked = c.acked.load(std::memory_order_relaxed);
    m.failed = c.failed.load(std::memory_order_relaxed);
    m.errors = c.errors.load(std::memory_order_relaxed);
    m.framesReceived = c.framesReceived.load(std::memory_order_relaxed);
    m.framesSentToTask = sh.framesSentTo[static_cast<size_t>(t)].load(std::memory_order_relaxed);
    m.malformedFrames = c.malformed.load(std::memory_order_relaxed);
    m.blockedFlushes = c.blocked.load(std::memory_order_relaxed);
    m.bufferedItems = c.buffered.load(std::memory_order_relaxed);
    m.pending = c.pending.load(std::memory_order_relaxed);
    m.pendingLimit = c.pendingLimit.load(std::memory_order_relaxed);
    m.timedOut = c.timedOut.load(std::memory_order_relaxed);
    m.retried = c.retried.load(std::memory_order_relaxed);
    m.deadLettered = c.deadLettered.load(std::memory_order_relaxed);
    m.unrouted = c.unrouted.load(std::memory_order_relaxed);
    m.capacity = static_cast<double>(c.capacityPpm.load(std::memory_order_relaxed)) / 1e6;
    auto msPerSecond = [](const std::atomic<uint64_t>& us) {
      return static_cast<double>(us.load(std::memory_order_relaxed)) / 1e3;
    };
    m.busyTimeMsPerSecond = msPerSecond(c.busyUsPerSecond);
    m.backPressuredTimeMsPerSecond = msPerSecond(c.backPressuredUsPerSecond);
    m.idleTimeMsPerSecond = msPerSecond(c.idleUsPerSecond);
    int64_t wm = c.watermark.load(std::memory_order_relaxed);
    if (wm != INT64_MIN) m.watermark = Timestamp{wm};
    m.watermarkIdle = c.watermarkIdle.load(std::memory_order_relaxed);
    m.idleInputs = c.idleInputs.load(std::memory_order_relaxed);
    std::lock_guard lock(c.mutex);
    m.executeLatency = c.execute;
    m.processLatency = c.process;
    m.completeLatency = c.complete;
    m.lastError = c.lastError;
    m.lastErrorTime = Timestamp{c.lastErrorMicros};
    return m;
  };
  for (const auto& comp : sh.topology.components()) {
    ComponentMetrics cm;
    cm.name = comp.name;
    cm.spout = comp.isSpout();
    if (int into = sh.fusion.into[static_cast<size_t>(&comp - sh.topology.components().data())];
        into >= 0)
      cm.fusedInto = sh.topology.components()[static_cast<size_t>(into)].name;
    for (int i = 0; i < comp.parallelism; ++i)
      if (sh.local(comp.firstTask + i)) cm.tasks.push_back(fill(comp.firstTask + i));
    out.components.push_back(std::move(cm));
  }
  if (sh.numAckers) {
    ComponentMetrics cm;
    cm.name = kAckerName;
    for (int a = 0; a < sh.numAckers; ++a)
      if (sh.local(sh.firstAcker + a)) cm.tasks.push_back(fill(sh.firstAcker + a));
    out.components.push_back(std::move(cm));
  }
  if (impl_->coordinator) out.checkpointsTimedOut = impl_->coordinator->timedOut();
  return out;
}

int totalTasks(const Topology& topology, const Continuous& config) {
  bool acking = config.acking && config.guarantee == Guarantee::AtLeastOnce;
  return topology.taskCount() + (acking ? config.numAckers : 0);
}

namespace {

void checkConfig(const Continuous& c) {
  auto bad = [](const std::string& why) {
    throw std::invalid_argument("gale::Continuous: " + why);
  };
  if (c.acking && c.numAckers < 1) bad("numAckers must be at least 1 when acking is on");
  if (c.acking && c.maxSpoutPending < 1) bad("maxSpoutPending must be at least 1");
  if (c.messageTimeout.count() <= 0) bad("messageTimeout must be positive");
  if (c.highWaterMark < 1) bad("highWaterMark must be at least 1");
  if (c.maxItemsPerFrame < 1) bad("maxItemsPerFrame must be at least 1");
  if (c.metricsInterval.count() <= 0) bad("metricsInterval must be positive");
  if (c.spinBudget.count() < 0 || c.idleSpin.count() < 0)
    bad("spinBudget and idleSpin must be >= 0");
  if (c.spoutWakeTimeout.count() < 0) bad("spoutWakeTimeout must be >= 0");
  if (c.retryBackoffMin.count() < 0 || c.retryBackoffMax < c.retryBackoffMin)
    bad("retryBackoffMin must be >= 0 and retryBackoffMax >= retryBackoffMin");
}

// A worker's spouts start once its senders to the other workers' tasks have connected: the
// other workers start at about the same time but not at once, and tuples emitted before would
// wait in the senders' queues, charged to latency (100+ ms at start-up) or timing out. Waits up
// to Continuous::peerConnectTimeout, saying every 5 s whom it waits for.
void awaitOtherWorkers(RuntimeShared& sh, const std::vector<std::unique_ptr<Executor>>& tasks) {
  using std::chrono::steady_clock;
  const auto start = steady_clock::now();
  const auto deadline = start + sh.config.peerConnectTimeout;
  auto nextLog = start + std::chrono::seconds(5);
  for (;;) {
    std::set<int> missing;
    for (const auto& task : tasks)
      for (TaskId t : task->unconnectedRemoteTargets(
               missing.empty() ? std::chrono::milliseconds(20) : std::chrono::milliseconds(0)))
        missing.insert(sh.workerOfTask[static_cast<size_t>(t)]);
    if (missing.empty()) return;
    auto now = steady_clock::now();
    std::string who;
    for (int w : missing)
      who += (who.empty() ? "" : ", ") + std::to_string(w) + " (" +
             sh.endpoints[static_cast<size_t>(std::find(sh.workerOfTask.begin(),
                                                        sh.workerOfTask.end(), w) -
                                              sh.workerOfTask.begin())] + ")";
    if (now >= deadline) {
      if (sh.config.peerConnectTimeout > Duration::zero())
        logWarn("worker " + std::to_string(sh.self) + ": starting its spouts without a "
                "connection to worker(s) " + who + "; tuples to them wait until they come up");
      return;
    }
    if (now >= nextLog) {
      logInfo("worker " + std::to_string(sh.self) + ": waiting for worker(s) " + who +
              " before starting its spouts");
      nextLog += std::chrono::seconds(5);
    }
  }
}

RunningTopology launch(const Topology& topology, Continuous config,
                       const WorkerAssignment* assignment,
                       std::shared_ptr<CheckpointLink> link = nullptr,
                       std::shared_ptr<CheckpointCoordinator> coordinator = nullptr) {
  checkConfig(config);
  auto impl = std::make_unique<RunningTopology::Impl>();
  impl->sh = std::make_unique<RuntimeShared>();
  RuntimeShared& sh = *impl->sh;
  sh.topology = topology;
  sh.config = config;
  sh.clock = config.clock ? config.clock : &SystemClock::instance();
  sh.numAckers = config.acking ? config.numAckers : 0;
  sh.firstAcker = topology.taskCount();
  sh.fusion = planFusion(topology, config.fusion,
                         assignment ? assignment->workerOfTask : std::vector<int>{});
  sh.numTasks = topology.taskCount() + sh.numAckers;
  sh.framesSentTo = std::make_unique<std::atomic<uint64_t>[]>(static_cast<size_t>(sh.numTasks));
  for (int t = 0; t < sh.numTasks; ++t) sh.cells.push_back(std::make_unique<MetricsCell>());
  if (assignment) {
    if (static_cast<int>(assignment->workerOfTask.size()) != sh.numTasks)
      throw std::invalid_argument(
          "WorkerAssignment: workerOfTask has " +
          std::to_string(assignment->workerOfTask.size()) + " entries, the topology has " +
          std::to_string(sh.numTasks) + " tasks (ackers included: see totalTasks())");
    for (int w : assignment->workerOfTask)
      if (w < 0 || w >= static_cast<int>(assignment->endpoints.size()))
        throw std::invalid_argument("WorkerAssignment: worker " + std::to_string(w) +
                                    " has no endpoint");
    if (config.curve) {
      if (assignment->publicKeys.size() != assignment->endpoints.size())
        throw std::invalid_argument(
            "WorkerAssignment: with Continuous::curve, publicKeys needs one key per worker (" +
            std::to_string(assignment->endpoints.size()) + "), it has " +
            std::to_string(assignment->publicKeys.size()));
      if (assignment->self < 0 ||
          assignment->self >= static_cast<int>(assignment->publicKeys.size()) ||
          assignment->publicKeys[static_cast<size_t>(assignment->self)] !=
          config.curve->keyPair.publicKey)
        throw std::invalid_argument(
            "WorkerAssignment: publicKeys[self] is not the public key of Continuous::curve's "
            "key pair");
      sh.workerKeys = assignment->publicKeys;
    }
    sh.workerOfTask = assignment->workerOfTask;
    sh.self = assignment->self;
    for (int t = 0; t < sh.numTasks; ++t)
      sh.endpoints.push_back(
          taskEndpoint(assignment->endpoints[static_cast<size_t>(sh.workerOfTask[t])], t));
  } else {
    std::string instance =
        std::to_string(::getpid()) + "-" + std::to_string(gInstances.fetch_add(1));
    for (int t = 0; t < sh.numTasks; ++t) {
      switch (config.transport) {
        case TransportScheme::Inproc:
          sh.endpoints.push_back("inproc://gale-" + instance + "-" + std::to_string(t));
          break;
        case TransportScheme::Ipc:
          sh.endpoints.push_back("ipc://" + config.ipcDir + "/gale-" + instance + "-" +
                                 std::to_string(t));
          break;
        case TransportScheme::Tcp: sh.endpoints.push_back("tcp://" + config.tcpHost + ":0"); break;
      }
    }
  }
  if (config.curve) sh.transport.enableCurve(*config.curve);  // before any inbox binds
  // Clean start: every local inbox is bound before any sender connects, and every task is
  // opened/prepared before any spout emits.
  sh.executors.assign(static_cast<size_t>(sh.numTasks), nullptr);
  int threads = 0;
  for (int t = 0; t < sh.numTasks; ++t) {
    if (!sh.local(t)) continue;
    impl->tasks.push_back(makeExecutor(sh, t));
    sh.executors[static_cast<size_t>(t)] = impl->tasks.back().get();
    sh.endpoints[static_cast<size_t>(t)] = impl->tasks.back()->boundEndpoint();
    if (!sh.isAcker(t)) ++sh.remaining;
    if (!sh.fused(t)) ++threads;
  }
  // Fused tasks join their host's thread, upstream first (a chain's order: declaration order
  // need not be).
  for (int depth = 1;; ++depth) {
    bool any = false;
    for (int t = 0; t < sh.topology.taskCount(); ++t) {
      if (!sh.executors[static_cast<size_t>(t)] || chainDepth(sh, t) != depth) continue;
      any = true;
      sh.executors[static_cast<size_t>(sh.fusion.hostOf[static_cast<size_t>(t)])]->host(
          *sh.executors[static_cast<size_t>(t)]);
    }
    if (!any) break;
  }
  if (link) {
    // The job lost a worker: this one stops too, and restarts from the last checkpoint.
    link->onAbort([&sh](const std::string& why) { sh.fail(why); });
    // Impl holds the link alone (runExactlyOnce handed it over) and destroys it, joining its
    // thread, before `sh`: neither callback outlives what it points to.
    sh.onFail = [l = link.get()](const std::string& why) { l->workerFailed(why); };
    impl->link = std::move(link);
  }
  impl->coordinator = std::move(coordinator);
  for (auto& task : impl->tasks) task->connect();
  if (assignment) {
    awaitOtherWorkers(sh, impl->tasks);
    // Those it gave up on too: their monitors would queue events nobody reads.
    for (auto& task : impl->tasks) task->stopWatchingConnections();
  }
  for (auto& task : impl->tasks) task->start();
  std::string error;
  {
    std::unique_lock lock(sh.mutex);
    sh.cv.wait(lock, [&] { return sh.ready == threads; });
    error = sh.startError;
    if (!error.empty()) sh.killed = true;
    sh.go = true;
    sh.cv.notify_all();
  }
  if (!error.empty()) {
    impl->shutdownAndJoin();
    throw std::runtime_error(error);
  }
  return RunningTopology(std::move(impl));
}

}  // namespace

std::string taskEndpoint(const std::string& base, TaskId t) {
  if (base.rfind("tcp://", 0) == 0) {
    auto colon = base.rfind(':');
    int port = std::stoi(base.substr(colon + 1));
    return base.substr(0, colon + 1) + std::to_string(port + t);
  }
  return base + "-" + std::to_string(t);
}

RunningTopology launchCheckpointed(const Topology& wrapped, Continuous config,
                                   const WorkerAssignment* assignment,
                                   std::shared_ptr<CheckpointCoordinator> coordinator,
                                   std::shared_ptr<CheckpointLink> link) {
  return launch(wrapped, std::move(config), assignment, std::move(link), std::move(coordinator));
}

RunningTopology runContinuous(const Topology& topology, Continuous config) {
  if (config.guarantee == Guarantee::ExactlyOnce) return runExactlyOnce(topology, std::move(config));
  if (config.guarantee == Guarantee::None) config.acking = false;
  return launch(topology, std::move(config), nullptr);
}

RunningTopology runWorker(const Topology& topology, Continuous config,
                          WorkerAssignment assignment) {
  if (config.guarantee == Guarantee::ExactlyOnce)
    return runExactlyOnce(topology, std::move(config), &assignment);
  if (config.guarantee == Guarantee::None) config.acking = false;
  return launch(topology, std::move(config), &assignment);
}

}  // namespace gale
