// gale-compare's Kafka mode, briefly, against the in-process mock cluster: every run accounts for
// every record it produced, its latencies are positive and ordered, and the throughput runs move
// every record.
#include "kafka_mode.h"

#include <gtest/gtest.h>

#include <sstream>

namespace gale::compare {
namespace {

using namespace std::chrono_literals;

TEST(GaleCompareKafka, EveryPipelineAccountsForEveryRecordWithOrderedPositiveLatencies) {
  RunSettings settings;
  settings.seconds = 1;
  settings.warmupSeconds = 0.3;
  KafkaSettings kafka;
  kafka.partitions = 2;
  kafka.window = 200ms;
  kafka.throughputRecords = 5000;
  const std::vector<Mode> modes{parseMode("continuous"), parseMode("100ms")};
  KafkaReport report = runKafkaComparison(
      {KafkaPipeline::Transform, KafkaPipeline::Window, KafkaPipeline::Join}, {2000}, modes,
      settings, kafka);
  ASSERT_EQ(report.latency.size(), 9u);  // 3 pipelines x (floor + 2 modes)
  for (const KafkaRun& r : report.latency) {
    SCOPED_TRACE(r.row.pipeline + " " + r.row.mode);
    EXPECT_GT(r.produced, 2000u);  // 1.3 s at 2000/s
    EXPECT_EQ(r.counted, r.produced);
    EXPECT_TRUE(r.row.sustained);
    if (r.row.pipeline == "kafka-window" && r.row.mode != "no engine (floor)") {
      EXPECT_LT(r.results, r.produced);  // one result per (ad, window)
    } else {
      EXPECT_EQ(r.results, r.produced);
    }
    EXPECT_GT(r.row.samples, 0u);
    EXPECT_GT(r.row.p50, 0);
    EXPECT_LE(r.row.p50, r.row.p90);
    EXPECT_LE(r.row.p90, r.row.p99);
    EXPECT_LE(r.row.p99, r.row.p999);
    EXPECT_LE(r.row.p999, r.row.max);
  }
  ASSERT_EQ(report.throughput.size(), 5u);  // produce, consume, relay, 2 modes
  for (const KafkaThroughput& t : report.throughput) {
    SCOPED_TRACE(t.what);
    EXPECT_EQ(t.records, 5000u);
    EXPECT_GT(t.perSecond(), 0);
  }
  std::ostringstream out;
  writeKafkaReport(out, report);
  EXPECT_NE(out.str().find("no engine (floor)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("% of the relay"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("MISSING"), std::string::npos) << out.str();
}

TEST(GaleCompareKafka, AnUnknownPipelineIsRefusedListingTheValidOnes) {
  EXPECT_EQ(parseKafkaPipelines("all").size(), 3u);
  EXPECT_THROW(parseKafkaPipelines("transform,nope"), std::invalid_argument);
}

}  // namespace
}  // namespace gale::compare
