#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "gale/connectors/console_sink.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/watermark.h"
#include "sink_test_util.h"

namespace gale {
namespace {

using testing::NoEmit;
using testing::tupleOf;

const SchemaPtr kWords = makeSchema("count", "default", Fields{"word", "n"});

OperatorContext contextFor(int taskIndex, const Clock& clock) {
  OperatorContext c;
  c.component = "sink";
  c.taskIndex = taskIndex;
  c.task = taskIndex;
  c.parallelism = 2;
  c.clock = &clock;
  return c;
}

TEST(MemorySink, ContinuousModeAppendsEveryTupleInArrivalOrder) {
  auto store = std::make_shared<MemoryStore>();
  MemorySink sink(store);
  ManualClock clock;
  auto task = sink.clone();
  task->open(contextFor(0, clock));
  NoEmit out;
  task->onTuple(tupleOf(kWords, {std::string("a"), int64_t{1}}), out);
  task->onTuple(tupleOf(kWords, {std::string("b"), int64_t{2}}), out);
  task->onTuple(tupleOf(kWords, {std::string("a"), int64_t{3}}), out);
  ASSERT_EQ(store->size(), 3u);
  auto rows = store->rows();
  EXPECT_EQ(rows[2].values, (Values{std::string("a"), int64_t{3}}));
  EXPECT_EQ(rows[0].stream, "count:default");
  OutputFieldsDeclarer d;
  sink.declareOutputFields(d);
  EXPECT_TRUE(d.streams().empty());
}

TEST(MemorySink, AReplayedBatchReplacesItsRowsInsteadOfDuplicatingThem) {
  auto store = std::make_shared<MemoryStore>();
  ManualClock clock;
  auto t0 = MemorySink(store).clone();
  auto t1 = MemorySink(store).clone();
  t0->open(contextFor(0, clock));
  t1->open(contextFor(1, clock));
  NoEmit out;

  t0->onBatchBegin(1);
  t1->onBatchBegin(1);
  t0->onTuple(tupleOf(kWords, {std::string("a"), int64_t{1}}), out);
  t1->onTuple(tupleOf(kWords, {std::string("b"), int64_t{1}}), out);
  EXPECT_EQ(store->size(), 0u) << "rows are not visible before the batch ends";
  t0->onBatchEnd(1, out);
  t1->onBatchEnd(1, out);
  EXPECT_EQ(store->size(), 2u);

  // Batch 2, first attempt: task 0 ends, task 1 fails mid-batch (never ends).
  t0->onBatchBegin(2);
  t1->onBatchBegin(2);
  t0->onTuple(tupleOf(kWords, {std::string("a"), int64_t{2}}), out);
  t1->onTuple(tupleOf(kWords, {std::string("lost"), int64_t{9}}), out);
  t0->onBatchEnd(2, out);
  // Replay of batch 2 with the same txid on both tasks.
  t0->onBatchBegin(2);
  t1->onBatchBegin(2);
  t0->onTuple(tupleOf(kWords, {std::string("a"), int64_t{2}}), out);
  t1->onTuple(tupleOf(kWords, {std::string("b"), int64_t{2}}), out);
  t0->onBatchEnd(2, out);
  t1->onBatchEnd(2, out);

  EXPECT_EQ(store->size(), 4u);
  EXPECT_EQ(store->txids(), (std::vector<uint64_t>{1, 2}));
  auto b2 = store->batch(2);
  ASSERT_EQ(b2.size(), 2u);
  EXPECT_EQ(b2[0].values, (Values{std::string("a"), int64_t{2}}));
  EXPECT_EQ(b2[1].values, (Values{std::string("b"), int64_t{2}}));
  EXPECT_EQ(store->replacedBatches(), 1u);
  for (const auto& v : store->values()) EXPECT_NE(v[0], Value(std::string("lost")));
}

TEST(MemorySink, LatencyIsMeasuredFromOriginToVisibility) {
  auto store = std::make_shared<MemoryStore>();
  ManualClock clock(Timestamp{1000});
  auto task = MemorySink(store, {.recordLatency = true}).clone();
  task->open(contextFor(0, clock));
  NoEmit out;
  const int64_t t = clock.monoNanos();
  clock.advance(Duration{5});  // 5 us later
  task->onTuple(tupleOf(kWords, {std::string("a"), int64_t{1}}, t), out);
  task->onTuple(tupleOf(kWords, {std::string("x"), int64_t{1}}, 0), out);  // unknown origin
  EXPECT_EQ(store->latency().count(), 1u);
  EXPECT_EQ(store->latency().max(), 5000);

  task->onBatchBegin(7);
  task->onTuple(tupleOf(kWords, {std::string("b"), int64_t{1}}, clock.monoNanos()), out);
  clock.advance(Duration{100});
  task->onBatchEnd(7, out);  // visible 100 us after origin
  EXPECT_EQ(store->latency().count(), 2u);
  EXPECT_EQ(store->latency().max(), 100'000);
}

TEST(MemorySink, WithoutLatencyRequestedNothingIsRecorded) {
  auto store = std::make_shared<MemoryStore>();
  ManualClock clock(Timestamp{1000});
  auto task = MemorySink(store).clone();
  task->open(contextFor(0, clock));
  NoEmit out;
  task->onTuple(tupleOf(kWords, {std::string("a"), int64_t{1}}, 1), out);
  EXPECT_EQ(store->latency().count(), 0u);
}

TEST(MemorySink, BatchEndWithoutBeginIsAnErrorNamingTheTxid) {
  auto store = std::make_shared<MemoryStore>();
  auto task = MemorySink(store).clone();
  NoEmit out;
  try {
    task->onBatchEnd(3, out);
    FAIL();
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("onBatchEnd(3)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(MemorySink(nullptr), std::invalid_argument);
}

TEST(MemorySink, ConcurrentTasksAppendWithoutLosingRowsAndWaitersWakeUp) {
  auto store = std::make_shared<MemoryStore>();
  constexpr int kTasks = 4, kRows = 5000;
  std::thread waiter([&] { EXPECT_TRUE(store->waitForSize(kTasks * kRows, std::chrono::seconds(20))); });
  std::vector<std::thread> threads;
  for (int t = 0; t < kTasks; ++t) {
    threads.emplace_back([&, t] {
      auto task = MemorySink(store, {.recordLatency = true}).clone();
      task->open(contextFor(t, SystemClock::instance()));
      NoEmit out;
      for (int i = 0; i < kRows; ++i)
        task->onTuple(tupleOf(kWords, {std::string("w"), int64_t{i}}, SystemClock::steadyNanos()), out);
    });
  }
  for (auto& th : threads) th.join();
  waiter.join();
  EXPECT_EQ(store->size(), static_cast<size_t>(kTasks * kRows));
  EXPECT_EQ(store->latency().count(), static_cast<uint64_t>(kTasks * kRows));
  EXPECT_FALSE(store->waitForSize(kTasks * kRows + 1, std::chrono::milliseconds(1)));
}

const SchemaPtr kWindows = makeSchema("count", "default",
                                      Fields{{"word", Type::String},
                                             {"window_start", Type::Timestamp},
                                             {"window_end", Type::Timestamp},
                                             {"count", Type::Int64}});

TEST(ConsoleSink, PrintsEachTupleWithThePrefixAndReadableTimesInContinuousMode) {
  std::ostringstream os;
  ConsoleSink sink(os, "out> ");
  auto task = sink.clone();
  NoEmit out;
  task->onTuple(tupleOf(kWords, {std::string("hello"), int64_t{3}}), out);
  task->onTuple(tupleOf(kWindows, {std::string("world"), Timestamp{1'714'557'600'000'000},
                                   Timestamp{1'714'557'900'000'000}, int64_t{1}}),
                out);
  EXPECT_EQ(os.str(),
            "out> (hello, 3)\n"
            "out> (world, 2024-05-01 10:00:00, 2024-05-01 10:05:00, 1)\n");
}

TEST(ConsoleSink, PrintsTimestampsAsUtcTimesWithFractionsOnlyWhenThereAreAny) {
  EXPECT_EQ(consoleText(Timestamp{5'000'000}), "1970-01-01 00:00:05");
  EXPECT_EQ(consoleText(Timestamp{5'250'000}), "1970-01-01 00:00:05.25");
  EXPECT_EQ(consoleText(Timestamp{1'714'557'600'000'001}), "2024-05-01 10:00:00.000001");
  EXPECT_EQ(consoleText(Timestamp{-1}), "1969-12-31 23:59:59.999999");
  EXPECT_EQ(consoleText(kEndOfTime), "end of time");
  EXPECT_EQ(consoleText(Value{int64_t{5'000'000}}), "5000000");  // an int64 stays a number
}

TEST(ConsoleSink, PrintsABatchAsSparksTableOnlyWhenItEndsUnderItsTxid) {
  std::ostringstream os;
  auto task = ConsoleSink(os, "").clone();
  NoEmit out;
  task->onBatchBegin(4);
  task->onTuple(tupleOf(kWindows, {std::string("lost"), Timestamp{0}, Timestamp{5'000'000},
                                   int64_t{1}}),
                out);
  task->onBatchBegin(4);  // the first attempt failed
  task->onTuple(tupleOf(kWindows, {std::string("a"), Timestamp{0}, Timestamp{5'000'000},
                                   int64_t{12}}),
                out);
  task->onTuple(tupleOf(kWindows, {std::string("bb"), Timestamp{5'000'000},
                                   Timestamp{10'000'000}, int64_t{1}}),
                out);
  EXPECT_EQ(os.str(), "");
  task->onBatchEnd(4, out);
  EXPECT_EQ(os.str(),
            "-------------------------------------------\n"
            "Batch: 4\n"
            "-------------------------------------------\n"
            "+----+-------------------+-------------------+-----+\n"
            "|word|       window_start|         window_end|count|\n"
            "+----+-------------------+-------------------+-----+\n"
            "|   a|1970-01-01 00:00:00|1970-01-01 00:00:05|   12|\n"
            "|  bb|1970-01-01 00:00:05|1970-01-01 00:00:10|    1|\n"
            "+----+-------------------+-------------------+-----+\n"
            "\n");
}

TEST(ConsoleSink, CutsLongCellsAndManyRowsAsSparkDoesAndSaysSo) {
  std::ostringstream os;
  auto task = ConsoleSink(os, ConsoleSink::Options{.prefix = "totals ", .numRows = 2, .truncate = 8}).clone();
  NoEmit out;
  task->onBatchBegin(1);
  task->onTuple(tupleOf(kWords, {std::string("internationalization"), int64_t{1}}), out);
  task->onTuple(tupleOf(kWords, {std::string("b"), int64_t{2}}), out);
  task->onTuple(tupleOf(kWords, {std::string("c"), int64_t{3}}), out);
  task->onBatchEnd(1, out);
  task->onBatchBegin(2);
  task->onBatchEnd(2, out);
  EXPECT_EQ(os.str(),
            "-------------------------------------------\n"
            "totals Batch: 1\n"
            "-------------------------------------------\n"
            "+--------+---+\n"
            "|    word|  n|\n"
            "+--------+---+\n"
            "|inter...|  1|\n"
            "|       b|  2|\n"
            "+--------+---+\n"
            "only showing top 2 rows\n"
            "\n"
            "-------------------------------------------\n"
            "totals Batch: 2\n"
            "-------------------------------------------\n"
            "(no rows)\n"
            "\n");
}

TEST(ConsoleSink, TuplesOfDifferentStreamsInOneBatchGetATableEach) {
  std::ostringstream os;
  auto task = ConsoleSink(os).clone();
  NoEmit out;
  task->onBatchBegin(7);
  task->onTuple(tupleOf(kWords, {std::string("a"), int64_t{1}}), out);
  task->onTuple(tupleOf(kWindows, {std::string("b"), Timestamp{0}, Timestamp{1}, int64_t{2}}), out);
  task->onBatchEnd(7, out);
  const std::string s = os.str();
  EXPECT_NE(s.find("|word|  n|\n+----+---+\n|   a|  1|\n"), std::string::npos) << s;
  EXPECT_NE(s.find("|word|       window_start|"), std::string::npos) << s;
}

TEST(ConsoleSink, ParallelTasksNeverInterleaveWithinALine) {
  std::ostringstream os;
  ConsoleSink sink(os, "");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto task = sink.clone();
      NoEmit out;
      for (int i = 0; i < 2000; ++i)
        task->onTuple(tupleOf(kWords, {std::string(20, static_cast<char>('a' + t)), int64_t{t}}), out);
    });
  }
  for (auto& th : threads) th.join();
  std::istringstream in(os.str());
  std::string line;
  int lines = 0;
  while (std::getline(in, line)) {
    ++lines;
    ASSERT_EQ(line.size(), 25u) << line;
    EXPECT_EQ(line.find_first_not_of(line[1], 1), 21u) << line;
  }
  EXPECT_EQ(lines, 8000);
}

}  // namespace
}  // namespace gale
