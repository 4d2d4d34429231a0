// KafkaSource::notifyOnRecords, against librdkafka's mock cluster: the fd an idle continuous-mode
// spout task blocks on (instead of polling the partition queues with back-off sleeps) is written
// when records arrive, again after each drain, when a partition is discovered, and not after it
// was unregistered; and a continuous job whose spouts sleep a 30 s back-off when they poll still
// gets every record at once, picks up a new partition and stops promptly.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <set>

#include "gale/connectors/kafka_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/topology/runtime.h"
#include "kafka_test_util.h"

using namespace std::chrono_literals;

namespace gale {
namespace {

using namespace gale::testing;

// An eventfd closed with the test.
struct EventFd {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ~EventFd() { ::close(fd); }
  // Waits up to `timeout` for a write; empties the counter. True when there was one.
  bool wait(std::chrono::milliseconds timeout) const {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return false;
    uint64_t n;
    return ::read(fd, &n, sizeof n) == sizeof n;
  }
};

// Every record of `p` the source holds now, read from `from`.
std::vector<SourceRecord> readReady(KafkaSource& src, int p, int64_t from) {
  std::vector<SourceRecord> out;
  int64_t to = src.ready(p);
  if (to > from) src.read(p, from, to, out);
  return out;
}

// Over the topics grow-*, looking for new ones every 10 ms. librdkafka 2.0.2's mock cluster
// cannot add partitions to a topic: a topic matching the pattern is the same discovery
// (kafka_partitions_test.cpp).
KafkaSource::Options growingOptions(const MockCluster& mc) {
  auto o = baseOptions(mc, "");
  o.subscribe.clear();
  o.subscribePattern = "grow-.*";
  o.partitionDiscoveryInterval = 10ms;
  return o;
}

TEST(KafkaWakeTest, the_fd_is_written_when_records_arrive_again_after_each_drain) {
  MockCluster mc(1);
  mc.createTopic("wake", 1);
  auto o = baseOptions(mc, "wake");
  KafkaSource src(o);
  SystemClock clock;
  src.open(clock);
  EventFd ev;
  ASSERT_GE(ev.fd, 0);
  ASSERT_TRUE(src.notifyOnRecords(0, ev.fd));
  int64_t next = 0;
  for (int round = 0; round < 5; ++round) {
    // Idle: drained (the EOF and anything before it), the fd emptied, then nothing held.
    for (auto& r : readReady(src, 0, next)) next = r.offset + 1;
    ev.wait(0ms);
    ASSERT_TRUE(readReady(src, 0, next).empty()) << "round " << round;
    mc.produce("wake", 0, "", "r" + std::to_string(round));
    mc.flush();
    ASSERT_TRUE(ev.wait(10s)) << "no wake-up for the record of round " << round;
    // The wake-up may come for the fetch's EOF event just before the record: read until it.
    std::vector<SourceRecord> got;
    for (int i = 0; i < 1000 && got.empty(); ++i) {
      got = readReady(src, 0, next);
      if (got.empty()) {
        ASSERT_TRUE(ev.wait(10s)) << "round " << round;
      }
    }
    ASSERT_EQ(got.size(), 1u) << "round " << round;
    EXPECT_EQ(asText(got[0].values[1]), "r" + std::to_string(round));
    next = got[0].offset + 1;
  }
  // Unregistered: records arrive, nothing is written to the fd any more.
  ASSERT_TRUE(src.notifyOnRecords(0, -1));
  ev.wait(0ms);
  readReady(src, 0, next);
  mc.produce("wake", 0, "", "after");
  mc.flush();
  EXPECT_FALSE(ev.wait(500ms));
  src.close();
}

TEST(KafkaWakeTest, a_discovered_partition_wakes_every_registered_reader) {
  MockCluster mc(1);
  mc.createTopic("grow-a", 1);
  KafkaSource src(growingOptions(mc));
  SystemClock clock;
  src.open(clock);
  EventFd ev;
  ASSERT_TRUE(src.notifyOnRecords(0, ev.fd));
  readReady(src, 0, 0);
  ev.wait(0ms);
  mc.createTopic("grow-b", 1);
  bool woken = false;
  for (int i = 0; i < 100 && src.partitions() < 2; ++i) woken = ev.wait(100ms) || woken;
  ASSERT_EQ(src.partitions(), 2);
  EXPECT_TRUE(woken || ev.wait(10s));
  src.close();
}

TEST(KafkaWakeTest, a_source_that_is_not_open_refuses_to_notify) {
  MockCluster mc(1);
  mc.createTopic("wake", 1);
  KafkaSource src(baseOptions(mc, "wake"));
  EventFd ev;
  EXPECT_FALSE(src.notifyOnRecords(0, ev.fd));
}

// The spouts' back-off and wake timeout are 30 s: a spout task that polled its source, or that
// blocked without the fd, would sleep through every round below (each waits at most 10 s) and
// through the stop. Blocking on the source's fd, it takes each round's records when they come, a
// new partition's too, and stops at once.
TEST(KafkaWakeTest, an_idle_continuous_spout_is_woken_for_records_a_new_partition_and_the_stop) {
  MockCluster mc(1);
  mc.createTopic("grow-a", 2);
  auto o = growingOptions(mc);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(o), 2);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  Continuous c;
  c.spoutBackoffMin = c.spoutBackoffMax = 30s;
  c.spoutWakeTimeout = 30s;
  auto running = runContinuous(b.build(), c);
  size_t expected = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 10; ++i)
      mc.produce("grow-a", i % 2, "", "a" + std::to_string(round) + "-" + std::to_string(i));
    mc.flush();
    expected += 10;
    ASSERT_TRUE(store->waitForSize(expected, 10s)) << "round " << round << ": " << store->size();
  }
  mc.createTopic("grow-b", 1);
  for (int i = 0; i < 10; ++i) mc.produce("grow-b", 0, "", "b" + std::to_string(i));
  mc.flush();
  expected += 10;
  ASSERT_TRUE(store->waitForSize(expected, 10s)) << store->size();
  const auto stopAt = std::chrono::steady_clock::now();
  running.stop();
  ASSERT_TRUE(running.waitUntilDone(10s));
  EXPECT_LT(std::chrono::steady_clock::now() - stopAt, 10s);
  // Nothing lost, nothing read twice.
  std::set<std::string> values;
  for (const auto& v : store->values()) values.insert(asText(v[1]));
  EXPECT_EQ(store->size(), expected);
  EXPECT_EQ(values.size(), expected);
}

// Exactly-once continuous mode wraps the source's spout in a checkpointing one; idle, it blocks on
// the source's fd too. Its back-off is 30 s: one that polled would sleep through every round.
// Its wake timeout is 5 ms, so it still looks at the coordinator's due checkpoints: they go on
// completing while it waits.
TEST(KafkaWakeTest, an_idle_exactly_once_continuous_spout_is_woken_for_records) {
  MockCluster mc(1);
  mc.createTopic("eos-wake", 2);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(baseOptions(mc, "eos-wake")), 2);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  const std::string chk = tempDir("eos-wake");
  Continuous c{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 20ms,
               .checkpointDir = chk, .checkpointSync = false};
  c.spoutBackoffMin = c.spoutBackoffMax = 30s;
  c.spoutWakeTimeout = 5ms;
  std::atomic<uint64_t> written{0};
  c.onCheckpointPoint = [&written](CheckpointPoint p, uint64_t id) {
    if (p == CheckpointPoint::CheckpointWritten) written = id;
  };
  auto running = runContinuous(b.build(), c);
  size_t expected = 0;
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 10; ++i)
      mc.produce("eos-wake", i % 2, "", "r" + std::to_string(round) + "-" + std::to_string(i));
    mc.flush();
    expected += 10;
    ASSERT_TRUE(store->waitForSize(expected, 10s)) << "round " << round << ": " << store->size();
  }
  // Checkpoints go on completing while the spouts wait.
  const uint64_t before = written.load();
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (written.load() < before + 3 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  running.kill();
  EXPECT_GE(written.load(), before + 3) << "checkpoints stopped while the spouts waited";
  std::set<std::string> values;
  for (const auto& v : store->values()) values.insert(asText(v[1]));
  EXPECT_EQ(values.size(), expected);
  std::filesystem::remove_all(chk);
}

}  // namespace
}  // namespace gale
