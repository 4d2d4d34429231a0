// The continuous-mode runtime: one thread per task (executor = task), one inbox per task, one
// ChannelSender per downstream task. See docs/runtime.md for the design and its reasons.
#include "gale/topology/runtime.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "acker.h"
#include "gale/core/channel.h"
#include "gale/core/frame.h"
#include "gale/core/log.h"
#include "gale/core/source.h"
#include "gale/core/state_codec.h"
#include "gale/core/watermark.h"
#include "pending_limit.h"
#include "retry.h"
#include "router.h"

namespace gale {

namespace {

constexpr const char* kAckerName = "__acker";
constexpr uint64_t kIdleWatermark = 1;  // Control::value of a watermark from an idle task
// A Fail / TreeDone payload: "<component>\0<reason>", at most this long (it comes from peers
// and ends up in a dead-letter tuple; an exception text can be anything).
constexpr size_t kMaxFailReason = 1024;

std::string failReason(std::string_view component, std::string_view why) {
  std::string r(component);
  r.push_back('\0');
  r.append(why.substr(0, kMaxFailReason > r.size() ? kMaxFailReason - r.size() : 0));
  return r;
}

int64_t steadyNow() { return SystemClock::steadyNanos(); }
int64_t nanos(Duration d) { return toMicros(d) * 1000; }

uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// What other threads may read of one task: counters (relaxed atomics, written by the task) and
// latency histograms copied in every metricsInterval under a lock.
struct MetricsCell {
  std::atomic<uint64_t> emitted{0}, transferred{0}, executed{0}, acked{0}, failed{0}, errors{0},
      framesReceived{0}, malformed{0}, blocked{0}, buffered{0}, pending{0}, capacityPpm{0},
      pendingLimit{0}, timedOut{0}, retried{0}, deadLettered{0}, unrouted{0}, idleInputs{0};
  std::atomic<int64_t> watermark{INT64_MIN};
  std::atomic<bool> watermarkIdle{false};
  std::mutex mutex;
  Histogram execute, process, complete;
  std::string lastError;  // under mutex
  int64_t lastErrorMicros = 0;
};

std::atomic<uint64_t> gInstances{0};

// Frames taken from the inbox per drain before the loop looks at time and flushes: enough to
// batch under load, few enough that ticks, timeouts and metrics stay timely.
constexpr size_t kInboxBatch = 8;

// A bolt whose execute() is slow (a sampled call took longer than kSlowExecute) flushes what it
// holds (acks above all) at least every kMaxHold while it works through a full inbox; otherwise
// a frame of 256 tuples at 2 ms each would hold their acks for half a second, and the spouts
// would see completions in bursts (see PendingLimit).
constexpr int64_t kSlowExecuteNanos = 50'000;
constexpr int64_t kMaxHoldNanos = 1'000'000;

}  // namespace

class Task;

// State shared by the tasks of one running topology and its handle.
struct RuntimeShared {
  Topology topology;
  Continuous config;
  const Clock* clock = nullptr;
  int numTasks = 0;
  TaskId firstAcker = 0;
  int numAckers = 0;
  std::vector<int> workerOfTask;  // empty: everything is local
  int self = 0;
  std::vector<std::string> endpoints;
  std::vector<std::string> workerKeys;  // CURVE server key per worker (cross-process only)
  std::unique_ptr<std::atomic<uint64_t>[]> framesSentTo;
  std::vector<std::unique_ptr<MetricsCell>> cells;
  Transport transport{1};

  std::atomic<bool> stopping{false};  // graceful: spouts stop emitting and end their streams
  std::atomic<bool> shutdown{false};  // everything is done: leave the loops, clean up
  std::atomic<bool> killed{false};    // leave at once
  std::atomic<bool> deactivated{false};  // spouts do not call nextTuple() (Storm's deactivate)

  std::mutex mutex;
  std::condition_variable cv;
  int remaining = 0;  // local spout and bolt tasks that have not finished their stream
  int ready = 0;
  bool go = false;
  std::string startError;
  std::string failure;  // why the runtime stopped the topology (RunningTopology::error())

  bool local(TaskId t) const {
    return workerOfTask.empty() || workerOfTask[static_cast<size_t>(t)] == self;
  }
  bool isAcker(TaskId t) const { return t >= firstAcker; }
  TaskId ackerOf(uint64_t root) const {
    return firstAcker + static_cast<TaskId>(mix64(root) % static_cast<uint64_t>(numAckers));
  }
  void taskFinished() {
    std::lock_guard lock(mutex);
    --remaining;
    cv.notify_all();
  }
  // Stops the whole topology at once (in-flight tuples are dropped and replayed by the sources
  // on the next run): waitUntilDone() / stop() throw `why`.
  void fail(const std::string& why) {
    {
      std::lock_guard lock(mutex);
      if (!failure.empty()) return;
      failure = why;
      killed = true;
      cv.notify_all();
    }
    logError("topology stopped: " + why);
  }
};

// One executor. It is its own FrameHandler (items are processed as they are decoded) and owns
// the collectors its component sees.
class Task final : public FrameHandler {
 public:
  enum class Kind { Spout, Bolt, Acker };

  Task(RuntimeShared& sh, TaskId id) : sh_(sh), id_(id), cell_(*sh.cells[id]) {
    if (sh.isAcker(id)) {
      kind_ = Kind::Acker;
    } else {
      comp_ = &sh.topology.componentOfTask(id);
      kind_ = comp_->isSpout() ? Kind::Spout : Kind::Bolt;
    }
    rng_ = std::random_device{}() ^ (static_cast<uint64_t>(id) << 32) ^ steadyNow();
    ChannelOptions opts = channelOptions();
    inbox_ = std::make_unique<ChannelReceiver>(sh.transport, sh.endpoints[id],
                                               sh.topology.registry(), opts);
  }

  const std::string& boundEndpoint() const { return inbox_->endpoint(); }

  // Phase 2 (after every local inbox is bound): routes and senders.
  void connect() {
    std::vector<TaskId> targets;
    if (kind_ != Kind::Acker) {
      for (const auto& s : comp_->outputs) {
        OutStream os;
        os.name = s.name;
        os.id = s.id;
        os.schema = *sh_.topology.registry()->find(s.id);
        os.router = std::make_unique<Router>(sh_.topology, *comp_, s, sh_.workerOfTask, sh_.self,
                                             nextRandom());
        os.unsubscribed = sh_.topology.subscribers(comp_->name, s.name).empty();
        for (TaskId t : os.router->allTargets()) targets.push_back(t);
        outs_.push_back(std::move(os));
      }
      downstream_ = targets;
      std::sort(downstream_.begin(), downstream_.end());
      downstream_.erase(std::unique(downstream_.begin(), downstream_.end()), downstream_.end());
      if (sh_.config.acking)
        for (int a = 0; a < sh_.numAckers; ++a) targets.push_back(sh_.firstAcker + a);
    } else {
      for (const auto& c : sh_.topology.components())
        if (c.isSpout())
          for (int i = 0; i < c.parallelism; ++i) targets.push_back(c.firstTask + i);
    }
    senders_.resize(static_cast<size_t>(sh_.numTasks));
    ChannelOptions opts = channelOptions();
    for (TaskId t : targets) {
      auto& slot = senders_[static_cast<size_t>(t)];
      if (slot) continue;
      slot = std::make_unique<Out>();
      slot->target = t;
      if (!sh_.workerKeys.empty())
        opts.curveServerKey = sh_.workerKeys[static_cast<size_t>(sh_.workerOfTask[t])];
      slot->sender = std::make_unique<ChannelSender>(sh_.transport, sh_.endpoints[t], id_, opts);
      active_.push_back(slot.get());
    }
    if (kind_ == Kind::Bolt) {
      slotOf_.assign(static_cast<size_t>(sh_.numTasks), -1);
      for (const ComponentSpec* up : sh_.topology.upstreamOf(comp_->name))
        for (int i = 0; i < up->parallelism; ++i) {
          slotOf_[static_cast<size_t>(up->firstTask + i)] = static_cast<int>(slots_.size());
          slots_.emplace_back().task = up->firstTask + i;
          tracker_.addInput(up->firstTask + i);
        }
    }
  }

  void start() { thread_ = std::thread([this] { run(); }); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // ---- FrameHandler
  void onTuple(TaskId src, Tuple&& t) override {
    if (kind_ != Kind::Bolt) {
      logWarn(name() + " task " + std::to_string(id_) + " got a tuple from task " +
              std::to_string(src) + " but does not read tuples; dropped");
      return;
    }
    int s = src >= 0 && src < sh_.numTasks ? slotOf_[static_cast<size_t>(src)] : -1;
    if (s >= 0 && slots_[static_cast<size_t>(s)].blocked) {
      Slot& sl = slots_[static_cast<size_t>(s)];
      sl.buffer.emplace_back();
      sl.buffer.back().isTuple = true;
      sl.buffer.back().tuple = std::move(t);
      ++buffered_;
      return;
    }
    execute(t);
  }

  void onControl(TaskId src, Control&& c) override {
    switch (kind_) {
      case Kind::Acker: return ackerControl(c);
      case Kind::Spout:
        if (c.kind == ControlKind::TreeDone)
          treeDone(c.root, c.ok, std::string_view(c.payload).substr(0, kMaxFailReason));
        return;
      case Kind::Bolt: {
        int s = src >= 0 && src < sh_.numTasks ? slotOf_[static_cast<size_t>(src)] : -1;
        if (s < 0) {
          logWarn(name() + " task " + std::to_string(id_) + " got " + controlKindName(c.kind) +
                  " from task " + std::to_string(src) + ", which is not upstream; ignored");
          return;
        }
        Slot& sl = slots_[static_cast<size_t>(s)];
        if (sl.blocked) {
          sl.buffer.emplace_back();
          sl.buffer.back().isTuple = false;
          sl.buffer.back().control = std::move(c);
          ++buffered_;
          return;
        }
        marker(sl, c);
        return;
      }
    }
  }

  const std::string& name() const {
    static const std::string acker = kAckerName;
    return comp_ ? comp_->name : acker;
  }

 private:
  struct Out {
    TaskId target = -1;
    std::unique_ptr<ChannelSender> sender;
    uint64_t framesCounted = 0;
  };
  struct OutStream {
    std::string name;
    StreamId id = 0;
    SchemaPtr schema;
    std::unique_ptr<Router> router;
    bool unsubscribed = false;  // no component reads it: what is emitted on it is dropped
  };
  // One upstream task, for watermarks, batch alignment and end of stream.
  struct Slot {
    TaskId task = -1;
    bool idle = false;
    bool eos = false;
    bool blocked = false;  // delivered BatchEnd(blockTxid); later items wait in `buffer`
    uint64_t blockTxid = 0;
    std::deque<OutItem> buffer;
  };
  struct HeldAck {
    uint64_t root = 0;
    uint64_t value = 0;
    bool held = false;
  };
  struct Pending {
    MessageId msgId = 0;
    int64_t deadline = 0;  // config clock, ns
    int64_t startNanos = 0;
    // Kept only for a message that failed before (or when maxRetries is 0): its values, for the
    // dead-letter stream should this tree fail too.
    std::unique_ptr<Values> values;
    uint32_t stream = 0;  // index in outs_
  };

  // ---- collectors
  class SpoutCollector final : public SpoutOutputCollector {
   public:
    explicit SpoutCollector(Task& t) : t_(t) {}
    void emitWatermark(Timestamp wm, bool idle) override {
      Control c;
      c.kind = ControlKind::Watermark;
      c.time = wm.micros;
      c.value = idle ? kIdleWatermark : 0;
      t_.broadcast(c);
      t_.inputWatermark_ = wm.micros;  // a spout's watermark is the one it sends
      t_.outputIdle_ = idle;
    }
    void emitBatchBegin(uint64_t txid) override {
      t_.broadcast(Control{ControlKind::BatchBegin, 0, txid});
    }
    void emitBatchEnd(uint64_t txid) override {
      t_.broadcast(Control{ControlKind::BatchEnd, 0, txid});
    }
    void emitEndOfStream() override { t_.spoutEndOfStream(); }

   protected:
    void emitTuple(TaskId direct, std::string_view stream, Values&& values,
                   std::optional<MessageId> msgId, int64_t originNanos) override {
      t_.spoutEmit(direct, stream, std::move(values), msgId, originNanos);
    }

   private:
    Task& t_;
  };

  class BoltCollector final : public OutputCollector {
   public:
    explicit BoltCollector(Task& t) : t_(t) {}
    void ack(const Tuple& input) override { t_.boltAck(input); }
    void fail(const Tuple& input) override { t_.boltFail(input); }

   protected:
    void emitTuple(TaskId direct, std::string_view stream, const Tuple* const* anchors, size_t n,
                   Values&& values) override {
      t_.boltEmit(direct, stream, anchors, n, std::move(values));
    }

   private:
    Task& t_;
  };

  ChannelOptions channelOptions() const {
    ChannelOptions o;
    o.highWaterMark = sh_.config.highWaterMark;
    o.maxItemsPerFrame = sh_.config.maxItemsPerFrame;
    o.peers = sh_.config.peerLimits;
    // Each task connects at most once to an inbox, so the workers' own connections always fit
    // under a cap of the task count (a smaller one would refuse, and storm, our own senders).
    o.peers.maxConnections = std::max(o.peers.maxConnections, sh_.numTasks + 8);
    return o;
  }

  uint64_t nextRandom() {
    rng_ += 0x9e3779b97f4a7c15ULL;
    return mix64(rng_);
  }
  uint64_t nonZeroRandom() {
    uint64_t r;
    do r = nextRandom();
    while (r == 0);
    return r;
  }

  OutStream& stream(std::string_view name) {
    // Most components emit on one stream, over and over: try the last one first.
    if (lastStream_ < outs_.size() && outs_[lastStream_].name == name) return outs_[lastStream_];
    for (size_t i = 0; i < outs_.size(); ++i)
      if (outs_[i].name == name) {
        lastStream_ = i;
        return outs_[i];
      }
    std::string declared;
    for (auto& o : outs_) declared += (declared.empty() ? "" : ", ") + o.name;
    badEmit("component '" + this->name() + "' emitted on stream '" + std::string(name) +
            "', which it did not declare (declared: " + (declared.empty() ? "none" : declared) +
            "); declare it in declareOutputFields()");
  }

  void checkValues(const OutStream& os, const Values& values) {
    // The common case without building a (empty) reason string: count and types fit.
    const Fields& f = os.schema->fields;
    if (values.size() == f.size()) {
      size_t i = 0;
      for (; i < values.size(); ++i) {
        Type want = f[i].type, got = typeOf(values[i]);
        if (want != Type::Any && got != Type::Null && got != want) break;
      }
      if (i == values.size()) return;
    }
    std::string why = f.mismatch(values);
    if (!why.empty())
      badEmit("component '" + name() + "' emitted on stream '" + os.name +
              "' values that do not fit its declared fields: " + why);
  }

  // A component that emits what it did not declare has a bug that every record will hit:
  // retrying or dead-lettering each record would only hide it (with acking) or drop everything
  // (without). The topology stops, as a micro-batch job does (docs/runtime.md, "Bad emits").
  [[noreturn]] void badEmit(const std::string& why) {
    sh_.fail(why);
    throw std::invalid_argument(why);
  }

  // A tuple for nobody: counted, and logged (rate-limited by core/log) unless it is on the
  // default stream (a last bolt that declares outputs nobody reads is common and harmless).
  void unrouted(const OutStream& os) {
    ++unrouted_;
    if (os.name != kDefaultStream)
      logWarn("component '" + name() + "' emitted on stream '" + os.name +
              "', which no component subscribes to: the tuple is dropped and counted (metric "
              "unrouted); subscribe to " + name() + ":" + os.name + " to keep them");
  }

  // ---- sending
  void send(TaskId target, StreamId stream, Tuple&& t) {
    Out& o = *senders_[static_cast<size_t>(target)];
    o.sender->push(stream, std::move(t));
    ++transferred_;
    if (o.sender->full() && !inBlockedFlush_) flush(o);
  }
  void sendControl(TaskId target, Control c) {
    Out& o = *senders_[static_cast<size_t>(target)];
    o.sender->push(std::move(c));
    if (o.sender->full() && !inBlockedFlush_) flush(o);
  }
  void broadcast(const Control& c) {
    for (TaskId t : downstream_) sendControl(t, c);
  }

  // Sends what `o` holds, waiting while the receiver is full. A spout keeps serving its inbox
  // (acks) while it waits: that is what keeps spout -> bolt -> acker -> spout from deadlocking.
  void flush(Out& o) {
    if (!o.sender->tryFlush()) {
      std::function<void()> whileBlocked;
      if (kind_ == Kind::Spout)
        whileBlocked = [this] {
          inBlockedFlush_ = true;
          inbox_->drain(*this, 16);
          inBlockedFlush_ = false;
        };
      o.sender->flush(whileBlocked, &sh_.killed);
    }
    countFrames(o);
  }
  void countFrames(Out& o) {
    uint64_t f = o.sender->framesSent();
    if (f != o.framesCounted) {
      sh_.framesSentTo[static_cast<size_t>(o.target)].fetch_add(f - o.framesCounted,
                                                                std::memory_order_relaxed);
      o.framesCounted = f;
    }
  }
  void flushAll() {
    lastFlush_ = steadyNow();
    for (size_t a = 0; a < heldAcks_.size(); ++a) releaseAck(a);
    for (Out* o : active_)
      if (!o->sender->empty()) flush(*o);
  }

  // ---- spout side
  void spoutEmit(TaskId direct, std::string_view streamName, Values&& values,
                 std::optional<MessageId> msgId, int64_t originNanos) {
    if (eosEmitted_)
      throw std::logic_error("spout '" + name() + "' emitted after its end of stream");
    OutStream& os = stream(streamName);
    checkValues(os, values);
    targets_.clear();
    os.router->route(values, direct, targets_);
    ++emitted_;
    if (targets_.empty() && os.unsubscribed) unrouted(os);
    if (originNanos == 0) originNanos = sh_.clock->monoNanos();
    bool reliable = sh_.config.acking && msgId.has_value();
    uint64_t root = reliable ? nonZeroRandom() : 0;
    std::unique_ptr<Values> kept;
    if (reliable && !targets_.empty() &&
        (sh_.config.maxRetries == 0 || retries_.failedBefore(*msgId)))
      kept = std::make_unique<Values>(values);
    uint64_t xorEdges = 0;
    for (size_t i = 0; i < targets_.size(); ++i) {
      Tuple t(os.schema, i + 1 == targets_.size() ? std::move(values) : values);
      t.setOriginNanos(originNanos);
      if (reliable) {
        uint64_t edge = nextRandom();
        xorEdges ^= edge;
        t.mutableAnchors().push_back({root, edge});
      }
      send(targets_[i], os.id, std::move(t));
    }
    if (!reliable) return;
    if (targets_.empty()) {  // nobody to process it: the tree is complete already
      completedNow_.push_back(*msgId);
      return;
    }
    Pending& pend = pending_[root];
    pend.msgId = *msgId;
    pend.deadline = sh_.clock->monoNanos() + nanos(sh_.config.messageTimeout);
    pend.startNanos = steadyNow();
    pend.values = std::move(kept);
    pend.stream = static_cast<uint32_t>(&os - outs_.data());
    Control init;
    init.kind = ControlKind::AckInit;
    init.root = root;
    init.value = xorEdges;
    init.task = id_;
    sendControl(sh_.ackerOf(root), std::move(init));
  }

  void spoutEndOfStream() {
    if (eosEmitted_) return;
    eosEmitted_ = true;
    broadcast(Control{ControlKind::EndOfStream});
  }

  // `reason` (failed trees): "<component>\0<why>" from the Fail, as the acker passed it on.
  void treeDone(uint64_t root, bool ok, std::string_view reason = {}) {
    auto it = pending_.find(root);
    if (it == pending_.end()) return;  // timed out already
    Pending p = std::move(it->second);
    pending_.erase(it);
    limit_.completed(steadyNow() - p.startNanos);
    if (ok) {
      ++acked_;
      completeLat_.record(steadyNow() - p.startNanos);
      retries_.forget(p.msgId);
      return spoutCall("ack", [&] { spout_->ack(p.msgId); });
    }
    ++failed_;
    // Not replayed at once: fail(msgId) is called when its backoff ends (releaseRetries), or,
    // past the retry limit, the message goes to the dead-letter stream.
    RetrySchedule::Decision d = retries_.failed(p.msgId, sh_.clock->monoNanos());
    if (d.deadLetter) deadLetter(p, reason, d.attempts);
  }

  template <class F>
  void spoutCall(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      componentError(what, e);
    }
  }

  void releaseRetries() {
    if (!retries_.waiting()) return;
    dueRetries_.clear();
    retries_.takeDue(sh_.clock->monoNanos(), dueRetries_);
    for (MessageId m : dueRetries_) {
      ++retried_;
      spoutCall("fail", [&] { spout_->fail(m); });
    }
  }

  void deadLetter(const Pending& p, std::string_view reason, uint32_t attempts) {
    ++deadLettered_;
    reason = reason.substr(0, kMaxFailReason);
    size_t nul = reason.find('\0');
    std::string component(nul == std::string_view::npos ? std::string_view{} : reason.substr(0, nul));
    std::string why(nul == std::string_view::npos ? reason : reason.substr(nul + 1));
    const std::string& stream = p.values ? outs_[p.stream].name : std::string();
    logError("spout '" + name() + "': message " + std::to_string(p.msgId) + " failed " +
             std::to_string(attempts) + " times, last by '" + component + "': " + why +
             "; it goes to the dead-letter stream and is not replayed again");
    Values dl{stream, Bytes{p.values ? encodeValues(*p.values) : std::string()}, component, why,
              static_cast<int64_t>(attempts), static_cast<int64_t>(p.msgId)};
    spoutCall("the dead-letter emit",
              [&] { spoutEmit(-1, kDeadLetterStream, std::move(dl), std::nullopt, 0); });
    spoutCall("deadLettered", [&] { spout_->deadLettered(p.msgId); });
  }

  void expireTrees(int64_t now) {
    std::vector<uint64_t> expired;
    for (auto& [root, p] : pending_)
      if (p.deadline <= now) expired.push_back(root);
    if (expired.empty()) return;
    timedOut_ += expired.size();
    std::string reason = failReason(
        "", "the tree timed out: not completed within messageTimeout (" +
                std::to_string(toMicros(sh_.config.messageTimeout) / 1000) + " ms)");
    for (uint64_t r : expired) treeDone(r, false, reason);
  }

  // Returns true when it emitted something.
  bool spoutStep() {
    if (eosEmitted_) return false;
    if (sh_.stopping.load(std::memory_order_relaxed)) {
      retries_.clearWaiting();
      if (pending_.empty()) spoutEndOfStream();
      return false;
    }
    if (sh_.deactivated.load(std::memory_order_relaxed)) return false;
    releaseRetries();
    bool any = false;
    for (int k = 0; k < 16; ++k) {
      if (sh_.config.acking && pending_.size() >= limit_.limit()) {
        atPendingLimit_ = true;
        break;
      }
      atPendingLimit_ = false;
      bool sample = (calls_++ & 15) == 0;
      int64_t t0 = steadyNow();
      bool e = false;
      try {
        e = spout_->nextTuple(spoutCollector_);
      } catch (const SourceFatalError& ex) {
        componentError("nextTuple", ex);
        sh_.fail("component '" + name() + "': " + ex.what());
      } catch (const std::exception& ex) {
        componentError("nextTuple", ex);
      }
      int64_t t1 = steadyNow();
      busyNanos_ += t1 - t0;
      if (sample) executeLat_.record(t1 - t0);
      drainCompletedNow();
      if (!e || eosEmitted_) break;
      any = true;
    }
    return any;
  }

  void drainCompletedNow() {
    while (!completedNow_.empty()) {
      MessageId m = completedNow_.front();
      completedNow_.pop_front();
      ++acked_;
      retries_.forget(m);
      try {
        spout_->ack(m);
      } catch (const std::exception& e) {
        componentError("ack", e);
      }
    }
  }

  // ---- bolt side
  void execute(Tuple& t) {
    bool sample = (executed_ & 15) == 0;
    bool timed = sample || slowExecute_;
    int64_t t0 = timed ? steadyNow() : 0;
    try {
      bolt_->execute(t, boltCollector_);
    } catch (const std::exception& e) {
      componentError("execute", e);
      failWhy_ = e.what();
      boltFail(t);
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

  void boltEmit(TaskId direct, std::string_view streamName, const Tuple* const* anchors,
                size_t numAnchors, Values&& values) {
    OutStream& os = stream(streamName);
    checkValues(os, values);
    targets_.clear();
    os.router->route(values, direct, targets_);
    ++emitted_;
    int64_t origin = 0;
    for (size_t a = 0; a < numAnchors; ++a)
      if (anchors[a] && anchors[a]->originNanos()) origin = anchors[a]->originNanos();
    if (targets_.empty() && os.unsubscribed) unrouted(os);
    bool anchored = sh_.config.acking && numAnchors > 0;
    for (size_t i = 0; i < targets_.size(); ++i) {
      Tuple t(os.schema, i + 1 == targets_.size() ? std::move(values) : values);
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
      send(targets_[i], os.id, std::move(t));
    }
  }

  void boltAck(const Tuple& input) {
    ++acked_;
    if ((acked_ & 15) == 0) processLat_.record(steadyNow() - drainStart_);
    if (!sh_.config.acking) return;
    for (const Anchor& a : input.anchors()) holdAck(a.root, a.edge);
  }

  // Consecutive acks of one root (e.g. the words of one sentence) travel as one Ack carrying
  // the XOR of their values: the acker's result is the same, its traffic several times less.
  // One ack per acker is held; it leaves when an ack of another root comes, or at the next
  // flush (whenever the inbox runs dry), so it is never held long.
  void holdAck(uint64_t root, uint64_t value) {
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
  void releaseAck(size_t a) {
    HeldAck& h = heldAcks_[a];
    if (!h.held) return;
    h.held = false;
    Control c;
    c.kind = ControlKind::Ack;
    c.root = h.root;
    c.value = h.value;
    sendControl(sh_.firstAcker + static_cast<TaskId>(a), std::move(c));
  }

  void boltFail(const Tuple& input) {
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

  void marker(Slot& sl, const Control& c) {
    switch (c.kind) {
      case ControlKind::Watermark: {
        bool idle = c.value == kIdleWatermark;
        auto moved = tracker_.update(sl.task, Timestamp{c.time});  // also marks it active
        if (idle) moved = tracker_.setIdle(sl.task, true);
        sl.idle = idle;
        advanceWatermark(moved);
        break;
      }
      case ControlKind::BatchBegin:
        if (!begunAny_ || c.value > lastBegun_) {
          begunAny_ = true;
          lastBegun_ = c.value;
          hook("onBatchBegin", [&] { bolt_->onBatchBegin(c.value, boltCollector_); });
          broadcast(c);
        }
        break;
      case ControlKind::BatchEnd:
        sl.blocked = true;
        sl.blockTxid = c.value;
        align();
        break;
      case ControlKind::EndOfStream:
        sl.eos = true;
        // An ended input holds nothing back: its watermark is the end of time.
        advanceWatermark(tracker_.update(sl.task, kEndOfTime));
        align();
        if (std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.eos; }))
          endOfStream();
        break;
      default:
        logWarn(name() + " task " + std::to_string(id_) + " ignored a " +
                controlKindName(c.kind) + " marker");
    }
  }

  // Input watermark = min over the upstream tasks that are not idle (core's WatermarkTracker;
  // an ended task counts as at the end of time). When it advances, the bolt's hook runs and the
  // watermark goes downstream; when every remaining upstream task is idle, this task's output
  // is marked idle as well (same value), so consumers further down exclude it too.
  void advanceWatermark(std::optional<Timestamp> moved) {
    bool anyActive = false;
    for (const Slot& s : slots_)
      if (!s.eos && !s.idle) anyActive = true;
    bool idle = !anyActive && !std::all_of(slots_.begin(), slots_.end(),
                                           [](const Slot& s) { return s.eos; });
    int64_t wm = tracker_.current().micros;
    if (moved && wm != kEndOfTime.micros) {  // the end of time is handled by endOfStream()
      inputWatermark_ = wm;
      hook("onWatermark", [&] { bolt_->onWatermark(Timestamp{wm}, boltCollector_); });
    } else if (idle == outputIdle_) {
      return;
    }
    if (wm == kEndOfTime.micros) return;
    outputIdle_ = idle;
    Control c;
    c.kind = ControlKind::Watermark;
    c.time = wm;
    c.value = idle ? kIdleWatermark : 0;
    broadcast(c);
  }

  // Barrier alignment: once every upstream task that has not ended delivered BatchEnd(txid),
  // the bolt's onBatchEnd runs, the marker goes downstream and the held-back items are replayed.
  void align() {
    bool anyBlocked = false;
    uint64_t txid = 0;
    for (const Slot& s : slots_) {
      if (s.blocked) {
        if (!anyBlocked) txid = s.blockTxid;
        anyBlocked = true;
      } else if (!s.eos) {
        return;
      }
    }
    if (!anyBlocked) return;
    for (const Slot& s : slots_)
      if (s.blocked && s.blockTxid != txid)
        logWarn(name() + " task " + std::to_string(id_) + ": upstream tasks ended batches " +
                std::to_string(txid) + " and " + std::to_string(s.blockTxid) +
                " at the same time; aligned them as one");
    hook("onBatchEnd", [&] { bolt_->onBatchEnd(txid, boltCollector_); });
    broadcast(Control{ControlKind::BatchEnd, 0, txid});
    for (Slot& s : slots_) s.blocked = false;
    if (replaying_) return;  // the outer replay loop picks the buffers up
    replaying_ = true;
    for (bool progress = true; progress;) {
      progress = false;
      for (Slot& s : slots_) {
        while (!s.blocked && !s.buffer.empty()) {
          OutItem item = std::move(s.buffer.front());
          s.buffer.pop_front();
          --buffered_;
          progress = true;
          if (item.isTuple)
            execute(item.tuple);
          else
            marker(s, item.control);
        }
      }
    }
    replaying_ = false;
  }

  void endOfStream() {
    if (ended_) return;
    ended_ = true;
    if (inputWatermark_ < kEndOfTime.micros) {
      inputWatermark_ = kEndOfTime.micros;
      hook("onWatermark", [&] { bolt_->onWatermark(kEndOfTime, boltCollector_); });
    }
    hook("onEndOfStream", [&] { bolt_->onEndOfStream(boltCollector_); });
    broadcast(Control{ControlKind::EndOfStream});
  }

  template <class F>
  void hook(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      componentError(what, e);
    }
  }

  void componentError(const char* what, const std::exception& e) {
    ++errors_;
    logError("component '" + name() + "' task " + std::to_string(id_) + ": " + what +
             " threw: " + e.what());
    std::lock_guard lock(cell_.mutex);  // for the metrics (Storm's "last error")
    cell_.lastError = std::string(what) + " threw: " + e.what();
    cell_.lastErrorMicros = sh_.clock->now().micros;
  }

  // ---- acker
  void ackerControl(const Control& c) {
    AckerTable::Done d;
    switch (c.kind) {
      case ControlKind::AckInit: d = table_.init(c.root, c.value, c.task); break;
      case ControlKind::Ack: d = table_.ack(c.root, c.value); break;
      case ControlKind::Fail:
        d = table_.fail(c.root, std::string_view(c.payload).substr(0, kMaxFailReason));
        break;
      default: return;
    }
    if (!d.done) return;
    if (d.ok)
      ++acked_;
    else
      ++failed_;
    if (d.spoutTask < 0 || d.spoutTask >= sh_.numTasks ||
        !senders_[static_cast<size_t>(d.spoutTask)]) {
      logWarn("acker: tree done for unknown spout task " + std::to_string(d.spoutTask));
      return;
    }
    Control done;
    done.kind = ControlKind::TreeDone;
    done.root = c.root;
    done.ok = d.ok;
    if (!d.ok) done.payload = std::move(d.reason);
    sendControl(d.spoutTask, std::move(done));
  }

  // ---- the loop
  void run() {
    // Short sleeps (spout back-off) should last what they ask for, not the default 50 µs of
    // timer slack more.
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    TopologyContext ctx;
    ctx.component = name();
    ctx.task = id_;
    ctx.taskIndex = comp_ ? id_ - comp_->firstTask : id_ - sh_.firstAcker;
    ctx.parallelism = comp_ ? comp_->parallelism : sh_.numAckers;
    ctx.clock = sh_.clock;
    ctx.acking = sh_.config.acking;
    ctx.topology = &sh_.topology;
    std::string error;
    try {
      if (kind_ == Kind::Spout) {
        spout_ = comp_->spout->clone();
        spout_->open(ctx, spoutCollector_);
      } else if (kind_ == Kind::Bolt) {
        bolt_ = comp_->bolt->clone();
        bolt_->prepare(ctx, boltCollector_);
      }
    } catch (const std::exception& e) {
      error = "component '" + name() + "' task " + std::to_string(id_) + " failed to " +
              (kind_ == Kind::Spout ? "open" : "prepare") + ": " + e.what();
    }
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
    if (graceful) {
      flushAll();
      for (Out* o : active_) o->sender->socket().set(zmq::sockopt::linger, 2000);
    }
    try {
      if (spout_) spout_->close();
      if (bolt_) bolt_->cleanup();
    } catch (const std::exception& e) {
      componentError("close/cleanup", e);
    }
    publish(steadyNow());
  }

  void loop() {
    int64_t now = sh_.clock->monoNanos();
    int64_t tickEvery = nanos(sh_.config.tickInterval);
    int64_t nextTick = tickEvery > 0 ? sh_.clock->now().micros * 1000 + tickEvery : INT64_MAX;
    int64_t timeoutScanEvery = std::min<int64_t>(nanos(sh_.config.messageTimeout) / 4, 100'000'000);
    int64_t nextTimeoutScan = now + timeoutScanEvery;
    int64_t rotateEvery = nanos(sh_.config.messageTimeout) / (AckerTable::kBuckets - 1);
    int64_t nextRotate = now + rotateEvery;
    int64_t nextPublish = steadyNow() + nanos(sh_.config.metricsInterval);
    int64_t backoff = nanos(sh_.config.spoutBackoffMin);
    bool finished = false;
    while (!sh_.killed.load(std::memory_order_relaxed) &&
           !sh_.shutdown.load(std::memory_order_relaxed)) {
      drainStart_ = steadyNow();
      size_t n = inbox_->drain(*this, kInboxBatch);
      if (n) {
        busyNanos_ += steadyNow() - drainStart_;
        cell_.framesReceived.store(inbox_->framesReceived(), std::memory_order_relaxed);
      }
      bool emitted = kind_ == Kind::Spout && spoutStep();

      // Time-driven work, by the configured clock (a ManualClock in tests).
      now = sh_.clock->monoNanos();
      if (kind_ == Kind::Bolt && !ended_) {
        int64_t wall = sh_.clock->now().micros * 1000;
        if (wall >= nextTick) {
          nextTick = wall + tickEvery;
          hook("onTick", [&] { bolt_->onTick(Timestamp{wall / 1000}, boltCollector_); });
        }
      }
      if (kind_ == Kind::Spout) limit_.update(steadyNow());
      if (kind_ == Kind::Spout && now >= nextTimeoutScan) {
        nextTimeoutScan = now + timeoutScanEvery;
        expireTrees(now);
      }
      if (kind_ == Kind::Acker && now >= nextRotate) {
        nextRotate = now + rotateEvery;
        table_.rotate();
      }
      int64_t real = steadyNow();
      if (real >= nextPublish) {
        nextPublish = real + nanos(sh_.config.metricsInterval);
        publish(real);
      }
      if (n == kInboxBatch) continue;  // more is waiting: keep packing frames
      flushAll();             // nothing more ready: send what we have (latency first)
      if (!finished && ((kind_ == Kind::Bolt && ended_) ||
                        (kind_ == Kind::Spout && eosEmitted_ && pending_.empty()))) {
        finished = true;
        publish(steadyNow());
        sh_.taskFinished();
      }
      if (n || emitted) {
        backoff = nanos(sh_.config.spoutBackoffMin);
        continue;
      }
      idleWait(backoff);
      if (kind_ == Kind::Spout && !atPendingLimit_)
        backoff = std::min<int64_t>(backoff * 2, nanos(sh_.config.spoutBackoffMax));
    }
  }

  // Nothing to do: spin on the inbox briefly (a blocking wake-up costs tens of µs), then block.
  // The spin yields the CPU between polls: with more task threads than cores, a spinning task
  // must not keep a busy one (on this or another topology) off the core.
  void idleWait(int64_t spoutBackoff) {
    int64_t spinUntil = steadyNow() + nanos(sh_.config.idleSpin);
    do {
      drainStart_ = steadyNow();
      size_t n = inbox_->drain(*this, kInboxBatch);
      if (n) {
        busyNanos_ += steadyNow() - drainStart_;
        cell_.framesReceived.store(inbox_->framesReceived(), std::memory_order_relaxed);
        return;
      }
      std::this_thread::yield();
    } while (steadyNow() < spinUntil);
    if (kind_ == Kind::Spout && !eosEmitted_ && !atPendingLimit_ &&
        !sh_.stopping.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(spoutBackoff));
      return;
    }
    drainStart_ = steadyNow();
    if (inbox_->receive(std::chrono::milliseconds(kind_ == Kind::Spout ? 1 : 10), *this))
      busyNanos_ += steadyNow() - drainStart_;
  }

  void publish(int64_t real) {
    MetricsCell& c = cell_;
    c.emitted.store(emitted_, std::memory_order_relaxed);
    c.transferred.store(transferred_, std::memory_order_relaxed);
    c.executed.store(executed_, std::memory_order_relaxed);
    c.acked.store(acked_, std::memory_order_relaxed);
    c.failed.store(failed_, std::memory_order_relaxed);
    c.errors.store(errors_, std::memory_order_relaxed);
    c.pendingLimit.store(kind_ == Kind::Spout ? limit_.limit() : 0, std::memory_order_relaxed);
    c.timedOut.store(timedOut_, std::memory_order_relaxed);
    c.retried.store(retried_, std::memory_order_relaxed);
    c.deadLettered.store(deadLettered_, std::memory_order_relaxed);
    c.unrouted.store(unrouted_, std::memory_order_relaxed);
    c.framesReceived.store(inbox_->framesReceived(), std::memory_order_relaxed);
    c.malformed.store(inbox_->malformedFrames(), std::memory_order_relaxed);
    uint64_t blocked = 0;
    for (Out* o : active_) blocked += o->sender->blockedFlushes();
    c.blocked.store(blocked, std::memory_order_relaxed);
    c.buffered.store(buffered_, std::memory_order_relaxed);
    c.pending.store(kind_ == Kind::Acker ? table_.size() : pending_.size(),
                    std::memory_order_relaxed);
    c.watermark.store(inputWatermark_, std::memory_order_relaxed);
    c.watermarkIdle.store(outputIdle_, std::memory_order_relaxed);
    uint64_t idleInputs = 0;
    for (const Slot& s : slots_) idleInputs += s.idle && !s.eos;
    c.idleInputs.store(idleInputs, std::memory_order_relaxed);
    if (lastPublish_ && real > lastPublish_) {
      double cap = static_cast<double>(busyNanos_) / static_cast<double>(real - lastPublish_);
      c.capacityPpm.store(static_cast<uint64_t>(std::min(cap, 1.0) * 1e6),
                          std::memory_order_relaxed);
    }
    busyNanos_ = 0;
    lastPublish_ = real;
    std::lock_guard lock(c.mutex);
    c.execute = executeLat_;
    c.process = processLat_;
    c.complete = completeLat_;
  }

  RuntimeShared& sh_;
  TaskId id_;
  MetricsCell& cell_;
  Kind kind_ = Kind::Bolt;
  const ComponentSpec* comp_ = nullptr;
  uint64_t rng_ = 0;
  std::thread thread_;

  std::unique_ptr<ChannelReceiver> inbox_;
  std::vector<std::unique_ptr<Out>> senders_;  // by target task
  std::vector<Out*> active_;
  std::vector<OutStream> outs_;
  std::vector<TaskId> downstream_;
  std::vector<TaskId> targets_;  // scratch
  size_t lastStream_ = 0;         // index in outs_ of the stream emitted on last
  bool inBlockedFlush_ = false;

  SpoutCollector spoutCollector_{*this};
  BoltCollector boltCollector_{*this};
  std::unique_ptr<Spout> spout_;
  std::unique_ptr<Bolt> bolt_;

  // spout
  std::unordered_map<uint64_t, Pending> pending_;
  PendingLimit limit_{sh_.config.maxSpoutPending, nanos(sh_.config.messageTimeout) / 10,
                      sh_.config.adaptiveMaxPending};
  RetrySchedule retries_{sh_.config.maxRetries, nanos(sh_.config.retryBackoffMin),
                         nanos(sh_.config.retryBackoffMax)};
  std::vector<MessageId> dueRetries_;  // scratch
  std::deque<MessageId> completedNow_;
  bool eosEmitted_ = false;
  bool atPendingLimit_ = false;
  uint64_t calls_ = 0;
  // bolt
  std::vector<int> slotOf_;
  std::vector<Slot> slots_;
  WatermarkTracker tracker_;
  int64_t inputWatermark_ = INT64_MIN;
  bool outputIdle_ = false;
  bool begunAny_ = false;
  uint64_t lastBegun_ = 0;
  bool replaying_ = false;
  bool ended_ = false;
  std::string failWhy_;  // the exception text while failing an input whose execute() threw
  bool slowExecute_ = false;  // the last sampled execute() took more than kSlowExecuteNanos
  int64_t lastFlush_ = 0;
  std::vector<HeldAck> heldAcks_;  // by acker index
  // acker
  AckerTable table_;

  // metrics (owner thread), published by publish()
  uint64_t emitted_ = 0, transferred_ = 0, executed_ = 0, acked_ = 0, failed_ = 0, errors_ = 0,
           buffered_ = 0, timedOut_ = 0, retried_ = 0, deadLettered_ = 0, unrouted_ = 0;
  int64_t busyNanos_ = 0, lastPublish_ = 0, drainStart_ = 0;
  Histogram executeLat_, processLat_, completeLat_;
};

// ------------------------------------------------------------------ the handle

class RunningTopology::Impl {
 public:
  std::unique_ptr<RuntimeShared> sh;
  std::vector<std::unique_ptr<Task>> tasks;  // local tasks only
  bool joined = false;

  void shutdownAndJoin() {
    if (joined) return;
    sh->shutdown = true;
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
  waitUntilDone();
}

std::string RunningTopology::error() const {
  std::lock_guard lock(impl_->sh->mutex);
  return impl_->sh->failure;
}

void RunningTopology::kill() {
  impl_->sh->killed = true;
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
void RunningTopology::requestStop() { impl_->sh->stopping = true; }
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
  return out;
}

int totalTasks(const Topology& topology, const Continuous& config) {
  return topology.taskCount() + (config.acking ? config.numAckers : 0);
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
  if (c.retryBackoffMin.count() < 0 || c.retryBackoffMax < c.retryBackoffMin)
    bad("retryBackoffMin must be >= 0 and retryBackoffMax >= retryBackoffMin");
}

std::string taskEndpoint(const std::string& base, TaskId t) {
  if (base.rfind("tcp://", 0) == 0) {
    auto colon = base.rfind(':');
    int port = std::stoi(base.substr(colon + 1));
    return base.substr(0, colon + 1) + std::to_string(port + t);
  }
  return base + "-" + std::to_string(t);
}

RunningTopology launch(const Topology& topology, Continuous config,
                       const WorkerAssignment* assignment) {
  checkConfig(config);
  auto impl = std::make_unique<RunningTopology::Impl>();
  impl->sh = std::make_unique<RuntimeShared>();
  RuntimeShared& sh = *impl->sh;
  sh.topology = topology;
  sh.config = config;
  sh.clock = config.clock ? config.clock : &SystemClock::instance();
  sh.numAckers = config.acking ? config.numAckers : 0;
  sh.firstAcker = topology.taskCount();
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
  for (int t = 0; t < sh.numTasks; ++t) {
    if (!sh.local(t)) continue;
    impl->tasks.push_back(std::make_unique<Task>(sh, t));
    sh.endpoints[static_cast<size_t>(t)] = impl->tasks.back()->boundEndpoint();
    if (!sh.isAcker(t)) ++sh.remaining;
  }
  for (auto& task : impl->tasks) task->connect();
  for (auto& task : impl->tasks) task->start();
  std::string error;
  {
    std::unique_lock lock(sh.mutex);
    sh.cv.wait(lock, [&] { return sh.ready == static_cast<int>(impl->tasks.size()); });
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

RunningTopology runContinuous(const Topology& topology, Continuous config) {
  return launch(topology, std::move(config), nullptr);
}

RunningTopology runWorker(const Topology& topology, Continuous config,
                          WorkerAssignment assignment) {
  return launch(topology, std::move(config), &assignment);
}

}  // namespace gale
