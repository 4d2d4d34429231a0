// Logging: repeated identical lines are counted instead of written.
#include "gale/core/log.h"
#include "scoped_log_capture_for_test.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gale {
namespace {

struct Captured : testing::ScopedLogCapture {
  ~Captured() { setLogRepeatWindow(std::chrono::seconds(1)); }
};

TEST(Log, AnIdenticalLineRepeatedWithinTheWindowIsWrittenOnceThenReportedWithItsCount) {
  Captured c;
  setLogRepeatWindow(std::chrono::hours(1));  // nothing here waits an hour: all repeats held
  for (int i = 0; i < 1235; ++i) logError("component 'x' task 3: execute threw: poison");
  logError("another line");
  ASSERT_EQ(c.lines().size(), 2u);
  EXPECT_EQ(c.lines()[0], "component 'x' task 3: execute threw: poison");
  flushLogRepeats();
  ASSERT_EQ(c.lines().size(), 3u);
  EXPECT_EQ(c.lines()[2], "component 'x' task 3: execute threw: poison (repeated 1234 times)");
  flushLogRepeats();
  EXPECT_EQ(c.lines().size(), 3u) << "a count is reported once";
}

TEST(Log, AfterTheWindowTheNextRepeatIsWrittenWithTheCountHeldSoFar) {
  Captured c;
  setLogRepeatWindow(std::chrono::nanoseconds(1));  // every window has passed by the next call
  logWarn("same");
  logWarn("same");
  ASSERT_EQ(c.lines().size(), 2u);
  EXPECT_EQ(c.lines()[1], "same");
  setLogRepeatWindow(std::chrono::hours(1));
  logWarn("same");
  logWarn("same");
  setLogRepeatWindow(std::chrono::nanoseconds(1));
  logWarn("same");
  ASSERT_EQ(c.lines().size(), 3u);
  EXPECT_EQ(c.lines()[2], "same (repeated 2 times)");
}

TEST(Log, AZeroWindowWritesEveryLineAndLevelsAreCountedApart) {
  Captured c;
  setLogRepeatWindow(std::chrono::nanoseconds(0));
  for (int i = 0; i < 5; ++i) logInfo("x");
  EXPECT_EQ(c.lines().size(), 5u);
  setLogRepeatWindow(std::chrono::hours(1));
  logInfo("y");
  logWarn("y");  // the same text at another level is another line
  EXPECT_EQ(c.lines().size(), 7u);
  flushLogRepeats();
}

}  // namespace
}  // namespace gale
