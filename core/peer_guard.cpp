#include "gale/core/peer_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "gale/core/log.h"
#include "gale/core/thread_name.h"

namespace gale {

namespace {

constexpr int kWatchedEvents =
    ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
constexpr int64_t kLogIntervalNanos = 10'000'000'000;  // one refusal line per 10 s at most

int64_t steadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The local address of `fd` spelled as libzmq spells endpoints ("tcp://127.0.0.1:5555",
// "tcp://[::1]:5555", "ipc:///path"); empty if it is not a socket.
std::string localName(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
  char host[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string("tcp://") + host + ":" + std::to_string(ntohs(a->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    return std::string("tcp://[") + host + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  if (ss.ss_family == AF_UNIX) {
    auto* a = reinterpret_cast<sockaddr_un*>(&ss);
    if (len <= offsetof(sockaddr_un, sun_path)) return {};
    if (a->sun_path[0] == '\0')  // abstract namespace, which libzmq writes with '@'
      return "ipc://@" + std::string(a->sun_path + 1, len - offsetof(sockaddr_un, sun_path) - 1);
    return std::string("ipc://") + a->sun_path;
  }
  return {};
}

const char* failureName(uint16_t event) {
  switch (event) {
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: return "authentication refused";
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: return "protocol error (missing or wrong keys?)";
    default: return "handshake failed or timed out";
  }
}

}  // namespace

struct PeerGuard::Watch {
  uint64_t id = 0;
  PeerLimits limits;
  std::unique_ptr<zmq::socket_t> events;  // PAIR connected to the receiver's monitor
  std::unordered_set<int> open;           // accepted and not disconnected, within the limit
  std::unordered_set<int> closing;        // accepted beyond the limit, being closed
};

struct PeerGuard::Pending {
  std::unique_ptr<zmq::socket_t> socket;  // a monitor PAIR or the ZAP socket
  uint64_t id = 0;
  PeerLimits limits;
  bool zap = false;
  bool drop = false;  // unwatch `id`
};

PeerGuard::PeerGuard(zmq::context_t& ctx) : ctx_(ctx) {
  wakeFd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wakeFd_ < 0) throw std::runtime_error("PeerGuard: eventfd failed");
  thread_ = std::thread([this] { run(); });
}

PeerGuard::~PeerGuard() {
  stop_ = true;
  wake();
  thread_.join();
  ::close(wakeFd_);
}

void PeerGuard::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
}

void PeerGuard::startZap(const std::vector<std::string>& authorized) {
  auto zap = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::rep);
  zap->set(zmq::sockopt::linger, 0);
  try {
    zap->bind("inproc://zeromq.zap.01");
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(std::string("cannot start the ZAP handler: ") + e.what() +
                             " (one CurveConfig per Transport)");
  }
  std::lock_guard lock(mutex_);
  // The thread reads authorized_ only once it owns the ZAP socket, handed over under this lock.
  authorized_.insert(authorized.begin(), authorized.end());
  pending_.push_back(Pending{std::move(zap), 0, {}, true, false});
  wake();
}

uint64_t PeerGuard::watch(zmq::socket_t& socket, const PeerLimits& limits) {
  uint64_t id = nextId_++;
  std::string ep = "inproc://gale-peer-monitor-" +
                   std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" + std::to_string(id);
  if (zmq_socket_monitor(socket.handle(), ep.c_str(), kWatchedEvents) != 0)
    throw std::runtime_error(std::string("zmq_socket_monitor: ") + zmq_strerror(zmq_errno()));
  // Connected here, before the receiver binds, so no event is missed; no high-water mark, so
  // libzmq never drops an event (the thread drains them as they come).
  auto pair = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pair);
  pair->set(zmq::sockopt::rcvhwm, 0);
  pair->set(zmq::sockopt::linger, 0);
  pair->connect(ep);
  std::lock_guard lock(mutex_);
  pending_.push_back(Pending{std::move(pair), id, limits, false, false});
  wake();
  return id;
}

void PeerGuard::unwatch(zmq::socket_t& socket, uint64_t id) {
  zmq_socket_monitor(socket.handle(), nullptr, 0);
  std::lock_guard lock(mutex_);
  pending_.push_back(Pending{nullptr, id, {}, false, true});
  wake();
}

PeerStats PeerGuard::stats() const {
  PeerStats s;
  s.accepted = accepted_.load();
  s.handshakesSucceeded = succeeded_.load();
  s.handshakesFailed = failed_.load();
  s.unauthorizedKeys = unauthorized_.load();
  s.connectionsOverLimit = overLimit_.load();
  s.openConnections = open_.load();
  s.peakOpenConnections = peak_.load();
  return s;
}

void PeerGuard::refused(const std::string& what) {
  int64_t now = steadyNanos();
  if (lastLogNanos_ != 0 && now - lastLogNanos_ < kLogIntervalNanos) {
    ++suppressed_;
    return;
  }
  std::string line = "refused a peer: " + what;
  if (suppressed_ > 0)
    line += " (and " + std::to_string(suppressed_) + " more refusals in the last " +
            std::to_string((now - lastLogNanos_) / 1'000'000'000) + " s, not logged)";
  logWarn(line);
  lastLogNanos_ = now;
  suppressed_ = 0;
}

void PeerGuard::handleZap() {
  // RFC 27 (ZAP): version, request id, domain, address, identity, mechanism, credentials...
  std::vector<zmq::message_t> req;
  for (;;) {
    zmq::message_t m;
    if (!zap_->recv(m, zmq::recv_flags::dontwait)) break;
    bool more = m.more();
    req.push_back(std::move(m));
    if (!more) break;
  }
  if (req.empty()) return;
  std::string requestId = req.size() > 1 ? req[1].to_string() : "";
  std::string address = req.size() > 3 ? req[3].to_string() : "?";
  std::string mechanism = req.size() > 5 ? req[5].to_string() : "";
  bool ok = false;
  std::string key;
  if (req.size() >= 7 && req[0].to_string_view() == "1.0" && mechanism == "CURVE" &&
      req[6].size() == 32) {
    char z85[41];
    zmq_z85_encode(z85, static_cast<const uint8_t*>(req[6].data()), 32);
    key = z85;
    ok = authorized_.count(key) > 0;
  }
  if (!ok) {
    ++unauthorized_;
    refused("from " + address + ": " +
            (key.empty() ? "mechanism '" + mechanism + "' is not CURVE"
                         : "CURVE key " + key + " is not authorized"));
  }
  zap_->send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(requestId), zmq::send_flags::sndmore);
  zap_->send(ok ? zmq::str_buffer("200") : zmq::str_buffer("400"), zmq::send_flags::sndmore);
  zap_->send(ok ? zmq::str_buffer("OK") : zmq::str_buffer("not authorized"),
             zmq::send_flags::sndmore);
  zap_->send(zmq::buffer(key), zmq::send_flags::sndmore);  // user id: the client's key
  zap_->send(zmq::message_t(), zmq::send_flags::none);     // no metadata
}

void PeerGuard::handleEvent(Watch& w) {
  for (;;) {
    zmq::message_t head, address;
    if (!w.events->recv(head, zmq::recv_flags::dontwait)) return;
    if (head.more()) (void)w.events->recv(address);
    if (head.size() < 6) continue;
    uint16_t event;
    uint32_t value;
    std::memcpy(&event, head.data(), 2);
    std::memcpy(&value, static_cast<const char*>(head.data()) + 2, 4);
    int fd = static_cast<int>(value);
    switch (event) {
      case ZMQ_EVENT_ACCEPTED: {
        ++accepted_;
        if (static_cast<int>(w.open.size()) < w.limits.maxConnections) {
          if (w.open.insert(fd).second) {
            uint64_t now = ++open_;
            if (now > peak_.load()) peak_ = now;  // only this thread writes peak_
          }
          break;
        }
        ++overLimit_;
        w.closing.insert(fd);
        // Close only what is still this receiver's connection: the event is read after the
        // fact, and the fd number may have been closed and reused since. shutdown() (not
        // close()) leaves the descriptor to libzmq, which sees the end and cleans up.
        std::string local = address.to_string();
        if (!local.empty() && localName(fd) == local) ::shutdown(fd, SHUT_RDWR);
        refused("on " + local + ": already " + std::to_string(w.open.size()) +
                " connections (PeerLimits::maxConnections)");
        break;
      }
      case ZMQ_EVENT_DISCONNECTED:
        if (w.open.erase(fd) > 0) --open_;
        w.closing.erase(fd);
        break;
      case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: ++succeeded_; break;
      case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
      case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ++failed_;
        // ZAP refusals are logged by the handler with the key; the rest only here.
        if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
          refused("on " + address.to_string() + ": " + failureName(event));
        break;
      default: break;
    }
  }
}

void PeerGuard::run() {
  nameThisThread("gale-peer-guard");
  std::vector<zmq::pollitem_t> items;
  for (;;) {
    items.clear();
    items.push_back({nullptr, wakeFd_, ZMQ_POLLIN, 0});
    if (zap_) items.push_back({zap_->handle(), 0, ZMQ_POLLIN, 0});
    size_t firstWatch = items.size();
    for (auto& w : watches_) items.push_back({w->events->handle(), 0, ZMQ_POLLIN, 0});
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(-1));

    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t n;
      [[maybe_unused]] ssize_t r = ::read(wakeFd_, &n, sizeof n);
      std::vector<Pending> todo;
      {
        std::lock_guard lock(mutex_);
        todo.swap(pending_);
      }
      for (auto& p : todo) {
        if (p.zap) {
          zap_ = std::move(p.socket);
        } else if (p.drop) {
          for (size_t i = 0; i < watches_.size(); ++i)
            if (watches_[i]->id == p.id) {
              handleEvent(*watches_[i]);  // what is already queued still counts
              open_ -= watches_[i]->open.size();
              watches_.erase(watches_.begin() + static_cast<long>(i));
              break;
            }
        } else {
          auto w = std::make_unique<Watch>();
          w->id = p.id;
          w->limits = p.limits;
          w->events = std::move(p.socket);
          watches_.push_back(std::move(w));
        }
      }
      if (stop_) break;
      continue;  // the poll set changed
    }
    if (zap_ && (items[1].revents & ZMQ_POLLIN)) handleZap();
    for (size_t i = firstWatch; i < items.size(); ++i)
      if (items[i].revents & ZMQ_POLLIN) handleEvent(*watches_[i - firstWatch]);
  }
  watches_.clear();
  zap_.reset();
}

}  // namespace gale
