// Storm's deactivate / activate on a running topology (what the web UI's POST .../deactivate and
// .../activate call): a deactivated spout emits nothing new but its trees in flight complete.
#include <gtest/gtest.h>

#include <thread>

#include "test_support.h"

namespace gale {
namespace {

using namespace testing;
using namespace std::chrono_literals;

// Counts and acks (RecordingBolt would keep every tuple of an endless source).
class AckingBolt : public Bolt {
 public:
  explicit AckingBolt(std::shared_ptr<std::atomic<int64_t>> count) : count_(std::move(count)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<AckingBolt>(count_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    ++*count_;
    out.ack(t);
  }

 private:
  std::shared_ptr<std::atomic<int64_t>> count_;
};

// An endless source (far more numbers than a test can emit) with acking on, into a counting bolt.
Topology endless(std::shared_ptr<CountingState> state, std::shared_ptr<std::atomic<int64_t>> seen,
                 int spoutTasks) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(int64_t{1} << 40, 4, std::move(state)), spoutTasks);
  b.setBolt("record", AckingBolt(std::move(seen)), 2).shuffleGrouping("numbers");
  return b.build();
}

TEST(Activation, ADeactivatedSpoutEmitsNothingNewButItsTreesCompleteAndActivateResumes) {
  auto state = std::make_shared<CountingState>();
  auto seen = std::make_shared<std::atomic<int64_t>>(0);
  RunningTopology rt = runContinuous(endless(state, seen, 1), fastConfig());
  ASSERT_TRUE(rt.active());
  ASSERT_TRUE(eventually([&] { return state->completed.load() > 100; }));

  rt.deactivate();
  EXPECT_FALSE(rt.active());
  // Every tree emitted before (or by a nextTuple() loop running while) the flag was set
  // completes, and then the emitted count stays put.
  ASSERT_TRUE(eventually([&] { return state->completed.load() == state->emitted.load(); }));
  int64_t frozen = state->emitted.load();
  std::this_thread::sleep_for(200ms);  // an absence check: a slow machine only weakens it
  EXPECT_EQ(state->emitted.load(), frozen);
  EXPECT_EQ(state->completed.load(), frozen);
  EXPECT_TRUE(state->failed.empty());

  rt.activate();
  EXPECT_TRUE(rt.active());
  EXPECT_TRUE(eventually([&] { return state->completed.load() > frozen + 100; }));
  rt.kill();
}

TEST(Activation, RequestStopFromAnotherThreadEndsTheJobGracefully) {
  auto state = std::make_shared<CountingState>();
  auto seen = std::make_shared<std::atomic<int64_t>>(0);
  RunningTopology rt = runContinuous(endless(state, seen, 2), fastConfig());
  ASSERT_TRUE(eventually([&] { return state->completed.load() > 100; }));
  std::thread other([&] { rt.requestStop(); });
  EXPECT_TRUE(rt.waitUntilDone(60s));
  other.join();
  // Graceful: every tree emitted was completed, nothing dropped.
  EXPECT_EQ(state->completed.load(), state->emitted.load());
  EXPECT_EQ(seen->load(), state->emitted.load());
}

TEST(Activation, TheRunningTopologyShowsTheTopologyItRuns) {
  auto state = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(10, 1, state), 1);
  b.setBolt("record", RecordingBolt(std::make_shared<Seen>()), 3)
      .shuffleGrouping("numbers");
  RunningTopology rt = runContinuous(b.build(), fastConfig());
  ASSERT_EQ(rt.topology().components().size(), 2u);
  EXPECT_EQ(rt.topology().components()[1].name, "record");
  EXPECT_EQ(rt.topology().components()[1].parallelism, 3);
  rt.waitUntilDone();
}

// Emits one watermark (marked idle if asked), then nothing, forever.
class WatermarkOnce : public Spout {
 public:
  WatermarkOnce(int64_t wm, bool idle) : wm_(wm), idle_(idle) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<WatermarkOnce>(wm_, idle_);
  }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (sent_) return false;
    out.emitWatermark(Timestamp{wm_}, idle_);
    sent_ = true;
    return true;
  }

 private:
  int64_t wm_;
  bool idle_;
  bool sent_ = false;
};

TEST(WatermarkMetrics, EachTaskShowsItsWatermarkAndABoltCountsItsIdleInputs) {
  TopologyBuilder b;
  b.setSpout("busy", WatermarkOnce(500, false), 1);
  b.setSpout("quiet", WatermarkOnce(100, true), 1);
  b.setBolt("sink", AckingBolt(std::make_shared<std::atomic<int64_t>>(0)), 1)
      .shuffleGrouping("busy")
      .shuffleGrouping("quiet");
  RunningTopology rt = runContinuous(b.build(), fastConfig());
  // Each task publishes its metrics on its own schedule: wait until all three have.
  TopologyMetrics m;
  ASSERT_TRUE(eventually([&] {
    m = rt.metrics();
    const TaskMetrics& sink = m.find("sink")->tasks.at(0);
    return sink.idleInputs == 1 && sink.watermark && m.find("busy")->tasks.at(0).watermark &&
           m.find("quiet")->tasks.at(0).watermarkIdle;
  }));
  EXPECT_EQ(m.find("busy")->tasks.at(0).watermark, Timestamp{500});
  EXPECT_FALSE(m.find("busy")->tasks.at(0).watermarkIdle);
  EXPECT_EQ(m.find("quiet")->tasks.at(0).watermark, Timestamp{100});
  EXPECT_TRUE(m.find("quiet")->tasks.at(0).watermarkIdle);
  // The idle input is left out of the min.
  EXPECT_EQ(m.find("sink")->tasks.at(0).watermark, Timestamp{500});
  EXPECT_FALSE(m.find("sink")->tasks.at(0).watermarkIdle);
  EXPECT_EQ(m.find("sink")->total().idleInputs, 1u);
  EXPECT_EQ(m.find("quiet")->total().watermark, Timestamp{100});
  EXPECT_TRUE(m.find("quiet")->total().watermarkIdle);
  rt.kill();
}

// Throws on odd numbers, acks the rest.
class EvenOnly : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<EvenOnly>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    int64_t n = t.getInt(size_t{0});
    if (n % 2) throw std::runtime_error("odd " + std::to_string(n));
    out.ack(t);
  }
};

TEST(ErrorMetrics, TheLastErrorOfATaskIsKeptWithItsTimeAndTheComponentShowsTheLatest) {
  auto state = std::make_shared<CountingState>();
  ManualClock clock(Timestamp{1'234'567});
  Continuous config = fastConfig();
  config.clock = &clock;
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(10, 1, state, /*reliable=*/false), 1);
  b.setBolt("even", EvenOnly{}, 1).shuffleGrouping("numbers");
  RunningTopology rt = runContinuous(b.build(), config);
  rt.waitUntilDone();
  TaskMetrics even = rt.metrics().find("even")->total();
  EXPECT_EQ(even.errors, 5u);
  EXPECT_EQ(even.lastError, "execute threw: odd 9");
  EXPECT_EQ(even.lastErrorTime, Timestamp{1'234'567});
  EXPECT_EQ(rt.metrics().find("numbers")->total().lastError, "");
}

}  // namespace
}  // namespace gale
