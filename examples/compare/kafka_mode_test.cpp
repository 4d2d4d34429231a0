// gale-compare's Kafka mode, briefly, against the in-process mock cluster: every run accounts for
// every record it produced, its latencies are positive and ordered, and the throughput runs move
// every record.
#include "kafka_mode.h"

#include <gtest/gtest.h>

#include <sstream>

namespace gale::compare {
namespace {

using namespace std::chrono_literals;

// Brief runs: 0.3 s of warm-up and 1 s measured, 2 partitions.
RunSettings briefRun() {
  RunSettings settings;
  settings.seconds = 1;
  settings.warmupSeconds = 0.3;
  return settings;
}

KafkaSettings twoPartitions() {
  KafkaSettings kafka;
  kafka.partitions = 2;
  return kafka;
}

TEST(GaleCompareKafka, EveryPipelineAccountsForEveryRecordWithOrderedPositiveLatencies) {
  RunSettings settings = briefRun();
  KafkaSettings kafka = twoPartitions();
  kafka.window = 200ms;
  kafka.throughputRecords = 5000;
  const std::vector<Mode> modes{parseMode("continuous"), parseMode("100ms")};
  KafkaReport report = runKafkaComparison(
      {KafkaPipeline::Transform, KafkaPipeline::Window, KafkaPipeline::Join}, {2000}, modes,
      settings, kafka);
  ASSERT_EQ(report.latency.size(), 9u);  // 3 pipelines x (floor + 2 modes)
  for (const KafkaRun& r : report.latency) {
    SCOPED_TRACE(r.row.pipeline + " " + r.row.mode);
    // The producer paces itself by the wall clock: 1.3 s at 2000/s is ~2600 records on a quiet
    // machine, but a loaded one may produce far fewer (471 seen). What matters is that records
    // flowed and every one is accounted for.
    EXPECT_GT(r.produced, 100u);
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
    EXPECT_GT(t.cpuMicrosPerRecord(), 0);
  }
  std::ostringstream out;
  writeKafkaReport(out, report);
  EXPECT_NE(out.str().find("no engine (floor)"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("% of the relay"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("µs CPU per record"), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find("MISSING"), std::string::npos) << out.str();
}

// --kafka-stages: the continuous transform's results carry the times of their stages, and the
// report splits the latency by them; the floor and micro-batch rows have none.
TEST(GaleCompareKafka, TheContinuousTransformIsTimedPerStageWhenAsked) {
  KafkaSettings kafka = twoPartitions();
  kafka.throughputRecords = 0;
  kafka.stages = true;
  KafkaReport report = runKafkaComparison({KafkaPipeline::Transform}, {2000},
                                          {parseMode("continuous"), parseMode("100ms")},
                                          briefRun(), kafka);
  ASSERT_EQ(report.latency.size(), 3u);
  EXPECT_TRUE(report.latency[0].stages.empty()) << "the floor has no stages";
  EXPECT_NE(report.latency[1].stages.find("sent -> taken by the source"), std::string::npos)
      << report.latency[1].stages;
  EXPECT_NE(report.latency[1].stages.find("Map -> arrival"), std::string::npos);
  EXPECT_TRUE(report.latency[2].stages.empty()) << "micro-batch: not timed per stage";
  EXPECT_EQ(report.latency[1].counted, report.latency[1].produced);
  std::ostringstream out;
  writeKafkaReport(out, report);
  EXPECT_NE(out.str().find("stages (p50 / p90 / p99) of kafka-transform continuous"),
            std::string::npos)
      << out.str();
}

// --kafka-rounds: the floor and gale alternate (floor first in odd rounds, last in even ones),
// every round is its own rows and its own ratio to the floor, and each continuous run says how
// long its spouts were held at their limit of trees in flight.
TEST(GaleCompareKafka, RoundsAlternateTheFloorAndGaleAndEachIsReportedBesideItsOwnFloor) {
  KafkaSettings kafka = twoPartitions();
  kafka.throughputRecords = 0;
  kafka.rounds = 2;
  std::vector<std::string> order;
  KafkaReport report = runKafkaComparison({KafkaPipeline::Transform}, {2000},
                                          {parseMode("continuous")}, briefRun(), kafka,
                                          [&](const std::string& what) { order.push_back(what); });
  // Run order: A B, then B A.
  ASSERT_EQ(order.size(), 4u);
  EXPECT_NE(order[0].find("r1 no engine (floor)"), std::string::npos) << order[0];
  EXPECT_NE(order[1].find("r1 continuous"), std::string::npos) << order[1];
  EXPECT_NE(order[2].find("r2 continuous"), std::string::npos) << order[2];
  EXPECT_NE(order[3].find("r2 no engine (floor)"), std::string::npos) << order[3];
  // Listed floor first in each round.
  ASSERT_EQ(report.latency.size(), 4u);
  const char* rows[][2] = {{"kafka-transform r1", "no engine (floor)"},
                           {"kafka-transform r1", "continuous"},
                           {"kafka-transform r2", "no engine (floor)"},
                           {"kafka-transform r2", "continuous"}};
  for (size_t i = 0; i < 4; ++i) {
    const KafkaRun& r = report.latency[i];
    SCOPED_TRACE(r.row.pipeline + " " + r.row.mode);
    EXPECT_EQ(r.row.pipeline, rows[i][0]);
    EXPECT_EQ(r.row.mode, rows[i][1]);
    EXPECT_EQ(r.round, static_cast<int>(i / 2 + 1));
    EXPECT_EQ(r.counted, r.produced);
    EXPECT_GT(r.row.p99, 0);
    if (r.row.mode == "continuous") {
      EXPECT_NE(r.engine.find("spout tasks back-pressured"),
                std::string::npos)
          << r.engine;
      EXPECT_NE(r.engine.find("lowest limit"), std::string::npos) << r.engine;
    } else {
      EXPECT_TRUE(r.engine.empty()) << "the floor has no engine: " << r.engine;
    }
  }
  std::ostringstream out;
  writeKafkaReport(out, report);
  for (int round : {1, 2}) {
    const std::string r = "kafka-transform r" + std::to_string(round);
    const KafkaRun& floor = report.latency[static_cast<size_t>(2 * (round - 1))];
    const KafkaRun& gale = report.latency[static_cast<size_t>(2 * (round - 1) + 1)];
    EXPECT_NE(out.str().find("p99 beside the floor's, " + r + " @ 2K/s: continuous " +
                             formatNanos(gale.row.p99) + " / " + formatNanos(floor.row.p99)),
              std::string::npos)
        << out.str();
    EXPECT_NE(out.str().find("engine of " + r + " continuous"), std::string::npos) << out.str();
  }
}

// --kafka-sink-tasks 0: a sink task (a producer, transactional in micro-batch mode) per task
// before it, fused into them; every record arrives once in both modes.
TEST(GaleCompareKafka, FusedSinkTasksDeliverEveryRecordInBothModes) {
  KafkaSettings kafka = twoPartitions();
  kafka.throughputRecords = 0;
  kafka.sinkTasks = 0;
  KafkaReport report = runKafkaComparison({KafkaPipeline::Transform, KafkaPipeline::Join}, {2000},
                                          {parseMode("continuous"), parseMode("100ms")},
                                          briefRun(), kafka);
  ASSERT_EQ(report.latency.size(), 6u);
  for (const KafkaRun& r : report.latency) {
    SCOPED_TRACE(r.row.pipeline + " " + r.row.mode);
    EXPECT_GT(r.produced, 100u);
    EXPECT_EQ(r.counted, r.produced);
    EXPECT_EQ(r.results, r.produced);
  }
}

// The layout each --kafka-sink-tasks asks for: 0 = one sink task per task before it, behind a
// shuffle at equal parallelism (what fusion needs); 1 = one task behind a fields grouping.
TEST(GaleCompareKafka, TheSinkHasOneTaskPerTaskBeforeItOrOneBehindAFieldsGrouping) {
  for (int sinkTasks : {0, 1}) {
    KafkaSettings kafka = twoPartitions();
    kafka.spoutTasks = 0;  // one per partition
    kafka.sinkTasks = sinkTasks;
    for (KafkaPipeline p : {KafkaPipeline::Transform, KafkaPipeline::Join}) {
      Topology t = kafkaPipelineTopology(p, "127.0.0.1:9", kafka);
      const ComponentSpec* out = nullptr;
      for (const ComponentSpec& c : t.components())
        if (c.name == "out") out = &c;
      ASSERT_NE(out, nullptr);
      ASSERT_EQ(out->inputs.size(), 1u);
      SCOPED_TRACE("sink tasks " + std::to_string(sinkTasks));
      EXPECT_EQ(out->parallelism, sinkTasks == 0 ? 2 : 1);
      EXPECT_EQ(out->inputs[0].grouping, sinkTasks == 0 ? Grouping::Shuffle : Grouping::Fields);
      EXPECT_TRUE(out->fusion);
    }
  }
}

// The default continuous layout: one spout task reads all four partitions, and every bolt has
// one task, so parse, transform, join and the sink all run fused into the spout's task (any
// grouping fuses at parallelism 1): one task thread, as the floor's relay has. Its limit of
// trees in flight is the default's per partition it reads. --kafka-spout-tasks 0 gives the
// old layout (a task per partition, the stateless bolts fused into each).
TEST(GaleCompareKafka, ContinuousRunsReadEveryPartitionInOneSpoutTaskWithEveryBoltOnIt) {
  for (int spoutTasks : {1, 2, 0}) {
    KafkaSettings kafka;
    kafka.partitions = 4;
    kafka.spoutTasks = spoutTasks;
    SCOPED_TRACE("spout tasks " + std::to_string(spoutTasks));
    const int expected = spoutTasks == 0 ? 4 : spoutTasks;
    for (KafkaPipeline p : {KafkaPipeline::Transform, KafkaPipeline::Join}) {
      Topology t = kafkaPipelineTopology(p, "127.0.0.1:9", kafka);
      for (const ComponentSpec& c : t.components()) {
        SCOPED_TRACE(c.name);
        EXPECT_TRUE(c.fusion);
        EXPECT_EQ(c.parallelism, c.name == "out" ? 1 : expected);
      }
    }
    EXPECT_EQ(kafkaContinuousConfig(kafka, 4).maxSpoutPending,
              Continuous{}.maxSpoutPending * static_cast<size_t>(4 / expected));
  }
  KafkaSettings three;
  three.spoutTasks = 2;
  EXPECT_EQ(kafkaContinuousConfig(three, 3).maxSpoutPending, 2 * Continuous{}.maxSpoutPending)
      << "a task reading two of three partitions";
  EXPECT_EQ(kafkaContinuousConfig(three, 1).maxSpoutPending, Continuous{}.maxSpoutPending)
      << "more spout tasks than partitions: one per partition";
}

TEST(GaleCompareKafka, AnUnknownPipelineIsRefusedListingTheValidOnes) {
  EXPECT_EQ(parseKafkaPipelines("all").size(), 3u);
  EXPECT_THROW(parseKafkaPipelines("transform,nope"), std::invalid_argument);
}

}  // namespace
}  // namespace gale::compare
