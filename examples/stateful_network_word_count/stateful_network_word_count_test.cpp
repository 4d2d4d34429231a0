#include "stateful_network_word_count.h"

#include <gtest/gtest.h>

#include <sstream>

#include "gale/batch/microbatch.h"

namespace gale::examples {
namespace {

void expectFinalStatesEqualADirectCount(bool microBatch) {
  StatefulWordCountOptions o;
  o.sentences = 3000;
  o.microBatch = microBatch;
  o.batchInterval = std::chrono::milliseconds(20);
  o.maxRecordsPerBatch = 700;  // several batches
  o.printRows = 3;
  std::ostringstream printed;
  auto states = std::make_shared<MemoryStore>();
  runStatefulWordCount(o, printed, states);
  resetTerminated();
  auto want = directWordCounts(3000);
  ASSERT_GT(want.size(), 10u);
  EXPECT_EQ(finalStates(*states), want);
  // Every state is emitted at every batch (Spark's updateStateByKey): at least 5 batches of 700
  // sentences, each emitting every word seen so far. (Continuous mode's ticks depend on timing.)
  if (microBatch) {
    EXPECT_GT(states->size(), 3 * want.size());
  }
  EXPECT_NE(printed.str().find("-------------------------------------------\nTime: "), std::string::npos);
}

TEST(StatefulNetworkWordCount, TheFinalStatesEqualADirectCountInContinuousMode) {
  expectFinalStatesEqualADirectCount(false);
}

TEST(StatefulNetworkWordCount, TheFinalStatesEqualADirectCountInMicroBatchMode) {
  expectFinalStatesEqualADirectCount(true);
}

TEST(StatefulNetworkWordCount, TheRunningSumAddsTheNewCountsToTheState) {
  EXPECT_EQ(runningSum({Value{int64_t{1}}, Value{int64_t{1}}}, Value{int64_t{5}}), Value{int64_t{7}});
  EXPECT_EQ(runningSum({}, std::nullopt), Value{int64_t{0}});
}

}  // namespace
}  // namespace gale::examples
