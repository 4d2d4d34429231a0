// How idle tasks wait: Continuous::spinBudget (busy polling before blocking) against the default
// (yield for idleSpin, then block). What matters is that no tuple waits for a wake-up that never
// comes, whichever way the consumer was waiting when it arrived; the CI runs this under TSan.
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "test_support.h"

namespace gale {
namespace {

using namespace testing;

// Emits 0..n-1, one at a time: tuple i only after the bolt counted tuple i-1 and the test let it
// go, so every tuple arrives at tasks that have gone idle in between (spinning, yielding or
// blocked, depending on the setting and on how long the test thread took).
struct PingPong {
  std::atomic<int64_t> released{0};  // tuples the spout may emit
  std::atomic<int64_t> polls{0};     // nextTuple() calls
};

class PacedSpout : public Spout {
 public:
  PacedSpout(int64_t n, std::shared_ptr<PingPong> p) : n_(n), p_(std::move(p)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Spout> clone() const override { return std::make_unique<PacedSpout>(n_, p_); }
  bool nextTuple(SpoutOutputCollector& out) override {
    p_->polls.fetch_add(1, std::memory_order_relaxed);
    if (next_ >= n_) {
      if (!ended_) out.emitEndOfStream();
      ended_ = true;
      return false;
    }
    if (next_ >= p_->released.load()) return false;
    out.emit(Values{next_}, static_cast<MessageId>(next_));
    ++next_;
    return true;
  }

 private:
  int64_t n_;
  std::shared_ptr<PingPong> p_;
  int64_t next_ = 0;
  bool ended_ = false;
};

// Records what it executes and passes it on, anchored.
class ForwardingBolt : public RecordingBolt {
 public:
  explicit ForwardingBolt(std::shared_ptr<Seen> seen)
      : RecordingBolt(std::move(seen), Fields{{"n", Type::Int64}}) {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<ForwardingBolt>(seen_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    out.emit(t, Values{t.values()[0]});
    RecordingBolt::execute(t, out);
  }
};

Topology pacedTopology(int64_t n, std::shared_ptr<PingPong> p, std::shared_ptr<Seen> seen) {
  TopologyBuilder b;
  b.setSpout("paced", PacedSpout(n, p), 1);
  b.setBolt("pass", ForwardingBolt(seen), 1)
      .shuffleGrouping("paced");
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("pass");
  return b.build();
}

// Plays n tuples one by one; each must arrive at the last bolt within the limit.
void playOneByOne(Continuous config, int64_t n) {
  auto p = std::make_shared<PingPong>();
  auto seen = std::make_shared<Seen>();
  auto rt = runContinuous(pacedTopology(n, p, seen), config);
  for (int64_t i = 0; i < n; ++i) {
    p->released = i + 1;
    // Two bolts record each tuple.
    ASSERT_TRUE(eventually([&] { return seen->count.load() == 2 * (i + 1); }))
        << "tuple " << i << " did not arrive";
  }
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(30)));
  EXPECT_EQ(rt.metrics().find("paced")->total().acked, static_cast<uint64_t>(n));
}

TEST(Waiting, EveryTupleArrivesWhenTheTasksBlockBetweenTuples) {
  Continuous c = fastConfig();  // spinBudget 0: yield for idleSpin, then block
  playOneByOne(c, 200);
}

TEST(Waiting, EveryTupleArrivesWithAShortSpinBudgetThatRunsOutBetweenTuples) {
  Continuous c = fastConfig();
  c.spinBudget = std::chrono::microseconds(20);
  c.idleSpin = Duration::zero();  // straight from spinning to blocking
  playOneByOne(c, 200);
}

TEST(Waiting, EveryTupleArrivesWhileTheTasksSpinThroughout) {
  Continuous c = fastConfig();
  c.spinBudget = std::chrono::seconds(30);  // longer than the test: they never block
  // Fewer rounds: four spinning task threads share the cores with the test thread.
  playOneByOne(c, 50);
}

// With a spin budget an idle spout asks its source again within about a microsecond; without
// one it sleeps its back-off (here 10 ms) between calls, so 2 000 calls would take 20 s.
TEST(Waiting, WithASpinBudgetAnIdleSpoutPollsItsSourceInsteadOfSleeping) {
  auto p = std::make_shared<PingPong>();
  auto seen = std::make_shared<Seen>();
  Continuous c = fastConfig();
  c.spoutBackoffMin = c.spoutBackoffMax = std::chrono::milliseconds(10);
  c.spinBudget = std::chrono::seconds(60);
  auto rt = runContinuous(pacedTopology(1, p, seen), c);
  EXPECT_TRUE(eventually([&] { return p->polls.load() >= 2000; }));
  p->released = 1;
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(30)));
  EXPECT_EQ(seen->count.load(), 2);
}

// PacedSpout with a wake fd: the test writes it after each release (Spout::wakeFd).
class WakingSpout : public PacedSpout {
 public:
  WakingSpout(int64_t n, std::shared_ptr<PingPong> p, int fd)
      : PacedSpout(n, p), n_(n), p_(std::move(p)), fd_(fd) {}
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<WakingSpout>(n_, p_, fd_);
  }
  int wakeFd() const override { return fd_; }

 private:
  int64_t n_;
  std::shared_ptr<PingPong> p_;
  int fd_;
};

// The back-off and the wake timeout are 30 s: a spout that slept either between polls would miss
// every round's 10 s limit, so each tuple arrives only if the fd woke it. Between wake-ups it
// does not ask its source again (no yield loop).
TEST(Waiting, AnIdleSpoutWithAWakeFdBlocksOnItInsteadOfSleepingItsBackoff) {
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto p = std::make_shared<PingPong>();
  auto seen = std::make_shared<Seen>();
  Continuous c = fastConfig();
  c.spoutBackoffMin = c.spoutBackoffMax = std::chrono::seconds(30);
  c.spoutWakeTimeout = std::chrono::seconds(30);
  TopologyBuilder b;
  b.setSpout("paced", WakingSpout(21, p, fd), 1);
  b.setBolt("sink", RecordingBolt(seen), 1).shuffleGrouping("paced");
  auto rt = runContinuous(b.build(), c);
  const uint64_t one = 1;
  for (int64_t i = 0; i < 20; ++i) {
    p->released = i + 1;
    ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
    ASSERT_TRUE(eventually([&] { return seen->count.load() == i + 1; }, std::chrono::seconds(10)))
        << "tuple " << i << " did not arrive";
  }
  // Idle now: count its polls over a while. Only the last acks (coming through its inbox) can
  // wake it, and its metrics are not published while it blocks, so no wait on them here.
  const auto start = std::chrono::steady_clock::now();
  const int64_t before = p->polls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int64_t polls = p->polls.load() - before;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start).count();
  EXPECT_LE(polls, 20) << "an idle spout with a wake fd polled " << polls << " times in "
                                << ms << " ms";
  p->released = 21;  // lets it end
  ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(30)));
  ::close(fd);
}

// Acks later, as a client's callback does (KafkaSink acks on its delivery reports): execute()
// keeps the tuple's anchors, onIdle() acks what it kept.
class AcksWhenIdleBolt : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<AcksWhenIdleBolt>(); }
  void execute(const Tuple& t, OutputCollector&) override {
    Tuple keep(t.schema(), Values{});
    keep.mutableAnchors() = t.anchors();
    keep.setSourceTask(t.sourceTask());
    kept_.push_back(std::move(keep));
  }
  void onIdle(OutputCollector& out) override {
    for (const Tuple& t : kept_) out.ack(t);
    kept_.clear();
  }

 private:
  std::vector<Tuple> kept_;
};

// A spout held at its limit of trees in flight calls nextTuple() no more, so its fused bolt gets
// no execute(): the bolt's acks must come from onIdle. The clock never moves, so no tick
// (onTick) ever comes: without onIdle the spout stays held at 8 trees.
TEST(Waiting, AFusedBoltAckingWhenItsTaskIsIdleCompletesTheTreesOfASpoutHeldAtItsLimit) {
  ManualClock clock;
  auto st = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(1000, 1, st), 1);
  b.setBolt("later", AcksWhenIdleBolt(), 1).shuffleGrouping("numbers");
  Continuous c = fastConfig();
  c.clock = &clock;
  c.maxSpoutPending = 8;
  auto rt = runContinuous(b.build(), c);
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(30))) << st->completed.load() << " trees";
  EXPECT_EQ(st->completed.load(), 1000);
  EXPECT_EQ(rt.metrics().find("later")->fusedInto, "numbers");
}

TEST(Waiting, ANegativeSpinBudgetIsRefused) {
  auto p = std::make_shared<PingPong>();
  Continuous c = fastConfig();
  c.spinBudget = std::chrono::microseconds(-1);
  try {
    runContinuous(pacedTopology(1, p, std::make_shared<Seen>()), c);
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("spinBudget"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gale
