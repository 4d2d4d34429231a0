#include "private/worker_link.h"

#include <unistd.h>

#include <cerrno>
#include <random>
#include <stdexcept>

#include "gale/core/clock.h"
#include "gale/core/log.h"
#include "gale/core/state_codec.h"
#include "gale/core/thread_name.h"
#include "private/runtime_shared.h"

namespace gale {

namespace {

enum Kind : uint8_t {
  kHello = 'H',  // worker -> coordinator: worker, incarnation, bound coordinator (0: none yet)
  kData = 'D',   // either way: the owner's message (worker -> coordinator: after worker, incarnation)
  kStart = 'S',  // coordinator -> worker: incarnation, the owner's START payload
  kBeat = 'B',   // coordinator -> worker: incarnation (nothing else was sent for kHeartbeat)
  kAbort = 'A',  // coordinator -> worker: incarnation, why; worker -> coordinator (it stopped on
                 // an error of its own: the job must too): worker, incarnation, why
};

uint64_t newIncarnation() {
  std::random_device rd;
  uint64_t n = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()) ^
               static_cast<uint64_t>(SystemClock::steadyNanos());
  return n == 0 ? 1 : n;  // 0 means "no coordinator yet" in a HELLO
}

constexpr int64_t inNanos(std::chrono::nanoseconds d) { return d.count(); }

}  // namespace

struct WorkerLink::Member {
  std::string identity;      // the ROUTER's name for its connection
  uint64_t incarnation = 0;  // 0: not joined
  int64_t lastHeard = 0;
  int64_t lastSent = 0;
  int64_t startSentAt = 0;
};

int WorkerLink::coordinatorWorker(int rendezvousTask, const WorkerAssignment& a) {
  return rendezvousTask % static_cast<int>(a.endpoints.size());
}

std::string WorkerLink::endpoint(int rendezvousTask, const WorkerAssignment& a) {
  return taskEndpoint(a.endpoints.at(static_cast<size_t>(coordinatorWorker(rendezvousTask, a))),
                      rendezvousTask);
}

void WorkerLink::Outbox::to(int worker, std::string_view body) {
  link_.sendToMember(static_cast<size_t>(worker), body, SystemClock::steadyNanos());
}

void WorkerLink::Outbox::toAll(std::string_view body) {
  int64_t now = SystemClock::steadyNanos();
  for (size_t w = 0; w < link_.members_.size(); ++w)
    if (static_cast<int>(w) != link_.self_) link_.sendToMember(w, body, now);
}

void WorkerLink::Outbox::toCoordinator(std::string_view body) {
  StateWriter w;
  w.header(link_.magic_, 1);
  w.u8(kData);
  w.varint(static_cast<uint64_t>(link_.self_));
  w.varint(link_.incarnation_);
  w.str(body);
  std::string bytes = w.take();
  (void)link_.socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
}

WorkerLink::WorkerLink(std::string_view magic, std::string job, std::string coordinatorName,
                       int rendezvousTask, const WorkerAssignment& assignment,
                       const std::optional<CurveConfig>& curve, bool coordinator, Hooks hooks)
    : magic_(magic),
      job_(std::move(job)),
      coordinatorName_(std::move(coordinatorName)),
      assignment_(assignment),
      self_(assignment.self),
      coordinatorWorker_(coordinatorWorker(rendezvousTask, assignment)),
      isCoordinator_(coordinator),
      incarnation_(newIncarnation()),
      hooks_(std::move(hooks)),
      socket_(transport_.context(),
              coordinator ? zmq::socket_type::router : zmq::socket_type::dealer) {
  std::string at = endpoint(rendezvousTask, assignment);
  if (coordinator) {
    members_.resize(assignment.endpoints.size());
    socket_.set(zmq::sockopt::linger, 500);  // an ABORT still leaves when the worker exits
    if (curve) {
      transport_.enableCurve(*curve);
      socket_.set(zmq::sockopt::curve_server, true);
      socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
      socket_.set(zmq::sockopt::zap_domain, "gale");
    }
    try {
      socket_.bind(at);
    } catch (const zmq::error_t& e) {
      throw std::runtime_error(coordinatorName_ + " cannot bind '" + at + "': " + e.what());
    }
    if (assignment.endpoints.size() == 1) started_ = true;  // nobody to wait for
  } else {
    socket_.set(zmq::sockopt::linger, 200);  // its ABORT still leaves when the worker exits
    if (curve) {
      const auto& keys = assignment.publicKeys;
      if (static_cast<int>(keys.size()) <= coordinatorWorker_)
        throw std::invalid_argument("CURVE needs the public key of the coordinator's worker");
      socket_.set(zmq::sockopt::curve_serverkey, keys[static_cast<size_t>(coordinatorWorker_)]);
      socket_.set(zmq::sockopt::curve_publickey, curve->keyPair.publicKey);
      socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
    }
    socket_.connect(at);
  }
}

void WorkerLink::start() { thread_ = std::thread([this] { run(); }); }

WorkerLink::~WorkerLink() { stop(); }

void WorkerLink::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  sendAbortOnce();  // an abort from another thread just before the stop still reaches everyone
}

void WorkerLink::flush(const std::function<void(Outbox&)>& send, std::chrono::milliseconds linger) {
  if (!started() || !aborted().empty()) return;
  try {
    Outbox out(*this);
    send(out);
    socket_.set(zmq::sockopt::linger, static_cast<int>(linger.count()));
  } catch (const std::exception& e) {
    logWarn(job_ + " link: the last messages could not be sent: " + e.what());
  }
}

void WorkerLink::sendAbortOnce() {
  std::string why = aborted();
  if (abortSent_ || why.empty()) return;
  abortSent_ = true;
  if (!isCoordinator_) {
    // Its own error (or the coordinator's ABORT, or its silence: then nobody listens).
    if (!started()) return;
    StateWriter a;
    a.header(magic_, 1);
    a.u8(kAbort);
    a.varint(static_cast<uint64_t>(self_));
    a.varint(incarnation_);
    a.str(why);
    std::string bytes = a.take();
    (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    return;
  }
  std::string a = abortMessage(why);
  for (size_t w = 0; w < members_.size(); ++w)
    if (static_cast<int>(w) != self_) sendTo(members_[w].identity, a);
}

std::string WorkerLink::waitStarted() {
  std::unique_lock lk(mutex_);
  cv_.wait(lk, [&] { return started_ || !aborted_.empty(); });
  if (!aborted_.empty())
    throw std::runtime_error(job_ + " over " + std::to_string(assignment_.endpoints.size()) +
                             " workers stopped before it started: " + aborted_);
  return std::move(startPayload_);
}

bool WorkerLink::started() {
  std::lock_guard lk(mutex_);
  return started_;
}

std::string WorkerLink::aborted() {
  std::lock_guard lk(mutex_);
  return aborted_;
}

void WorkerLink::onAbort(std::function<void(const std::string&)> handler) {
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

void WorkerLink::run() {
  nameThisThread("gale-link");
  while (!stop_.load()) {
    try {
      step();
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) abort(job_ + " link failed: " + e.what());
    } catch (const std::exception& e) {
      // E.g. the checkpoint could not be read for START: the job cannot go on.
      abort(job_ + " link failed: " + e.what());
    }
    if (aborted().empty()) continue;
    // Here rather than in abort(), which any thread may call: the socket is this thread's.
    sendAbortOnce();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void WorkerLink::step() {
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
      logWarn(job_ + " link: a malformed message was dropped: " + e.what());
    }
  }
  if (!aborted().empty() || !started()) {
    if (!isCoordinator_) member(now);  // HELLO until started
    return;
  }
  if (isCoordinator_) lead(now);
  else member(now);
  if (!aborted().empty() || !hooks_.onTick) return;
  Outbox out(*this);
  hooks_.onTick(out);
}

std::string WorkerLink::abortMessage(const std::string& why) const {
  StateWriter a;
  a.header(magic_, 1);
  a.u8(kAbort);
  a.varint(incarnation_);
  a.str(why);
  return a.take();
}

// --------------------------------------------------------------- the coordinator's side

void WorkerLink::handleAtCoordinator(const std::string& identity, const std::string& body,
                                     int64_t now) {
  StateReader r(body, job_ + " link message");
  r.header(magic_, 1);
  uint8_t kind = r.u8("kind");
  uint64_t w = r.varint("worker");
  uint64_t incarnation = r.varint("incarnation");
  if (w >= members_.size() || static_cast<int>(w) == self_) r.fail("no such worker");
  Member& m = members_[w];
  if (std::string aborted = this->aborted(); !aborted.empty()) {
    sendTo(identity, abortMessage(aborted));
    return;
  }
  bool started = this->started();
  bool known = started && incarnation == m.incarnation;
  switch (kind) {
    case kHello: {
      uint64_t bound = r.varint("coordinator");
      if (bound != 0 && bound != incarnation_) {
        // A worker of an older run of this job: it must restart and join this one.
        sendTo(identity, abortMessage(coordinatorName_ + " restarted"));
        return;
      }
      if (started && !known) {
        abort("worker " + std::to_string(w) + " restarted: the job restarts from " +
              (hooks_.resumePoint ? hooks_.resumePoint() : std::string("its last commit")));
        sendTo(identity, abortMessage(aborted()));
        return;
      }
      m.identity = identity;
      m.incarnation = incarnation;
      m.lastHeard = now;
      if (started) {
        // Still joining a second after its START: that was lost (its connection was made
        // again, say). Nothing committed since without its tasks: the same data again.
        if (bound == 0 && now - m.startSentAt > 1'000'000'000) sendStart(w, now);
        return;
      }
      for (size_t i = 0; i < members_.size(); ++i)
        if (static_cast<int>(i) != self_ && members_[i].incarnation == 0) return;
      for (size_t i = 0; i < members_.size(); ++i)
        if (static_cast<int>(i) != self_) sendStart(i, now);
      std::lock_guard lk(mutex_);
      started_ = true;
      cv_.notify_all();
      return;
    }
    case kData: {
      if (!known) return;  // from a worker of another run
      m.lastHeard = now;
      std::string data = r.str("body");
      r.expectEnd();
      if (hooks_.onMessage) hooks_.onMessage(static_cast<int>(w), data);
      return;
    }
    case kAbort:
      // A worker of this run stopped on an error of its own: no checkpoint or batch can
      // complete without it, so the job restarts now rather than after kSilence.
      if (known) abort(r.str("why"));
      return;
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

void WorkerLink::sendStart(size_t w, int64_t now) {
  StateWriter s;
  s.header(magic_, 1);
  s.u8(kStart);
  s.varint(incarnation_);
  s.str(hooks_.startPayload ? hooks_.startPayload(static_cast<int>(w)) : std::string());
  sendRaw(w, s.take(), now);
  members_[w].startSentAt = now;
}

void WorkerLink::lead(int64_t now) {
  for (size_t w = 0; w < members_.size(); ++w) {
    if (static_cast<int>(w) == self_) continue;
    if (now - members_[w].lastHeard >= inNanos(kSilence)) {
      abort("worker " + std::to_string(w) + " was not heard for " +
            std::to_string(kSilence.count()) + " s");
      return;
    }
    if (now - members_[w].lastSent >= inNanos(kHeartbeat)) {
      StateWriter b;
      b.header(magic_, 1);
      b.u8(kBeat);
      b.varint(incarnation_);
      sendRaw(w, b.take(), now);
    }
  }
}

void WorkerLink::sendToMember(size_t w, std::string_view body, int64_t now) {
  StateWriter d;
  d.header(magic_, 1);
  d.u8(kData);
  d.varint(incarnation_);
  d.str(body);
  sendRaw(w, d.take(), now);
}

void WorkerLink::sendRaw(size_t w, std::string_view bytes, int64_t now) {
  Member& m = members_.at(w);
  m.lastSent = now;
  sendTo(m.identity, bytes);
}

void WorkerLink::sendTo(const std::string& identity, std::string_view body) {
  if (identity.empty()) return;
  // dontwait: a worker that stopped reading loses its messages instead of stalling the link.
  (void)socket_.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
  (void)socket_.send(zmq::buffer(body), zmq::send_flags::dontwait);
}

// --------------------------------------------------------------- a follower's side

void WorkerLink::handleAtMember(const std::string& body, int64_t now) {
  StateReader r(body, job_ + " link message");
  r.header(magic_, 1);
  uint8_t kind = r.u8("kind");
  uint64_t coordinator = r.varint("coordinator");
  if (!aborted().empty()) return;
  bool started = this->started();
  if (started && coordinator != boundTo_) {
    abort(coordinatorName_ + " restarted: the job restarts from its last commit");
    return;
  }
  switch (kind) {
    case kStart: {
      if (started) return;  // a repeated START of the same run
      std::string payload = r.str("start");
      r.expectEnd();
      boundTo_ = coordinator;
      lastHeard_ = now;
      std::lock_guard lk(mutex_);
      startPayload_ = std::move(payload);
      started_ = true;
      cv_.notify_all();
      return;
    }
    case kBeat:
      if (started) lastHeard_ = now;
      return;
    case kData: {
      if (!started) return;
      lastHeard_ = now;
      std::string data = r.str("body");
      r.expectEnd();
      if (hooks_.onMessage) hooks_.onMessage(coordinatorWorker_, data);
      return;
    }
    case kAbort:
      // Before START nothing ran: wait for the coordinator's next run instead.
      if (started) abort(r.str("why"));
      return;
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

void WorkerLink::member(int64_t now) {
  if (!aborted().empty()) return;
  bool started = this->started();
  if (now - lastSent_ >= inNanos(kHeartbeat)) {
    StateWriter hello;
    hello.header(magic_, 1);
    hello.u8(kHello);
    hello.varint(static_cast<uint64_t>(self_));
    hello.varint(incarnation_);
    hello.varint(started ? boundTo_ : 0);
    std::string bytes = hello.take();
    (void)socket_.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
    lastSent_ = now;
  }
  if (started && now - lastHeard_ > inNanos(kSilence))
    abort(coordinatorName_ + " was not heard for " + std::to_string(kSilence.count()) + " s");
}

// --------------------------------------------------------------- both

void WorkerLink::abort(const std::string& why) {
  std::function<void(const std::string&)> handler;
  {
    std::lock_guard lk(mutex_);
    if (!aborted_.empty()) return;
    aborted_ = why;
    handler = std::move(onAbort_);
    cv_.notify_all();
  }
  logError(job_ + " over " + std::to_string(assignment_.endpoints.size()) + " workers: " + why);
  if (hooks_.onAborted) hooks_.onAborted(why);
  if (handler) handler(why);
}

}  // namespace gale
