#include "gale/batch/trigger.h"

#include <gtest/gtest.h>

#include "gale/core/clock.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

Timestamp ms(int64_t m) { return Timestamp{m * 1000}; }

TEST(TriggerSchedule, UnspecifiedStartsTheNextBatchAsSoonAsTheLastFinishes) {
  TriggerSchedule s(BatchTrigger::unspecified());
  EXPECT_TRUE(s.due(ms(0)));
  s.started(ms(0));
  EXPECT_FALSE(s.due(ms(5)));  // one batch at a time: waits for it to finish
  EXPECT_FALSE(s.nextDue().has_value());
  s.finished(ms(7));
  EXPECT_TRUE(s.due(ms(7)));  // at once, no interval
  s.started(ms(7));
  s.finished(ms(8));
  // No new data: still due (the job polls in real time, not on the trigger's clock).
  s.skipped(ms(8));
  EXPECT_TRUE(s.due(ms(8)));
}

TEST(TriggerSchedule, ProcessingTimeStartsBatchesOnIntervalTicks) {
  TriggerSchedule s(BatchTrigger::processingTime(100ms));
  EXPECT_TRUE(s.due(ms(1030)));  // the first batch starts at once
  s.started(ms(1030));
  s.finished(ms(1050));
  EXPECT_FALSE(s.due(ms(1050)));
  EXPECT_FALSE(s.due(ms(1099)));
  EXPECT_EQ(s.nextDue()->micros, ms(1100).micros);  // aligned to the interval, not start + 100
  EXPECT_TRUE(s.due(ms(1100)));
  EXPECT_EQ(s.overruns(), 0u);
}

TEST(TriggerSchedule, ProcessingTimeBatchThatOverrunsIsFollowedAtOnce) {
  TriggerSchedule s(BatchTrigger::processingTime(100ms));
  s.started(ms(0));
  s.finished(ms(250));  // took 2.5 intervals
  EXPECT_TRUE(s.due(ms(250)));  // no waiting for the tick at 300
  EXPECT_EQ(s.overruns(), 1u);
  s.started(ms(250));
  EXPECT_EQ(s.nextDue(), std::nullopt);
  s.finished(ms(260));
  EXPECT_FALSE(s.due(ms(299)));
  EXPECT_TRUE(s.due(ms(300)));
}

TEST(TriggerSchedule, ProcessingTimeTickWithoutDataWaitsForTheNextTick) {
  TriggerSchedule s(BatchTrigger::processingTime(1s));
  EXPECT_TRUE(s.due(ms(0)));
  s.skipped(ms(0));
  EXPECT_FALSE(s.due(ms(999)));
  EXPECT_TRUE(s.due(ms(1000)));
  s.skipped(ms(1000));
  EXPECT_EQ(s.nextDue()->micros, ms(2000).micros);
}

TEST(BatchTrigger, NonPositiveIntervalIsRefusedWithAClearMessage) {
  try {
    BatchTrigger::processingTime(0ms);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("interval must be positive"), std::string::npos);
  }
  EXPECT_THROW(TriggerSchedule(BatchTrigger{BatchTrigger::Kind::ProcessingTime, Duration{-5}}),
               std::invalid_argument);
}

}  // namespace
}  // namespace gale
