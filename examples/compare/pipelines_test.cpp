#include <algorithm>
#include <map>

#include <gtest/gtest.h>

#include "pipelines.h"
#include "runner.h"

namespace gale::compare {
namespace {

struct Captured : Emitter {
  std::vector<std::pair<std::string, Values>> rows;
  void emit(std::string_view stream, Values v) override {
    rows.emplace_back(std::string(stream), std::move(v));
  }
};

Tuple tupleOf(Fields f, Values v, int64_t origin = 0) {
  Tuple t(makeSchema("up", kDefaultStream, std::move(f)), std::move(v));
  t.setOriginNanos(origin);
  return t;
}

Fields windowRowFields() {
  return Fields{{"campaign_id", Type::String},
                {"window_start", Type::Timestamp},
                {"window_end", Type::Timestamp},
                {"count", Type::Int64}};
}

TEST(LatencySink, ContinuousModeRecordsOnArrivalMicroBatchModeAtTheBatchEnd) {
  ManualClock clock(Timestamp{1'000'000});
  auto m = std::make_shared<RunMeasurements>(clock);
  LatencySink proto(m);
  auto sink = proto.clone();
  sink->open(OperatorContext{});
  Captured out;
  Fields f{{"x", Type::Int64}};
  // Continuous: 10 µs after its origin.
  int64_t origin = clock.monoNanos();
  clock.advance(Duration(10));
  sink->onTuple(tupleOf(f, {int64_t{1}}, origin), out);
  // Micro-batch: two rows arrive 1 and 2 ms after their origins, the batch ends 5 ms later:
  // visible (and measured) only then.
  sink->onBatchBegin(7);
  int64_t o1 = clock.monoNanos();
  clock.advance(Duration(1000));
  int64_t o2 = clock.monoNanos();
  clock.advance(Duration(1000));
  sink->onTuple(tupleOf(f, {int64_t{2}}, o1), out);
  sink->onTuple(tupleOf(f, {int64_t{3}}, o2), out);
  EXPECT_EQ(m->mergedLatency().count(), 1u) << "a batch row must not count before its batch ends";
  clock.advance(Duration(5000));
  sink->onBatchEnd(7, out);
  Histogram h = m->mergedLatency();
  ASSERT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min(), 10'000);
  EXPECT_NEAR(h.max(), 7'000'000, 7'000'000 / 60);   // o1: 2 ms + 5 ms
  EXPECT_NEAR(h.percentile(0.5), 6'000'000, 6'000'000 / 60);  // o2: 1 ms + 5 ms
  EXPECT_EQ(m->records(), 3u);
}

TEST(WindowSink, WindowLatencyIsVisibilityMinusWindowEndAndValuesAreKept) {
  ManualClock clock(Timestamp{20'000'000});
  auto m = std::make_shared<RunMeasurements>(clock);
  m->setWindowLatencyOffset(1'000'000'000);  // a 1 s watermark delay, stated and subtracted
  auto sink = WindowSink(m, "campaign_id", "count").clone();
  sink->open(OperatorContext{});
  Captured out;
  sink->onBatchBegin(1);
  // Window [18 s, 19 s): visible at 20 s + 3 ms (the batch end) -> 1.003 s - 1 s = 3 ms.
  sink->onTuple(tupleOf(windowRowFields(), {std::string("c1"), Timestamp{18'000'000},
                                            Timestamp{19'000'000}, int64_t{42}}),
                out);
  clock.advance(Duration(3000));
  EXPECT_TRUE(m->windowResults().empty());
  sink->onBatchEnd(1, out);
  Histogram h = m->mergedLatency();
  ASSERT_EQ(h.count(), 1u);
  EXPECT_EQ(h.max(), 3'000'000);
  EXPECT_EQ((m->windowResults()), (WindowResults{{{"c1", 18'000'000}, 42}}));
}

TEST(RunMeasurements, NothingIsRecordedAfterTheMeasurementEnd) {
  ManualClock clock(Timestamp{1'000'000});
  RunMeasurements m(clock);
  TaskRecorder& t = m.newTask();
  m.setMeasurementEnd(clock.monoNanos() + 1000);
  int64_t origin = clock.monoNanos();
  t.recordArrival(origin);
  clock.advance(Duration(2));  // past the end: e.g. windows flushed by a stopping run
  t.recordArrival(origin);
  t.recordWindowResult(Timestamp{0});
  EXPECT_EQ(m.mergedLatency().count(), 1u);
}

TEST(JsonParse, AMalformedLineGoesToTheErrorStreamWithTheReason) {
  Fields events{{"ad_id", Type::String}, {"event_type", Type::String}};
  auto op = JsonParse("json", events).clone();
  Captured out;
  Fields in{{"json", Type::String}};
  op->onTuple(tupleOf(in, {std::string(R"({"ad_id":"a","event_type":"view"})")}), out);
  op->onTuple(tupleOf(in, {std::string(R"({"ad_id":"a" "event_type":"view"})")}), out);
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[0].first, kDefaultStream);
  EXPECT_EQ(out.rows[0].second, (Values{std::string("a"), std::string("view")}));
  EXPECT_EQ(out.rows[1].first, "parse_errors");
  EXPECT_NE(std::get<std::string>(out.rows[1].second[1]).find("at byte"), std::string::npos);
}

TEST(YsbProject, EventTimeMillisBecomeATimestampAndABadOneGoesToItsStream) {
  auto op = YsbProject().clone();
  Captured out;
  Fields f{{"ad_id", Type::String}, {"event_time", Type::String}};
  op->onTuple(tupleOf(f, {std::string("ad"), std::string("1500000000123")}), out);
  op->onTuple(tupleOf(f, {std::string("ad"), std::string("15x")}), out);
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[0].second, (Values{std::string("ad"), Timestamp{1'500'000'000'123'000}}));
  EXPECT_EQ(out.rows[1].first, "bad_event_time");
}

TEST(BuildTopology, RejectsBadOptionsNamingThem) {
  auto m = std::make_shared<RunMeasurements>();
  auto data = std::make_shared<const YsbData>();
  PipelineOptions o;
  o.window = Duration{0};
  EXPECT_THROW(buildTopology(o, m, data), std::invalid_argument);
  o = PipelineOptions{};
  o.parallelism = 0;
  EXPECT_THROW(buildTopology(o, m, data), std::invalid_argument);
  EXPECT_THROW(parsePipeline("ysbb"), std::invalid_argument);
  EXPECT_THROW(parseDuration("10 parsecs"), std::invalid_argument);
  EXPECT_EQ(parseDuration("100ms"), Duration{100'000});
  EXPECT_EQ(parseMode("1s").interval, Duration{1'000'000});
}

// The oracle: count views per campaign per window straight from the generator's definition.
// The typed pipeline's keys are the campaign numbers, as text.
WindowResults directCount(const YsbData& data, bool typed, int64_t events, int64_t startMicros,
                          int64_t step, int64_t window, int64_t upTo) {
  WindowResults r;
  for (int64_t g = 0; g < events; ++g) {
    if (!data.isView(g)) continue;
    int64_t t = (startMicros + g * step) / 1000 * 1000;  // YSB's millisecond event_time
    int64_t ws = t / window * window;
    std::string key =
        typed ? std::to_string(data.campaignNumberOf(g)) : data.campaignOf(g);
    if (ws <= upTo) ++r[{key, ws}];
  }
  return r;
}

void expectYsbCountsMatchTheOracle(const Mode& mode, int partitions, int parallelism,
                                   Pipeline pipeline = Pipeline::Ysb) {
  auto data = std::make_shared<const YsbData>();
  PipelineOptions o;
  o.pipeline = pipeline;
  o.window = std::chrono::seconds(1);
  o.partitions = partitions;
  o.parallelism = parallelism;
  const int64_t events = 30'000;
  BoundedWindows got = runBoundedYsb(o, mode, events, data);
  // runBoundedYsb's fixed event times: window-aligned start, five windows' worth of events.
  int64_t window = 1'000'000;
  int64_t start = (int64_t{1'600'000'000'000'000} / window) * window;
  int64_t step = window * 5 / events;
  WindowResults want = directCount(*data, pipeline == Pipeline::YsbTyped, events, start, step,
                                   window, got.lastCompleteWindowStart);
  ASSERT_GE(want.size(), 300u) << "at least 3 complete windows x 100 campaigns";
  EXPECT_EQ(compareWindowResults(want, got.windows, got.lastCompleteWindowStart), "")
      << mode.label();
}

TEST(YsbPipeline, ContinuousWindowCountsEqualADirectCount) {
  expectYsbCountsMatchTheOracle(Mode{}, 1, 1);
}

TEST(YsbPipeline, ContinuousWindowCountsEqualADirectCountWithTwoPartitionsAndTwoTasks) {
  // Two spout tasks and two window tasks: the window waits for the slower input's watermark.
  expectYsbCountsMatchTheOracle(Mode{}, 2, 2);
}

TEST(YsbPipeline, MicroBatchWindowCountsEqualADirectCount) {
  expectYsbCountsMatchTheOracle(Mode{true, Duration{0}}, 1, 1);
  expectYsbCountsMatchTheOracle(Mode{true, std::chrono::milliseconds(50)}, 1, 1);
}

}  // namespace
}  // namespace gale::compare

namespace gale::compare {
namespace {

TEST(TypedYsb, EventsAreTheJsonEventsWithIntegerIds) {
  YsbData data;
  for (int64_t g = 0; g < 200; ++g) {
    Values v = data.typedEvent(g, Timestamp{g * 1000});
    ASSERT_EQ(YsbData::typedEventFields().mismatch(v), "");
    std::string json = data.event(g, g);
    // The same ad (its number sits where its uuid sits in the table) and the same event type.
    int64_t ad = std::get<int64_t>(v[2]);
    size_t a = std::find(data.adNumbers.begin(), data.adNumbers.end(), ad) - data.adNumbers.begin();
    ASSERT_LT(a, data.adIds.size());
    EXPECT_NE(json.find(data.adIds[a]), std::string::npos) << g;
    EXPECT_EQ(std::get<int64_t>(v[4]) == 0, data.isView(g)) << g;
    EXPECT_EQ(json.find("\"event_type\":\"view\"") != std::string::npos, data.isView(g)) << g;
    EXPECT_EQ(data.campaignNumbers[a / YsbData::kAdsPerCampaign], data.campaignNumberOf(g));
  }
}

// typedEvent writes over a list the pool kept with an earlier event's seven scalars, and builds
// the list anew from anything else: both give the same event.
TEST(TypedYsb, AnEventWrittenOverAnEarlierEventsListEqualsOneBuiltAnew) {
  YsbData data;
  while (recycledValues().capacity() > 0) {  // empty this thread's pool
  }
  for (int64_t g = 0; g < 200; ++g) {
    // Built anew: the pool's top list holds other values (a double where an id goes).
    Values other{int64_t{1}, int64_t{2}, 3.0, int64_t{4}, int64_t{5}, int64_t{6}, Timestamp{7}};
    recycleValues(std::move(other));
    Values built = data.typedEvent(g, Timestamp{g * 1000});
    // Written over: the pool's top list is another event's.
    recycleValues(data.typedEvent(g + 7919, Timestamp{5}));
    const Value* storage = nullptr;
    {
      Values reused = recycledValuesAsLeft();
      storage = reused.data();
      recycleValues(std::move(reused));
    }
    Values over = data.typedEvent(g, Timestamp{g * 1000});
    EXPECT_EQ(over.data(), storage) << "not the pool's list";
    EXPECT_EQ(over, built) << g;
    EXPECT_EQ(YsbData::typedEventFields().mismatch(over), "");
    EXPECT_EQ(std::get<int64_t>(over[4]) == 0, data.isView(g)) << g;
  }
}

TEST(YsbTypedPipeline, ContinuousWindowCountsEqualADirectCount) {
  expectYsbCountsMatchTheOracle(Mode{}, 1, 1, Pipeline::YsbTyped);
}

TEST(YsbTypedPipeline, ContinuousWindowCountsEqualADirectCountWithTwoPartitionsAndTwoTasks) {
  expectYsbCountsMatchTheOracle(Mode{}, 2, 2, Pipeline::YsbTyped);
}

TEST(YsbTypedPipeline, MicroBatchWindowCountsEqualADirectCount) {
  expectYsbCountsMatchTheOracle(Mode{true, Duration{0}}, 1, 1, Pipeline::YsbTyped);
  expectYsbCountsMatchTheOracle(Mode{true, std::chrono::milliseconds(50)}, 1, 1,
                                Pipeline::YsbTyped);
}

TEST(KeepEquals, ComparesTypeAndValue) {
  Fields f{{"x", Type::Any}};
  auto op = KeepEquals(f, "x", int64_t{0}).clone();
  Captured out;
  op->onTuple(tupleOf(f, {int64_t{0}}), out);
  op->onTuple(tupleOf(f, {int64_t{1}}), out);
  op->onTuple(tupleOf(f, {std::string("0")}), out);
  op->onTuple(tupleOf(f, {0.0}), out);
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0].second, (Values{int64_t{0}}));
}

}  // namespace
}  // namespace gale::compare
