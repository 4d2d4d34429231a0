#include "gale/core/watermark.h"

#include <gtest/gtest.h>

#include <random>

#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using testing::sec;

TEST(BoundedOutOfOrderness, WatermarkIsTheMaxEventTimeMinusTheDelayAndReportsWhenItMoved) {
  BoundedOutOfOrderness g(5s);
  EXPECT_EQ(g.current(), kNoWatermark);
  EXPECT_TRUE(g.observe(sec(10)));
  EXPECT_EQ(g.current(), Timestamp{sec(5).micros - 1}) << "a tuple exactly 5 s behind is on time";
  EXPECT_FALSE(g.observe(sec(8))) << "an older event time does not move it";
  EXPECT_EQ(g.current(), Timestamp{sec(5).micros - 1});
  EXPECT_TRUE(g.observe(sec(12)));
  EXPECT_EQ(g.current(), Timestamp{sec(7).micros - 1});
}

TEST(BoundedOutOfOrderness, PeriodicEmissionReturnsTheWatermarkOnlyWhenItChanged) {
  BoundedOutOfOrderness g(1s);
  EXPECT_FALSE(g.onPeriodic(sec(0)).has_value());
  g.observe(sec(10));
  g.observe(sec(11));
  auto w = g.onPeriodic(sec(1));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w, Timestamp{sec(10).micros - 1});
  EXPECT_FALSE(g.onPeriodic(sec(2)).has_value());
  g.observe(sec(9));
  EXPECT_FALSE(g.onPeriodic(sec(3)).has_value());
}

TEST(BoundedOutOfOrderness, AnInputWithoutTuplesForTheIdleTimeoutIsIdle) {
  BoundedOutOfOrderness g(1s, 10s);
  EXPECT_FALSE(g.idle(sec(100))) << "never idle before the first tuple";
  g.observe(sec(1), sec(100));
  EXPECT_FALSE(g.idle(Timestamp{sec(110).micros - 1}));
  EXPECT_TRUE(g.idle(sec(110)));
  g.observe(sec(2), sec(111));
  EXPECT_FALSE(g.idle(sec(112)));
  BoundedOutOfOrderness never(1s);
  never.observe(sec(1), sec(0));
  EXPECT_FALSE(never.idle(sec(1000000)));
}

TEST(BoundedOutOfOrderness, NegativeDelaysAreRejected) {
  EXPECT_THROW(BoundedOutOfOrderness(-1s), std::invalid_argument);
  EXPECT_THROW(BoundedOutOfOrderness(1s, -1s), std::invalid_argument);
}

TEST(BoundedOutOfOrderness, RestoreFromTheMaxEventTimeRebuildsTheSameWatermark) {
  BoundedOutOfOrderness g(2s);
  g.observe(sec(50));
  BoundedOutOfOrderness h(2s);
  h.restore(g.maxEventTime());
  EXPECT_EQ(h.current(), g.current());
}

TEST(WatermarkTracker, CombinedWatermarkIsTheMinOverInputsAndWaitsForEveryInput) {
  WatermarkTracker t;
  t.addInput(1);
  t.addInput(2);
  EXPECT_FALSE(t.update(1, sec(10)).has_value()) << "input 2 has not reported";
  auto w = t.update(2, sec(7));
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w, sec(7));
  EXPECT_FALSE(t.update(2, sec(5)).has_value()) << "an input never goes backwards";
  EXPECT_EQ(*t.update(2, sec(12)), sec(10));
}

TEST(WatermarkTracker, IdleInputsAreExcludedAndCannotPullTheWatermarkBack) {
  WatermarkTracker t;
  t.addInput(1);
  t.addInput(2);
  t.update(1, sec(20));
  t.update(2, sec(3));
  EXPECT_EQ(t.current(), sec(3));
  auto w = t.setIdle(2, true);
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(*w, sec(20)) << "the idle laggard no longer holds input 1 back";
  EXPECT_FALSE(t.update(2, sec(4)).has_value()) << "it woke up behind: the combined stays";
  EXPECT_EQ(t.current(), sec(20));
  EXPECT_FALSE(t.update(1, sec(30)).has_value()) << "now input 2 (4 s) holds it again";
  EXPECT_EQ(*t.update(2, sec(25)), sec(25));
  t.setIdle(1, true);
  t.setIdle(2, true);
  EXPECT_EQ(t.current(), sec(25)) << "all idle: stays where it was";
}

TEST(WatermarkTracker, MaxPolicyFollowsTheFastestInput) {
  WatermarkTracker t(WatermarkPolicy::Max);
  t.update(1, sec(5));
  EXPECT_EQ(*t.update(2, sec(9)), sec(9));
  EXPECT_FALSE(t.update(1, sec(8)).has_value());
}

TEST(WatermarkTracker, RandomUpdatesNeverMoveTheCombinedWatermarkBackwards) {
  std::mt19937_64 rng(3);
  for (int round = 0; round < 50; ++round) {
    WatermarkTracker t(round % 2 ? WatermarkPolicy::Max : WatermarkPolicy::Min);
    std::vector<int64_t> own(4, kNoWatermark.micros);
    std::vector<bool> idle(4, false);
    Timestamp last = kNoWatermark;
    for (int i = 0; i < 200; ++i) {
      int in = rng() % 4;
      if (rng() % 5 == 0) {
        idle[in] = !idle[in];
        t.setIdle(in, idle[in]);
      } else {
        int64_t w = static_cast<int64_t>(rng() % 1000);
        own[in] = std::max(own[in], w);
        idle[in] = false;
        t.update(in, Timestamp{w});
      }
      ASSERT_GE(t.current(), last);
      last = t.current();
      // The combined watermark never exceeds what the policy allows over the active inputs.
      int64_t bound = round % 2 ? kNoWatermark.micros : kEndOfTime.micros;
      bool any = false;
      for (int k = 0; k < 4; ++k) {
        if (idle[k] || own[k] == kNoWatermark.micros) continue;
        any = true;
        bound = round % 2 ? std::max(bound, own[k]) : std::min(bound, own[k]);
      }
      if (any && round % 2) {
        ASSERT_EQ(t.current().micros, std::max(bound, last.micros));
      }
    }
  }
}

}  // namespace
}  // namespace gale
