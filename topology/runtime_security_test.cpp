// Continuous mode with CURVE on and peer limits, in one process over tcp (the cross-process
// runs are in tests/cross_process_test.cpp).
#include <gtest/gtest.h>

#include <zmq.hpp>

#include "gale/core/log.h"
#include "test_support.h"
#include "scoped_log_capture_for_test.h"

namespace gale {
namespace {

using namespace gale::testing;

// Trees may be replayed on a slow machine (at least once); no test here is about timeouts.
Continuous tcpConfig() {
  Continuous c = fastConfig();
  c.transport = TransportScheme::Tcp;
  c.messageTimeout = std::chrono::seconds(120);
  return c;
}

size_t distinctSeen(Seen& seen) {
  std::lock_guard l(seen.mutex);
  std::set<int64_t> n;
  for (auto& [task, v] : seen.tuples) n.insert(std::get<int64_t>(v[0]));
  return n.size();
}

Topology fanIn(std::shared_ptr<CountingState> st, std::shared_ptr<Seen> seen) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(2000, 7, st), 2);
  b.setBolt("sink", RecordingBolt(seen), 3).fieldsGrouping("numbers", {"key"});
  return b.build();
}

TEST(RuntimeSecurity, ATcpTopologyWithCurveRunsAndItsSendersAllAuthenticate) {
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  Continuous c = tcpConfig();
  c.curve = CurveConfig{generateCurveKeyPair(), {}};  // its own key is always accepted
  auto rt = runContinuous(fanIn(st, seen), c);
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(120)));
  EXPECT_EQ(st->distinctAcked(), 2000u);
  EXPECT_EQ(distinctSeen(*seen), 2000u);
  PeerStats ps = rt.peerStats();
  // Every connection authenticated: spouts -> sinks, spouts and sinks -> acker, acker -> spouts.
  EXPECT_GE(ps.handshakesSucceeded, 2u * 3 + 5 + 2);
  EXPECT_EQ(ps.handshakesFailed, 0u);
  EXPECT_EQ(ps.unauthorizedKeys, 0u);
  EXPECT_EQ(ps.connectionsOverLimit, 0u);
}

TEST(RuntimeSecurity, AConnectionCapBelowTheTaskCountStillAdmitsEveryTaskOfTheTopology) {
  // The acker's inbox has a connection from each of the 5 spout and bolt tasks; a cap of 1
  // would turn 4 of them away (and their acks with them) if the runtime did not raise it.
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  Continuous c = tcpConfig();
  c.peerLimits.maxConnections = 1;
  auto rt = runContinuous(fanIn(st, seen), c);
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(120)));
  EXPECT_EQ(st->distinctAcked(), 2000u);
  EXPECT_EQ(rt.peerStats().connectionsOverLimit, 0u);
}

TEST(RuntimeSecurity, AWorkerWithCurveRefusesAProcessThatIsNotAuthorized) {
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  Continuous c = tcpConfig();
  c.curve = CurveConfig{generateCurveKeyPair(), {}};
  ScopedLogCapture quiet;
  auto rt = runContinuous(fanIn(st, seen), c);
  std::string endpoint = rt.endpointOf(2);  // a sink task's inbox
  {
    // Another process (its own context) with a valid key pair that the worker does not know.
    zmq::context_t ctx;
    zmq::socket_t intruder(ctx, zmq::socket_type::push);
    CurveKeyPair k = generateCurveKeyPair();
    intruder.set(zmq::sockopt::curve_serverkey, c.curve->keyPair.publicKey);
    intruder.set(zmq::sockopt::curve_publickey, k.publicKey);
    intruder.set(zmq::sockopt::curve_secretkey, k.secretKey);
    intruder.set(zmq::sockopt::linger, 0);
    intruder.connect(endpoint);
    intruder.send(zmq::buffer(std::string(64, '\x01')), zmq::send_flags::dontwait);
    ASSERT_TRUE(eventually([&] { return rt.peerStats().unauthorizedKeys >= 1; }));
  }
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(120)));
  EXPECT_EQ(distinctSeen(*seen), 2000u);
  EXPECT_EQ(rt.metrics().find("sink")->total().malformedFrames, 0u);  // nothing got that far
}

}  // namespace
}  // namespace gale
