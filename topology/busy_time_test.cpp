// Flink's busy / back-pressured / idle time per second, as the continuous runtime measures it:
// a slow bolt is busy, the tasks upstream of it wait on its full queue (back-pressured), a bolt
// that gets nothing is idle. The bounds are generous: the figures are wall-clock shares of each
// task's last metrics interval, so a loaded machine shifts them only a little.
#include <gtest/gtest.h>

#include "test_support.h"

namespace gale {
namespace {

using namespace testing;

// Sleeps 1 ms per tuple: busy nearly all the time once its inbox is full, on any machine.
class SlowBolt : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<SlowBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    out.ack(t);  // emits nothing: whatever subscribes to it stays idle
  }
};

// Passes every tuple on, anchored.
class RelayBolt : public Bolt {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<RelayBolt>(); }
  void execute(const Tuple& t, OutputCollector& out) override {
    out.emit(t, Values{t.values()[0]});
    out.ack(t);
  }
};

const TaskMetrics& only(const TopologyMetrics& m, const char* name) {
  return m.find(name)->tasks.at(0);
}

// Each task's three shares cover its interval, once it has published one.
void expectSharesAddUp(const TopologyMetrics& m) {
  for (const auto& c : m.components)
    for (const auto& t : c.tasks) {
      double sum = t.busyTimeMsPerSecond + t.backPressuredTimeMsPerSecond + t.idleTimeMsPerSecond;
      EXPECT_NEAR(sum, 1000.0, 1.0) << c.name << " task " << t.task;
    }
}

// The figures are about waits between tasks: fusion (on by default) would run every bolt inside
// the spout's task, so each bolt here keeps its own task.
TEST(BusyTime, ASlowBoltIsBusyItsUpstreamIsBackPressuredAndABoltWithoutInputIsIdle) {
  auto st = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(INT64_MAX, 10, st, /*reliable=*/false, false), 1);
  b.setBolt("relay", RelayBolt(), 1).shuffleGrouping("numbers").disableFusion();
  b.setBolt("slow", SlowBolt(), 1).shuffleGrouping("relay").disableFusion();
  b.setBolt("quiet", SlowBolt(), 1).shuffleGrouping("slow").disableFusion();
  Continuous c = fastConfig();
  c.acking = false;
  c.highWaterMark = 2;
  c.maxItemsPerFrame = 16;
  auto rt = runContinuous(b.build(), c);
  TopologyMetrics m;
  auto holds = [&](const char* name, double TaskMetrics::*field) {
    return eventually(
        [&] {
          m = rt.metrics();
          return only(m, name).*field > 800;
        },
        std::chrono::seconds(60));
  };
  EXPECT_TRUE(holds("slow", &TaskMetrics::busyTimeMsPerSecond))
      << "slow: busy " << only(m, "slow").busyTimeMsPerSecond;
  EXPECT_TRUE(holds("relay", &TaskMetrics::backPressuredTimeMsPerSecond))
      << "relay: back-pressured " << only(m, "relay").backPressuredTimeMsPerSecond;
  EXPECT_TRUE(holds("numbers", &TaskMetrics::backPressuredTimeMsPerSecond))
      << "numbers: back-pressured " << only(m, "numbers").backPressuredTimeMsPerSecond;
  EXPECT_TRUE(holds("quiet", &TaskMetrics::idleTimeMsPerSecond))
      << "quiet: idle " << only(m, "quiet").idleTimeMsPerSecond;
  m = rt.metrics();
  expectSharesAddUp(m);
  // The component totals carry the busiest task's figures.
  EXPECT_EQ(m.find("slow")->total().busyTimeMsPerSecond, only(m, "slow").busyTimeMsPerSecond);
  rt.kill();
}

TEST(BusyTime, ASpoutAtItsLimitOfTreesInFlightIsBackPressured) {
  auto st = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(INT64_MAX, 10, st, /*reliable=*/true, false), 1);
  b.setBolt("slow", SlowBolt(), 1).shuffleGrouping("numbers").disableFusion();
  Continuous c = fastConfig();
  c.maxSpoutPending = 4;  // far below what the channels hold: the limit, not a queue, stops it
  c.adaptiveMaxPending = false;
  auto rt = runContinuous(b.build(), c);
  TopologyMetrics m;
  EXPECT_TRUE(eventually(
      [&] {
        m = rt.metrics();
        return only(m, "numbers").backPressuredTimeMsPerSecond > 800;
      },
      std::chrono::seconds(60)))
      << "numbers: back-pressured " << only(m, "numbers").backPressuredTimeMsPerSecond
      << ", idle " << only(m, "numbers").idleTimeMsPerSecond;
  EXPECT_EQ(only(m, "numbers").blockedFlushes, 0u) << "the channel, not the limit, stopped it";
  rt.kill();
}

TEST(BusyTime, AnEndedSpoutAndItsBoltAreIdle) {
  auto st = std::make_shared<CountingState>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(100, 10, st, /*reliable=*/true, false), 1);
  b.setBolt("slow", SlowBolt(), 1).shuffleGrouping("numbers").disableFusion();
  auto rt = runContinuous(b.build(), fastConfig());
  ASSERT_TRUE(eventually([&] { return st->completed.load() == 100; }, std::chrono::seconds(60)));
  TopologyMetrics m;
  EXPECT_TRUE(eventually(
      [&] {
        m = rt.metrics();
        return only(m, "numbers").idleTimeMsPerSecond > 800 &&
               only(m, "slow").idleTimeMsPerSecond > 800;
      },
      std::chrono::seconds(60)))
      << "numbers idle " << only(m, "numbers").idleTimeMsPerSecond << ", slow idle "
      << only(m, "slow").idleTimeMsPerSecond;
  rt.kill();
}

}  // namespace
}  // namespace gale
