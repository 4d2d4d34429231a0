// The testing kit as a user's own tests use it (docs/testing.md quotes the first two tests):
// OperatorHarness drives one operator per row and per watermark, with snapshot/restore in
// between; MemoryStream + processAllAvailable() run a whole micro-batch job batch by batch.
#include <filesystem>

#include <gtest/gtest.h>
#include <unistd.h>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_sink.h"
#include "gale/connectors/memory_stream.h"
#include "gale/core/aggregate.h"
#include "gale/core/stateless.h"
#include "gale/core/stream_join.h"
#include "gale/core/testing.h"
#include "gale/core/window.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
Timestamp at(int64_t seconds) { return Timestamp{seconds * 1'000'000}; }

// --- docs/testing.md: a windowed aggregation -------------------------------------------------
TEST(TestingKit, AWindowedCountFiresWhenTheWatermarkPassesAndSurvivesARestore) {
  OperatorHarness h(*windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                         .outputMode(OutputMode::Append).build());
  h.input("words", Fields{{"word", Type::String}, {"ts", Type::Timestamp}});
  h.process({"a", at(1)});
  h.process({"a", at(4)});
  h.process({"b", at(12)});
  h.watermark(at(9));
  EXPECT_TRUE(h.output().empty()) << "[0, 10 s) is not complete yet";

  h.restore(h.snapshot());  // as a restarted task would
  h.watermark(at(10));
  EXPECT_EQ(h.take(), (std::vector<Values>{{"a", at(0), at(10), int64_t{2}}}));
  h.process({"a", at(3)});  // behind the watermark: late
  EXPECT_EQ(h.output("late").size(), 1u);
  h.endOfInput();
  EXPECT_EQ(h.output(), (std::vector<Values>{{"b", at(10), at(20), int64_t{1}}}));
}

// --- docs/testing.md: a stream-stream join ---------------------------------------------------
TEST(TestingKit, AnIntervalLeftOuterJoinEmitsUnmatchedRowsOnlyWhenTheWatermarkPassesThem) {
  const Fields views{{"ad", Type::String}, {"ts", Type::Timestamp}};
  const Fields clicks{{"ad", Type::String}, {"ts", Type::Timestamp}};
  OperatorHarness h(StreamJoin({"views", views, {"ad"}, "ts"}, {"clicks", clicks, {"ad"}, "ts"},
                               JoinType::LeftOuter, between(0s, 60s)));
  h.input("views", views).input("clicks", clicks);
  h.process("views", {"ad1", at(0)});
  h.process("views", {"ad2", at(0)});
  h.process("clicks", {"ad1", at(30)});
  EXPECT_EQ(h.take(), (std::vector<Values>{{"ad1", at(0), "ad1", at(30)}}));
  h.watermark(at(59));
  EXPECT_TRUE(h.output().empty()) << "ad2 may still be clicked at 60 s";
  h.watermark(at(60));
  EXPECT_EQ(h.output(), (std::vector<Values>{{"ad2", at(0), Value{}, Value{}}}));
}

TEST(TestingKit, TheHarnessRefusesRowsThatDoNotFitTheDeclaredInput) {
  OperatorHarness h(*windowed(Tumbling(10s), Count{}).eventTime("ts").build());
  EXPECT_THROW(h.process({"x"}), std::logic_error);
  h.input("in", Fields{{"ts", Type::Timestamp}});
  EXPECT_THROW(h.process({"not a time"}), std::invalid_argument);
  EXPECT_THROW(h.process("other", {at(1)}), std::logic_error);
}

using MemoryStreamJob = testing::CheckpointDirTest;

TEST_F(MemoryStreamJob, ProcessAllAvailableRunsWhatWasAddedToSeveralSourcesThroughOneBatch) {
  const Fields f{{"word", Type::String}, {"ts", Type::Timestamp}};
  auto left = std::make_shared<MemoryStream>("left", f);
  auto right = std::make_shared<MemoryStream>("right", f);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("left", left).withWatermark("ts", 0s);
  b.setSpout("right", right).withWatermark("ts", 0s);
  b.setBolt("count", *windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                          .outputMode(OutputMode::Append).build(), 1)
      .fieldsGrouping("left", Fields{"word"})
      .fieldsGrouping("right", Fields{"word"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
  ManualClock clock(Timestamp{1});
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  cfg.trigger = BatchTrigger::processingTime(1h);  // never due on this clock: only our calls cut
  cfg.clock = &clock;
  auto job = runMicroBatch(b.build(), cfg);

  left->addData({{"a", at(1)}, {"a", at(2)}});
  right->addData({{"a", at(3)}, {"b", at(11)}});
  job.processAllAvailable();
  EXPECT_EQ(job.progress().batches, 1u);
  EXPECT_EQ(job.progress().records, 4u);
  EXPECT_TRUE(store->values().empty()) << "the watermark is min(2 s, 11 s): nothing complete";

  left->addData({{"c", at(25)}});
  job.processAllAvailable();  // watermark min(25 s, 11 s) = 11 s: [0, 10 s) fires
  EXPECT_EQ(job.progress().batches, 2u);
  EXPECT_EQ(store->values(), (std::vector<Values>{{"a", at(0), at(10), int64_t{3}}}));

  job.processAllAvailable();  // nothing new: no batch
  EXPECT_EQ(job.progress().batches, 2u);
  job.stop();
  job.waitUntilDone();
}

TEST_F(MemoryStreamJob, ProcessAllAvailableRethrowsTheJobsError) {
  auto src = std::make_shared<MemoryStream>("in", Fields{{"ts", Type::Timestamp}});
  TopologyBuilder b;
  b.setSpout("in", src);
  b.setBolt("boom", Map(Fields{{"ts", Type::Timestamp}}, [](const Tuple&) -> Values {
              throw std::runtime_error("boom");
            }), 1).shuffleGrouping("in");
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  auto job = runMicroBatch(b.build(), cfg);
  src->addData({{at(1)}});
  EXPECT_THROW(job.processAllAvailable(), std::runtime_error);
}

TEST(MemoryStream, RefusesRowsThatDoNotFitAndReadsBackWhatWasAdded) {
  MemoryStream s("s", Fields{{"n", Type::Int64}}, 2);
  EXPECT_THROW(s.addData({{std::string("x")}}), std::invalid_argument);
  EXPECT_EQ(s.addData({{int64_t{1}}, {int64_t{2}}}, 1), 2);
  EXPECT_EQ(s.available(0), 0);
  std::vector<SourceRecord> out;
  EXPECT_EQ(s.read(1, 0, 2, out), 2u);
  EXPECT_EQ(out[1].values, (Values{int64_t{2}}));
  EXPECT_THROW(s.read(1, 0, 3, out), SourceError);
  EXPECT_FALSE(s.finished());
  s.finish();
  EXPECT_TRUE(s.finished());
  EXPECT_THROW(s.addData({{int64_t{3}}}), std::logic_error);
}

}  // namespace
}  // namespace gale
