// Trigger::countPerKey: Flink's CountTrigger on a keyed window, transcribed from Flink's own
// examples and CountTrigger tests (per key and window counts, merged session counts, countWindow
// as GlobalWindows + PurgingTrigger.of(CountTrigger.of(n))), its snapshot versions, and the
// same rows in continuous and micro-batch feeding. The randomized oracle (window_oracle_test)
// covers it too, with snapshot/restore at random points.
#include <gtest/gtest.h>

#include <random>

#include "gale/core/state_codec.h"
#include "gale/core/window.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using testing::RecordingEmitter;
using testing::row;
using testing::sec;
using testing::tup;

// Flink's CountTriggerTest.testWindowSeparationAndFiring: each window counts on its own, and a
// firing resets only its own count.
TEST(CountPerKeyTrigger, EachKeyAndWindowCountsOnItsOwnAndFiresOnlyItsRowAsFlinksCountTrigger) {
  auto op = windowed(Tumbling(2s), Count{}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::countPerKey(3)).build();
  RecordingEmitter out;
  for (auto [w, t] : {std::pair{"a", 0}, {"a", 2}, {"a", 1}, {"a", 3}, {"b", 0}, {"b", 1}})
    op->onTuple(tup(w, sec(t)), out);
  EXPECT_TRUE(out.main().empty());  // a has 2 in [0,2) and 2 in [2,4); b has 2 in [0,2)
  op->onTuple(tup("a", sec(1)), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 2, 3)}));  // b's row does not fire
  out.clear();
  op->onTuple(tup("a", sec(2)), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 2, 4, 3)}));
  out.clear();
  op->onTuple(tup("a", sec(0)), out);  // [0,2) counts again from zero
  op->onTuple(tup("b", sec(0)), out);  // b's third in [0,2)
  EXPECT_EQ(out.main(), (std::vector<Values>{row("b", 0, 2, 3)}));
  out.clear();
  // The watermark still ends the windows, with the rows that changed since their count firing.
  op->onWatermark(sec(5), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{row("a", 0, 2, 4)}));
}

// Flink's documented countWindow(n) is GlobalWindows + PurgingTrigger.of(CountTrigger.of(n)):
// keyBy(e -> e).countWindow(2).sum over 1,1,3,3,4,4,5,5,6,6,7,7 prints 2,6,8,10,12,14 — the
// same sums as gale's CountTumbling(2).
TEST(CountPerKeyTrigger, AGlobalWindowWithAPurgingCountPerKeyIsFlinksCountWindow) {
  auto flink = windowed(GlobalWindow(), Sum{"v"}).keyBy({"word"})
                   .trigger(Trigger::countPerKey(2).purging()).build();
  auto storm = windowed(CountTumbling(2), Sum{"v"}).keyBy({"word"}).build();
  RecordingEmitter a, b;
  for (int64_t v : {1, 1, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 9}) {
    flink->onTuple(tup(std::to_string(v), sec(0), v), a);
    storm->onTuple(tup(std::to_string(v), sec(0), v), b);
  }
  std::vector<int64_t> sums, stormSums;
  for (const auto& r : a.main()) sums.push_back(std::get<int64_t>(r.back()));
  for (const auto& r : b.main()) stormSums.push_back(std::get<int64_t>(r.back()));
  EXPECT_EQ(sums, (std::vector<int64_t>{2, 6, 8, 10, 12, 14}));
  EXPECT_EQ(sums, stormSums);
  a.clear();
  flink->onEndOfInput(a);  // the lone 9 is emitted at the end of input, as CountTumbling's
  ASSERT_EQ(a.main().size(), 1u);
  EXPECT_EQ(a.main()[0].back(), Value{int64_t{9}});
}

// Flink's CountTrigger.onMerge: merged session windows add their counts.
TEST(CountPerKeyTrigger, SessionsThatMergeAddTheirCounts) {
  auto op = windowed(Session(5s), Count{}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::countPerKey(4)).build();
  RecordingEmitter out;
  for (int t : {0, 1, 10, 11}) op->onTuple(tup("a", sec(t)), out);  // [0,6) 2 and [10,16) 2
  EXPECT_TRUE(out.main().empty());
  op->onTuple(tup("a", sec(5)), out);  // [5,10) touches both: one session with 2 + 2 + 1
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 16, 5)}));
  out.clear();
  for (int t : {12, 13, 14}) op->onTuple(tup("a", sec(t)), out);
  EXPECT_TRUE(out.main().empty());
  op->onTuple(tup("a", sec(15)), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 20, 9)}));
}

TEST(CountPerKeyTrigger, ASlidingWindowCountsEveryElementItHolds) {
  auto op = windowed(Sliding(4s, 2s), Count{}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::countPerKey(2)).build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);  // in [-2,2) and [0,4)
  op->onTuple(tup("a", sec(3)), out);  // in [0,4) and [2,6): [0,4) has 2
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 4, 2)}));
  out.clear();
  op->onTuple(tup("a", sec(0)), out);  // [-2,2) reaches 2; [0,4) is at 1 again
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", -2, 2, 2)}));
}

TEST(CountPerKeyTrigger, APurgingCountPerKeyMakesEachFiringCarryOnlyItsOwnElements) {
  auto op = windowed(Tumbling(10s), Count{}, Sum{"v"}).keyBy({"word"}).eventTime("ts")
                .trigger(Trigger::countPerKey(2).purging()).build();
  RecordingEmitter out;
  for (int64_t v = 1; v <= 5; ++v) op->onTuple(tup("a", sec(v), v), out);
  op->onTuple(tup("b", sec(1), 100), out);
  op->onWatermark(sec(10), out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{Values{"a", sec(0), sec(10), 1, 5},
                                                   Values{"a", sec(0), sec(10), 2, 3},
                                                   Values{"a", sec(0), sec(10), 2, 7},
                                                   Values{"b", sec(0), sec(10), 1, 100}}));
}

TEST(CountPerKeyTrigger, IsRejectedWhereItHasNoMeaning) {
  auto rejected = [](const WindowBuilder& b, const std::string& needle) {
    try {
      b.build();
      ADD_FAILURE() << "accepted; expected an error with '" << needle << "'";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  rejected(windowed(Tumbling(10s), Count{}).eventTime("ts").trigger(Trigger::countPerKey(0)),
           "countPerKey(n) needs n > 0");
  rejected(windowed(Tumbling(10s), Count{}).eventTime("ts").outputMode(OutputMode::Complete)
               .trigger(Trigger::countPerKey(2)),
           "complete mode");
  rejected(windowed(Tumbling(10s), Count{}).eventTime("ts").outputMode(OutputMode::Append)
               .trigger(Trigger::countPerKey(2)),
           "append mode");
  rejected(windowed(Sliding(10s, 5s), Count{}).eventTime("ts")
               .trigger(Trigger::countPerKey(2).purging()),
           "own their elements");
  rejected(windowed(CountTumbling(3), Count{}).trigger(Trigger::countPerKey(2)),
           "remove the trigger");
}

TEST(CountPerKeyTrigger, CountsSurviveASnapshotAndAVersion1SnapshotRestoresWithZeroCounts) {
  auto build = [] {
    return windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
        .trigger(Trigger::countPerKey(2)).build();
  };
  auto op = build();
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  auto restored = build();
  restored->restore(op->snapshot());
  restored->onTuple(tup("a", sec(2)), out);  // the count of 1 came through the snapshot
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 2)}));
  out.clear();

  // A version 1 snapshot (before per-key counts) is the same bytes without the trailing count
  // section; it restores with every count at zero.
  auto plain = windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts").build();
  plain->onTuple(tup("a", sec(1)), out);
  std::string v1 = plain->snapshot();
  ASSERT_EQ(v1[4], 2);
  ASSERT_EQ(v1.back(), 0);  // no counted windows
  v1[4] = 1;
  v1.pop_back();
  auto upgraded = build();
  upgraded->restore(v1);
  upgraded->onTuple(tup("a", sec(2)), out);
  EXPECT_TRUE(out.main().empty()) << "counting starts at the restore";
  upgraded->onTuple(tup("a", sec(3)), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{row("a", 0, 10, 3)}));

  std::string future = op->snapshot();
  future[4] = 3;
  try {
    build()->restore(future);
    ADD_FAILURE() << "a snapshot from a newer version was accepted";
  } catch (const SnapshotError& e) {
    EXPECT_NE(std::string(e.what()).find("version 3, expected 1 to 2"), std::string::npos)
        << e.what();
  }
}

// Fed the continuous way (a watermark after every tuple) and the micro-batch way (the watermark
// at batch ends), with disorder below the watermark delay (nothing late), the per-key count
// firings happen at the same tuples and the watermark firings carry the same rows.
TEST(CountPerKeyTrigger, ContinuousAndMicroBatchFeedingGiveTheSameRows) {
  std::mt19937_64 rng(23);
  for (int round = 0; round < 10; ++round) {
    std::vector<std::pair<std::string, int64_t>> in;  // (key, event time ms)
    for (int i = 0; i < 400; ++i)
      in.emplace_back(std::string(1, static_cast<char>('a' + rng() % 4)),
                      i * 10 + static_cast<int64_t>(rng() % 300));
    for (auto [w, trig] : {std::pair{Tumbling(1s), Trigger::countPerKey(3)},
                           {Sliding(1s, 250ms), Trigger::countPerKey(4)},
                           {GlobalWindow(), Trigger::countPerKey(5)},
                           {Tumbling(1s), Trigger::countPerKey(3).purging()},
                           {GlobalWindow(), Trigger::countPerKey(5).purging()}}) {
      auto cont =
          windowed(w, Count{}, Sum{"v"}).keyBy({"word"}).eventTime("ts").trigger(trig).build();
      auto batch = cont->clone();
      RecordingEmitter a, b;
      BoundedOutOfOrderness gen(300ms);
      for (const auto& [k, t] : in) {
        cont->onTuple(tup(k, Timestamp{t * 1000}, t), a);
        if (gen.observe(Timestamp{t * 1000})) cont->onWatermark(gen.current(), a);
      }
      cont->onEndOfInput(a);
      BoundedOutOfOrderness bgen(300ms);
      for (size_t i = 0; i < in.size(); i += 50) {
        batch->onBatchBegin(i / 50 + 1);
        for (size_t j = i; j < std::min(in.size(), i + 50); ++j) {
          batch->onTuple(tup(in[j].first, Timestamp{in[j].second * 1000}, in[j].second), b);
          bgen.observe(Timestamp{in[j].second * 1000});
        }
        batch->onWatermark(bgen.current(), b);
        batch->onBatchEnd(i / 50 + 1, b);
      }
      batch->onEndOfInput(b);
      ASSERT_EQ(static_cast<WindowOperator&>(*cont).lateCount(), 0u);
      ASSERT_EQ(static_cast<WindowOperator&>(*batch).lateCount(), 0u);
      ASSERT_GT(a.main().size(), 50u);
      ASSERT_EQ(a.sortedMain(), b.sortedMain())
          << w.describe() << (trig.purge ? " purging" : "") << " round " << round;
    }
  }
}

}  // namespace
}  // namespace gale
