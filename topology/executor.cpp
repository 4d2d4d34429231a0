// The part of a task's thread every kind shares; see private/executor.h and docs/runtime.md.
#include "private/executor.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <random>
#include <stdexcept>

#include "gale/core/log.h"
#include "gale/core/source.h"
#include "gale/core/thread_name.h"
#include "private/bolt_executor.h"

namespace gale {

Executor::Executor(RuntimeShared& sh, TaskId id) : sh_(sh), id_(id), cell_(*sh.cells[id]) {
  if (!sh.isAcker(id)) comp_ = &sh.topology.componentOfTask(id);
  rng_ = std::random_device{}() ^ (static_cast<uint64_t>(id) << 32) ^ steadyNow();
  if (sh.fused(id)) return;  // called directly by its host
  ChannelOptions opts = channelOptions();
  inbox_ = std::make_unique<ChannelReceiver>(sh.transport, sh.endpoints[id],
                                             sh.topology.registry(), opts);
}

const std::string& Executor::name() const {
  static const std::string acker = kAckerName;
  return comp_ ? comp_->name : acker;
}

void Executor::connect() {
  std::vector<TaskId> targets;
  if (comp_) {
    const auto& comps = sh_.topology.components();
    int self = static_cast<int>(comp_ - comps.data());
    for (const auto& s : comp_->outputs) {
      OutStream os;
      os.name = s.name;
      if (s.name == kDefaultStream) os.nameChars = kDefaultStream;
      os.id = s.id;
      os.schema = *sh_.topology.registry()->find(s.id);
      for (const FieldSpec& f : os.schema->fields.specs()) os.types.push_back(f.type);
      os.router = std::make_unique<Router>(sh_.topology, *comp_, s, sh_.workerOfTask, sh_.self,
                                           nextRandom());
      auto subscribers = sh_.topology.subscribers(comp_->name, s.name);
      for (const Subscription& sub : subscribers)
        if (sh_.fusion.into[static_cast<size_t>(sub.consumer - comps.data())] == self)
          os.router->forwardTo(sub.consumer->name,
                               sub.consumer->firstTask + (id_ - comp_->firstTask));
      os.unsubscribed = subscribers.empty();
      for (TaskId t : os.router->allTargets()) targets.push_back(t);
      outs_.push_back(std::move(os));
    }
    downstream_ = targets;
    std::sort(downstream_.begin(), downstream_.end());
    downstream_.erase(std::unique(downstream_.begin(), downstream_.end()), downstream_.end());
  }
  extraTargets(targets);
  senders_.resize(static_cast<size_t>(sh_.numTasks));
  ChannelOptions opts = channelOptions();
  for (TaskId t : targets) {
    auto& slot = senders_[static_cast<size_t>(t)];
    if (slot) continue;
    slot = std::make_unique<Out>();
    slot->target = t;
    if (sh_.fused(t)) {
      slot->fused = sh_.executors[static_cast<size_t>(t)];
      continue;
    }
    if (!sh_.workerKeys.empty())
      opts.curveServerKey = sh_.workerKeys[static_cast<size_t>(sh_.workerOfTask[t])];
    opts.watchConnection = !sh_.local(t);
    slot->sender = std::make_unique<ChannelSender>(sh_.transport, sh_.endpoints[t], id_, opts);
    active_.push_back(slot.get());
  }
  for (OutStream& os : outs_)
    if (const std::vector<TaskId>* fixed = os.router->fixedTargets(); fixed && fixed->size() == 1)
      os.fusedOnly = fusedBolt(senders_[static_cast<size_t>(fixed->front())]->fused);
  afterConnect();
}

std::vector<TaskId> Executor::unconnectedRemoteTargets(std::chrono::milliseconds waitForFirst) {
  std::vector<TaskId> out;
  for (Out* o : active_) {
    if (!o->sender || sh_.local(o->target)) continue;
    if (!o->sender->awaitConnected(out.empty() ? waitForFirst : std::chrono::milliseconds(0)))
      out.push_back(o->target);
  }
  return out;
}

void Executor::stopWatchingConnections() {
  for (Out* o : active_)
    if (o->sender) o->sender->stopWatching();
}

void Executor::onTuple(TaskId src, Tuple&&) {
  logWarn(name() + " task " + std::to_string(id_) + " got a tuple from task " +
          std::to_string(src) + " but does not read tuples; dropped");
}

ChannelOptions Executor::channelOptions() const {
  ChannelOptions o;
  o.highWaterMark = sh_.config.highWaterMark;
  o.maxItemsPerFrame = sh_.config.maxItemsPerFrame;
  o.peers = sh_.config.peerLimits;
  // Each task connects at most once to an inbox, so the workers' own connections always fit
  // under a cap of the task count (a smaller one would refuse, and storm, our own senders).
  o.peers.maxConnections = std::max(o.peers.maxConnections, sh_.numTasks + 8);
  return o;
}

Executor::OutStream& Executor::findStream(std::string_view name) {
  for (size_t i = 0; i < outs_.size(); ++i)
    if (outs_[i].name == name) {
      lastStream_ = &outs_[i];
      return outs_[i];
    }
  std::string declared;
  for (auto& o : outs_) declared += (declared.empty() ? "" : ", ") + o.name;
  badEmit("component '" + this->name() + "' emitted on stream '" + std::string(name) +
          "', which it did not declare (declared: " + (declared.empty() ? "none" : declared) +
          "); declare it in declareOutputFields()");
}

void Executor::badValues(const OutStream& os, const Values& values) {
  badEmit("component '" + name() + "' emitted on stream '" + os.name +
          "' values that do not fit its declared fields: " + os.schema->fields.mismatch(values));
}

// A component that emits what it did not declare has a bug that every record will hit:
// retrying or dead-lettering each record would only hide it (with acking) or drop everything
// (without). The topology stops, as a micro-batch job does (docs/runtime.md, "Bad emits").
void Executor::badEmit(const std::string& why) {
  sh_.fail(why);
  throw std::invalid_argument(why);
}

// A tuple for nobody: counted, and logged (rate-limited by core/log) unless it is on the
// default stream (a last bolt that declares outputs nobody reads is common and harmless).
void Executor::unrouted(const OutStream& os) {
  ++unrouted_;
  if (os.name != kDefaultStream)
    logWarn("component '" + name() + "' emitted on stream '" + os.name +
            "', which no component subscribes to: the tuple is dropped and counted (metric "
            "unrouted); subscribe to " + name() + ":" + os.name + " to keep them");
}

// Sends what `o` holds, waiting while the receiver is full. A spout keeps serving its inbox
// (acks) while it waits: that is what keeps spout -> bolt -> acker -> spout from deadlocking.
void Executor::flush(Out& o) {
  if (!o.sender->tryFlush()) {
    int64_t blockedSince = steadyNow();
    std::function<void()> whileBlocked;
    if (host_->servesInboxWhileBlocked())
      whileBlocked = [h = host_] {
        h->inBlockedFlush_ = true;
        h->inbox_->drain(*h, 16);
        h->inBlockedFlush_ = false;
      };
    o.sender->flush(whileBlocked, &sh_.killed);
    backPressuredNanos_ += steadyNow() - blockedSince;
  }
  countFrames(o);
}

void Executor::countFrames(Out& o) {
  uint64_t f = o.sender->framesSent();
  if (f != o.framesCounted) {
    sh_.framesSentTo[static_cast<size_t>(o.target)].fetch_add(f - o.framesCounted,
                                                              std::memory_order_relaxed);
    o.framesCounted = f;
  }
}

void Executor::flushAll() {
  lastFlush_ = steadyNow();
  beforeFlushAll();
  for (Out* o : active_)
    if (!o->sender->empty()) flush(*o);
}

void Executor::componentError(const char* what, const std::exception& e) {
  ++errors_;
  logError("component '" + name() + "' task " + std::to_string(id_) + ": " + what +
           " threw: " + e.what());
  std::lock_guard lock(cell_.mutex);  // for the metrics (Storm's "last error")
  cell_.lastError = std::string(what) + " threw: " + e.what();
  cell_.lastErrorMicros = sh_.clock->now().micros;
  if (dynamic_cast<const StopTopology*>(&e)) sh_.fail(e.what());
  // A source that cannot go on (SourceFatalError: e.g. Kafka's failOnDataLoss) stops the
  // topology instead of being asked again.
  else if (dynamic_cast<const SourceFatalError*>(&e))
    sh_.fail("component '" + name() + "': " + e.what());
}

TopologyContext Executor::context() const {
  TopologyContext ctx;
  ctx.component = name();
  ctx.task = id_;
  ctx.taskIndex = comp_ ? id_ - comp_->firstTask : id_ - sh_.firstAcker;
  ctx.parallelism = comp_ ? comp_->parallelism : sh_.numAckers;
  ctx.clock = sh_.clock;
  ctx.acking = sh_.config.acking;
  ctx.topology = &sh_.topology;
  return ctx;
}

std::string Executor::openAll() {
  std::string error;
  for (Executor* e : allOf()) {
    try {
      e->open(e->context());
    } catch (const std::exception& ex) {
      if (error.empty())
        error = "component '" + e->name() + "' task " + std::to_string(e->id_) + " failed to " +
                e->openVerb() + ": " + ex.what();
    }
  }
  return error;
}

void Executor::run() {
  nameThisThread((comp_ ? "gale-task-" : "gale-acker-") + std::to_string(id_));
  // Short sleeps (spout back-off) should last what they ask for, not the default 50 µs of
  // timer slack more.
  prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
  std::string error = openAll();
  {
    std::unique_lock lock(sh_.mutex);
    if (!error.empty() && sh_.startError.empty()) sh_.startError = error;
    ++sh_.ready;
    sh_.cv.notify_all();
    sh_.cv.wait(lock, [&] { return sh_.go; });
  }
  if (error.empty() && !sh_.killed) loop();
  // Leaving.
  bool graceful = !sh_.killed.load();
  for (Executor* e : allOf()) {
    if (graceful) {
      e->flushAll();
      for (Out* o : e->active_) o->sender->socket().set(zmq::sockopt::linger, 2000);
    }
    try {
      e->close();
    } catch (const std::exception& ex) {
      e->componentError("close/cleanup", ex);
    }
    e->publish(steadyNow());
  }
}

void Executor::loop() {
  int64_t now = sh_.clock->monoNanos();
  for (Executor* e : allOf()) e->beforeLoop(now);
  int64_t nextPublish = steadyNow() + nanos(sh_.config.metricsInterval);
  int64_t backoff = nanos(sh_.config.spoutBackoffMin);
  while (!sh_.killed.load(std::memory_order_relaxed) &&
         !sh_.shutdown.load(std::memory_order_relaxed)) {
    size_t n = drainInbox();
    bool emitted = step();

    // Time-driven work, by the configured clock (a ManualClock in tests).
    now = sh_.clock->monoNanos();
    timers(now);
    for (Executor* g : guests_) g->timers(now);
    int64_t real = steadyNow();
    if (real >= nextPublish) {
      nextPublish = real + nanos(sh_.config.metricsInterval);
      publish(real);
      for (Executor* g : guests_) g->publish(real);
    }
    if (n == kInboxBatch) continue;  // more is waiting: keep packing frames
    if (!n && !emitted) {  // about to wait: what the bolts serve when idle, flushed below
      idle();
      for (Executor* g : guests_) g->idle();
    }
    flushAll();             // nothing more ready: send what we have (latency first)
    for (Executor* g : guests_) g->flushAll();
    checkFinished();
    for (Executor* g : guests_) g->checkFinished();
    if (n || emitted) {
      backoff = nanos(sh_.config.spoutBackoffMin);
      idleSince_ = 0;
      continue;
    }
    idleWait(backoff);
    if (growsBackoff())
      backoff = std::min<int64_t>(backoff * 2, nanos(sh_.config.spoutBackoffMax));
  }
}

void Executor::checkFinished() {
  if (finished_ || !finishedStream()) return;
  finished_ = true;
  publish(steadyNow());
  sh_.taskFinished();
}

// Nothing to do: spin on the inbox briefly (a blocking wake-up costs tens of µs), then block.
// The spin yields the CPU between polls: with more task threads than cores, a spinning task
// must not keep a busy one (on this or another topology) off the core.
// The time waited (until drainStart_: the last poll, or when the frame that ended the wait began
// to be handled) is idle time, or back-pressured time for a spout at its limit of trees in flight.
void Executor::idleWait(int64_t spoutBackoff) {
  int64_t waitStart = steadyNow();
  int64_t& waited = waitIsBackPressure() ? backPressuredNanos_ : idleNanos_;
  waitForInput(waitStart, spoutBackoff);
  waited += std::max<int64_t>(0, drainStart_ - waitStart);
}

void Executor::waitForInput(int64_t waitStart, int64_t spoutBackoff) {
  if (sh_.config.spinBudget.count() > 0 && spin()) return;
  // An idle spout whose source says when records arrive (Spout::wakeFd, e.g. a Kafka source's
  // queue events) blocks on that and its inbox: no yield loop, no back-off sleeps. Polling, four
  // idle Kafka spout tasks kept the CPUs that librdkafka's threads needed switching.
  const int wake = sleepsWhenIdle() ? wakeFd() : -1;
  if (wake < 0) {
    int64_t spinUntil = waitStart + nanos(sh_.config.idleSpin);
    do {
      if (drainInbox()) return;
      std::this_thread::yield();
    } while (steadyNow() < spinUntil);
    if (sleepsWhenIdle()) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(spoutBackoff));
      drainStart_ = steadyNow();
      return;
    }
  }
  // Wait for a frame first, then take it: the wait is not busy time (nor process latency).
  // Blocked on the wake fd, the stop is polled too (Shared::stopWake): the timeout is then only
  // for the spout's timers (Continuous::spoutWakeTimeout).
  zmq::pollitem_t items[3] = {{inbox_->socket().handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake, ZMQ_POLLIN, 0},
                              {nullptr, sh_.stopWake.fd, ZMQ_POLLIN, 0}};
  zmq::poll(items, wake >= 0 ? 3 : 1,
            wake >= 0 ? std::chrono::duration_cast<std::chrono::milliseconds>(
                            sh_.config.spoutWakeTimeout)
                      : blockTimeout());
  drainStart_ = steadyNow();
  if (wake >= 0 && (items[1].revents & ZMQ_POLLIN)) {
    // Emptied before nextTuple() looks at the source, so records arriving after the look
    // signal again.
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(wake, &count, sizeof count);
  }
  if (inbox_->receive(std::chrono::milliseconds(0), *this)) busyNanos_ += steadyNow() - drainStart_;
}

size_t Executor::drainInbox() {
  drainStart_ = steadyNow();
  size_t n = inbox_->drain(*this, kInboxBatch);
  if (n) {
    busyNanos_ += steadyNow() - drainStart_;
    cell_.framesReceived.store(inbox_->framesReceived(), std::memory_order_relaxed);
  }
  return n;
}

namespace {
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}
// A spinning spout asks its source again this often (a rate-limited source has a record due).
constexpr int64_t kSpoutSpinSliceNanos = 1'000;
}  // namespace

// Continuous::spinBudget: busy polling, within the budget counted from when the loop last found
// nothing to do. Returns true when the loop should go round again (input came, or a spout may
// try nextTuple() again); false when the budget is spent (the caller waits as without one).
// Polling the inbox is a ZeroMQ receive, which makes system calls even when nothing is there;
// local senders count the frames they sent to each task (framesSentTo), so the spin watches
// that count and polls the inbox only when it passed what this inbox received, or every 64
// rounds for frames from other processes, which are not counted.
bool Executor::spin() {
  int64_t now = steadyNow();
  if (idleSince_ == 0) idleSince_ = now;
  int64_t end = idleSince_ + nanos(sh_.config.spinBudget);
  if (now >= end) return false;
  int64_t until = sleepsWhenIdle() ? std::min(end, now + kSpoutSpinSliceNanos) : end;
  const std::atomic<uint64_t>& sent = sh_.framesSentTo[static_cast<size_t>(id_)];
  for (uint32_t round = 1;; ++round) {
    if (sent.load(std::memory_order_acquire) > inbox_->framesReceived() || round % 64 == 0)
      if (drainInbox()) return true;
    cpuRelax();
    if (round % 8 == 0 && (steadyNow() >= until || sh_.killed.load(std::memory_order_relaxed) ||
                           sh_.shutdown.load(std::memory_order_relaxed)))
      return true;
  }
}

void Executor::publish(int64_t real) {
  MetricsCell& c = cell_;
  c.emitted.store(emitted_, std::memory_order_relaxed);
  c.transferred.store(transferred_, std::memory_order_relaxed);
  c.executed.store(executed_, std::memory_order_relaxed);
  c.acked.store(acked_, std::memory_order_relaxed);
  c.failed.store(failed_, std::memory_order_relaxed);
  c.errors.store(errors_, std::memory_order_relaxed);
  c.timedOut.store(timedOut_, std::memory_order_relaxed);
  c.retried.store(retried_, std::memory_order_relaxed);
  c.deadLettered.store(deadLettered_, std::memory_order_relaxed);
  c.unrouted.store(unrouted_, std::memory_order_relaxed);
  if (inbox_) {
    c.framesReceived.store(inbox_->framesReceived(), std::memory_order_relaxed);
    c.malformed.store(inbox_->malformedFrames(), std::memory_order_relaxed);
  }
  uint64_t blocked = 0;
  for (Out* o : active_) blocked += o->sender->blockedFlushes();
  c.blocked.store(blocked, std::memory_order_relaxed);
  KindMetrics k = kindMetrics();
  c.pending.store(k.pending, std::memory_order_relaxed);
  c.pendingLimit.store(k.pendingLimit, std::memory_order_relaxed);
  c.buffered.store(k.buffered, std::memory_order_relaxed);
  c.idleInputs.store(k.idleInputs, std::memory_order_relaxed);
  c.watermark.store(k.watermark, std::memory_order_relaxed);
  c.watermarkIdle.store(k.watermarkIdle, std::memory_order_relaxed);
  if (lastPublish_ && real > lastPublish_) {
    double cap = static_cast<double>(busyNanos_) / static_cast<double>(real - lastPublish_);
    c.capacityPpm.store(static_cast<uint64_t>(std::min(cap, 1.0) * 1e6),
                        std::memory_order_relaxed);
    int64_t span = real - lastPublish_;
    int64_t idle = std::min(idleNanos_, span);
    int64_t blocked = std::min(backPressuredNanos_, span - idle);
    auto perSecond = [span](int64_t part) {
      return static_cast<uint64_t>(static_cast<double>(part) * 1e6 / static_cast<double>(span));
    };
    c.idleUsPerSecond.store(perSecond(idle), std::memory_order_relaxed);
    c.backPressuredUsPerSecond.store(perSecond(blocked), std::memory_order_relaxed);
    c.busyUsPerSecond.store(perSecond(span - idle - blocked), std::memory_order_relaxed);
  }
  busyNanos_ = 0;
  idleNanos_ = 0;
  backPressuredNanos_ = 0;
  lastPublish_ = real;
  // A histogram is 29 KB: copied only when it has grown since the last publish. The cell only
  // ever receives copies of this task's histograms, which only grow, so an equal count is an
  // equal histogram. (Acking off, the process and complete latencies stay empty: the copies of
  // all three were ~25 of the word count's instructions per word under callgrind, whose slowdown
  // multiplies the publishes per word; docs/benchmarks.md.)
  std::lock_guard lock(c.mutex);
  if (c.execute.count() != executeLat_.count()) c.execute = executeLat_;
  if (c.process.count() != processLat_.count()) c.process = processLat_;
  if (c.complete.count() != completeLat_.count()) c.complete = completeLat_;
}

}  // namespace gale
