#include "gale/core/channel.h"

#include <cstring>
#include <thread>

#include "gale/core/log.h"

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

namespace {
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
  try {
    socket_.connect(endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot connect a channel to '" + endpoint + "': " + e.what());
  }
  pending_.reserve(options_.maxItemsPerFrame);
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
    : registry_(std::move(registry)),
      options_(options),
      socket_(transport.context(), zmq::socket_type::pull) {
  socket_.set(zmq::sockopt::rcvhwm, options_.highWaterMark);
  socket_.set(zmq::sockopt::linger, 0);
  socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(options_.limits.maxFrameBytes));
  try {
    socket_.bind(bindable(endpoint));
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("cannot bind a channel at '" + endpoint + "': " + e.what() +
                             " (is another process or task using this endpoint?)");
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
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
