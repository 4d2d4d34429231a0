#include "gale/connectors/socket_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "gale/core/log.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

// A real listening socket on 127.0.0.1 (ephemeral port), standing in for `nc -lk`.
class LoopbackServer {
 public:
  explicit LoopbackServer(int port = 0) {
    listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listenFd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listenFd_, 4) != 0) {
      throw std::runtime_error("test server: bind/listen failed");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackServer() {
    closeClient();
    ::close(listenFd_);
  }
  int port() const { return port_; }
  // Waits for the source to connect.
  void accept(std::chrono::milliseconds timeout = 10s) {
    pollfd p{listenFd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) throw std::runtime_error("test server: no connection");
    clientFd_ = ::accept(listenFd_, nullptr, nullptr);
  }
  void send(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(clientFd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("test server: send failed");
      off += static_cast<size_t>(n);
    }
  }
  void closeClient() {
    if (clientFd_ >= 0) ::close(clientFd_);
    clientFd_ = -1;
  }

 private:
  int listenFd_ = -1;
  int clientFd_ = -1;
  int port_ = 0;
};

// Real sockets need real time: poll a condition with a deadline (no fixed sleeps).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

SocketSource::Options fastOptions() {
  SocketSource::Options o;
  o.initialBackoff = 5ms;
  o.maxBackoff = 20ms;
  return o;
}

std::vector<std::string> linesOf(SocketSource& src, int64_t from, int64_t to) {
  std::vector<SourceRecord> out;
  src.read(0, from, to, out);
  std::vector<std::string> lines;
  for (size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i].offset, from + static_cast<int64_t>(i));
    lines.push_back(std::get<std::string>(out[i].values.at(0)));
  }
  return lines;
}

// Keeps expected warnings out of the test output.
using QuietLog = testing::ScopedLogCapture;

TEST(SocketSource, LinesArriveInOrderWithOffsetsAndArrivalTimes) {
  LoopbackServer server;
  SocketSource src("127.0.0.1", server.port(), fastOptions());
  EXPECT_EQ(src.name(), "socket:127.0.0.1:" + std::to_string(server.port()));
  const int64_t before = SystemClock::steadyNanos();
  src.open(SystemClock::instance());
  server.accept();
  server.send("hello world\nsecond line\r\n");
  server.send("thi");  // a line split over two sends
  server.send("rd\n\n");
  ASSERT_TRUE(eventually([&] { return src.available(0) == 4; })) << src.available(0);
  EXPECT_EQ(linesOf(src, 0, 4), (std::vector<std::string>{"hello world", "second line", "third", ""}));
  std::vector<SourceRecord> out;
  src.read(0, 0, 1, out);
  EXPECT_GE(out[0].originNanos, before);
  EXPECT_LE(out[0].originNanos, SystemClock::steadyNanos());
  EXPECT_TRUE(src.connected());
  EXPECT_EQ(src.stats().lines, 4u);
  EXPECT_EQ(src.stats().connects, 1u);
}

TEST(SocketSource, ReconnectsAfterThePeerClosesAndOffsetsContinue) {
  QuietLog quiet;
  LoopbackServer server;
  SocketSource src("127.0.0.1", server.port(), fastOptions());
  src.open(SystemClock::instance());
  server.accept();
  server.send("a\nb\nunterminated");
  server.closeClient();
  ASSERT_TRUE(eventually([&] { return src.available(0) == 3; }));
  server.accept();  // the source comes back
  server.send("c\n");
  ASSERT_TRUE(eventually([&] { return src.available(0) == 4; }));
  EXPECT_EQ(linesOf(src, 0, 4), (std::vector<std::string>{"a", "b", "unterminated", "c"}));
  auto s = src.stats();
  EXPECT_EQ(s.disconnects, 1u);
  EXPECT_EQ(s.connects, 2u);
  EXPECT_NE(src.lastError().find("closed by the peer"), std::string::npos) << src.lastError();
}

TEST(SocketSource, AnOversizeLineIsCutAndCountedAndTheNextLinesAreIntact) {
  QuietLog quiet;
  LoopbackServer server;
  auto o = fastOptions();
  o.maxLineLength = 10;
  SocketSource src("127.0.0.1", server.port(), o);
  src.open(SystemClock::instance());
  server.accept();
  server.send("short\n" + std::string(100000, 'x') + "\n0123456789\r\nafter\n");
  ASSERT_TRUE(eventually([&] { return src.available(0) == 4; }));
  EXPECT_EQ(linesOf(src, 0, 4),
            (std::vector<std::string>{"short", std::string(10, 'x'), "0123456789", "after"}));
  EXPECT_EQ(src.stats().oversizeLines, 1u);
}

TEST(SocketSource, RefusedConnectionsAreCountedAndRetriedUntilTheServerAppears) {
  QuietLog quiet;
  int port;
  { port = LoopbackServer().port(); }  // a port where nobody listens any more
  SocketSource src("127.0.0.1", port, fastOptions());
  src.open(SystemClock::instance());
  ASSERT_TRUE(eventually([&] { return src.stats().connectFailures >= 2; }));
  EXPECT_NE(src.lastError().find("refused"), std::string::npos) << src.lastError();
  EXPECT_NE(src.lastError().find("127.0.0.1:" + std::to_string(port)), std::string::npos);
  EXPECT_EQ(src.available(0), 0);
  LoopbackServer server(port);
  server.accept();
  server.send("finally\n");
  ASSERT_TRUE(eventually([&] { return src.available(0) == 1; }));
  EXPECT_EQ(linesOf(src, 0, 1), (std::vector<std::string>{"finally"}));
}

TEST(SocketSource, AFullBufferPushesBackUntilCommitFreesItAndNothingIsLost) {
  LoopbackServer server;
  auto o = fastOptions();
  o.maxBufferedLines = 3;
  SocketSource src("127.0.0.1", server.port(), o);
  src.open(SystemClock::instance());
  server.accept();
  std::string data;
  for (int i = 0; i < 10; ++i) data += "line" + std::to_string(i) + "\n";
  server.send(data);
  ASSERT_TRUE(eventually([&] { return src.available(0) == 3; }));
  EXPECT_EQ(src.available(0), 3) << "the buffer is bounded";
  // Replay within the process: the same range twice.
  EXPECT_EQ(linesOf(src, 1, 3), linesOf(src, 1, 3));
  std::vector<std::string> all;
  int64_t next = 0;
  ASSERT_TRUE(eventually([&] {
    int64_t avail = src.available(0);
    for (auto& l : linesOf(src, next, avail)) all.push_back(l);
    next = avail;
    src.commit(0, next);
    return all.size() == 10;
  }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(all[i], "line" + std::to_string(i));
  // Committed lines are gone: a read before the committed offset returns only what is left.
  std::vector<SourceRecord> out;
  EXPECT_EQ(src.read(0, 0, 10, out), 0u);
}

TEST(SocketSource, BadArgumentsAreRejected) {
  EXPECT_THROW(SocketSource("", 9999), std::invalid_argument);
  EXPECT_THROW(SocketSource("localhost", 0), std::invalid_argument);
  EXPECT_THROW(SocketSource("localhost", 70000), std::invalid_argument);
  SocketSource src("localhost", 9999);
  EXPECT_THROW(src.available(1), std::out_of_range);
  std::vector<SourceRecord> out;
  EXPECT_THROW(src.read(0, 3, 1, out), std::invalid_argument);
}

TEST(SocketSource, AnUnresolvableHostIsReportedByName) {
  QuietLog quiet;
  SocketSource src("no-such-host.invalid", 9999, fastOptions());
  src.open(SystemClock::instance());
  ASSERT_TRUE(eventually([&] { return src.stats().connectFailures >= 1; }));
  EXPECT_NE(src.lastError().find("no-such-host.invalid"), std::string::npos) << src.lastError();
  src.close();
}

}  // namespace
}  // namespace gale
