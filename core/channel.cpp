#include "gale/core/channel.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "gale/core/log.h"
#include "gale/core/peer_guard.h"

// ThreadSanitizer cannot see the synchronization inside libzmq (not instrumented, lock-free
// queues), so a frame written by the sender's thread and read by the receiver's looks like a race.
// These annotations tell it what ZeroMQ guarantees: a message's bytes are handed over, sender
// before receiver (the heap buffer of a large message keeps its address across inproc).
#if defined(__SANITIZE_THREAD__)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define GALE_HANDOVER_RELEASE(p) __tsan_release(p)
#define GALE_HANDOVER_ACQUIRE(p) __tsan_acquire(p)
#else
#define GALE_HANDOVER_RELEASE(p) (void)(p)
#define GALE_HANDOVER_ACQUIRE(p) (void)(p)
#endif

namespace gale {

Transport::Transport(int ioThreads) : ctx_(ioThreads) {
  // Enough sockets for large topologies on one worker (the default is 1023).
  ctx_.set(zmq::ctxopt::max_sockets, 65536);
}

Transport::~Transport() = default;

void Transport::enableCurve(const CurveConfig& config) {
  requireCurveSupport();
  if (curve_) throw std::logic_error("Transport::enableCurve called twice");
  if (!isCurveKey(config.keyPair.publicKey) || !isCurveKey(config.keyPair.secretKey))
    throw std::invalid_argument("CurveConfig: keyPair is not a pair of 40-character Z85 keys");
  char derived[41];
  if (zmq_curve_public(derived, config.keyPair.secretKey.c_str()) != 0 ||
      config.keyPair.publicKey != derived)
    throw std::invalid_argument("CurveConfig: keyPair.publicKey does not belong to its secretKey");
  for (const auto& k : config.authorizedClients)
    if (!isCurveKey(k))
      throw std::invalid_argument("CurveConfig: authorized client key '" + k +
                                  "' is not a 40-character Z85 key");
  CurveConfig c = config;
  c.authorizedClients.push_back(c.keyPair.publicKey);
  guard().startZap(c.authorizedClients);
  curve_ = std::move(c);
}

PeerGuard& Transport::guard() {
  std::lock_guard lock(guardMutex_);
  if (!guard_) guard_ = std::make_unique<PeerGuard>(ctx_);
  return *guard_;
}

PeerStats Transport::peerStats() {
  std::lock_guard lock(guardMutex_);
  return guard_ ? guard_->stats() : PeerStats{};
}

namespace {
bool overNetwork(const std::string& endpoint) {
  return endpoint.rfind("tcp://", 0) == 0 || endpoint.rfind("ipc://", 0) == 0;
}

// tcp://host:0 means "any free port", which ZeroMQ spells tcp://host:*.
std::string bindable(const std::string& endpoint) {
  if (endpoint.rfind("tcp://", 0) == 0 && endpoint.size() > 2 &&
      endpoint.compare(endpoint.size() - 2, 2, ":0") == 0)
    return endpoint.substr(0, endpoint.size() - 1) + "*";
  return endpoint;
}
}  // namespace

ChannelSender::ChannelSender(Transport& transport, const std::string& endpoint, TaskId srcTask,
                             ChannelOptions options)
    : endpoint_(endpoint),
      srcTask_(srcTask),
      options_(options),
      socket_(transport.context(), zmq::socket_type::push) {
  socket_.set(zmq::sockopt::sndhwm, options_.highWaterMark);
  socket_.set(zmq::sockopt::linger, 0);
  if (const CurveConfig* curve = transport.curve(); curve && overNetwork(endpoint)) {
    const std::string& server =
        options_.curveServerKey.empty() ? curve->keyPair.publicKey : options_.curveServerKey;
    if (!isCurveKey(server))
      throw std::invalid_argument("channel to '" + endpoint + "': CURVE server key '" + server +
                                  "' is not a 40-character Z85 key");
    socket_.set(zmq::sockopt::curve_serverkey, server);
    socket_.set(zmq::sockopt::curve_publickey, curve->keyPair.publicKey);
    socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
  }
  if (options_.watchConnection && overNetwork(endpoint)) {
    // The monitor goes on before connect(): an event raised before it would be lost.
    static std::atomic<uint64_t> watches{0};
    std::string address = "inproc://gale-sender-watch-" + std::to_string(watches.fetch_add(1));
    if (zmq_socket_monitor(socket_.handle(), address.c_str(), ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
      throw std::runtime_error("cannot watch the channel to '" + endpoint +
                               "': " + zmq_strerror(zmq_errno()));
    monitor_ = std::make_unique<zmq::socket_t>(transport.context(), zmq::socket_type::pair);
    monitor_->connect(address);
  }
  try {
    socket_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot connect a channel to '" + endpoint + "': " + e.what());
  }
  pending_.reserve(options_.maxItemsPerFrame);
}

bool ChannelSender::awaitConnected(std::chrono::milliseconds timeout) {
  if (!monitor_) return true;
  zmq::pollitem_t item{monitor_->handle(), 0, ZMQ_POLLIN, 0};
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (zmq::poll(&item, 1, std::max(left, std::chrono::milliseconds(0))) > 0) {
      // An event is two frames: 16-bit event id + 32-bit value, then the endpoint.
      zmq::message_t event, where;
      if (!monitor_->recv(event, zmq::recv_flags::dontwait)) continue;
      if (event.more()) (void)monitor_->recv(where, zmq::recv_flags::none);
      uint16_t id = 0;
      if (event.size() >= sizeof id) std::memcpy(&id, event.data(), sizeof id);
      if (id == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        stopWatching();
        return true;
      }
      continue;
    }
    if (left.count() <= 0) return false;
  }
}

void ChannelSender::stopWatching() {
  if (!monitor_) return;
  zmq_socket_monitor(socket_.handle(), nullptr, 0);
  monitor_.reset();
}

void ChannelSender::push(StreamId stream, Tuple&& tuple) {
  OutItem& it = pending_.emplace_back();
  it.isTuple = true;
  it.stream = stream;
  it.tuple = std::move(tuple);
}

void ChannelSender::push(Control control) {
  OutItem& it = pending_.emplace_back();
  it.isTuple = false;
  it.control = std::move(control);
}

void ChannelSender::encodePending() {
  encoded_ = encoder_.encode(srcTask_, pending_);
  encodedItems_ = pending_.size();
  pending_.clear();
}

bool ChannelSender::tryFlush() {
  for (;;) {
    if (!encoded_) {
      if (pending_.empty()) return true;
      encodePending();
    }
    GALE_HANDOVER_RELEASE(encoded_->data());
    auto sent = socket_.send(*encoded_, zmq::send_flags::dontwait);
    if (!sent) return false;  // receiver full: keep the encoded frame for the next attempt
    ++framesSent_;
    itemsSent_ += encodedItems_;
    encoded_.reset();
    encodedItems_ = 0;
  }
}

bool ChannelSender::flush(const std::function<void()>& whileBlocked,
                          const std::atomic<bool>* stop) {
  bool counted = false;
  while (!tryFlush()) {
    if (!counted) {
      ++blockedFlushes_;
      counted = true;
    }
    if (stop && stop->load(std::memory_order_relaxed)) return false;
    if (whileBlocked) whileBlocked();
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLOUT, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(1));
  }
  return true;
}

ChannelReceiver::ChannelReceiver(Transport& transport, const std::string& endpoint,
                                 std::shared_ptr<const SchemaRegistry> registry,
                                 ChannelOptions options)
    : transport_(transport),
      registry_(std::move(registry)),
      options_(options),
      socket_(transport.context(), zmq::socket_type::pull) {
  socket_.set(zmq::sockopt::rcvhwm, options_.highWaterMark);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.limits.maxFrameBytes));
  if (overNetwork(endpoint)) {
    if (options_.peers.maxConnections < 1)
      throw std::invalid_argument("PeerLimits::maxConnections must be at least 1");
    socket_.set(zmq::sockopt::handshake_ivl,
                static_cast<int>(std::max<int64_t>(1, options_.peers.handshakeTimeout.count())));
    socket_.set(zmq::sockopt::backlog, options_.peers.backlog);
    if (const CurveConfig* curve = transport.curve()) {
      socket_.set(zmq::sockopt::curve_server, true);
      socket_.set(zmq::sockopt::curve_secretkey, curve->keyPair.secretKey);
      socket_.set(zmq::sockopt::zap_domain, "gale");
    }
    watchId_ = transport.guard().watch(socket_, options_.peers);  // before bind: see every peer
  }
  try {
    socket_.bind(bindable(endpoint));
  } catch (const zmq::error_t& e) {
    if (watchId_) transport_.guard().unwatch(socket_, watchId_);
    throw std::runtime_error("cannot bind a channel at '" + endpoint + "': " + e.what() +
                             " (is another process or task using this endpoint?)");
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
}

ChannelReceiver::~ChannelReceiver() {
  if (watchId_) transport_.guard().unwatch(socket_, watchId_);
}

void ChannelReceiver::deliver(zmq::message_t& msg, FrameHandler& handler) {
  GALE_HANDOVER_ACQUIRE(msg.data());
  ++framesReceived_;
  const void* data = msg.data();
  size_t size = msg.size();
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    // Small messages live inside zmq_msg_t and may be unaligned; Cap'n Proto needs words.
    aligned_.resize((size + 7) / 8);
    std::memcpy(aligned_.data(), data, size);
    data = aligned_.data();
  }
  std::string err = decoder_.decode(data, size, *registry_, options_.limits, handler);
  if (!err.empty()) {
    ++malformedFrames_;
    lastError_ = err;
    logWarn("dropped a malformed frame on " + endpoint_ + ": " + err);
  }
}

bool ChannelReceiver::receive(std::chrono::milliseconds timeout, FrameHandler& handler) {
  zmq::message_t msg;
  if (timeout.count() != 0) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    if (zmq::poll(&item, 1, timeout) == 0) return false;
  }
  if (!socket_.recv(msg, zmq::recv_flags::dontwait)) return false;
  deliver(msg, handler);
  return true;
}

size_t ChannelReceiver::drain(FrameHandler& handler, size_t maxFrames) {
  size_t n = 0;
  zmq::message_t msg;
  while (n < maxFrames && socket_.recv(msg, zmq::recv_flags::dontwait)) {
    deliver(msg, handler);
    ++n;
  }
  return n;
}

}  // namespace gale
