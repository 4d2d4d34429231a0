// The window operator inside the continuous runtime: real spouts, in-band watermarks from the
// source, fields grouping over two count tasks, end of input. The result must equal a direct
// count of the same sentences, window by window.
#include <gtest/gtest.h>

#include "gale/topology/runtime.h"
#include "windowed_word_count.h"

namespace gale::examples {
namespace {

TEST(WindowedWordCount, AppendModeEmitsExactlyTheDirectCountOfEveryWordAndWindowOnce) {
  WindowedWordCountOptions o;
  o.sentences = 20000;  // 20 s of event time: windows fire mid-stream, not only at the end
  auto results = std::make_shared<MemoryStore>();
  auto late = std::make_shared<MemoryStore>();
  auto rt = runContinuous(windowedWordCountTopology(o, results, late), Continuous{});
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  WindowCounts want = expectedWindowCounts(o);
  EXPECT_EQ(late->size(), 0u);
  EXPECT_EQ(results->size(), want.size()) << "append: one row per word and window";
  EXPECT_EQ(collectWindowCounts(*results), want);
}

TEST(WindowedWordCount, UpdateModeEndsWithTheSameCounts) {
  WindowedWordCountOptions o;
  o.sentences = 3000;
  o.mode = OutputMode::Update;
  auto results = std::make_shared<MemoryStore>();
  auto late = std::make_shared<MemoryStore>();
  auto rt = runContinuous(windowedWordCountTopology(o, results, late), Continuous{});
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  EXPECT_EQ(collectWindowCounts(*results), expectedWindowCounts(o));
}

}  // namespace
}  // namespace gale::examples
