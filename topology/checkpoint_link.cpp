#include "private/checkpoint_link.h"

#include <unistd.h>

#include <cerrno>
#include <random>
#include <stdexcept>

#include "gale/core/clock.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"
#include "private/runtime_shared.h"

namespace gale {

namespace {

constexpr std::chrono::milliseconds kHeartbeat{100};
constexpr std::string_view kMagic = "GCKL";

enum Kind : uint8_t {
  kHello = 'H',   // worker -> coordinator: worker, incarnation, bound coordinator (0: none yet)
  kReport = 'R',  // worker -> coordinator: worker, incarnation, checkpoint id, TaskReport
  kEnded = 'E',   // worker -> coordinator: worker, incarnation, inputs ended
  kStart = 'S',   // coordinator -> worker: incarnation, the last completed checkpoint's data
  kState = 'P',   // coordinator -> worker: incarnation, triggered, completed, final
  kAbort = 'A',   // coordinator -> worker: incarnation, why
};

uint64_t newIncarnation() {
  std::random_device rd;
  uint64_t n = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
               static_cast<uint64_t>(SystemClock::steadyNanos());
  return n == 0 ? 1 : n;  // 0 means "no coordinator yet" in a HELLO
}

StateWriter message(Kind kind) {
  StateWriter w;
  w.header(kMagic, 1);
  w.u8(kind);
  return w;
}

void writeSnapshots(StateWriter& w, const std::map<std::string, std::string>& snapshots) {
  w.varint(snapshots.size());
  for (const auto& [key, blob] : snapshots) {
    w.str(key);
    w.str(blob);
  }
}

std::map<std::string, std::string> readSnapshots(StateReader& r) {
  std::map<std::string, std::string> out;
  for (uint64_t n = r.count("snapshots", 2); n > 0; --n) {
    std::string key = r.str("key");
    out[key] = r.str("snapshot");
  }
  return out;
}

void writeOffsets(StateWriter& w, const PartitionOffsets& offsets) {
  w.varint(offsets.size());
  for (auto [p, off] : offsets) {
    w.svarint(p);
    w.svarint(off);
  }
}

PartitionOffsets readOffsets(StateReader& r) {
  PartitionOffsets out;
  for (uint64_t n = r.count("offsets", 2); n > 0; --n) {
    int p = static_cast<int>(r.svarint("partition"));
    out[p] = r.svarint("offset");
  }
  return out;
}

}  // namespace

struct CheckpointLink::Member {
  std::string identity;      // the ROUTER's name for its connection
  uint64_t incarnation = 0;  // 0: not joined
  int64_t lastHeard = 0;
  int64_t startSentAt = 0;
};

int CheckpointLink::coordinatorWorker(const Topology& topology, const WorkerAssignment& a) {
  return topology.taskCount() % static_cast<int>(a.endpoints.size());
}

std::string CheckpointLink::endpoint(const Topology& topology, const WorkerAssignment& a) {
  return taskEndpoint(a.endpoints.at(static_cast<size_t>(coordinatorWorker(topology, a))),
                      topology.taskCount());
}

CheckpointLink::CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                               const std::optional<CurveConfig>& curve,
                               std::shared_ptr<CheckpointCoordinator> coordinator)
    : topology_(topology),
      assignment_(assignment),
      self_(assignment.self),
      coordinatorWorker_(coordinatorWorker(topology, assignment)),
      isCoordinator_(true),
      incarnation_(newIncarnation()),
      socket_(transport_.context(), zmq::socket_type::router),
      coord_(std::move(coordinator)),
      members_(assignment.endpoints.size()) {
  socket_.set(zmq::sockopt::linger, 500);  // an ABORT still leaves when the worker exits
  if (curve) {
    transport_.enableCurve(*curve);
    socket_.set(zmq::sockopt::curve_server, true);
    socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
    socket_.set(zmq::sockopt::zap_domain, "gale");
  }
  std::string at = endpoint(topology, assignment);
  try {
    socket_.bind(at);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("the checkpoint coordinator cannot bind '" + at + "': " + e.what());
  }
  if (assignment.endpoints.size() == 1) started_ = true;  // nobody to wait for
  thread_ = std::thread([this] { run(); });
}

CheckpointLink::CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                               const std::optional<CurveConfig>& curve)
    : topology_(topology),
      assignment_(assignment),
      self_(assignment.self),
      coordinatorWorker_(coordinatorWorker(topology, assignment)),
      isCoordinator_(false),
      incarnation_(newIncarnation()),
      socket_(transport_.context(), zmq::socket_type::dealer) {
  socket_.set(zmq::sockopt::linger, 0);
  if (curve) {
    const auto& keys = assignment.publicKeys;
    if (static_cast<int>(keys.size()) <= coordinatorWorker_)
      throw std::invalid_argument("CURVE needs the public key of the coordinator's worker");
    socket_.set(zmq::sockopt::curve_serverkey, keys[static_cast<size_t>(coordinatorWorker_)]);
    socket_.set(zmq::sockopt::curve_publickey, curve->keyPair.publicKey);
    socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
  }
  socket_.connect(endpoint(topology, assignment));
  thread_ = std::thread([this] { run(); });
}

CheckpointLink::~CheckpointLink() {
  stop_ = true;
  thread_.join();
}

CheckpointCoordinator::Restored CheckpointLink::waitStarted() {
  std::unique_lock lk(mutex_);
  cv_.wait(lk, [&] { return started_ || !aborted_.empty(); });
  if (!aborted_.empty())
    throw std::runtime_error("exactly-once job over " +
                             std::to_string(assignment_.endpoints.size()) +
                             " workers stopped before it started: " + aborted_);
  return std::move(restored_);
}

void CheckpointLink::follow(std::shared_ptr<CheckpointCoordinator> follower) {
  std::lock_guard lk(mutex_);
  coord_ = std::move(follower);
  if (!aborted_.empty()) coord_->fail(aborted_);
}

CheckpointLink::Shared CheckpointLink::shared() {
  std::lock_guard lk(mutex_);
  return {aborted_, started_, coord_};
}

void CheckpointLink::onAbort(std::function<void(const std::string&)> handler) {
  std::string why;
  {
    std::lock_guard lk(mutex_);
    if (aborted_.empty()) {
      onAbort_ = std::move(handler);
      return;
    }
    why = aborted_;
  }
  handler(why);
}

void CheckpointLink::run() {
  while (!stop_.load()) {
    try {
      step();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) abort(std::string("the checkpoint link failed: ") + e.what());
    } catch (const std::exception& e) {
      // E.g. the checkpoint could not be read for START: the job cannot go on.
      abort(std::string("the checkpoint link failed: ") + e.what());
    }
    if (!shared().aborted.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void CheckpointLink::step() {
  zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
  zmq::poll(&item, 1, std::chrono::milliseconds(5));
  int64_t now = SystemClock::steadyNanos();
  for (int i = 0; i < 1024; ++i) {
    zmq::message_t first;
    if (!socket_.recv(first, zmq::recv_flags::dontwait)) break;
    try {
      if (!isCoordinator_) {
        handleAtMember(first.to_string(), now);
        continue;
      }
      zmq::message_t body;
      if (!first.more() || !socket_.recv(body, zmq::recv_flags::dontwait)) continue;
      handleAtCoordinator(first.to_string(), body.to_string(), now);
    } catch (const SnapshotError& e) {
      logWarn(std::string("checkpoint link: a malformed message was dropped: ") + e.what());
    }
  }
  if (isCoordinator_) lead(now);
  else member(now);
}

// --------------------------------------------------------------- the coordinator's side

void CheckpointLink::handleAtCoordinator(const std::string& identity, const std::string& body,
                                         int64_t now) {
  StateReader r(body, "checkpoint link message");
  r.header(kMagic, 1);
  uint8_t kind = r.u8("kind");
  uint64_t w = r.varint("worker");
  uint64_t incarnation = r.varint("incarnation");
  if (w >= members_.size() || static_cast<int>(w) == self_) r.fail("no such worker");
  Member& m = members_[w];
  auto [aborted, started, coord] = shared();
  auto abortMessage = [&](const std::string& why) {
    StateWriter a = message(kAbort);
    a.varint(incarnation_);
    a.str(why);
    return a.take();
  };
  if (!aborted.empty()) {
    sendTo(identity, abortMessage(aborted));
    return;
  }
  bool known = started && incarnation == m.incarnation;
  switch (kind) {
    case kHello: {
      uint64_t bound = r.varint("coordinator");
      if (bound != 0 && bound != incarnation_) {
        // A worker of an older run of this job: it must restart and join this one.
        sendTo(identity, abortMessage("the checkpoint coordinator restarted"));
        return;
      }
      if (started && !known) {
        abort("worker " + std::to_string(w) + " restarted: the job restarts from checkpoint " +
              std::to_string(coord->lastCompleted()));
        sendTo(identity, abortMessage(aborted_));
        return;
      }
      m.identity = identity;
      m.incarnation = incarnation;
      m.lastHeard = now;
      if (started) {
        // Still joining a second after its START: that was lost (its connection was made
        // again, say). No checkpoint completed since without its tasks: the same data again.
        if (bound == 0 && now - m.startSentAt > 1'000'000'000) sendStart(w, coord->restored(), now);
        return;
      }
      for (size_t i = 0; i < members_.size(); ++i)
        if (static_cast<int>(i) != self_ && members_[i].incarnation == 0) return;
      CheckpointCoordinator::Restored all = coord->restored();
      for (size_t i = 0; i < members_.size(); ++i)
        if (static_cast<int>(i) != self_) sendStart(i, all, now);
      std::lock_guard lk(mutex_);
      started_ = true;
      cv_.notify_all();
      return;
    }
    case kReport: {
      if (!known) return;  // from a worker of another run
      m.lastHeard = now;
      uint64_t id = r.varint("checkpoint");
      TaskReport report;
      report.snapshots = readSnapshots(r);
      report.source = r.str("source");
      report.offsets = readOffsets(r);
      r.expectEnd();
      try {
        coord->report(id, std::move(report));
      } catch (const std::logic_error& e) {
        abort(e.what());
      }
      return;
    }
    case kEnded: {
      if (!known) return;
      m.lastHeard = now;
      for (uint64_t n = r.varint("inputs ended"); n > 0; --n) coord->inputEnded();
      return;
    }
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

// Every worker gets its tasks' snapshots and every source's offsets.
void CheckpointLink::sendStart(size_t w, const CheckpointCoordinator::Restored& all, int64_t now) {
  StateWriter s = message(kStart);
  s.varint(incarnation_);
  s.varint(all.completed);
  std::map<std::string, std::string> theirs;
  for (const auto& [key, blob] : all.snapshots) {
    int owner = workerOfSnapshot(key);
    if (owner < 0 || owner == static_cast<int>(w)) theirs[key] = blob;
  }
  writeSnapshots(s, theirs);
  s.varint(all.offsets.size());
  for (const auto& [source, offsets] : all.offsets) {
    s.str(source);
    writeOffsets(s, offsets);
  }
  sendTo(members_[w].identity, s.take());
  members_[w].startSentAt = now;
}

int CheckpointLink::workerOfSnapshot(const std::string& key) const {
  std::string task = key.substr(0, key.find('/'));  // "component#index[/in-flight]"
  auto hash = task.rfind('#');
  if (hash == std::string::npos) return -1;
  std::string name = task.substr(0, hash);
  int index = -1;
  try {
    index = std::stoi(task.substr(hash + 1));
  } catch (const std::exception&) {
    return -1;
  }
  for (const ComponentSpec& c : topology_.components()) {
    // A key-grouped task may need the blob of any old task, wherever that one ran.
    if (c.name == name && c.maxParallelism > 0) return -1;
    if (c.name == name && index >= 0 && index < c.parallelism)
      return assignment_.workerOfTask.at(static_cast<size_t>(c.firstTask + index));
  }
  return -1;
}

void CheckpointLink::lead(int64_t now) {
  if (Shared s = shared(); !s.started || !s.aborted.empty()) return;
  for (size_t w = 0; w < members_.size(); ++w) {
    if (static_cast<int>(w) == self_ ||
        now - members_[w].lastHeard < kSilence.count() * 1'000'000'000)
      continue;
    abort("worker " + std::to_string(w) + " was not heard for " +
          std::to_string(kSilence.count()) + " s");
    return;
  }
  uint64_t triggered;
  try {
    triggered = coord_->due();  // the interval is the coordinator's, whoever holds the spouts
  } catch (const std::exception& e) {
    abort(e.what());
    return;
  }
  uint64_t completed = coord_->lastCompleted(), final = coord_->finalCheckpoint();
  if (triggered == sentTriggered_ && completed == sentCompleted_ && final == sentFinal_ &&
      now - lastSent_ < std::chrono::nanoseconds(kHeartbeat).count())
    return;
  sentTriggered_ = triggered;
  sentCompleted_ = completed;
  sentFinal_ = final;
  lastSent_ = now;
  for (size_t w = 0; w < members_.size(); ++w) {
    if (static_cast<int>(w) == self_) continue;
    StateWriter s = message(kState);
    s.varint(incarnation_);
    s.varint(triggered);
    s.varint(completed);
    s.varint(final);
    sendTo(members_[w].identity, s.take());
  }
}

void CheckpointLink::sendTo(const std::string& identity, const std::string& body) {
  if (identity.empty()) return;
  // dontwait: a worker that stopped reading loses its messages instead of stalling the link.
  (void)socket_.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)socket_.send(zmq::buffer(body), zmq::send_flags::dontwait);
}

// --------------------------------------------------------------- a follower's side

void CheckpointLink::handleAtMember(const std::string& body, int64_t now) {
  StateReader r(body, "checkpoint link message");
  r.header(kMagic, 1);
  uint8_t kind = r.u8("kind");
  uint64_t coordinator = r.varint("coordinator");
  auto [aborted, started, coord] = shared();
  if (!aborted.empty()) return;
  if (started && coordinator != boundTo_) {
    abort("the checkpoint coordinator restarted: the job restarts from its last checkpoint");
    return;
  }
  switch (kind) {
    case kStart: {
      if (started) return;  // a repeated START of the same run
      CheckpointCoordinator::Restored restored;
      restored.completed = r.varint("completed");
      restored.snapshots = readSnapshots(r);
      for (uint64_t n = r.count("sources", 2); n > 0; --n) {
        std::string source = r.str("source");
        restored.offsets[source] = readOffsets(r);
      }
      r.expectEnd();
      boundTo_ = coordinator;
      lastHeard_ = now;
      std::lock_guard lk(mutex_);
      restored_ = std::move(restored);
      started_ = true;
      cv_.notify_all();
      return;
    }
    case kState: {
      if (!started) return;
      lastHeard_ = now;
      uint64_t triggered = r.varint("triggered"), completed = r.varint("completed"),
               final = r.varint("final");
      if (coord) coord->follow(triggered, completed, final);
      return;
    }
    case kAbort:
      // Before START nothing ran: wait for the coordinator's next run instead.
      if (started) abort(r.str("why"));
      return;
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

void CheckpointLink::member(int64_t now) {
  auto [aborted, started, coord] = shared();
  if (!aborted.empty()) return;
  auto send = [&](StateWriter& w) {
    std::string bytes = w.take();
    (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  };
  auto head = [&](Kind kind) {
    StateWriter w = message(kind);
    w.varint(static_cast<uint64_t>(self_));
    w.varint(incarnation_);
    return w;
  };
  if (now - lastSent_ >= std::chrono::nanoseconds(kHeartbeat).count()) {
    StateWriter hello = head(kHello);
    hello.varint(started ? boundTo_ : 0);
    send(hello);
    lastSent_ = now;
  }
  if (!started) return;
  if (now - lastHeard_ > kSilence.count() * 1'000'000'000) {
    abort("the checkpoint coordinator was not heard for " + std::to_string(kSilence.count()) +
          " s");
    return;
  }
  if (!coord) return;
  CheckpointCoordinator::Outbox out = coord->takeOutbox();
  for (auto& [id, report] : out.reports) {
    StateWriter w = head(kReport);
    w.varint(id);
    writeSnapshots(w, report.snapshots);
    w.str(report.source);
    writeOffsets(w, report.offsets);
    send(w);
  }
  if (out.inputsEnded > 0) {
    StateWriter w = head(kEnded);
    w.varint(static_cast<uint64_t>(out.inputsEnded));
    send(w);
  }
}

// --------------------------------------------------------------- both

void CheckpointLink::abort(const std::string& why) {
  std::function<void(const std::string&)> handler;
  std::shared_ptr<CheckpointCoordinator> coord;
  {
    std::lock_guard lk(mutex_);
    if (!aborted_.empty()) return;
    aborted_ = why;
    handler = std::move(onAbort_);
    coord = coord_;
    cv_.notify_all();
  }
  logError("exactly-once job over " + std::to_string(assignment_.endpoints.size()) +
           " workers: " + why);
  if (isCoordinator_) {
    for (size_t w = 0; w < members_.size(); ++w) {
      if (static_cast<int>(w) == self_) continue;
      StateWriter a = message(kAbort);
      a.varint(incarnation_);
      a.str(why);
      sendTo(members_[w].identity, a.take());
    }
  }
  if (coord) coord->fail(why);
  if (handler) handler(why);
}

}  // namespace gale
