#include "gale/core/window.h"

#include <gtest/gtest.h>

#include <random>

#include "gale/core/state_codec.h"
#include "gale/core/testing.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using testing::RecordingEmitter;
using testing::row;
using testing::sec;
using testing::tup;

TEST(WindowOperator, TumblingWindowFiresWhenTheWatermarkPassesItsEndWithOutOfOrderInput) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(7)), out);
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(12)), out);
  op->onTuple(tup("a", sec(3)), out);  // out of order, same window
  op->onWatermark(Timestamp{sec(10).micros - 2}, out);
  EXPECT_TRUE(out.rows.empty()) << "window [0,10) is not complete before the watermark reaches 10s-1us";
  op->onWatermark(Timestamp{sec(10).micros - 1}, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 3)}));
  out.clear();
  op->onWatermark(sec(25), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("b", 10, 20, 1)}));
}

TEST(WindowOperator, WindowsAreHalfOpenAndAlignedToTheEpochWithAnOptionalOffset) {
  auto op = windowed(Tumbling(10s), Count{}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("x", Timestamp{sec(10).micros - 1}), out);
  op->onTuple(tup("x", sec(10)), out);
  op->onTuple(tup("x", sec(-1)), out);  // before the epoch: window [-10s, 0)
  op->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(),
            (std::vector<Values>{{sec(-10), sec(0), int64_t{1}},
                                 {sec(0), sec(10), int64_t{1}},
                                 {sec(10), sec(20), int64_t{1}}}));

  auto shifted = windowed(Tumbling(10s, 3s), Count{}).eventTime("ts").build();
  out.clear();
  shifted->onTuple(tup("x", sec(2)), out);
  shifted->onTuple(tup("x", sec(3)), out);
  shifted->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{sec(-7), sec(3), int64_t{1}},
                                                   {sec(3), sec(13), int64_t{1}}}));
}

TEST(WindowOperator, SlidingWindowsCountATupleInEveryWindowThatOverlapsIt) {
  auto op = windowed(Sliding(10s, 5s), Count{}, Sum{"v"}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(6), 2), out);
  op->onTuple(tup("a", sec(12), 3), out);
  op->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(),
            (std::vector<Values>{{"a", sec(0), sec(10), int64_t{1}, int64_t{2}},
                                 {"a", sec(5), sec(15), int64_t{2}, int64_t{5}},
                                 {"a", sec(10), sec(20), int64_t{1}, int64_t{3}}}));
}

TEST(WindowOperator, LateTupleBeyondLatenessGoesToTheLateStreamWithAReasonAndIsCounted) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .allowedLateness(2s).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onWatermark(sec(12), out);  // [0,10) max time 10s-1us + 2s lateness <= 12s: final
  out.clear();
  op->onTuple(tup("a", sec(5), 42), out);
  ASSERT_EQ(out.on("late").size(), 1u);
  EXPECT_TRUE(out.main().empty());
  const Values late = out.on("late")[0];
  EXPECT_NE(std::get<std::string>(late[0]).find("allowed lateness"), std::string::npos);
  EXPECT_EQ(std::get<Timestamp>(late[1]), sec(5));
  EXPECT_EQ(std::get<Timestamp>(late[2]), sec(12));
  EXPECT_EQ(decodeValues(std::get<Bytes>(late[3]).data), (Values{"a", sec(5), int64_t{42}}));
  EXPECT_EQ(op->lateCount(), 1u);
  OutputFieldsDeclarer d;
  op->declareOutputFields(d);
  ASSERT_NE(d.find("late"), nullptr);
  EXPECT_EQ(d.find("late")->size(), 4u);
}

TEST(WindowOperator, LateTupleWithinLatenessUpdatesAndRefiresTheWindowInUpdateMode) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .allowedLateness(5s).outputMode(OutputMode::Update).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(2)), out);
  op->onWatermark(sec(11), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 0, 10, 1)}));
  out.clear();
  op->onTuple(tup("a", sec(4)), out);  // late by 7 s, within 5 s after the window's end
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 2)}))
      << "only the changed row re-fires, at once";
  out.clear();
  op->onWatermark(sec(16), out);  // window final: nothing changed since, nothing to emit
  EXPECT_TRUE(out.main().empty());
  EXPECT_EQ(op->stateSize(), 0u) << "the window is evicted once it can no longer change";
  op->onTuple(tup("a", sec(4)), out);
  EXPECT_EQ(out.on("late").size(), 1u);
}

TEST(WindowOperator, AppendEmitsEachWindowOnceWhenTheWatermarkPassesEndPlusLateness) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .allowedLateness(5s).outputMode(OutputMode::Append).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onWatermark(sec(11), out);
  EXPECT_TRUE(out.rows.empty()) << "append waits until the window is final";
  op->onTuple(tup("a", sec(2)), out);  // within lateness: counted, not emitted yet
  EXPECT_TRUE(out.rows.empty());
  op->onWatermark(Timestamp{sec(15).micros - 1}, out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 2)}));
  out.clear();
  op->onWatermark(sec(40), out);
  EXPECT_TRUE(out.rows.empty()) << "never twice";
}

TEST(WindowOperator, UpdateEmitsOnlyRowsThatChangedSinceTheLastFiring) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::processingTime(1s)).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(1)), out);
  op->onProcessingTime(sec(1000), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 0, 10, 1)}));
  out.clear();
  op->onTuple(tup("a", sec(2)), out);
  op->onProcessingTime(Timestamp{sec(1000).micros + 500000}, out);
  EXPECT_TRUE(out.rows.empty()) << "the interval has not passed";
  op->onProcessingTime(sec(1001), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 2)}));
  out.clear();
  op->onWatermark(sec(10), out);
  EXPECT_TRUE(out.main().empty()) << "both rows were already emitted with their final values";
}

TEST(WindowOperator, CompleteEmitsTheWholeTableAtEveryFiringAndKeepsFinishedRows) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .outputMode(OutputMode::Complete).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(11)), out);
  op->onWatermark(sec(10), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1)}));
  out.clear();
  op->onWatermark(sec(20), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 10, 20, 1)}));
  out.clear();
  op->onWatermark(sec(21), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 10, 20, 1)}));
  EXPECT_EQ(op->stateSize(), 2u) << "only the two result rows remain";
}

TEST(WindowOperator, SessionsSplitOnTheGapAndMergeWhenATupleBridgesTwo) {
  auto op = windowed(Session(5s), Count{}, Sum{"v"}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(0), 1), out);
  op->onTuple(tup("a", sec(3), 2), out);   // [0, 8)
  op->onTuple(tup("a", sec(12), 4), out);  // [12, 17): 12 >= 8, a separate session
  op->onTuple(tup("b", sec(4), 8), out);
  EXPECT_EQ(op->stateSize(), 3u);
  op->onTuple(tup("a", Timestamp{7500000}, 16), out);  // [7.5,12.5) overlaps both: [0, 17)
  EXPECT_EQ(op->stateSize(), 2u);
  op->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(),
            (std::vector<Values>{{"a", sec(0), sec(17), int64_t{4}, int64_t{23}},
                                 {"b", sec(4), sec(9), int64_t{1}, int64_t{8}}}));
  EXPECT_EQ(op->stateSize(), 0u);
}

TEST(WindowOperator, SessionsWhoseGapBoundariesTouchMergeAsInSparkAndFlink) {
  // Spark merges when sessionStart <= currentEnd, Flink when TimeWindow.intersects (start <=
  // other.end): [0, 5) and [5, 10) are one session.
  auto op = windowed(Session(5s), Count{}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(0)), out);   // [0, 5)
  op->onTuple(tup("a", sec(10)), out);  // [10, 15)
  op->onTuple(tup("a", sec(5)), out);   // [5, 10) touches both: [0, 15)
  op->onTuple(tup("b", sec(20)), out);  // [20, 25)
  op->onTuple(tup("b", sec(15)), out);  // [15, 20) touches it from below: [15, 25)
  EXPECT_EQ(op->stateSize(), 2u);
  op->onWatermark(sec(100), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", sec(0), sec(15), int64_t{3}},
                                                   {"b", sec(15), sec(25), int64_t{2}}}));
}

TEST(WindowOperator, ALateTupleThatBridgesIntoALiveSessionIsNotLate) {
  auto op = windowed(Session(10s), Count{}).eventTime("ts").build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(30)), out);  // [30, 40)
  op->onWatermark(sec(25), out);
  op->onTuple(tup("a", sec(22)), out);  // [22, 32) alone would be complete; merged [22, 40) is not
  EXPECT_TRUE(out.on("late").empty());
  op->onTuple(tup("a", sec(5)), out);  // [5, 15): complete, and touches nothing live
  EXPECT_EQ(out.on("late").size(), 1u);
  op->onWatermark(sec(50), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{sec(22), sec(40), int64_t{2}}}));
}

TEST(WindowOperator, CountWindowsFireEveryNTuplesPerKey) {
  auto tumbling = windowed(CountTumbling(3), Sum{"v"}).keyBy({"word"}).build();
  RecordingEmitter out;
  for (int i = 1; i <= 7; ++i) tumbling->onTuple(tup("a", sec(0), i), out);
  tumbling->onTuple(tup("b", sec(0), 100), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{"a", int64_t{0}, int64_t{3}, int64_t{6}},
                                             {"a", int64_t{3}, int64_t{6}, int64_t{15}}}));
  out.clear();
  tumbling->onEndOfInput(out);  // partial windows are flushed, nothing is lost
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", int64_t{6}, int64_t{7}, int64_t{7}},
                                                   {"b", int64_t{0}, int64_t{1}, int64_t{100}}}));

  auto sliding = windowed(CountSliding(4, 2), Sum{"v"}).build();
  out.clear();
  for (int i = 1; i <= 8; ++i) sliding->onTuple(tup("a", sec(0), i), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{int64_t{0}, int64_t{2}, int64_t{3}},
                                             {int64_t{0}, int64_t{4}, int64_t{10}},
                                             {int64_t{2}, int64_t{6}, int64_t{18}},
                                             {int64_t{4}, int64_t{8}, int64_t{26}}}));
}

TEST(WindowOperator, CountTriggerFiresEarlyAfterEveryNTuples) {
  auto op = windowed(Tumbling(10s), Count{}).eventTime("ts").trigger(Trigger::count(2)).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  EXPECT_TRUE(out.rows.empty());
  op->onTuple(tup("a", sec(2)), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{sec(0), sec(10), int64_t{2}}}));
}

TEST(WindowOperator, GlobalWindowFiresOnItsTriggerAndAtTheEndOfInput) {
  auto op = windowed(GlobalWindow(), Count{}).keyBy({"word"})
                .trigger(Trigger::processingTime(0s)).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onWatermark(sec(1000), out);
  EXPECT_TRUE(out.rows.empty());
  op->onProcessingTime(sec(1), out);
  ASSERT_EQ(out.main().size(), 1u);
  EXPECT_EQ(out.main()[0][3], Value{int64_t{1}});
  out.clear();
  op->onTuple(tup("a", sec(2)), out);
  op->onEndOfInput(out);
  ASSERT_EQ(out.main().size(), 1u);
  EXPECT_EQ(out.main()[0][3], Value{int64_t{2}});
  EXPECT_EQ(op->stateSize(), 0u);
}

TEST(WindowOperator, AStaleWatermarkChangesNothing) {
  auto op = windowed(Tumbling(10s), Count{}).eventTime("ts").build();
  RecordingEmitter out;
  op->onWatermark(sec(30), out);
  op->onWatermark(sec(5), out);
  EXPECT_EQ(op->watermark(), sec(30));
  op->onTuple(tup("a", sec(31)), out);
  op->onTuple(tup("a", sec(3)), out);
  EXPECT_EQ(out.on("late").size(), 1u);
}

void expectRejected(const WindowBuilder& b, const std::string& needle) {
  try {
    b.build();
    ADD_FAILURE() << "expected a rejection mentioning '" << needle << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(WindowOperator, NonsenseConfigurationsAreRejectedWithAClearMessage) {
  expectRejected(windowed(Session(0s), Count{}).eventTime("ts"), "gap must be > 0");
  expectRejected(windowed(Tumbling(0s), Count{}).eventTime("ts"), "size must be > 0");
  expectRejected(windowed(Sliding(5s, 10s), Count{}).eventTime("ts"), "slide > size");
  expectRejected(windowed(Tumbling(10s), Count{}), "needs an event time");
  expectRejected(windowed(CountTumbling(10), Count{}).allowedLateness(1s), "allowedLateness");
  expectRejected(windowed(CountTumbling(0), Count{}), "counts must be > 0");
  expectRejected(windowed(CountTumbling(5), Count{}).outputMode(OutputMode::Append), "append");
  expectRejected(windowed(GlobalWindow(), Count{}).outputMode(OutputMode::Append), "append");
  expectRejected(windowed(Tumbling(10s), Count{}).eventTime("ts").outputMode(OutputMode::Append)
                     .trigger(Trigger::processingTime(1s)),
                 "append");
  expectRejected(windowed(Tumbling(10s), Count{}).eventTime("ts").allowedLateness(-1s), ">= 0");
  expectRejected(windowed(Tumbling(10s), Count{}, Count{}).eventTime("ts"), "appears twice");
  expectRejected(windowed(Tumbling(10s), Count{}, Count{}.as("n")).eventTime("ts").lateStream("default"),
                 "late stream");
  expectRejected(WindowBuilder(Tumbling(10s), {}).eventTime("ts"), "no aggregate");
  expectRejected(windowed(Tumbling(10s), Count{}).eventTime("ts").trigger(Trigger::count(0)), "n > 0");
}

TEST(WindowOperator, AMissingFieldIsAClearErrorNamingIt) {
  auto op = windowed(Tumbling(10s), Sum{"price"}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  try {
    op->onTuple(tup("a", sec(1)), out);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'price'"), std::string::npos) << e.what();
  }
  auto noTs = windowed(Tumbling(10s), Count{}).eventTime("when").build();
  EXPECT_THROW(noTs->onTuple(tup("a", sec(1)), out), std::out_of_range);
}

// The event-time field's position is resolved once per input schema (not by name per tuple):
// two streams that carry it at other positions, interleaved, each still find it, and a value
// of another type or a stream without the field is still refused naming it.
TEST(WindowOperator, TheEventTimeFieldIsFoundAgainForEachInputSchema) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts").build();
  const SchemaPtr other = makeSchema("other", kDefaultStream, Fields{"ts", "pad", "word"});
  const SchemaPtr micros = makeSchema("micros", kDefaultStream, Fields{"word", "pad", "ts"});
  RecordingEmitter out;
  for (int i = 0; i < 3; ++i) {
    op->onTuple(tup("a", sec(1 + i)), out);                                   // ts at #1
    op->onTuple(Tuple(other, Values{sec(11 + i), int64_t{0}, "a"}), out);     // ts at #0
    op->onTuple(Tuple(micros, Values{"a", sec(100), sec(21 + i).micros}), out);  // int64 µs at #2
  }
  op->onWatermark(sec(40), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 3), row("a", 10, 20, 3),
                                                    row("a", 20, 30, 3)}));
  try {
    op->onTuple(Tuple(other, Values{std::string("soon"), int64_t{0}, "a"}), out);
    FAIL() << "a string event time was taken";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'ts'"), std::string::npos) << e.what();
  }
  const SchemaPtr none = makeSchema("none", kDefaultStream, Fields{"word", "when"});
  EXPECT_THROW(op->onTuple(Tuple(none, Values{"a", sec(1)}), out), std::out_of_range);
}

// A tuple whose stream lacks a field the window needs is refused (the executor fails it and goes
// on). The next tuple of the stream before is still read by that stream's positions, not by the
// ones half resolved for the refused tuple.
TEST(WindowOperator, ATupleRefusedForAMissingFieldLeavesTheOtherStreamsTuplesReadRight) {
  auto op = windowed(Tumbling(10s), Sum{"v"}).keyBy({"word"}).eventTime("ts").build();
  const SchemaPtr noV = makeSchema("noV", kDefaultStream, Fields{"ts", "word"});
  const SchemaPtr noWord = makeSchema("noWord", kDefaultStream, Fields{"ts", "v"});
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1), 2), out);
  EXPECT_THROW(op->onTuple(Tuple(noV, Values{sec(2), "a"}), out), std::invalid_argument);
  op->onTuple(tup("a", sec(3), 5), out);
  EXPECT_THROW(op->onTuple(Tuple(noWord, Values{sec(4), int64_t{1}}), out),
               std::invalid_argument);
  op->onTuple(tup("b", sec(5), 7), out);
  op->onWatermark(sec(20), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 7), row("b", 0, 10, 7)}));
}

TEST(WindowOperator, EventTimeCanComeFromAnExtractorFunction) {
  auto op = windowed(Tumbling(10s), Count{})
                .eventTime([](const Tuple& t) { return Timestamp{t.getInt("v") * 1000000}; })
                .build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(0), 15), out);
  op->onWatermark(sec(30), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{sec(10), sec(20), int64_t{1}}}));
}

TEST(WindowOperator, StateStaysBoundedOverALongStreamWithAWatermark) {
  auto op = windowed(Sliding(10s, 1s), Sum{"v"}).keyBy({"word"}).eventTime("ts")
                .allowedLateness(2s).build();
  RecordingEmitter out;
  size_t peak = 0;
  for (int64_t s = 0; s < 2000; ++s) {
    for (int k = 0; k < 20; ++k)
      op->onTuple(tup("k" + std::to_string((s * 7 + k) % 50), sec(s)), out);
    op->onWatermark(sec(s - 1), out);
    if (s > 100) peak = std::max(peak, op->stateSize());
    out.clear();
  }
  // 20 keys per second, 10 s windows + 2 s lateness + 1 s disorder: about 14 panes of <= 20 keys.
  EXPECT_LE(peak, 15u * 20u);
  EXPECT_GT(peak, 10u * 20u);
}

TEST(WindowOperator, KeyChurnDoesNotGrowTheInternedKeysWithoutBound) {
  auto op = windowed(Sliding(4s, 1s), Count{}).keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  size_t peak = 0;
  for (int64_t s = 0; s < 400; ++s) {
    // 500 new keys every second: 200 K distinct keys over the run, about 2 500 live at a time.
    for (int k = 0; k < 500; ++k) op->onTuple(tup("k" + std::to_string(s * 500 + k), sec(s)), out);
    op->onWatermark(sec(s), out);
    peak = std::max(peak, op->internedKeys());
    out.clear();
  }
  EXPECT_LT(peak, 20000u);
  op->onEndOfInput(out);
  EXPECT_EQ(op->stateSize(), 0u);
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

std::unique_ptr<WindowOperator> filledSlidingOperator() {
  auto op = windowed(Sliding(10s, 5s), Count{}, DistinctCount{"v"}, Max{"word"})
                .keyBy({"word"}).eventTime("ts").build();
  RecordingEmitter out;
  for (int i = 0; i < 30; ++i) op->onTuple(tup(i % 2 ? "odd" : "even", sec(i), i % 4), out);
  op->onWatermark(sec(12), out);
  return op;
}

TEST(WindowSnapshot, EveryTruncationOfASnapshotIsAClearErrorAndLeavesTheStateUntouched) {
  auto op = filledSlidingOperator();
  const std::string snap = op->snapshot();
  auto target = op->clone();
  target->restore(snap);
  const size_t before = target->stateSize();
  EXPECT_EQ(before, op->stateSize());
  for (size_t n = 0; n < snap.size(); ++n) {
    try {
      target->restore(std::string_view(snap).substr(0, n));
      ADD_FAILURE() << "a snapshot truncated to " << n << " bytes was accepted";
    } catch (const SnapshotError& e) {
      EXPECT_NE(std::string(e.what()).find("window operator snapshot is corrupt"), std::string::npos);
    }
    ASSERT_EQ(target->stateSize(), before);
  }
  EXPECT_THROW(target->restore(snap + "x"), SnapshotError) << "trailing bytes";
  RecordingEmitter a, b;
  op->onEndOfInput(a);
  target->onEndOfInput(b);
  EXPECT_EQ(a.sortedMain(), b.sortedMain());
  EXPECT_EQ(a.main().size(), 10u) << "windows starting at 5, 10, 15, 20, 25 for two keys";
}

TEST(WindowSnapshot, FlippedBytesNeverCrashAndASnapshotOfAnotherOperatorIsRejected) {
  auto op = filledSlidingOperator();
  const std::string snap = op->snapshot();
  std::mt19937_64 rng(11);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string bad = snap;
    bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
    auto target = op->clone();
    try {
      target->restore(bad);
    } catch (const SnapshotError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  auto session = windowed(Session(5s), Count{}, DistinctCount{"v"}, Max{"word"})
                     .keyBy({"word"}).eventTime("ts").build();
  try {
    session->restore(snap);
    FAIL();
  } catch (const SnapshotError& e) {
    EXPECT_NE(std::string(e.what()).find("another kind of window"), std::string::npos) << e.what();
  }
  EXPECT_THROW(op->clone()->restore("garbage!"), SnapshotError);
}

// A finished row starts with its key, and a key-group split reads the key there: a damaged
// snapshot whose row is shorter than the key is refused, not read past its end.
TEST(WindowSnapshot, AFinishedRowShorterThanItsKeyIsRefused) {
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .outputMode(OutputMode::Complete).build();
  // An empty operator's snapshot ends with four empty counts: finished rows, sessions, count
  // keys, counted windows. Put one finished row in it.
  const std::string empty = op->snapshot();
  ASSERT_EQ(empty.substr(empty.size() - 4), std::string(4, '\0'));
  auto withRow = [&](const Values& row) {
    StateWriter w;
    w.varint(1);
    w.values(row);
    return empty.substr(0, empty.size() - 4) + w.bytes() + std::string(3, '\0');
  };
  EXPECT_NO_THROW(op->clone()->restore(withRow(row("a", 0, 10, 1)))) << "the construction is valid";
  try {
    op->clone()->restore(withRow(Values{}));
    FAIL() << "a finished row without its key was accepted";
  } catch (const SnapshotError& e) {
    EXPECT_NE(std::string(e.what()).find("shorter than its key"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

// The worked example of docs/semantics.md, section 5, for the three output modes.
TEST(WindowOperator, CompleteModeKeepsEveryGroupAndNeverDropsALateRowAsSparkDoes) {
  // The worked example's input in complete mode (which takes no allowed lateness).
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .outputMode(OutputMode::Complete).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(2)), out);
  op->onWatermark(sec(11), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 0, 10, 1)}));
  out.clear();
  op->onTuple(tup("a", sec(4)), out);
  op->onWatermark(sec(16), out);
  op->onTuple(tup("a", sec(4)), out);  // far behind the watermark: still counted
  EXPECT_TRUE(out.on("late").empty());
  out.clear();
  op->onWatermark(sec(30), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 3), row("b", 0, 10, 1)}));
  EXPECT_EQ(static_cast<WindowOperator&>(*op).lateCount(), 0u);
  EXPECT_THROW(windowed(Tumbling(10s), Count{}).eventTime("ts").allowedLateness(5s)
                   .outputMode(OutputMode::Complete).build(),
               std::invalid_argument);
}

TEST(WindowOperator, CompleteModeWritesTheTableOncePerMicroBatchHoweverManyFiringsItHad) {
  // A batch whose end both moves the watermark (firing windows) and fires the processing-time
  // trigger: Spark writes the complete table once; so does gale, with every group.
  auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::processingTime(1s)).outputMode(OutputMode::Complete).build();
  RecordingEmitter out;
  op->onBatchBegin(1);
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(12)), out);
  op->onWatermark(sec(11), out);        // [0, 10) complete
  op->onProcessingTime(sec(1000), out);  // trigger fires too
  EXPECT_TRUE(out.rows.empty()) << "nothing before the batch end";
  op->onBatchEnd(1, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 10, 1), row("b", 10, 20, 1)}));
  out.clear();
  op->onBatchBegin(2);
  op->onBatchEnd(2, out);  // a batch with nothing for this task still writes the table
  EXPECT_EQ(out.main().size(), 2u);
}

TEST(WindowOperator, APurgingTriggerMakesALateFiringCarryOnlyTheLateElementsAsFlinks) {
  auto build = [](Trigger t) {
    return windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts").allowedLateness(5s)
        .trigger(t).build();
  };
  for (bool purge : {false, true}) {
    auto op = build(purge ? Trigger::eventTime().purging() : Trigger::eventTime());
    RecordingEmitter out;
    op->onTuple(tup("a", sec(1)), out);
    op->onTuple(tup("a", sec(2)), out);
    op->onWatermark(sec(10), out);
    EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 2)}));
    out.clear();
    op->onTuple(tup("a", sec(3)), out);  // late, within the allowed lateness: a late firing
    EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, purge ? 1 : 3)}));
  }
}

TEST(WindowOperator, AGlobalWindowWithAPurgingCountTriggerEmitsEachGroupOfNOnce) {
  // Flink's GlobalWindows + PurgingTrigger.of(CountTrigger.of(3)): a sum per 3 tuples.
  auto op = windowed(GlobalWindow(), Sum{"v"}).trigger(Trigger::count(3).purging()).build();
  RecordingEmitter out;
  for (int64_t v = 1; v <= 7; ++v) op->onTuple(tup("a", sec(v), v), out);
  std::vector<int64_t> sums;
  for (const auto& r : out.main()) sums.push_back(std::get<int64_t>(r.back()));
  EXPECT_EQ(sums, (std::vector<int64_t>{6, 15}));  // 1+2+3, 4+5+6; 7 waits
}

TEST(WindowOperator, APurgingTriggerIsRejectedWhereItHasNoMeaning) {
  expectRejected(windowed(Sliding(10s, 5s), Count{}).eventTime("ts").trigger(Trigger::count(2).purging()),
                 "own their elements");
  expectRejected(windowed(Tumbling(10s), Count{}).eventTime("ts").outputMode(OutputMode::Append)
                     .trigger(Trigger::eventTime().purging()),
                 "OutputMode::Update");
}

TEST(WindowOperator, ProcessingTimeWindowsTakeTheArrivalTimeAndFireWhenTheClockPassesTheirEnd) {
  ManualClock clock(sec(100));
  OperatorHarness h(*windowed(Tumbling(10s), Count{}).keyBy({"word"}).processingTime()
                         .outputMode(OutputMode::Append).build(),
                    0, 1, &clock);
  h.input("words", Fields{{"word", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}});
  h.process({"a", sec(1), int64_t{1}});  // its event time is ignored: it arrived at 100 s
  clock.advance(5s);
  h.process({"a", sec(999), int64_t{1}});
  h.watermark(sec(1000));  // watermarks do not move processing-time windows
  EXPECT_TRUE(h.output().empty());
  clock.advance(5s);
  h.process({"b", sec(2), int64_t{1}});  // arrives at 110 s: the next window
  h.processingTime(clock.now());
  EXPECT_EQ(h.take(), (std::vector<Values>{row("a", 100, 110, 2)}));
  h.endOfInput();
  EXPECT_EQ(h.take(), (std::vector<Values>{row("b", 110, 120, 1)}));
  expectRejected(windowed(Tumbling(10s), Count{}).eventTime("ts").processingTime(), "not both");
}

TEST(WindowOperator, TheWorkedExampleOfTheSemanticsDocHoldsForEveryOutputMode) {
  using Rows = std::vector<Values>;
  const Rows a1b1{row("a", 0, 10, 1), row("b", 0, 10, 1)};
  const Rows a2b1{row("a", 0, 10, 2), row("b", 0, 10, 1)};
  struct Expect {
    OutputMode mode;
    Rows wm11, lateWithin, wm16;
  };
  for (const Expect& e : {Expect{OutputMode::Update, a1b1, {row("a", 0, 10, 2)}, {}},
                          Expect{OutputMode::Append, {}, {}, a2b1}}) {
    auto op = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                  .allowedLateness(5s).outputMode(e.mode).build();
    RecordingEmitter out;
    op->onTuple(tup("a", sec(1)), out);
    op->onTuple(tup("b", sec(2)), out);
    op->onWatermark(sec(11), out);
    EXPECT_EQ(out.sortedMain(), e.wm11) << outputModeName(e.mode);
    out.clear();
    op->onTuple(tup("a", sec(4)), out);
    EXPECT_EQ(out.sortedMain(), e.lateWithin) << outputModeName(e.mode);
    out.clear();
    op->onWatermark(sec(16), out);
    EXPECT_EQ(out.sortedMain(), e.wm16) << outputModeName(e.mode);
    out.clear();
    op->onTuple(tup("a", sec(4)), out);
    EXPECT_TRUE(out.main().empty());
    EXPECT_EQ(out.on("late").size(), 1u) << outputModeName(e.mode);
  }
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

// The same operator fed the continuous way (a watermark after every tuple, from a
// BoundedOutOfOrderness generator) and the micro-batch way (batches of tuples, then at the batch
// end the watermark computed from the max event time seen through the previous batch) emits
// the same final rows in append mode: the modes differ only in when windows fire.
TEST(WindowOperator, ContinuousAndMicroBatchFeedingGiveTheSameAppendRows) {
  std::mt19937_64 rng(17);
  for (int round = 0; round < 20; ++round) {
    std::vector<std::pair<std::string, int64_t>> in;  // (key, event time ms)
    for (int i = 0; i < 400; ++i)
      in.emplace_back(std::string(1, static_cast<char>('a' + rng() % 4)),
                      i * 10 + static_cast<int64_t>(rng() % 300));  // disorder < 300 ms
    for (WindowKind w : {Tumbling(1s), Sliding(1s, 250ms), Session(150ms)}) {
      auto cont = windowed(w, Count{}, Sum{"v"}).keyBy({"word"}).eventTime("ts")
                      .outputMode(OutputMode::Append).build();
      auto batch = cont->clone();
      RecordingEmitter a, b;
      BoundedOutOfOrderness gen(300ms);
      for (const auto& [k, t] : in) {
        cont->onTuple(tup(k, Timestamp{t * 1000}), a);
        if (gen.observe(Timestamp{t * 1000})) cont->onWatermark(gen.current(), a);
      }
      cont->onEndOfInput(a);
      BoundedOutOfOrderness bgen(300ms);
      Timestamp nextBatchWatermark = kNoWatermark;
      for (size_t i = 0; i < in.size(); i += 50) {
        for (size_t j = i; j < std::min(in.size(), i + 50); ++j) {
          batch->onTuple(tup(in[j].first, Timestamp{in[j].second * 1000}), b);
          bgen.observe(Timestamp{in[j].second * 1000});
        }
        batch->onWatermark(nextBatchWatermark, b);  // computed through the previous batch
        batch->onProcessingTime(Timestamp{static_cast<int64_t>(i)}, b);
        nextBatchWatermark = bgen.current();
      }
      batch->onEndOfInput(b);
      ASSERT_EQ(static_cast<WindowOperator&>(*cont).lateCount(), 0u);
      ASSERT_EQ(static_cast<WindowOperator&>(*batch).lateCount(), 0u);
      ASSERT_FALSE(a.main().empty());
      ASSERT_EQ(a.sortedMain(), b.sortedMain()) << w.describe() << " round " << round;
    }
  }
}

}  // namespace
}  // namespace gale
