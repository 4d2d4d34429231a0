// The DStream per-batch operators (transform, print, foreachBatch, saveAsTextFiles, join and
// cogroup per batch, union) and window / reduceByWindow, driven as each mode drives them.
#include "gale/core/dstream_batch.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "gale/core/dstream.h"
#include "gale/core/state_codec.h"
#include "window_test_util.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using testing::RecordingEmitter;
using testing::sec;
namespace fs = std::filesystem;

const Fields kFields{{"word", Type::String}, {"ts", Type::Timestamp}, {"v", Type::Int64}};
const SchemaPtr kA = makeSchema("a", kDefaultStream, kFields);
const SchemaPtr kB = makeSchema("b", kDefaultStream, kFields);
Tuple tup(const std::string& w, Timestamp ts, int64_t v = 1, const SchemaPtr& s = kA) {
  return Tuple(s, Values{w, ts, v});
}

struct Seen {
  uint64_t id;
  int64_t time;
  bool micro;
  std::vector<std::string> words;
};
ForeachBatch recorder(std::vector<Seen>& seen) {
  return ForeachBatch([&seen](const BatchInfo& b, const std::vector<Tuple>& rows) {
    Seen s{b.id, b.time.micros, b.microBatch, {}};
    for (const auto& t : rows) s.words.push_back(t.getString("word"));
    seen.push_back(s);
  });
}

TEST(PerBatch, InMicroBatchModeABatchIsTheMicroBatchWithItsTxidAndEndTimeEvenWhenEmpty) {
  std::vector<Seen> seen;
  ForeachBatch op = recorder(seen);
  RecordingEmitter out;
  op.onBatchBegin(7);
  op.onTuple(tup("x", sec(1)), out);
  op.onTuple(tup("y", sec(2)), out);
  op.onWatermark(sec(1), out);  // the batch-end watermark does not cut the batch
  op.onProcessingTime(sec(100), out);
  EXPECT_TRUE(seen.empty());
  op.onBatchEnd(7, out);
  op.onBatchBegin(8);
  op.onProcessingTime(sec(101), out);
  op.onBatchEnd(8, out);
  // A failed attempt of batch 9 (begun, never ended) leaves nothing in the replayed attempt.
  op.onBatchBegin(9);
  op.onTuple(tup("lost", sec(3)), out);
  op.onBatchBegin(9);
  op.onTuple(tup("z", sec(3)), out);
  op.onProcessingTime(sec(103), out);
  op.onBatchEnd(9, out);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].id, 7u);
  EXPECT_EQ(seen[0].time, sec(100).micros);
  EXPECT_TRUE(seen[0].micro);
  EXPECT_EQ(seen[0].words, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(seen[1].id, 8u);
  EXPECT_TRUE(seen[1].words.empty());
  EXPECT_EQ(seen[2].words, (std::vector<std::string>{"z"}));
  EXPECT_THROW(op.onBatchEnd(10, out), std::logic_error);
}

TEST(PerBatch, InContinuousModeABatchIsTheRowsBetweenTwoWatermarkAdvances) {
  std::vector<Seen> seen;
  ForeachBatch op = recorder(seen);
  ManualClock clock(sec(50));
  OperatorContext ctx;
  ctx.clock = &clock;
  op.open(ctx);
  RecordingEmitter out;
  op.onWatermark(sec(0), out);  // nothing buffered: not a batch
  op.onTuple(tup("x", sec(1)), out);
  op.onProcessingTime(sec(51), out);  // ticks do not cut by default
  op.onTuple(tup("y", sec(2)), out);
  op.onWatermark(sec(1), out);
  op.onTuple(tup("z", sec(3)), out);
  op.onWatermark(sec(1), out);  // did not advance
  clock.advance(5s);
  op.onWatermark(kEndOfTime, out);
  op.onEndOfInput(out);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].id, 1u);
  EXPECT_FALSE(seen[0].micro);
  EXPECT_EQ(seen[0].time, sec(50).micros);
  EXPECT_EQ(seen[0].words, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(seen[1].id, 2u);
  EXPECT_EQ(seen[1].time, sec(55).micros);
  EXPECT_EQ(seen[1].words, (std::vector<std::string>{"z"}));
}

TEST(PerBatch, InContinuousModeProcessingTimeBatchesAreCutAtTicks) {
  std::vector<Seen> seen;
  ForeachBatch op = recorder(seen);
  op.continuousBatches(ContinuousBatches::ProcessingTime);
  auto twin = op.clone();  // the configuration survives clone()
  RecordingEmitter out;
  for (Operator* o : {static_cast<Operator*>(&op), twin.get()}) {
    o->onTuple(tup("x", sec(1)), out);
    o->onWatermark(sec(5), out);
    o->onTuple(tup("y", sec(2)), out);
    o->onProcessingTime(sec(60), out);
    o->onProcessingTime(sec(61), out);
  }
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& s : seen) {
    EXPECT_EQ(s.time, sec(60).micros);
    EXPECT_EQ(s.words, (std::vector<std::string>{"x", "y"}));
  }
}

TEST(PerBatch, InContinuousModeWithAnEventTimeABatchHoldsTheRowsUpToTheWatermark) {
  std::vector<Seen> seen;
  ForeachBatch op = recorder(seen);
  op.eventTime(EventTime("ts"));
  RecordingEmitter out;
  op.onTuple(tup("x", sec(1)), out);
  op.onTuple(tup("ahead", sec(5)), out);
  op.onTuple(tup("y", sec(3)), out);
  op.onWatermark(sec(3), out);
  op.onTuple(tup("late", sec(2)), out);  // behind the watermark: in the next batch
  op.onWatermark(sec(4), out);
  op.onWatermark(sec(9), out);
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].words, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(seen[1].words, (std::vector<std::string>{"late"}));
  EXPECT_EQ(seen[2].words, (std::vector<std::string>{"ahead"}));
}

TEST(PerBatch, InContinuousModeAnInputWithoutAWatermarkIsCutAtTicks) {
  std::vector<Seen> seen;
  ForeachBatch op = recorder(seen);
  RecordingEmitter out;
  op.onTuple(tup("x", sec(1)), out);
  op.onProcessingTime(sec(60), out);  // no watermark so far: the tick cuts
  op.onWatermark(sec(1), out);
  op.onTuple(tup("y", sec(2)), out);
  op.onProcessingTime(sec(61), out);  // a watermark arrived: ticks no longer cut
  EXPECT_EQ(seen.size(), 1u);
  op.onWatermark(sec(2), out);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].words, (std::vector<std::string>{"x"}));
  EXPECT_EQ(seen[1].words, (std::vector<std::string>{"y"}));
}

TEST(Transform, JoinsEachBatchWithAStaticTableAndRejectsRowsOfTheWrongLength) {
  const std::map<std::string, std::string> colour{{"x", "red"}, {"y", "blue"}};
  Transform op(Fields{"word", "colour", "batch"},
               [&](const BatchInfo& b, const std::vector<Tuple>& rows) {
                 std::vector<Values> r;
                 for (const auto& t : rows)
                   if (auto it = colour.find(t.getString("word")); it != colour.end())
                     r.push_back({t.get("word"), it->second, static_cast<int64_t>(b.id)});
                 return r;
               });
  RecordingEmitter out;
  op.onBatchBegin(3);
  for (const char* w : {"x", "q", "y"}) op.onTuple(tup(w, sec(1)), out);
  EXPECT_TRUE(out.rows.empty());
  op.onBatchEnd(3, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"x", "red", int64_t{3}}, {"y", "blue", int64_t{3}}}));
  Transform bad(Fields{"a", "b"}, [](const BatchInfo&, const std::vector<Tuple>&) {
    return std::vector<Values>{{int64_t{1}}};
  });
  bad.onTuple(tup("x", sec(1)), out);
  EXPECT_THROW(bad.onEndOfInput(out), std::invalid_argument);
  EXPECT_THROW(Transform(Fields{"a"}, nullptr), std::invalid_argument);
}

TEST(Print, WritesTheBatchTimeHeaderAndTheFirstNRowsLikeSpark) {
  std::ostringstream os;
  Print op(2, &os);
  RecordingEmitter out;
  op.onBatchBegin(1);
  op.onTuple(tup("a", sec(1), 3), out);
  op.onTuple(tup("b", sec(1), 4), out);
  op.onTuple(tup("c", sec(1), 5), out);
  op.onProcessingTime(Timestamp{1'700'000'000'123'456}, out);
  op.onBatchEnd(1, out);
  op.onBatchBegin(2);
  op.onProcessingTime(Timestamp{1'700'000'001'000'000}, out);
  op.onBatchEnd(2, out);
  EXPECT_EQ(os.str(),
            "-------------------------------------------\n"
            "Time: 1700000000123 ms\n"
            "-------------------------------------------\n"
            "(a,@1000000,3)\n"
            "(b,@1000000,4)\n"
            "...\n"
            "\n"
            "-------------------------------------------\n"
            "Time: 1700000001000 ms\n"
            "-------------------------------------------\n"
            "\n");
  EXPECT_TRUE(out.rows.empty()) << "print is an output operation";
}

struct SaveTest : ::testing::Test {
  void SetUp() override {
    dir = fs::temp_directory_path() / ("gale-save-" + std::to_string(::getpid()));
    fs::remove_all(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::vector<std::string> listing() const {
    std::vector<std::string> v;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      v.push_back(fs::relative(e.path(), dir).string());
    std::sort(v.begin(), v.end());
    return v;
  }
  fs::path dir;
};

TEST_F(SaveTest, EachBatchGoesToPrefixTimeSuffixAndAReplayedBatchReplacesItsFiles) {
  SaveAsTextFiles proto((dir / "words").string(), "txt");
  std::vector<std::unique_ptr<Operator>> tasks;
  for (int i = 0; i < 2; ++i) {
    tasks.push_back(proto.clone());
    OperatorContext ctx;
    ctx.taskIndex = i;
    ctx.parallelism = 2;
    tasks.back()->open(ctx);
  }
  RecordingEmitter out;
  auto batch = [&](uint64_t id, Timestamp now, std::vector<std::vector<std::string>> words) {
    for (int i = 0; i < 2; ++i) {
      tasks[i]->onBatchBegin(id);
      for (const auto& w : words[i]) tasks[i]->onTuple(tup(w, sec(1), 1), out);
      tasks[i]->onProcessingTime(Timestamp{now.micros + i * 7000}, out);  // tasks end apart
      tasks[i]->onBatchEnd(id, out);
    }
  };
  batch(1, sec(10), {{"a", "b"}, {"c"}});
  const fs::path d1 = dir / "words-10000.txt";
  EXPECT_EQ(read(d1 / "part-00000"), "(a,@1000000,1)\n(b,@1000000,1)\n");
  EXPECT_EQ(read(d1 / "part-00001"), "(c,@1000000,1)\n") << "one directory per batch, all tasks";
  // Batch 1 again (its commit failed), later and with other rows: same names, replaced.
  batch(1, sec(20), {{"d"}, {}});
  batch(2, sec(30), {{"e"}, {"f"}});
  EXPECT_EQ(read(d1 / "part-00000"), "(d,@1000000,1)\n");
  EXPECT_EQ(read(d1 / "part-00001"), "");
  EXPECT_EQ(listing(), (std::vector<std::string>{".words-batch-1", ".words-batch-2", ".words-last", ".words.lock", "words-10000.txt",
                                                 "words-10000.txt/part-00000", "words-10000.txt/part-00001",
                                                 "words-30000.txt", "words-30000.txt/part-00000",
                                                 "words-30000.txt/part-00001"}))
      << "no temp files are left";
  // A corrupt marker is a clear error, and nothing is written.
  std::ofstream(dir / ".words-batch-3") << "garbage";
  tasks[0]->onBatchBegin(3);
  tasks[0]->onTuple(tup("g", sec(1)), out);
  tasks[0]->onProcessingTime(sec(40), out);
  EXPECT_THROW(tasks[0]->onBatchEnd(3, out), std::runtime_error);
  EXPECT_FALSE(fs::exists(dir / "words-40000.txt"));
  // Batches ending in the same millisecond get directories of their own.
  batch(4, sec(50), {{"h"}, {}});
  batch(5, sec(50), {{"i"}, {}});
  EXPECT_EQ(read(dir / "words-50000.txt" / "part-00000"), "(h,@1000000,1)\n");
  EXPECT_EQ(read(dir / "words-50001.txt" / "part-00000"), "(i,@1000000,1)\n");
  EXPECT_THROW(SaveAsTextFiles(""), std::invalid_argument);
  EXPECT_THROW(SaveAsTextFiles("x", "", 0), std::invalid_argument);
}

TEST_F(SaveTest, MarkersOfBatchesLongCommittedAreRemoved) {
  SaveAsTextFiles proto((dir / "w").string(), "", 8);
  auto op = proto.clone();  // the history survives clone()
  RecordingEmitter out;
  for (uint64_t id = 1; id <= 14; ++id) {
    op->onBatchBegin(id);
    op->onProcessingTime(Timestamp{static_cast<int64_t>(id) * 1000}, out);
    op->onBatchEnd(id, out);
  }
  size_t markers = 0;
  for (const auto& e : fs::directory_iterator(dir))
    markers += e.path().filename().string().rfind(".w-batch-", 0) == 0;
  EXPECT_EQ(markers, 8u);
  EXPECT_FALSE(fs::exists(dir / ".w-batch-6"));
  EXPECT_TRUE(fs::exists(dir / ".w-batch-7"));
}

TEST_F(SaveTest, InContinuousModeEachBatchIsNamedByItsCloseTimeWithoutASuffix) {
  SaveAsTextFiles op((dir / "out").string());
  ManualClock clock(Timestamp{2'500'000});
  OperatorContext ctx;
  ctx.clock = &clock;
  op.open(ctx);
  RecordingEmitter out;
  op.onTuple(tup("a", sec(1)), out);
  op.onWatermark(sec(1), out);
  op.onTuple(tup("b", sec(2)), out);
  op.onWatermark(sec(2), out);  // the same millisecond: the next one
  EXPECT_EQ(read(dir / "out-2500" / "part-00000"), "(a,@1000000,1)\n");
  EXPECT_EQ(read(dir / "out-2501" / "part-00000"), "(b,@2000000,1)\n");
}

const JoinSide kLeft{"a", kFields, {"word"}, "ts"};
const JoinSide kRight{"b", kFields, {"word"}, "ts"};

std::vector<Values> joinBatch(JoinType type) {
  BatchJoin op(kLeft, kRight, type);
  RecordingEmitter out;
  op.onBatchBegin(1);
  op.onTuple(tup("k", sec(1), 1, kA), out);
  op.onTuple(tup("k", sec(1), 2, kA), out);
  op.onTuple(tup("l", sec(1), 3, kA), out);
  op.onTuple(tup("k", sec(2), 10, kB), out);
  op.onTuple(tup("m", sec(2), 20, kB), out);
  op.onBatchEnd(1, out);
  // The next batch does not see the first one's rows.
  op.onBatchBegin(2);
  op.onTuple(tup("l", sec(3), 30, kB), out);
  op.onBatchEnd(2, out);
  return out.sortedMain();
}

TEST(BatchJoin, JoinsTheRowsOfTheSameBatchForEveryJoinType) {
  const Value n;
  const Values k1{"k", sec(1), int64_t{1}}, k2{"k", sec(1), int64_t{2}}, l3{"l", sec(1), int64_t{3}};
  const Values rk{"k", sec(2), int64_t{10}}, rm{"m", sec(2), int64_t{20}}, rl{"l", sec(3), int64_t{30}};
  auto cat = [](Values a, const Values& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  const Values nulls{n, n, n};
  auto sorted = [](std::vector<Values> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  EXPECT_EQ(joinBatch(JoinType::Inner), sorted({cat(k1, rk), cat(k2, rk)}));
  EXPECT_EQ(joinBatch(JoinType::LeftOuter), sorted({cat(k1, rk), cat(k2, rk), cat(l3, nulls)}));
  EXPECT_EQ(joinBatch(JoinType::RightOuter), sorted({cat(k1, rk), cat(k2, rk), cat(nulls, rm), cat(nulls, rl)}));
  EXPECT_EQ(joinBatch(JoinType::FullOuter),
            sorted({cat(k1, rk), cat(k2, rk), cat(l3, nulls), cat(nulls, rm), cat(nulls, rl)}));
  EXPECT_EQ(joinBatch(JoinType::LeftSemi), sorted({k1, k2}));
  OutputFieldsDeclarer d;
  BatchJoin(kLeft, kRight).declareOutputFields(d);
  EXPECT_EQ(d.find(kDefaultStream)->names(),
            (std::vector<std::string>{"word", "ts", "v", "b_word", "b_ts", "b_v"}));
}

TEST(BatchJoin, BadSidesAndPlacementsAreClearErrors) {
  EXPECT_THROW(BatchJoin(kLeft, {"b", kFields, {"nope"}, ""}), std::invalid_argument);
  EXPECT_THROW(BatchJoin(kLeft, kLeft), std::invalid_argument);
  BatchJoin op(kLeft, kRight);
  EXPECT_EQ(op.checkPlacement({"a", "b"}, false), "");
  EXPECT_NE(op.checkPlacement({"a"}, true).find("'b'"), std::string::npos);
  EXPECT_NE(op.checkPlacement({"a", "b", "c"}, true).find("'c'"), std::string::npos);
  RecordingEmitter out;
  op.onTuple(Tuple(makeSchema("c", kDefaultStream, kFields), Values{"k", sec(1), int64_t{1}}), out);
  EXPECT_THROW(op.onEndOfInput(out), std::invalid_argument);
}

std::map<std::string, std::pair<std::vector<Values>, std::vector<Values>>> groups(
    const std::vector<Values>& rows, size_t first) {
  std::map<std::string, std::pair<std::vector<Values>, std::vector<Values>>> m;
  for (const auto& r : rows) {
    std::string key = toString(r[0]);
    for (size_t i = 1; i < first; ++i) key += "@" + toString(r[i]);
    m[key] = {cogroupRows(r[first]), cogroupRows(r[first + 1])};
  }
  return m;
}

TEST(Cogroup, GroupsBothSidesRowsPerKeyPerBatch) {
  Cogroup op(kLeft, kRight);
  RecordingEmitter out;
  op.onBatchBegin(1);
  op.onTuple(tup("k", sec(1), 1, kA), out);
  op.onTuple(tup("k", sec(1), 2, kB), out);
  op.onTuple(tup("l", sec(1), 3, kB), out);
  op.onBatchEnd(1, out);
  auto g = groups(out.main(), 1);
  ASSERT_EQ(g.size(), 2u);
  EXPECT_EQ(g["k"].first, (std::vector<Values>{{"k", sec(1), int64_t{1}}}));
  EXPECT_EQ(g["k"].second, (std::vector<Values>{{"k", sec(1), int64_t{2}}}));
  EXPECT_TRUE(g["l"].first.empty());
  EXPECT_EQ(g["l"].second.size(), 1u);
  EXPECT_THROW(cogroupRows(Value{int64_t{1}}), std::invalid_argument);
  EXPECT_THROW(cogroupRows(Value{Bytes{"\x05"}}), SnapshotError);
}

TEST(Cogroup, TheWindowedCogroupEmitsEachKeysWindowWhenTheWatermarkPassesItsEnd) {
  Cogroup op(kLeft, kRight, 10s);
  RecordingEmitter out;
  op.onTuple(tup("k", sec(1), 1, kA), out);
  op.onTuple(tup("k", sec(9), 2, kB), out);
  op.onTuple(tup("k", sec(12), 3, kB), out);
  auto twin = op.clone();
  twin->restore(op.snapshot());
  RecordingEmitter tout;
  for (auto [o, e] : {std::pair<Operator*, RecordingEmitter*>{&op, &out}, {twin.get(), &tout}}) {
    o->onWatermark(Timestamp{sec(10).micros - 1}, *e);
    o->onTuple(tup("k", sec(5), 4, kA), *e);  // its window was emitted: late
  }
  EXPECT_EQ(out.rows, tout.rows) << "restored twin";
  auto g = groups(out.main(), 3);
  ASSERT_EQ(g.size(), 1u);
  EXPECT_EQ(g.begin()->first, "k@" + toString(Value{sec(0)}) + "@" + toString(Value{sec(10)}));
  EXPECT_EQ(g.begin()->second.first.size(), 1u);
  EXPECT_EQ(g.begin()->second.second, (std::vector<Values>{{"k", sec(9), int64_t{2}}}));
  EXPECT_EQ(out.on("late").size(), 1u);
  out.clear();
  op.onEndOfInput(out);
  EXPECT_EQ(out.main().size(), 1u);
  EXPECT_EQ(op.stateSize(), 0u);
  EXPECT_NE(op.checkPlacement({"a", "b"}, false).find("withWatermark"), std::string::npos);
  EXPECT_THROW(Cogroup(kLeft, {"b", kFields, {"word"}, "nope"}, 10s), std::invalid_argument);
  std::string snap = op.snapshot();
  for (size_t n = 0; n < snap.size(); ++n) EXPECT_THROW(op.clone()->restore(snap.substr(0, n)), SnapshotError);
}

TEST(WindowedJoin, IsTheEventTimeStreamJoinOverTheSameTumblingWindow) {
  StreamJoin op = windowedJoin(kLeft, kRight, JoinType::Inner, 10s);
  RecordingEmitter out;
  op.onTuple(tup("k", sec(1), 1, kA), out);
  op.onTuple(tup("k", sec(9), 2, kB), out);
  op.onTuple(tup("k", sec(11), 3, kB), out);  // next window: no pair
  EXPECT_EQ(out.main(), (std::vector<Values>{{"k", sec(1), int64_t{1}, "k", sec(9), int64_t{2}}}));
}

TEST(Union, PassesEveryInputOnAndChecksTheirFields) {
  Union op({{"a", kFields}, {"b", kFields}});
  RecordingEmitter out;
  op.onTuple(tup("x", sec(1), 1, kA), out);
  op.onTuple(tup("y", sec(2), 2, kB), out);
  EXPECT_EQ(out.main(), (std::vector<Values>{{"x", sec(1), int64_t{1}}, {"y", sec(2), int64_t{2}}}));
  EXPECT_THROW(op.onTuple(Tuple(makeSchema("b", kDefaultStream, Fields{"word", "v"}), Values{"x", int64_t{1}}), out),
               std::invalid_argument);
  EXPECT_THROW(Union({{"a", kFields}, {"b", Fields{"word", "v", "ts"}}}), std::invalid_argument);
  EXPECT_THROW(Union({{"a", kFields}, {"a", kFields}}), std::invalid_argument);
  EXPECT_EQ(op.checkPlacement({"b", "a"}, false), "");
  EXPECT_NE(op.checkPlacement({"a"}, false).find("'b'"), std::string::npos);
  EXPECT_NE(op.checkPlacement({"a", "b", "c"}, false).find("'c'"), std::string::npos);
}

TEST(Window, ReEmitsTheTuplesOfEachSlidingWindowWhenItCloses) {
  auto op = window(kFields, 10s, 5s, EventTime("ts"));
  RecordingEmitter out;
  op->onTuple(tup("a", sec(1)), out);
  op->onTuple(tup("b", sec(7)), out);
  op->onWatermark(Timestamp{sec(10).micros - 1}, out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"a", sec(1), int64_t{1}, sec(-5), sec(5)},
                                                   {"a", sec(1), int64_t{1}, sec(0), sec(10)},
                                                   {"b", sec(7), int64_t{1}, sec(0), sec(10)}}));
  out.clear();
  op->onTuple(tup("c", sec(3)), out);
  EXPECT_EQ(out.on("late").size(), 1u);
  op->onEndOfInput(out);
  EXPECT_EQ(out.sortedMain(), (std::vector<Values>{{"b", sec(7), int64_t{1}, sec(5), sec(15)}}));
  EXPECT_EQ(op->stateSize(), 0u);
  EXPECT_THROW(window(kFields, 10s, 3s, EventTime("ts")), std::invalid_argument);
  EXPECT_THROW(window(Fields{"window_end"}, 10s, 5s, EventTime("ts")), std::invalid_argument);
}

// Random disorder, watermarks and snapshot/restore points: window() against a brute-force
// assignment of each accepted tuple to its windows, and reduceByWindow with and without its
// inverse against brute-force sums.
TEST(Window, WindowAndReduceByWindowMatchABruteForceReferenceOverRandomDisorder) {
  for (uint64_t seed = 1; seed <= 25; ++seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::unique_ptr<Operator>> ops;
    ops.push_back(window(kFields, Duration(12), Duration(4), EventTime("ts")));
    ops.push_back(reduceByWindow("v", plus, minus, Duration(12), Duration(4), EventTime("ts")));
    ops.push_back(reduceByWindow("v", plus, nullptr, Duration(12), Duration(4), EventTime("ts")));
    std::vector<RecordingEmitter> outs(ops.size());
    std::vector<std::pair<int64_t, int64_t>> accepted;  // (ts, v)
    int64_t maxSeen = 0;
    for (int i = 0; i < 200; ++i) {
      int64_t ts = i / 3 + static_cast<int64_t>(rng() % 5);
      int64_t v = static_cast<int64_t>(rng() % 10);
      size_t late = outs[0].on("late").size();
      for (size_t o = 0; o < ops.size(); ++o) ops[o]->onTuple(tup("w", Timestamp{ts}, v), outs[o]);
      if (outs[0].on("late").size() == late) accepted.emplace_back(ts, v);
      for (size_t o = 1; o < ops.size(); ++o)
        ASSERT_EQ(outs[o].on("late").size(), outs[0].on("late").size()) << "same lateness rule";
      maxSeen = std::max(maxSeen, ts);
      if (rng() % 4 == 0) {
        Timestamp wm{maxSeen - static_cast<int64_t>(rng() % 6)};
        for (size_t o = 0; o < ops.size(); ++o) ops[o]->onWatermark(wm, outs[o]);
      }
      if (rng() % 9 == 0) {
        for (auto& op : ops) {
          auto fresh = op->clone();
          fresh->restore(op->snapshot());
          op = std::move(fresh);
        }
      }
    }
    for (size_t o = 0; o < ops.size(); ++o) ops[o]->onEndOfInput(outs[o]);
    std::multiset<std::pair<int64_t, int64_t>> expectRows;  // (window start, ts)
    std::map<int64_t, int64_t> expectSum;
    for (auto [ts, v] : accepted) {
      for (int64_t s = ts / 4 * 4 - 8; s <= ts; s += 4) {
        expectRows.insert({s, ts});
        expectSum[s] += v;
      }
    }
    std::multiset<std::pair<int64_t, int64_t>> gotRows;
    for (const auto& r : outs[0].main())
      gotRows.insert({std::get<Timestamp>(r[3]).micros, std::get<Timestamp>(r[1]).micros});
    ASSERT_EQ(gotRows, expectRows) << "window, seed " << seed;
    for (size_t o : {1u, 2u}) {
      std::map<int64_t, int64_t> got;
      for (const auto& r : outs[o].main()) {
        int64_t start = std::get<Timestamp>(r[0]).micros;
        ASSERT_FALSE(got.count(start)) << "window emitted twice";
        got[start] = std::get<int64_t>(r[2]);
      }
      ASSERT_EQ(got, expectSum) << (o == 1 ? "with" : "without") << " inverse, seed " << seed;
    }
  }
}

}  // namespace
}  // namespace gale
