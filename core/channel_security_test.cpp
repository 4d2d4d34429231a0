// Hostile peers on real sockets (127.0.0.1): a CURVE receiver takes frames only from authorized
// senders, refuses and counts everyone else, and bounds the connections it holds. Each process
// side is its own Transport (its own ZeroMQ context and ZAP handler), as in two processes.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "gale/core/channel.h"
#include "gale/core/log.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

struct Collect : FrameHandler {
  std::vector<Tuple> tuples;
  void onTuple(TaskId, Tuple&& t) override { tuples.push_back(std::move(t)); }
  void onControl(TaskId, Control&&) override {}
};

std::shared_ptr<SchemaRegistry> registry() {
  auto r = std::make_shared<SchemaRegistry>();
  r->add(makeSchema("spout", "default", Fields{{"word", Type::String}}));
  return r;
}

// Polls `cond` until true or a generous deadline (machine load must not fail a test).
bool waitFor(const std::function<bool()>& cond, std::chrono::seconds limit = 20s) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// The receiving process: CURVE on, `authorized` may send.
struct Server {
  CurveKeyPair keys = generateCurveKeyPair();
  std::shared_ptr<SchemaRegistry> reg = registry();
  Transport transport;
  std::unique_ptr<ChannelReceiver> rx;
  explicit Server(std::vector<std::string> authorized, PeerLimits limits = {},
                  std::string endpoint = "tcp://127.0.0.1:0") {
    transport.enableCurve({keys, std::move(authorized)});
    ChannelOptions o;
    o.peers = limits;
    rx = std::make_unique<ChannelReceiver>(transport, endpoint, reg, o);
  }
  size_t receiveAll(Collect& c, std::chrono::milliseconds wait) {
    size_t before = c.tuples.size();
    while (rx->receive(wait, c)) {
    }
    return c.tuples.size() - before;
  }
};

void sendOne(ChannelSender& tx, const SchemaRegistry& reg, const std::string& word) {
  tx.push(0, Tuple(*reg.find(0), {word}));
  // The frame waits in the sender's queue until a handshake succeeds (it never does if refused).
  ASSERT_TRUE(tx.tryFlush());
}

// `client` (its own process: its own Transport) sends `word` to `s`, which must deliver it.
void expectDelivered(Server& s, const CurveKeyPair& client, const std::string& word) {
  Transport clientSide;
  clientSide.enableCurve({client, {}});
  ChannelOptions o;
  o.curveServerKey = s.keys.publicKey;
  ChannelSender tx(clientSide, s.rx->endpoint(), 3, o);
  sendOne(tx, *s.reg, word);
  Collect c;
  ASSERT_TRUE(waitFor([&] { return s.receiveAll(c, 10ms) > 0 || !c.tuples.empty(); }));
  ASSERT_EQ(c.tuples.size(), 1u);
  EXPECT_EQ(c.tuples[0].getString("word"), word);
}

TEST(ChannelSecurity, AnAuthorizedCurveSenderDeliversFrames) {
  CurveKeyPair client = generateCurveKeyPair();
  Server s({client.publicKey});
  expectDelivered(s, client, "hello");
  PeerStats st = s.transport.peerStats();
  EXPECT_GE(st.handshakesSucceeded, 1u);
  EXPECT_EQ(st.handshakesFailed, 0u);
  EXPECT_EQ(st.unauthorizedKeys, 0u);
}

TEST(ChannelSecurity, CurveWorksOverIpcToo) {
  CurveKeyPair client = generateCurveKeyPair();
  Server s({client.publicKey}, {}, "ipc:///tmp/gale-curve-test-" + std::to_string(getpid()));
  expectDelivered(s, client, "over ipc");
}

// Waits until the receiver has refused the sender (`refusals` counts it), then checks that
// nothing arrived. ZeroMQ does not retry after a refused handshake, and a frame can only be
// delivered after a successful one, so once refused, nothing can come.
void expectRefused(Server& s, ChannelSender& tx, const std::function<uint64_t()>& refusals,
                   uint64_t times = 1) {
  sendOne(tx, *s.reg, "forged");
  Collect c;
  ASSERT_TRUE(waitFor([&] {
    s.receiveAll(c, 0ms);
    return refusals() >= times;
  })) << "the receiver did not count the refusal";
  s.receiveAll(c, 50ms);
  EXPECT_TRUE(c.tuples.empty()) << "a refused sender delivered " << c.tuples.size() << " tuples";
  EXPECT_EQ(s.transport.peerStats().handshakesSucceeded, 0u);
}

TEST(ChannelSecurity, ASenderWithoutKeysIsRefusedAndCounted) {
  Server s({generateCurveKeyPair().publicKey});
  Transport plain;  // no CURVE: ZeroMQ's NULL mechanism, what any process can speak
  ChannelSender tx(plain, s.rx->endpoint(), 3);
  expectRefused(s, tx, [&] { return s.transport.peerStats().handshakesFailed; });
}

TEST(ChannelSecurity, ASenderThatUsesTheWrongServerKeyIsRefused) {
  CurveKeyPair client = generateCurveKeyPair();
  Server s({client.publicKey});
  Transport clientSide;
  clientSide.enableCurve({client, {}});
  ChannelOptions o;
  o.curveServerKey = generateCurveKeyPair().publicKey;  // not the receiver's
  ChannelSender tx(clientSide, s.rx->endpoint(), 3, o);
  expectRefused(s, tx, [&] { return s.transport.peerStats().handshakesFailed; });
}

TEST(ChannelSecurity, ASenderClaimingAnAuthorizedPublicKeyWithoutItsSecretIsRefused) {
  CurveKeyPair client = generateCurveKeyPair();
  Server s({client.publicKey});
  // An impostor knows the authorized public key (public keys are not secret) but not its secret.
  Transport impostorSide;
  impostorSide.context();
  ChannelOptions o;
  o.curveServerKey = s.keys.publicKey;
  ChannelSender tx(impostorSide, s.rx->endpoint(), 3, o);
  // Set by hand: enableCurve would rightly refuse a mismatched pair.
  tx.socket().disconnect(s.rx->endpoint());
  tx.socket().set(zmq::sockopt::curve_serverkey, s.keys.publicKey);
  tx.socket().set(zmq::sockopt::curve_publickey, client.publicKey);
  tx.socket().set(zmq::sockopt::curve_secretkey, generateCurveKeyPair().secretKey);
  tx.socket().connect(s.rx->endpoint());
  expectRefused(s, tx, [&] { return s.transport.peerStats().handshakesFailed; });
}

TEST(ChannelSecurity, AValidKeyPairNotInTheAuthorizedSetIsRefusedByZapAndLoggedRateLimited) {
  testing::ScopedLogCapture captured;
  CurveKeyPair stranger = generateCurveKeyPair();
  constexpr uint64_t kAttempts = 6;
  {
    Server s({generateCurveKeyPair().publicKey});
    Transport strangerSide;
    strangerSide.enableCurve({stranger, {}});
    ChannelOptions o;
    o.curveServerKey = s.keys.publicKey;
    std::vector<std::unique_ptr<ChannelSender>> senders;
    for (uint64_t i = 1; i <= kAttempts; ++i) {
      senders.push_back(std::make_unique<ChannelSender>(strangerSide, s.rx->endpoint(), 3, o));
      expectRefused(s, *senders.back(), [&] { return s.transport.peerStats().unauthorizedKeys; },
                    i);
    }
    EXPECT_GE(s.transport.peerStats().handshakesFailed, kAttempts);
  }
  size_t lines = 0;
  for (const auto& m : captured.lines())
    if (m.find("refused a peer") != std::string::npos) {
      ++lines;
      EXPECT_NE(m.find(stranger.publicKey), std::string::npos) << m;  // names the key
    }
  EXPECT_GE(lines, 1u);
  EXPECT_LT(lines, kAttempts) << "every refusal was logged: the log is not rate-limited";
}

TEST(ChannelSecurity, AFloodOfConnectionsThatNeverHandshakeIsBoundedAndAuthorizedSendersGetIn) {
  CurveKeyPair client = generateCurveKeyPair();
  PeerLimits limits;
  limits.maxConnections = 8;
  limits.handshakeTimeout = 2s;
  Server s({client.publicKey}, limits);
  testing::ScopedLogCapture quiet;

  std::string ep = s.rx->endpoint();  // tcp://127.0.0.1:<port>
  int port = std::stoi(ep.substr(ep.rfind(':') + 1));
  constexpr int kFlood = 100;
  std::vector<int> fds;
  for (int i = 0; i < kFlood; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    fds.push_back(fd);  // and never send a byte
  }
  // Every connection is accepted, never more than 8 are held, the rest are closed at once...
  ASSERT_TRUE(waitFor([&] { return s.transport.peerStats().accepted >= kFlood; }));
  PeerStats st = s.transport.peerStats();
  EXPECT_GE(st.connectionsOverLimit, 1u);
  EXPECT_LE(st.peakOpenConnections, static_cast<uint64_t>(limits.maxConnections));
  // ...and the held ones go when the handshake timeout passes: every flooder sees its end.
  for (int fd : fds) {
    char b[64];
    timeval tv{20, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n;
    while ((n = ::read(fd, b, sizeof b)) > 0) {
    }  // the ZMTP greeting, then end of stream
    EXPECT_EQ(n, 0) << "a half-open connection was still held after 20 s";
    ::close(fd);
  }
  ASSERT_TRUE(waitFor([&] { return s.transport.peerStats().openConnections == 0; }));

  // The receiver still serves an authorized sender.
  expectDelivered(s, client, "still here");
}

TEST(ChannelSecurity, BadCurveConfigurationIsRefusedClearly) {
  Transport t;
  CurveKeyPair a = generateCurveKeyPair(), b = generateCurveKeyPair();
  EXPECT_THROW(t.enableCurve({{a.publicKey, b.secretKey}, {}}), std::invalid_argument);
  EXPECT_THROW(t.enableCurve({{"short", a.secretKey}, {}}), std::invalid_argument);
  EXPECT_THROW(t.enableCurve({a, {"not a key"}}), std::invalid_argument);
  t.enableCurve({a, {}});
  EXPECT_THROW(t.enableCurve({a, {}}), std::logic_error);
  ChannelOptions o;
  o.curveServerKey = "bogus";
  EXPECT_THROW(ChannelSender(t, "tcp://127.0.0.1:1", 0, o), std::invalid_argument);
  o = {};
  o.peers.maxConnections = 0;
  EXPECT_THROW(ChannelReceiver(t, "tcp://127.0.0.1:0", registry(), o), std::invalid_argument);
}

}  // namespace
}  // namespace gale
