// Cross-process continuous mode: a spout in one process feeds a bolt in another over tcp
// loopback (and ipc), with the acker in the bolt's process, so acks cross the process boundary
// both ways. The bolt's process must see every tuple exactly once and the spout's process must
// get every tree acked.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <ctime>
#include <future>
#include <random>

#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {
namespace {

constexpr int64_t kMessages = 5000;

struct Record {
  std::mutex mutex;
  std::map<int64_t, int> seen;
  std::atomic<int64_t> acked{0}, failed{0};
};

class NumberSpout : public Spout {
 public:
  explicit NumberSpout(std::shared_ptr<Record> r) : r_(std::move(r)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Spout> clone() const override { return std::make_unique<NumberSpout>(r_); }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (!replay_.empty()) {
      int64_t n = replay_.back();
      replay_.pop_back();
      out.emit(Values{n}, static_cast<MessageId>(n));
      return true;
    }
    if (next_ < kMessages) {
      out.emit(Values{next_}, static_cast<MessageId>(next_));
      ++next_;
      return true;
    }
    if (r_->acked.load() == kMessages && !ended_) {
      ended_ = true;
      out.emitEndOfStream();
    }
    return false;
  }
  void ack(MessageId) override { ++r_->acked; }
  void fail(MessageId id) override {
    ++r_->failed;
    replay_.push_back(static_cast<int64_t>(id));
  }

 private:
  std::shared_ptr<Record> r_;
  int64_t next_ = 0;
  std::vector<int64_t> replay_;
  bool ended_ = false;
};

class SeenBolt : public Bolt {
 public:
  explicit SeenBolt(std::shared_ptr<Record> r) : r_(std::move(r)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<SeenBolt>(r_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    {
      std::lock_guard l(r_->mutex);
      ++r_->seen[t.getInt("n")];
    }
    out.ack(t);
  }

 private:
  std::shared_ptr<Record> r_;
};

Topology topology(std::shared_ptr<Record> r) {
  TopologyBuilder b;
  b.setSpout("numbers", NumberSpout(r), 1);
  b.setBolt("sink", SeenBolt(r), 2).fieldsGrouping("numbers", {"n"});
  return b.build();
}

// Optional CURVE security: each worker's key pair; each authorizes the other's public key.
struct Keys {
  std::vector<CurveKeyPair> workers;  // empty: plain channels
};

// Worker 0 runs the spout; worker 1 the two sink tasks and the acker.
WorkerAssignment assignment(const std::vector<std::string>& endpoints, int self,
                            const Keys& keys) {
  WorkerAssignment a;
  a.workerOfTask = {0, 1, 1, 1};
  a.endpoints = endpoints;
  a.self = self;
  for (const auto& k : keys.workers) a.publicKeys.push_back(k.publicKey);
  return a;
}

Continuous config(int self, const Keys& keys) {
  Continuous c;
  if (!keys.workers.empty())
    c.curve = CurveConfig{keys.workers[static_cast<size_t>(self)],
                          {keys.workers[static_cast<size_t>(1 - self)].publicKey}};
  return c;
}

// The bolt's process: exit code 0 when every message was seen exactly once (and, with CURVE,
// its inboxes authenticated the spout's process and refused nobody).
[[noreturn]] void boltProcess(const std::vector<std::string>& endpoints, const Keys& keys) {
  alarm(60);  // never outlive a broken parent
  int code = 0;
  try {
    auto r = std::make_shared<Record>();
    auto rt = runWorker(topology(r), config(1, keys), assignment(endpoints, 1, keys));
    rt.waitUntilDone();  // the spout's end of stream reached both sink tasks
    PeerStats ps = rt.peerStats();
    if (ps.handshakesSucceeded == 0 || ps.handshakesFailed != 0) {
      std::fprintf(stderr, "bolt process: %llu handshakes succeeded, %llu failed\n",
                   static_cast<unsigned long long>(ps.handshakesSucceeded),
                   static_cast<unsigned long long>(ps.handshakesFailed));
      code = 1;
    }
    std::lock_guard l(r->mutex);
    if (static_cast<int64_t>(r->seen.size()) != kMessages) {
      std::fprintf(stderr, "bolt process saw %zu distinct messages, expected %lld\n",
                   r->seen.size(), static_cast<long long>(kMessages));
      code = 1;
    }
    for (auto& [n, times] : r->seen)
      if (times != 1) {
        std::fprintf(stderr, "message %lld seen %d times\n", static_cast<long long>(n), times);
        code = 1;
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bolt process: %s\n", e.what());
    code = 2;
  }
  _exit(code);
}

void runAcrossProcesses(const std::vector<std::string>& endpoints, const Keys& keys = {}) {
  std::fflush(nullptr);
  pid_t child = fork();  // before this process has any thread or ZeroMQ context
  ASSERT_GE(child, 0);
  if (child == 0) boltProcess(endpoints, keys);

  auto r = std::make_shared<Record>();
  bool done = false;
  PeerStats ps;
  {
    auto rt = runWorker(topology(r), config(0, keys), assignment(endpoints, 0, keys));
    done = rt.waitUntilDone(std::chrono::seconds(30));
    if (!done) rt.kill();
    ps = rt.peerStats();
  }
  if (!done) kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(done) << "the spout's process did not finish";
  EXPECT_EQ(r->acked.load(), kMessages) << "acks did not all come back across processes";
  EXPECT_EQ(r->failed.load(), 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the bolt's process died";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the bolt's process did not see every tuple exactly once";
  // The acks came back through this process's inbox: an authenticated connection.
  EXPECT_GE(ps.handshakesSucceeded, 1u);
  EXPECT_EQ(ps.handshakesFailed, 0u);
}

int freeBase() {
  // Task t of a worker binds base + t; pick bases away from other tests' ports (the cluster
  // tests use 20000-31200) and below the kernel's ephemeral range (32768 and up), where another
  // test's outgoing connection can hold the port for as long as it lives (seen in CI).
  std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  return 10000 + static_cast<int>(rng() % 9800);
}

TEST(CrossProcess, ASpoutInOneProcessFeedsABoltInAnotherOverTcpLoopbackWithAcking) {
  int base = freeBase();
  runAcrossProcesses({"tcp://127.0.0.1:" + std::to_string(base),
                      "tcp://127.0.0.1:" + std::to_string(base + 100)});
}

TEST(CrossProcess, TheSameRunsWithCurveAuthenticationAndEncryptionOverTcp) {
  int base = freeBase();
  Keys keys{{generateCurveKeyPair(), generateCurveKeyPair()}};
  runAcrossProcesses({"tcp://127.0.0.1:" + std::to_string(base),
                      "tcp://127.0.0.1:" + std::to_string(base + 100)},
                     keys);
}

TEST(CrossProcess, ACurveWorkerAssignmentWithoutEveryWorkersKeyIsRefused) {
  Keys keys{{generateCurveKeyPair(), generateCurveKeyPair()}};
  auto r = std::make_shared<Record>();
  WorkerAssignment a = assignment({"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}, 0, keys);
  a.publicKeys.pop_back();
  EXPECT_THROW(runWorker(topology(r), config(0, keys), a), std::invalid_argument);
  a = assignment({"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"}, 0, keys);
  std::swap(a.publicKeys[0], a.publicKeys[1]);  // self's key is not this key pair's
  EXPECT_THROW(runWorker(topology(r), config(0, keys), a), std::invalid_argument);
}

TEST(CrossProcess, TheSameRunsOverIpc) {
  std::string dir = "/tmp/gale-xp-" + std::to_string(getpid());
  runAcrossProcesses({"ipc://" + dir + "-w0", "ipc://" + dir + "-w1"});
}

// Storm activates a topology once its workers are connected: a worker whose spout would send to
// a worker that is not up yet does not start the spout (nor return from runWorker) until it is,
// so no tuple waits in a sender's queue for a peer to come up.
TEST(CrossProcess, AWorkerStartsItsSpoutsOnlyOnceTheWorkerItSendsToIsUp) {
  int base = freeBase();
  std::vector<std::string> endpoints{"tcp://127.0.0.1:" + std::to_string(base),
                                     "tcp://127.0.0.1:" + std::to_string(base + 100)};
  auto r = std::make_shared<Record>();  // both workers in this process: one record
  auto spoutWorker = std::async(std::launch::async, [&] {
    return runWorker(topology(r), config(0, {}), assignment(endpoints, 0, {}));
  });
  // A negative check: on a slow machine it only proves less, never fails wrongly.
  EXPECT_EQ(spoutWorker.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "the spout's worker started before the worker it sends to was up";
  EXPECT_EQ(r->acked.load(), 0);
  auto sinkWorker = runWorker(topology(r), config(1, {}), assignment(endpoints, 1, {}));
  ASSERT_EQ(spoutWorker.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  auto spouts = spoutWorker.get();
  ASSERT_TRUE(spouts.waitUntilDone(std::chrono::seconds(30)));
  ASSERT_TRUE(sinkWorker.waitUntilDone(std::chrono::seconds(30)));
  EXPECT_EQ(r->acked.load(), kMessages);
  std::lock_guard l(r->mutex);
  EXPECT_EQ(static_cast<int64_t>(r->seen.size()), kMessages);
}

TEST(CrossProcess, AWorkerWhosePeerNeverComesStartsAfterThePeerConnectTimeout) {
  int base = freeBase();
  auto r = std::make_shared<Record>();
  Continuous c = config(0, {});
  c.peerConnectTimeout = std::chrono::milliseconds(200);
  c.messageTimeout = std::chrono::seconds(60);  // nothing times out while the test looks
  auto spoutWorker = std::async(std::launch::async, [&] {
    return runWorker(topology(r), c,
                     assignment({"tcp://127.0.0.1:" + std::to_string(base),
                                 "tcp://127.0.0.1:" + std::to_string(base + 100)},
                                0, {}));
  });
  ASSERT_EQ(spoutWorker.wait_for(std::chrono::seconds(30)), std::future_status::ready)
      << "runWorker waited past its peerConnectTimeout";
  auto spouts = spoutWorker.get();
  EXPECT_TRUE(spouts.active());
  spouts.kill();
}

}  // namespace
}  // namespace gale
