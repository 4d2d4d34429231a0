#include "gale/connectors/socket_source.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "gale/core/log.h"
#include "gale/core/thread_name.h"

namespace gale {

SocketSource::SocketSource(std::string host, int port, Options options)
    : host_(std::move(host)), port_(port), options_(options) {
  if (host_.empty()) throw std::invalid_argument("SocketSource: the host is empty");
  if (port_ < 1 || port_ > 65535) {
    throw std::invalid_argument("SocketSource " + host_ + ": port " + std::to_string(port_) +
                                " is outside 1..65535");
  }
  if (options_.maxLineLength == 0 || options_.maxBufferedLines == 0 ||
      options_.maxBufferedBytes == 0) {
    throw std::invalid_argument("SocketSource " + name() +
                                ": maxLineLength, maxBufferedLines and maxBufferedBytes must be > 0");
  }
  if (options_.initialBackoff.count() <= 0 || options_.maxBackoff < options_.initialBackoff) {
    throw std::invalid_argument("SocketSource " + name() +
                                ": backoff must satisfy 0 < initialBackoff <= maxBackoff");
  }
}

SocketSource::~SocketSource() { close(); }

std::string SocketSource::name() const { return "socket:" + host_ + ":" + std::to_string(port_); }

void SocketSource::declareOutputFields(OutputFieldsDeclarer& declarer) const {
  declarer.declare(Fields{FieldSpec{"line", Type::String}});
}

void SocketSource::open(const Clock& clock) {
  if (reader_.joinable()) throw std::logic_error(name() + ": open() called twice");
  clock_ = &clock;
  stop_ = false;
  wakeFd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wakeFd_ < 0) throw SourceError(name() + ": eventfd: " + std::strerror(errno));
  reader_ = std::thread([this] { run(); });
}

void SocketSource::close() {
  if (!reader_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wakeFd_, &one, sizeof one);
  reader_.join();
  ::close(wakeFd_);
  wakeFd_ = -1;
}

void SocketSource::checkPartition(int partition) const {
  if (partition != 0) {
    throw std::out_of_range(name() + ": partition " + std::to_string(partition) +
                            " does not exist (a socket source has partition 0 only)");
  }
}

int64_t SocketSource::available(int partition) {
  checkPartition(partition);
  std::lock_guard lock(mutex_);
  return base_ + static_cast<int64_t>(buffer_.size());
}

size_t SocketSource::read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) {
  checkPartition(partition);
  if (from < 0 || to < from) {
    throw std::invalid_argument(name() + ": bad range [" + std::to_string(from) + ", " +
                                std::to_string(to) + ")");
  }
  std::lock_guard lock(mutex_);
  const int64_t end = base_ + static_cast<int64_t>(buffer_.size());
  from = std::max(from, base_);
  to = std::min(to, end);
  if (to <= from) return 0;
  for (int64_t o = from; o < to; ++o) {
    const Line& l = buffer_[static_cast<size_t>(o - base_)];
    SourceRecord r;
    r.offset = o;
    r.values.emplace_back(l.text);
    r.originNanos = l.originNanos;
    out.push_back(std::move(r));
  }
  return static_cast<size_t>(to - from);
}

void SocketSource::commit(int partition, int64_t offset) {
  checkPartition(partition);
  {
    std::lock_guard lock(mutex_);
    while (base_ < offset && !buffer_.empty()) {
      bufferedBytes_ -= buffer_.front().text.size();
      buffer_.pop_front();
      ++base_;
    }
  }
  space_.notify_all();
}

SocketSource::Stats SocketSource::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

std::string SocketSource::lastError() const {
  std::lock_guard lock(mutex_);
  return lastError_;
}

// --- reader thread ----------------------------------------------------------------------------

void SocketSource::waitBackoff(std::chrono::milliseconds d) {
  std::unique_lock lock(mutex_);
  space_.wait_for(lock, d, [&] { return stop_.load(); });
}

int SocketSource::connectOnce(std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* addrs = nullptr;
  const std::string where = host_ + ":" + std::to_string(port_);
  int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &addrs);
  if (rc != 0) {
    error = "resolve " + where + ": " + ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = addrs; a && !stop_; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = "socket for " + where + ": " + std::strerror(errno);
      continue;
    }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS) {
      pollfd fds[2] = {{fd, POLLOUT, 0}, {wakeFd_, POLLIN, 0}};
      int n = ::poll(fds, 2, static_cast<int>(options_.connectTimeout.count()));
      int soError = 0;
      socklen_t len = sizeof soError;
      if (n > 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP)) &&
          ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &len) == 0 && soError == 0) {
        break;
      }
      error = "connect to " + where + ": " +
              (n == 0 ? std::string("timed out after ") + std::to_string(options_.connectTimeout.count()) + " ms"
                      : std::string(std::strerror(soError ? soError : errno)));
    } else {
      error = "connect to " + where + ": " + std::strerror(errno);
    }
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(addrs);
  return fd;
}

bool SocketSource::appendLine(std::string&& text, int64_t originNanos, bool oversize) {
  std::unique_lock lock(mutex_);
  space_.wait(lock, [&] {
    return stop_ || (buffer_.size() < options_.maxBufferedLines &&
                     (buffer_.empty() || bufferedBytes_ + text.size() <= options_.maxBufferedBytes));
  });
  if (stop_) return false;
  bufferedBytes_ += text.size();
  buffer_.push_back(Line{std::move(text), originNanos});
  ++stats_.lines;
  if (oversize) ++stats_.oversizeLines;
  return true;
}

void SocketSource::readConnection(int fd) {
  std::string partial;     // the line being assembled
  bool cut = false;        // the line being assembled went over maxLineLength
  std::vector<char> buf(64 * 1024);
  auto finishLine = [&](int64_t origin) {
    if (!partial.empty() && partial.back() == '\r') partial.pop_back();
    if (partial.size() > options_.maxLineLength) {
      cut = true;
      partial.resize(options_.maxLineLength);
    }
    if (cut) {
      logWarn(name() + ": line " + std::to_string(available(0)) + " is longer than maxLineLength " +
              std::to_string(options_.maxLineLength) + " bytes; it was cut off at that length");
    }
    bool ok = appendLine(std::move(partial), origin, cut);
    partial.clear();
    cut = false;
    return ok;
  };
  for (;;) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      std::lock_guard lock(mutex_);
      lastError_ = name() + ": poll: " + std::strerror(errno);
      break;
    }
    if (stop_) return;
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    const int64_t origin = clock_->monoNanos();
    if (n <= 0) {
      std::string why = n == 0 ? "closed by the peer" : std::string("failed: ") + std::strerror(errno);
      if (!partial.empty() || cut) finishLine(origin);  // the last line had no '\n'
      {
        std::lock_guard lock(mutex_);
        ++stats_.disconnects;
        lastError_ = "connection to " + host_ + ":" + std::to_string(port_) + " " + why;
      }
      logWarn(name() + ": connection " + why + "; reconnecting");
      return;
    }
    {
      std::lock_guard lock(mutex_);
      stats_.bytes += static_cast<uint64_t>(n);
    }
    const char* p = buf.data();
    const char* end = p + n;
    while (p != end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      const char* stop = nl ? nl : end;
      // Keep at most maxLineLength bytes (+1 for a '\r' that may precede the '\n').
      const size_t room = options_.maxLineLength + 1 > partial.size() ? options_.maxLineLength + 1 - partial.size() : 0;
      const size_t take = std::min(room, static_cast<size_t>(stop - p));
      partial.append(p, take);
      if (take < static_cast<size_t>(stop - p)) cut = true;
      p = stop;
      if (nl) {
        ++p;
        if (!finishLine(origin)) return;
      }
    }
  }
}

void SocketSource::run() {
  nameThisThread("gale-socket-src");
  auto backoff = options_.initialBackoff;
  while (!stop_) {
    std::string error;
    int fd = connectOnce(error);
    if (stop_) {
      if (fd >= 0) ::close(fd);
      return;
    }
    if (fd < 0) {
      uint64_t failures;
      {
        std::lock_guard lock(mutex_);
        failures = ++stats_.connectFailures;
        lastError_ = error;
      }
      logError(name() + ": " + error + " (failure " + std::to_string(failures) + "; is a server listening, e.g. `nc -lk " +
               std::to_string(port_) + "`?); retrying in " + std::to_string(backoff.count()) + " ms");
      waitBackoff(backoff);
      backoff = std::min(backoff * 2, options_.maxBackoff);
      continue;
    }
    {
      std::lock_guard lock(mutex_);
      ++stats_.connects;
    }
    connected_ = true;
    logInfo(name() + ": connected");
    backoff = options_.initialBackoff;
    readConnection(fd);
    connected_ = false;
    ::close(fd);
    if (!stop_) waitBackoff(backoff);
  }
}

}  // namespace gale
