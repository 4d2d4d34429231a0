// The two watermark timings of micro-batch mode, batch by batch: gale's (windows fire at the end
// of the batch that moved the watermark) and Spark's (the watermark of batch N is applied from
// batch N+1 on, with a no-data batch when it moved).
#include <filesystem>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_sink.h"
#include "gale/connectors/memory_stream.h"
#include "gale/core/aggregate.h"
#include "gale/core/window.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
Timestamp at(int64_t seconds) { return Timestamp{seconds * 1'000'000}; }

struct WatermarkTimingTest : testing::CheckpointDirTest {

  // Tumbling 10 s counts in append mode, watermark delay 0; each step adds rows and runs them.
  // Returns the rows of each committed batch, as "txid: word@start=count".
  // `before`: rows an earlier run of the same checkpoint already read (the stream keeps them).
  std::vector<std::string> run(WatermarkTiming timing, bool noDataBatches,
                               const std::vector<std::vector<Values>>& steps,
                               const std::vector<std::vector<Values>>& before = {}) {
    const Fields f{{"word", Type::String}, {"ts", Type::Timestamp}};
    auto src = std::make_shared<MemoryStream>("words", f);
    for (const auto& rows : before) src->addData(rows);
    auto store = std::make_shared<MemoryStore>();
    TopologyBuilder b;
    b.setSpout("words", src).withWatermark("ts", 0s);
    b.setBolt("count", *windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                            .outputMode(OutputMode::Append).build(), 1)
        .fieldsGrouping("words", Fields{"word"});
    b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
    ManualClock clock(Timestamp{1});
    MicroBatch cfg;
    cfg.checkpoint = dir.string();
    cfg.trigger = BatchTrigger::processingTime(1h);  // only processAllAvailable() cuts
    cfg.clock = &clock;
    cfg.watermarkTiming = timing;
    cfg.noDataMicroBatches = noDataBatches;
    auto job = runMicroBatch(b.build(), cfg);
    for (const auto& rows : steps) {
      src->addData(rows);
      job.processAllAvailable();
    }
    job.stop();
    job.waitUntilDone();
    std::vector<std::string> out;
    for (uint64_t txid = 1; txid <= job.progress().lastTxid; ++txid) {
      std::string line = std::to_string(txid) + ":";
      for (const auto& r : store->batch(txid)) {
        line += " " + toString(r.values[0]) + "@" +
                std::to_string(std::get<Timestamp>(r.values[1]).micros / 1'000'000) + "=" +
                toString(r.values[3]);
      }
      out.push_back(line);
    }
    return out;
  }
};

const std::vector<std::vector<Values>> kSteps = {
    {{"a", at(1)}, {"a", at(2)}},
    {{"a", at(15)}},
    {{"a", at(5)}, {"b", at(16)}},  // a@5 is behind the watermark (15 s): late in both timings
};

TEST_F(WatermarkTimingTest, GalesTimingFiresAtTheEndOfTheBatchThatMovedTheWatermark) {
  EXPECT_EQ(run(WatermarkTiming::EndOfBatch, true, kSteps),
            (std::vector<std::string>{"1:", "2: a@0=2", "3:"}));
}

TEST_F(WatermarkTimingTest, SparksTimingAppliesItInTheNextBatchWithANoDataBatchWhenItMoved) {
  // Spark: batch 1 (wm none → 2 s), no-data batch 2 applies 2 s; batch 3 (a@15) runs under 2 s
  // and computes 15 s; no-data batch 4 applies it: [0, 10) fires there; batch 5 runs under 15 s
  // (a@5 is late) and computes 16 s; no-data batch 6 applies it: nothing to fire.
  EXPECT_EQ(run(WatermarkTiming::NextBatch, true, kSteps),
            (std::vector<std::string>{"1:", "2:", "3:", "4: a@0=2", "5:", "6:"}));
}

TEST_F(WatermarkTimingTest, WithoutNoDataBatchesTheWindowsWaitForTheNextBatchWithData) {
  // spark.sql.streaming.noDataMicroBatches.enabled=false: the 15 s watermark reaches the
  // operator only with the next data, before its rows (a@5 is late, [0, 10) fires).
  EXPECT_EQ(run(WatermarkTiming::NextBatch, false, kSteps),
            (std::vector<std::string>{"1:", "2:", "3: a@0=2"}));
}

TEST_F(WatermarkTimingTest, SparksTimingContinuesAfterARestartWithTheCommittedWatermarkStillToApply) {
  // Run the first two steps, stop (the 15 s watermark is committed, not applied: no no-data
  // batch), restart and add the third: its batch applies 15 s first.
  run(WatermarkTiming::NextBatch, false, {kSteps[0], kSteps[1]});
  auto rows = run(WatermarkTiming::NextBatch, false, {kSteps[2]}, {kSteps[0], kSteps[1]});
  EXPECT_EQ(rows.back(), "3: a@0=2");
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

TEST_F(WatermarkTimingTest, EveryBatchReportsAProgressRecordLikeSparksStreamingQueryProgress) {
  const Fields f{{"word", Type::String}, {"ts", Type::Timestamp}};
  auto src = std::make_shared<MemoryStream>("words", f);
  TopologyBuilder b;
  b.setSpout("words", src).withWatermark("ts", 1s);
  b.setBolt("count", *windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                          .outputMode(OutputMode::Append).build(), 1)
      .fieldsGrouping("words", Fields{"word"});
  std::vector<BatchRecord> records;
  std::vector<std::string> lines;
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  cfg.trigger = BatchTrigger::processingTime(1h);
  ManualClock clock(Timestamp{1});
  cfg.clock = &clock;
  cfg.onProgress = [&](const BatchRecord& r) {
    records.push_back(r);
    lines.push_back(progressJson("words-job", r));
  };
  auto job = runMicroBatch(b.build(), cfg);
  src->addData({{"a", at(1)}, {"a", at(3)}, {"b", at(12)}});
  job.processAllAvailable();
  src->addData({{"a", at(2)}});  // behind the watermark (11 s): dropped by the window
  job.processAllAvailable();
  job.stop();
  job.waitUntilDone();
  ASSERT_EQ(records.size(), 2u);
  const BatchRecord& r1 = records[0];
  EXPECT_EQ(r1.records, 3u);
  ASSERT_TRUE(r1.eventTime.has_value());
  EXPECT_EQ(r1.eventTime->min, at(1));
  EXPECT_EQ(r1.eventTime->max, at(12));
  EXPECT_EQ(r1.eventTime->avg, Timestamp{(1 + 3 + 12) * 1'000'000 / 3});
  EXPECT_EQ(r1.watermark, at(11));
  ASSERT_EQ(r1.sources.size(), 1u);
  EXPECT_EQ(r1.sources[0].startOffsets, (std::vector<int64_t>{0}));
  EXPECT_EQ(r1.sources[0].endOffsets, (std::vector<int64_t>{3}));
  ASSERT_EQ(r1.stateOperators.size(), 1u);
  EXPECT_EQ(r1.stateOperators[0].name, "count");
  EXPECT_EQ(r1.stateOperators[0].rowsEmitted, 1u);  // a's [0, 10) fired at 11 s
  EXPECT_EQ(r1.stateOperators[0].stateRows, 1u);    // b's [10, 20) is open
  EXPECT_EQ(records[1].stateOperators[0].droppedByWatermark, 1u);
  EXPECT_NE(lines[0].find("\"batchId\":1"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"numInputRows\":3"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\"watermark\":\"1970-01-01T00:00:11.000Z\""), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("\"numRowsDroppedByWatermark\":1"), std::string::npos) << lines[1];
  EXPECT_EQ(lines[0].find('\n'), std::string::npos) << "one line per record";
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

TEST_F(WatermarkTimingTest, ALoggedNoDataBatchIsReplayedAsOneUnderItsOwnTxid) {
  // With the offset log (exactly-once sinks need it), a no-data batch that failed before its
  // commit is replayed after a restart as a no-data batch with the same txid, so the next batch
  // with data gets a new txid (a sink that skips replayed txids would otherwise drop it).
  const Fields f{{"word", Type::String}, {"ts", Type::Timestamp}};
  auto src = std::make_shared<MemoryStream>("words", f);
  auto build = [&] {
    TopologyBuilder b;
    b.setSpout("words", src).withWatermark("ts", 0s);
    b.setBolt("count", *windowed(Tumbling(10s), Count{}).keyBy({"word"}).eventTime("ts")
                            .outputMode(OutputMode::Append).build(), 1)
        .fieldsGrouping("words", Fields{"word"});
    return b.build();
  };
  ManualClock clock(Timestamp{1});
  MicroBatch cfg;
  cfg.checkpoint = dir.string();
  cfg.trigger = BatchTrigger::processingTime(1h);
  cfg.clock = &clock;
  cfg.watermarkTiming = WatermarkTiming::NextBatch;
  cfg.offsetLog = true;
  cfg.onCommitPoint = [](CommitPoint p, uint64_t txid) {
    if (p == CommitPoint::BeforeStateWrite && txid == 2) throw std::runtime_error("crash at 2");
  };
  auto job = runMicroBatch(build(), cfg);
  src->addData({{"a", at(1)}, {"a", at(2)}});
  EXPECT_THROW(job.processAllAvailable(), std::runtime_error);  // batch 1 commits, 2 fails
  resetTerminated();
  cfg.onCommitPoint = nullptr;
  auto again = runMicroBatch(build(), cfg);
  again.processAllAvailable();
  EXPECT_EQ(again.progress().lastTxid, 2u) << "the logged no-data batch ran again as txid 2";
  EXPECT_EQ(again.progress().records, 0u);
  src->addData({{"a", at(15)}});
  again.processAllAvailable();
  EXPECT_EQ(again.progress().records, 1u);
  EXPECT_GE(again.progress().lastTxid, 3u);
  again.stop();
  again.waitUntilDone();
}

}  // namespace
}  // namespace gale
