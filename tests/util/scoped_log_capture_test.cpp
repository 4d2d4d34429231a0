// ScopedLogCapture: keeps the lines logged while it lives, from any thread, and puts the previous
// sink back however its scope ends.
#include "scoped_log_capture_for_test.h"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace gale::testing {
namespace {

// Every line written, even one a repeated run (--gtest_repeat) wrote a moment ago.
class ScopedLogCaptureTest : public ::testing::Test {
 protected:
  void SetUp() override { setLogRepeatWindow(std::chrono::nanoseconds(0)); }
  void TearDown() override { setLogRepeatWindow(std::chrono::seconds(1)); }
};

TEST_F(ScopedLogCaptureTest, KeepsTheLinesWrittenWhileItLivesWithTheirLevelsThenRestoresTheSink) {
  ScopedLogCapture outer;  // stands for whatever sink was installed before (stderr by default)
  {
    ScopedLogCapture capture;
    logInfo("capture: first");
    logWarn("capture: second, a warning");
    logError("capture: third, an error");
    EXPECT_EQ(capture.lines(), (std::vector<std::string>{"capture: first",
                                                          "capture: second, a warning",
                                                          "capture: third, an error"}));
    EXPECT_EQ(capture.lines(LogLevel::Warn),
              (std::vector<std::string>{"capture: second, a warning"}));
    EXPECT_EQ(capture.count("capture: "), 3u);
    EXPECT_EQ(capture.count("capture: ", LogLevel::Error), 1u);
    EXPECT_TRUE(capture.contains("second"));
    EXPECT_FALSE(capture.contains("fourth"));
  }
  logInfo("capture: after the scope");
  EXPECT_EQ(outer.lines(), (std::vector<std::string>{"capture: after the scope"}))
      << "the lines of the capture's lifetime leaked to the outer sink, or the outer sink was "
         "not restored";
}

// A failed ASSERT returns from the test function; an exception unwinds: either way the
// destructor runs and the outer sink is back.
TEST_F(ScopedLogCaptureTest, RestoresThePreviousSinkWhenItsScopeIsLeftByAnException) {
  ScopedLogCapture outer;
  try {
    ScopedLogCapture capture;
    logInfo("capture: before the throw");
    throw std::runtime_error("a failing test");
  } catch (const std::runtime_error&) {
  }
  logInfo("capture: after the throw");
  EXPECT_EQ(outer.lines(), (std::vector<std::string>{"capture: after the throw"}));
}

TEST_F(ScopedLogCaptureTest, WithNoSinkBeforeItStderrIsTheSinkAgainAfterIt) {
  LogSink before = setLogSink(nullptr);
  { ScopedLogCapture capture; }
  EXPECT_FALSE(setLogSink(std::move(before))) << "the capture left a sink installed";
}

// Four threads log distinct lines while the test reads and waits: every line is kept once.
TEST_F(ScopedLogCaptureTest, CollectsLinesFromManyThreadsAndWaitsForThem) {
  ScopedLogCapture capture;
  constexpr int kThreads = 4, kLines = 500;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < kLines; ++i)
        logInfo("capture: thread " + std::to_string(t) + " line " + std::to_string(i));
    });
  go = true;
  // Reads race the writers; the count only grows.
  size_t seen = 0;
  while (seen < kThreads * kLines && capture.waitFor("capture: thread ", seen + 1)) {
    size_t now = capture.count("capture: thread ");
    EXPECT_GT(now, seen);
    seen = now;
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(capture.count("capture: thread "), static_cast<size_t>(kThreads * kLines));
  EXPECT_TRUE(capture.waitFor("capture: thread 3 line ", kLines));
  EXPECT_FALSE(capture.waitFor("capture: thread 4 line ", 1, std::chrono::milliseconds(10)));
  EXPECT_EQ(capture.count("line 499"), static_cast<size_t>(kThreads));
}

TEST_F(ScopedLogCaptureTest, WaitForWakesWhenAnotherThreadWritesTheLine) {
  ScopedLogCapture capture;
  std::thread writer([] { logWarn("capture: written late"); });
  EXPECT_TRUE(capture.waitFor("written late", 1, std::chrono::seconds(60), LogLevel::Warn));
  writer.join();
  EXPECT_EQ(capture.count("written late", LogLevel::Info), 0u);
}

}  // namespace
}  // namespace gale::testing
