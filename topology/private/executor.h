// One task's thread (executor = task): its inbox, its senders to downstream tasks, the loop that
// drains the inbox, runs time-driven work, flushes and waits, and its metrics. What differs
// between spouts, bolts and ackers is in SpoutExecutor, BoltExecutor and AckerExecutor.
// A fused task (private/fusion.h) has no thread and no inbox: its host, the task of the chain's
// head with the same index, calls it directly and drives its time-driven work, flushes and
// metrics from its own loop.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gale/core/channel.h"
#include "gale/core/frame.h"
#include "private/runtime_shared.h"
#include "router.h"

namespace gale {

class BoltExecutor;

class Executor : public FrameHandler {
 public:
  Executor(RuntimeShared& sh, TaskId id);
  ~Executor() override = default;

  // The inbox's endpoint (a hosted task has none: the name it would have).
  const std::string& boundEndpoint() const {
    return inbox_ ? inbox_->endpoint() : sh_.endpoints[static_cast<size_t>(id_)];
  }

  // Phase 2 (after every local inbox is bound and every local executor is in
  // RuntimeShared::executors): routes, senders, and the fused tasks this one hosts.
  void connect();
  // After connect(): the tasks in other workers this one sends to whose connection has not
  // completed a handshake yet, waiting up to `waitForFirst` on the first of them.
  std::vector<TaskId> unconnectedRemoteTargets(std::chrono::milliseconds waitForFirst);
  void stopWatchingConnections();  // the wait for the peers is over, connected or not
  bool hosted() const { return host_ != this; }
  // Before connect(): `guest` (a fused task) runs in this one's thread. Upstream guests first.
  void host(Executor& guest) {
    guest.host_ = this;
    guests_.push_back(&guest);
  }
  void start() {
    if (!hosted()) thread_ = std::thread([this] { run(); });
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

  // Spouts and ackers read no tuples; a bolt overrides this.
  void onTuple(TaskId src, Tuple&& t) override;

  const std::string& name() const;

 protected:
  struct Out {
    TaskId target = -1;
    Executor* fused = nullptr;  // a task this one hosts: called directly, no sender
    std::unique_ptr<ChannelSender> sender;
    uint64_t framesCounted = 0;
  };
  struct OutStream {
    std::string name;
    // kDefaultStream's characters for the default stream (their address identifies it), else
    // nullptr.
    const char* nameChars = nullptr;
    StreamId id = 0;
    SchemaPtr schema;
    // The declared type of each field, packed: the per-tuple check reads these, not the specs
    // (40-byte FieldSpecs with their names).
    std::vector<Type> types;
    std::unique_ptr<Router> router;
    bool unsubscribed = false;  // no component reads it: what is emitted on it is dropped
    // What an unanchored tuple for one fused task travels in, emit after emit: it keeps the
    // schema, so no Tuple is made and no shared_ptr copied (two atomic operations) per tuple.
    // Busy while the task runs it (an emit on this stream from within then takes a new Tuple).
    Tuple fusedTuple;
    bool fusedTupleBusy = false;
    // The fused task every tuple of this stream goes to, when it is the stream's only fixed
    // target (a fused chain), set at connect: an unanchored emit goes there without routing.
    BoltExecutor* fusedOnly = nullptr;
  };

  // ---- what each kind of executor adds to the loop
  // The tasks this one sends to besides its output streams' (acker tasks, spout tasks).
  virtual void extraTargets(std::vector<TaskId>& targets) = 0;
  virtual void afterConnect() {}
  // open() / prepare(); throws what the component threw. `openVerb`: for the error message.
  virtual void open(const TopologyContext& ctx) = 0;
  virtual const char* openVerb() const = 0;
  virtual void close() {}
  virtual void beforeLoop(int64_t /*now*/) {}
  virtual bool step() { return false; }  // spout: emitted something
  virtual void timers(int64_t now) = 0;  // `now`: the configured clock's monoNanos()
  virtual bool finishedStream() const = 0;
  virtual bool sleepsWhenIdle() const { return false; }  // spout back-off instead of blocking
  // Spout::wakeFd(): an idle spout that has one blocks on it and its inbox instead.
  virtual int wakeFd() const { return -1; }
  virtual bool growsBackoff() const { return false; }
  // An idle wait that is back-pressure, not idleness (a spout at its limit of trees in flight).
  virtual bool waitIsBackPressure() const { return false; }
  virtual std::chrono::milliseconds blockTimeout() const { return std::chrono::milliseconds(10); }
  // Whether a flush blocked on a full receiver keeps serving this task's inbox (spouts: acks).
  virtual bool servesInboxWhileBlocked() const { return false; }
  virtual void beforeFlushAll() {}
  // What only some kinds have, for the metrics (the defaults: none).
  struct KindMetrics {
    uint64_t pending = 0, pendingLimit = 0, buffered = 0, idleInputs = 0;
    int64_t watermark = INT64_MIN;
    bool watermarkIdle = false;
  };
  virtual KindMetrics kindMetrics() const { return {}; }

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

  // The declared stream `name`. Most components emit on one stream, over and over: the last
  // one is tried first, by the characters' address before their contents (emit(values) passes
  // kDefaultStream itself, whose characters never change).
  OutStream& stream(std::string_view name) {
    if (OutStream* last = lastStream_)
      if (name.size() == last->name.size() &&
          (name.data() == last->nameChars || name == std::string_view(last->name)))
        return *last;
    return findStream(name);
  }
  // Throws (badEmit) when `values` do not fit the stream's declared fields.
  void checkValues(const OutStream& os, const Values& values) {
    const size_t n = os.types.size();
    if (values.size() == n) {
      const Type* want = os.types.data();
      size_t i = 0;
      for (; i < n; ++i) {
        Type got = typeOf(values[i]);
        if (got != want[i] && want[i] != Type::Any && got != Type::Null) break;
      }
      if (i == n) return;
    }
    badValues(os, values);
  }
  // The tasks that get a copy: the router's fixed targets when they depend on nothing (every
  // subscriber has one task, e.g. a fused chain), else what it routes into targets_.
  const std::vector<TaskId>& route(OutStream& os, const Values& values, TaskId direct) {
    if (direct < 0)
      if (const std::vector<TaskId>* fixed = os.router->fixedTargets()) return *fixed;
    targets_.clear();
    os.router->route(values, direct, targets_);
    return targets_;
  }
  [[noreturn]] void badEmit(const std::string& why);
  [[noreturn]] void badValues(const OutStream& os, const Values& values);
  void unrouted(const OutStream& os);

  // ---- sending
  void send(TaskId target, StreamId stream, Tuple&& t) {
    Out& o = *senders_[static_cast<size_t>(target)];
    ++transferred_;
    if (o.fused) return o.fused->onTuple(id_, std::move(t));
    o.sender->push(stream, std::move(t));
    if (o.sender->full() && !host_->inBlockedFlush_) flush(o);
  }
  // These five are defined in bolt_executor.h, where BoltExecutor is a complete class.
  // The start of every emit (emitted_ counted): an untracked tuple (neither anchored with acking
  // on nor a reliable spout tuple) for one fused task is sent there (sendFused), by the stream's
  // fusedOnly without routing or else after it, and nullptr is returned; otherwise the tasks it
  // routes to, for the caller to send each a copy.
  inline const std::vector<TaskId>* routeUnlessFused(OutStream& os, TaskId direct, bool tracked,
                                                     Values& values, int64_t originNanos);
  // A fused task is a bolt's (private/fusion.h: spouts and ackers have no upstream to run in).
  static inline BoltExecutor* fusedBolt(Executor* fused);
  // The fused task that is the only target, if it is one and os.fusedTuple is free.
  inline BoltExecutor* onlyFusedTarget(const OutStream& os,
                                       const std::vector<TaskId>& targets) const;
  // send() for onlyFusedTarget(): `values` go in os.fusedTuple.
  inline void sendFused(OutStream& os, BoltExecutor& to, Values&& values, int64_t originNanos);
  // `values` travel in os.fusedTuple to `to` and come back when it returns (or throws); empty
  // if it kept the tuple (InputGate, behind a barrier).
  inline void lendFused(OutStream& os, BoltExecutor& to, Values& values, int64_t originNanos);
  void sendControl(TaskId target, Control c) {
    Out& o = *senders_[static_cast<size_t>(target)];
    if (o.fused) return o.fused->onControl(id_, std::move(c));
    o.sender->push(std::move(c));
    if (o.sender->full() && !host_->inBlockedFlush_) flush(o);
  }
  void broadcast(const Control& c) {
    for (TaskId t : downstream_) sendControl(t, c);
  }
  void flush(Out& o);
  void flushAll();

  template <class F>
  void hook(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      componentError(what, e);
    }
  }
  void componentError(const char* what, const std::exception& e);
  // When the running thread's loop last started draining its inbox.
  int64_t drainStartNanos() const { return host_->drainStart_; }

  RuntimeShared& sh_;
  TaskId id_;
  MetricsCell& cell_;
  const ComponentSpec* comp_ = nullptr;  // nullptr: an acker
  std::vector<std::unique_ptr<Out>> senders_;  // by target task
  std::vector<OutStream> outs_;
  std::vector<TaskId> downstream_;
  std::vector<TaskId> targets_;  // scratch
  int64_t lastFlush_ = 0;

  // metrics (owner thread), published by publish()
  uint64_t emitted_ = 0, transferred_ = 0, executed_ = 0, acked_ = 0, failed_ = 0, errors_ = 0,
           timedOut_ = 0, retried_ = 0, deadLettered_ = 0, unrouted_ = 0;
  int64_t busyNanos_ = 0, lastPublish_ = 0, drainStart_ = 0;
  int64_t idleNanos_ = 0, backPressuredNanos_ = 0;  // in this metrics interval
  Histogram executeLat_, processLat_, completeLat_;

 private:
  ChannelOptions channelOptions() const;
  void countFrames(Out& o);
  TopologyContext context() const;
  void run();
  // open() of this task and the ones it hosts; the first error.
  std::string openAll();
  // This task and the ones it hosts.
  std::vector<Executor*> allOf() {
    std::vector<Executor*> all{this};
    all.insert(all.end(), guests_.begin(), guests_.end());
    return all;
  }
  void loop();
  OutStream& findStream(std::string_view name);
  void checkFinished();
  size_t drainInbox();
  void idleWait(int64_t spoutBackoff);
  void waitForInput(int64_t waitStart, int64_t spoutBackoff);  // idleWait without the accounting
  bool spin();
  void publish(int64_t real);

  uint64_t rng_ = 0;
  Executor* host_ = this;         // the task whose thread runs this one
  std::vector<Executor*> guests_;  // fused tasks this one runs, upstream first
  bool finished_ = false;         // told RuntimeShared its stream is finished
  std::thread thread_;
  std::unique_ptr<ChannelReceiver> inbox_;  // none when hosted
  std::vector<Out*> active_;
  // The stream emitted on last (outs_ is complete after connect, before any emit), nullptr
  // before the first emit. A pointer, not an index: no bounds test against outs_.size(), which
  // divides by sizeof(OutStream), per emit.
  OutStream* lastStream_ = nullptr;
  bool inBlockedFlush_ = false;
  int64_t idleSince_ = 0;  // steady ns when the loop last found nothing to do; 0: it had work
};

}  // namespace gale
