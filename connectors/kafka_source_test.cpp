// KafkaSource against librdkafka's mock cluster (the real protocol on loopback), in both modes.
#include "gale/connectors/kafka_source.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "gale/batch/microbatch.h"
#include "gale/connectors/from_json.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/aggregate.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"
#include "gale/connectors/kafka_mock.h"
#include "kafka_test_util.h"

using namespace std::chrono_literals;

namespace gale {
namespace {

using namespace gale::testing;

// A micro-batch job: the source -> a MemorySink; returns the job (started) and the sink's store.
struct SinkJob {
  MicroBatchJob job;
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  std::string chk;
  SinkJob(SourcePtr src, const std::string& name) : chk(tempDir(name)) {
    TopologyBuilder b;
    b.setSpout("kafka", std::move(src), 1);
    b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
    job = runMicroBatch(b.build(), MicroBatch{.checkpoint = chk});
  }
  ~SinkJob() { std::filesystem::remove_all(chk); }
};

TEST(KafkaSourceTest, bad_options_are_refused_naming_the_option) {
  KafkaSource::Options o;
  o.subscribe = {"t"};
  EXPECT_THROW(
      {
        try {
          KafkaSource s(o);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("bootstrapServers"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  o.bootstrapServers = "127.0.0.1:1";
  o.assign = {{"t", 0}};
  EXPECT_THROW(KafkaSource{o}, std::invalid_argument);  // subscribe and assign
  o.assign.clear();
  o.startingOffsets = "{\"t\":{\"x\":1}}";
  EXPECT_THROW(
      {
        try {
          KafkaSource s(o);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("startingOffsets"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  o.startingOffsets = "earliest";
  o.endingOffsets = "earliest";
  EXPECT_THROW(KafkaSource{o}, std::invalid_argument);
  o.endingOffsets = "";
  o.latestOffsetsInterval = 0ms;  // would ask the broker in a busy loop
  EXPECT_THROW(KafkaSource{o}, std::invalid_argument);
  o.latestOffsetsInterval = 100ms;
  o.subscribePattern = "(";
  o.subscribe.clear();
  EXPECT_THROW(KafkaSource{o}, std::invalid_argument);
}

TEST(KafkaSourceTest, a_continuous_topology_reads_every_record_with_all_its_fields) {
  MockCluster mc;
  mc.createTopic("in", 3);
  const int n = 300;
  for (int i = 0; i < n; ++i) {
    mc.produce("in", i % 3, "k" + std::to_string(i), "v" + std::to_string(i),
               {{"h", "x" + std::to_string(i)}});
  }
  mc.flush();
  auto src = std::make_shared<KafkaSource>(baseOptions(mc, "in"));
  ASSERT_EQ(src->partitions(), 3);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", src, 2);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  auto running = runContinuous(b.build(), Continuous{});
  ASSERT_TRUE(store->waitForSize(n, 30s)) << store->size();
  running.stop();
  std::set<std::string> values;
  for (const auto& v : store->values()) {
    ASSERT_EQ(v.size(), 8u);
    std::string value = asText(v[1]);
    int i = std::stoi(value.substr(1));
    EXPECT_EQ(asText(v[0]), "k" + std::to_string(i));
    EXPECT_EQ(std::get<std::string>(v[2]), "in");
    EXPECT_EQ(std::get<int64_t>(v[3]), i % 3);
    EXPECT_EQ(std::get<int64_t>(v[4]), i / 3);  // produced in order per partition
    EXPECT_GT(std::get<Timestamp>(v[5]).micros, 0);
    EXPECT_EQ(std::get<int64_t>(v[6]), 0);  // create time
    EXPECT_EQ(std::get<std::string>(v[7]),
              "[{\"key\":\"h\",\"value\":\"x" + std::to_string(i) + "\"}]");
    values.insert(value);
  }
  EXPECT_EQ(values.size(), static_cast<size_t>(n));
}

// The headers field is JSON built straight from librdkafka's headers: every header in order,
// repeated names kept, names and values escaped exactly as JSON strings (quotes, backslashes,
// control characters, a NUL byte), UTF-8 as is, an empty value as ""; a record without headers
// has a null field. stats().records counts each record read once.
TEST(KafkaSourceTest, headers_are_exact_json_in_order_and_every_record_is_counted_once) {
  MockCluster mc;
  mc.createTopic("in", 1);
  mc.produce("in", 0, "k0", "v0",
             {{"sent", "1732999999123456"},
              {"q\"uote\\d", "line\nbreak\ttab\x01"},
              {"sent", "second"},
              {"empty", ""},
              {"\xc3\xa9", std::string("a\0b", 3)}});
  mc.produce("in", 0, "k1", "v1");
  const int more = 500;
  for (int i = 0; i < more; ++i) mc.produce("in", 0, "", "v", {{"n", std::to_string(i)}});
  mc.flush();
  auto o = baseOptions(mc, "in");
  o.endingOffsets = "latest";
  KafkaSource src(o);
  SystemClock clock;
  src.open(clock);
  std::vector<SourceRecord> out;
  const int64_t n = more + 2;
  auto deadline = std::chrono::steady_clock::now() + 30s;
  for (int64_t next = 0; next < n && std::chrono::steady_clock::now() < deadline;) {
    int64_t to = std::min(src.ready(0), next + 64);
    if (to <= next) continue;
    next += static_cast<int64_t>(src.read(0, next, to, out));
    src.commit(0, next);
  }
  ASSERT_EQ(out.size(), static_cast<size_t>(n));
  EXPECT_EQ(std::get<std::string>(out[0].values[7]),
            R"([{"key":"sent","value":"1732999999123456"},)"
            R"({"key":"q\"uote\\d","value":"line\nbreak\ttab\u0001"},)"
            R"({"key":"sent","value":"second"},{"key":"empty","value":""},)"
            "{\"key\":\"\xc3\xa9\",\"value\":\"a\\u0000b\"}]");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(out[1].values[7]))
      << toString(out[1].values[7]);
  for (int i = 0; i < more; ++i) {
    ASSERT_EQ(std::get<std::string>(out[static_cast<size_t>(i) + 2].values[7]),
              R"([{"key":"n","value":")" + std::to_string(i) + R"("}])");
  }
  EXPECT_EQ(src.stats().records, static_cast<uint64_t>(n));
  src.close();
}

TEST(KafkaSourceTest, a_bounded_micro_batch_job_ends_at_ending_offsets_and_a_rerun_resumes_there) {
  MockCluster mc;
  mc.createTopic("in", 2);
  for (int i = 0; i < 200; ++i) mc.produce("in", i % 2, "", std::to_string(i));
  mc.flush();
  std::string chk = tempDir("bounded");
  auto runOnce = [&](const std::string& ending, const std::shared_ptr<MemoryStore>& store) {
    auto o = baseOptions(mc, "in");
    o.endingOffsets = ending;
    o.maxOffsetsPerTrigger = 40;  // several batches
    TopologyBuilder b;
    b.setSpout("kafka", std::make_shared<KafkaSource>(o), 2);
    b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
    auto job = runMicroBatch(b.build(), MicroBatch{.checkpoint = chk});
    ASSERT_TRUE(job.waitUntilDone(60s)) << "the bounded job did not end";
  };
  auto first = std::make_shared<MemoryStore>();
  runOnce("{\"in\":{\"0\":50,\"1\":-1}}", first);
  EXPECT_EQ(first->size(), 150u);  // 50 of partition 0, all 100 of partition 1
  for (int i = 200; i < 240; ++i) mc.produce("in", i % 2, "", std::to_string(i));
  mc.flush();
  auto second = std::make_shared<MemoryStore>();
  runOnce("latest", second);
  // Resumed from the checkpoint (not from startingOffsets = earliest): the rest, once.
  std::multiset<std::string> seen;
  for (const auto& v : first->values()) seen.insert(asText(v[1]));
  for (const auto& v : second->values()) seen.insert(asText(v[1]));
  EXPECT_EQ(second->size(), 90u);
  EXPECT_EQ(seen.size(), 240u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 240u);
  std::filesystem::remove_all(chk);
}

// A bounded partition is available up to its end at once, whatever the fetch has buffered: a
// micro-batch planner that saw only fetched offsets cut the first batches from the partition
// whose fetch answered first, its event time ran ahead of the other's by more than the
// watermark delay, and the other's records were dropped as late (KafkaSinkTest's exactly-once
// test lost 1350 of 3000 counts that way once).
// Two partitions of 500 records each; the source's ends are looked up, then the broker goes
// down so no fetch can answer: both partitions must be available to 500 all the same, and the
// reads wait for the fetch once the broker is back.
void expectTheEndsAvailableBeforeTheFetch(MockCluster& mc, const std::string& endingOffsets) {
  mc.createTopic("skew", 2);
  for (int i = 0; i < 1000; ++i) mc.produce("skew", i % 2, "", std::to_string(i));
  mc.flush();
  auto o = baseOptions(mc, "skew");
  o.endingOffsets = endingOffsets;
  KafkaSource src(o);
  ASSERT_EQ(src.partitions(), 2);  // asks the broker for the ends
  mc.setBrokerDown(1, true);
  src.open(SystemClock::instance());
  EXPECT_EQ(src.available(0), 500);
  EXPECT_EQ(src.available(1), 500);
  mc.setBrokerDown(1, false);
  for (int p = 0; p < 2; ++p) {
    std::vector<SourceRecord> out;
    EXPECT_EQ(src.read(p, 0, 500, out), 500u) << "partition " << p;  // waits for the fetch
    ASSERT_EQ(out.size(), 500u);
    EXPECT_EQ(out.front().offset, 0);
    EXPECT_EQ(out.back().offset, 499);
  }
  EXPECT_EQ(src.finished(), !endingOffsets.empty());
  if (endingOffsets.empty()) {
    // Records produced later become available once the broker is asked again.
    for (int i = 0; i < 10; ++i) mc.produce("skew", 0, "", "more" + std::to_string(i));
    mc.flush();
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (src.available(0) < 510 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    EXPECT_EQ(src.available(0), 510);
  }
  src.close();
}

TEST(KafkaSourceTest, a_bounded_partition_is_available_to_its_end_before_it_is_fetched) {
  MockCluster mc(1);
  expectTheEndsAvailableBeforeTheFetch(mc, "latest");
}

// The same skew at the start of an unbounded job (Spark asks for the latest offsets per trigger).
TEST(KafkaSourceTest, an_unbounded_partition_is_available_to_the_brokers_end_before_it_is_fetched) {
  MockCluster mc(1);
  expectTheEndsAvailableBeforeTheFetch(mc, "");
}

// The source's own lookups (the broker's end offsets every latestOffsetsInterval) go through a
// client of their own: a slow answer to them does not hold back the records' fetches, which on
// one connection would wait behind it (continuous-mode latency).
TEST(KafkaSourceTest, slow_end_offset_lookups_do_not_hold_back_the_records) {
  MockCluster mc(1);
  mc.createTopic("slow", 1);
  auto o = baseOptions(mc, "slow");
  o.latestOffsetsInterval = 10ms;
  o.requestTimeout = 3s;
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(o), 1);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  auto running = runContinuous(b.build(), Continuous{});
  for (int i = 0; i < 10; ++i) mc.produce("slow", 0, "", "a" + std::to_string(i));
  mc.flush();
  ASSERT_TRUE(store->waitForSize(10, 30s)) << store->size();
  mc.delayResponses(1, /*ListOffsets*/ 2, 1000, 20s);
  for (int i = 0; i < 10; ++i) mc.produce("slow", 0, "", "b" + std::to_string(i));
  mc.flush();
  // Well before a delayed lookup is answered.
  EXPECT_TRUE(store->waitForSize(20, 15s)) << store->size();
  running.kill();
}

// Fills partition 0 of `topic` past the mock cluster's per-partition retention, so its log no
// longer starts at 0; returns the new log start.
int64_t produceUntilTheLogStartMoves(MockCluster& mc, const std::string& topic) {
  std::string big(100 * 1024, 'x');
  for (int i = 0; i < 200; ++i) {
    mc.produce(topic, 0, "", big);
    if (i % 20 == 19) {
      mc.flush();
      if (mc.watermarks(topic, 0).first > 0) break;
    }
  }
  mc.flush();
  return mc.watermarks(topic, 0).first;
}

// Topic 'lossy' whose partition 0 lost offsets [0, low) to retention, and options that read it
// from offset 0.
struct LossyTopic {
  int64_t low = 0;
  KafkaSource::Options options;
};
LossyTopic lossyTopic(MockCluster& mc) {
  mc.createTopic("lossy", 1);
  LossyTopic t{produceUntilTheLogStartMoves(mc, "lossy"), baseOptions(mc, "lossy")};
  if (t.low == 0) ADD_FAILURE() << "the mock cluster kept every record; cannot provoke data loss";
  t.options.startingOffsets = "{\"lossy\":{\"0\":0}}";
  return t;
}

// `waitForTheJob` must throw the data-loss error of partition 0 of 'lossy', offsets [0, low).
void expectTheDataLossError(const std::function<bool()>& waitForTheJob, int64_t low) {
  try {
    ASSERT_TRUE(waitForTheJob()) << "the job neither failed nor ended";
    FAIL() << "the job ended without an error";
  } catch (const std::runtime_error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("topic 'lossy' partition 0"), std::string::npos) << m;
    EXPECT_NE(m.find("[0, " + std::to_string(low) + ")"), std::string::npos) << m;
    EXPECT_NE(m.find("failOnDataLoss"), std::string::npos) << m;
  }
}

TEST(KafkaSourceTest, fail_on_data_loss_stops_the_job_naming_topic_partition_and_range) {
  MockCluster mc;
  auto [low, o] = lossyTopic(mc);
  ASSERT_GT(low, 0);
  o.endingOffsets = "latest";
  SinkJob run(std::make_shared<KafkaSource>(o), "loss-true");
  expectTheDataLossError([&] { return run.job.waitUntilDone(60s); }, low);
  EXPECT_EQ(run.store->size(), 0u);
}

// In continuous mode too: the topology stops with the error (a spout's ordinary SourceError is
// retried, which stalled the partition with the error only in the log).
TEST(KafkaSourceTest, fail_on_data_loss_stops_a_continuous_topology_naming_topic_partition_and_range) {
  MockCluster mc;
  auto [low, o] = lossyTopic(mc);
  ASSERT_GT(low, 0);
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(o), 1);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  auto running = runContinuous(b.build(), Continuous{});
  expectTheDataLossError([&] { return running.waitUntilDone(60s); }, low);
  EXPECT_EQ(store->size(), 0u);
}

TEST(KafkaSourceTest, without_fail_on_data_loss_lost_offsets_are_skipped_and_counted) {
  MockCluster mc;
  auto [low, o] = lossyTopic(mc);
  ASSERT_GT(low, 0);
  int64_t high = mc.watermarks("lossy", 0).second;
  o.endingOffsets = "latest";
  o.failOnDataLoss = false;
  auto src = std::make_shared<KafkaSource>(o);
  SinkJob run(src, "loss-false");
  ASSERT_TRUE(run.job.waitUntilDone(60s));
  // What is still there arrives; what is gone is counted.
  EXPECT_EQ(static_cast<int64_t>(run.store->size()), high - low);
  EXPECT_EQ(static_cast<int64_t>(src->stats().lostRecords), low);
  EXPECT_EQ(run.job.progress().offsets.at("kafka").at(0), high);
}

TEST(KafkaSourceTest, a_continuous_read_survives_the_broker_going_down_and_up) {
  MockCluster mc(1);
  mc.createTopic("in", 1);
  for (int i = 0; i < 100; ++i) mc.produce("in", 0, "", std::to_string(i));
  mc.flush();
  auto src = std::make_shared<KafkaSource>(baseOptions(mc, "in"));
  auto store = std::make_shared<MemoryStore>();
  TopologyBuilder b;
  b.setSpout("kafka", src, 1);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  auto running = runContinuous(b.build(), Continuous{});
  ASSERT_TRUE(store->waitForSize(100, 30s));
  mc.setBrokerDown(1, true);
  for (int i = 100; i < 200; ++i) mc.produce("in", 0, "", std::to_string(i));  // buffered
  // The source notices (and says so in its stats and the log) before the broker returns.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (src->stats().errors == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_GT(src->stats().errors, 0u);
  EXPECT_FALSE(src->stats().lastError.empty());
  mc.setBrokerDown(1, false);
  mc.flush();
  ASSERT_TRUE(store->waitForSize(200, 60s)) << store->size();
  running.stop();
  std::set<std::string> values;
  for (const auto& v : store->values()) values.insert(asText(v[1]));
  EXPECT_EQ(values.size(), 200u);
}

TEST(KafkaSourceTest, a_new_source_of_a_named_group_starts_where_the_last_one_committed) {
  MockCluster mc;
  mc.createTopic("in", 2);
  for (int i = 0; i < 100; ++i) mc.produce("in", i % 2, "", std::to_string(i));
  mc.flush();
  auto o = baseOptions(mc, "in");  // no groupId: commits go to "gale-kafka:in"
  {
    KafkaSource first(o);
    EXPECT_EQ(first.initialOffset(0), 0);  // startingOffsets = earliest
    first.open(SystemClock::instance());
    std::vector<SourceRecord> recs;
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (first.available(0) < 30 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(2ms);
    }
    ASSERT_EQ(first.read(0, 0, 30, recs), 30u);
    first.commit(0, 30);
    first.close();  // sends the last commit
  }
  // The default group is written, never read back: a new run starts at startingOffsets.
  EXPECT_EQ(KafkaSource(o).initialOffset(0), 0);
  // Named, the group's commits are where a new run starts.
  o.groupId = "gale-kafka:in";
  KafkaSource named(o);
  EXPECT_EQ(named.initialOffset(0), 30);
  EXPECT_EQ(named.initialOffset(1), 0);
}

// Partition 0's event times run 100 s ahead of partition 1's (a partition that lags, as after a
// consumer outage on one partition). A 10 s tumbling count over both with a 1 s watermark delay
// must count every record: the watermark is the minimum over the partitions, so partition 1's
// records are not late. With one watermark over the whole source (max event time seen), every
// record of partition 1 read after partition 0's first was dropped as late.
constexpr int kLagRecords = 200;  // per partition

void produceALaggingPartition(MockCluster& mc) {
  mc.createTopic("lag", 2);
  const int64_t base = 1'700'000'000'000;  // ms
  for (int i = 0; i < kLagRecords; ++i) {
    mc.produce("lag", 0, "", "ahead", {}, base + 100'000 + i * 100);
    mc.produce("lag", 1, "", "behind", {}, base + i * 100);
  }
  mc.flush();
}

// The topology: the source (one task reads both partitions) -> a 10 s tumbling count per topic.
Topology lagTopology(KafkaSource::Options o, std::shared_ptr<MemoryStore> store,
                            WatermarkSpec wm) {
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(std::move(o)), 1).withWatermark(wm);
  b.setBolt("count", *windowed(Tumbling(10s), Count{}).keyBy({"topic"}).eventTime("timestamp")
                          .outputMode(OutputMode::Append).build(), 1)
      .fieldsGrouping("kafka", Fields{"topic"});
  b.setBolt("sink", MemorySink(std::move(store), {}), 1).shuffleGrouping("count");
  return b.build();
}

int64_t sumOfCounts(const MemoryStore& store) {
  int64_t sum = 0;
  for (const auto& v : store.values()) sum += std::get<int64_t>(v.back());
  return sum;
}

TEST(KafkaSourceTest, a_lagging_partition_loses_nothing_as_late_in_micro_batch_mode) {
  MockCluster mc;
  produceALaggingPartition(mc);
  auto o = baseOptions(mc, "lag");
  o.endingOffsets = "latest";
  o.maxOffsetsPerTrigger = 40;  // 20 per partition per batch: partition 1 needs ten batches
  auto store = std::make_shared<MemoryStore>();
  std::string chk = tempDir("lag-mb");
  WatermarkSpec wm{.field = "timestamp", .delay = 1s};
  auto job = runMicroBatch(lagTopology(o, store, wm), MicroBatch{.checkpoint = chk});
  ASSERT_TRUE(job.waitUntilDone(60s));
  std::filesystem::remove_all(chk);
  EXPECT_EQ(sumOfCounts(*store), 2 * kLagRecords);
}

TEST(KafkaSourceTest, a_lagging_partition_loses_nothing_as_late_in_continuous_mode) {
  MockCluster mc;
  produceALaggingPartition(mc);
  auto o = baseOptions(mc, "lag");
  o.endingOffsets = "latest";
  auto store = std::make_shared<MemoryStore>();
  // A watermark after every tuple, and a clock that never makes a partition idle: partition 1
  // holds the watermark back however late its fetch answers.
  ManualClock clock(Timestamp{1'000'000});
  WatermarkSpec wm{.field = "timestamp", .delay = 1s, .everyTuples = 1};
  Continuous c;
  c.clock = &clock;
  auto running = runContinuous(lagTopology(o, store, wm), c);
  ASSERT_TRUE(running.waitUntilDone(60s));
  EXPECT_EQ(sumOfCounts(*store), 2 * kLagRecords);
}

// Partition 1 has no records at all: it holds the watermark back until it has read nothing for
// the idleness timeout (Flink's withIdleness), then partition 0's windows fire.
TEST(KafkaSourceTest, an_idle_partition_stops_holding_the_watermark_back_after_the_timeout) {
  MockCluster mc;
  mc.createTopic("idle", 2);
  const int64_t base = 1'700'000'000'000;  // ms
  for (int i = 0; i < 100; ++i) mc.produce("idle", 0, "", "x", {}, base + i * 300);  // 30 s
  mc.flush();
  auto store = std::make_shared<MemoryStore>();
  ManualClock clock(Timestamp{1'000'000});
  WatermarkSpec wm{.field = "timestamp", .delay = 1s, .everyTuples = 1, .idleTimeout = 5s};
  Continuous c;
  c.clock = &clock;
  auto running = runContinuous(lagTopology(baseOptions(mc, "idle"), store, wm), c);
  // Every record read (the count bolt has them all) while partition 1 is not yet idle: no window
  // may fire, since partition 1 might still bring records of those windows.
  auto deadline = std::chrono::steady_clock::now() + 30s;
  auto executed = [&] { return running.metrics().find("count")->total().executed; };
  while (executed() < 100 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  ASSERT_EQ(executed(), 100u);
  auto spoutWatermark = running.metrics().find("kafka")->tasks.at(0).watermark;
  EXPECT_TRUE(!spoutWatermark || *spoutWatermark == kNoWatermark)
      << "the watermark moved while partition 1 could still bring records behind it";
  EXPECT_EQ(store->size(), 0u);
  // Partition 1 is idle now (so is partition 0, until its next record: with every partition
  // idle the watermark stays, as in Flink).
  clock.advance(6s);
  mc.produce("idle", 0, "", "x", {}, base + 40'000);
  mc.flush();
  ASSERT_TRUE(store->waitForSize(3, 30s)) << store->size();  // [0, 10), [10, 20), [20, 30)
  running.kill();
  EXPECT_EQ(sumOfCounts(*store), 100);
}

TEST(KafkaSourceTest, records_produced_by_kcat_from_another_process_are_read_with_their_keys) {
  if (std::system("command -v kcat > /dev/null 2>&1") != 0) GTEST_SKIP() << "kcat is not installed";
  MockCluster mc;
  mc.createTopic("ext", 1);
  std::string cmd = "printf 'a:1\\nb:2\\nc:3\\n' | kcat -b " + mc.bootstraps() +
                    " -t ext -P -K: -p 0 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto o = baseOptions(mc, "ext");
  o.endingOffsets = "latest";
  SinkJob run(std::make_shared<KafkaSource>(o), "kcat");
  ASSERT_TRUE(run.job.waitUntilDone(60s));
  std::map<std::string, std::string> kv;
  for (const auto& v : run.store->values()) kv[asText(v[0])] = asText(v[1]);
  EXPECT_EQ(kv, (std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

TEST(KafkaSourceTest, a_leader_change_mid_run_loses_and_repeats_nothing_in_micro_batch_mode) {
  MockCluster mc(3);
  mc.createTopic("in", 2, 3);
  for (int i = 0; i < 200; ++i) mc.produce("in", i % 2, "", std::to_string(i));
  mc.flush();
  auto o = baseOptions(mc, "in");
  o.maxOffsetsPerTrigger = 20;  // many batches, so the change lands mid-run
  auto src = std::make_shared<KafkaSource>(o);
  TopologyBuilder b;
  b.setSpout("kafka", src, 1);
  auto store = std::make_shared<MemoryStore>();
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  std::string chk = tempDir("leader");
  auto job = runMicroBatch(b.build(), MicroBatch{.checkpoint = chk});
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (store->size() < 40 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(2ms);
  }
  mc.setPartitionLeader("in", 0, 3);
  mc.setPartitionLeader("in", 1, 2);
  for (int i = 200; i < 300; ++i) mc.produce("in", i % 2, "", std::to_string(i));
  mc.flush();
  ASSERT_TRUE(store->waitForSize(300, 60s)) << store->size();
  job.stop();
  ASSERT_TRUE(job.waitUntilDone(30s));
  std::multiset<std::string> values;
  for (const auto& v : store->values()) values.insert(asText(v[1]));
  EXPECT_EQ(values.size(), 300u);
  EXPECT_EQ(std::set<std::string>(values.begin(), values.end()).size(), 300u);
  std::filesystem::remove_all(chk);
}

TEST(KafkaSourceTest, malformed_json_records_land_in_the_error_stream_with_their_raw_bytes) {
  MockCluster mc;
  mc.createTopic("events", 1);
  mc.produce("events", 0, "a", R"({"city":"Oslo","domain":"a.no","event":"click"})");
  mc.produce("events", 0, "b", R"({"city":"Oslo","domain":)");
  mc.produce("events", 0, "c", R"({"city":"Bergen","domain":"b.no","event":"view"})");
  mc.produce("events", 0, "d", "not json at all");
  mc.flush();
  auto o = baseOptions(mc, "events");
  o.endingOffsets = "latest";
  TopologyBuilder b;
  b.setSpout("kafka", std::make_shared<KafkaSource>(o), 1);
  b.setBolt("parse",
            FromJson({.field = "value",
                      .schema = Fields{FieldSpec{"city", Type::String},
                                       FieldSpec{"domain", Type::String},
                                       FieldSpec{"event", Type::String}},
                      .keep = {"offset"}}),
            1)
      .shuffleGrouping("kafka");
  auto good = std::make_shared<MemoryStore>();
  auto bad = std::make_shared<MemoryStore>();
  b.setBolt("good", MemorySink(good, {}), 1).shuffleGrouping("parse");
  b.setBolt("bad", MemorySink(bad, {}), 1).shuffleGrouping("parse", FromJson::kErrorStream);
  std::string chk = tempDir("json");
  auto job = runMicroBatch(b.build(), MicroBatch{.checkpoint = chk});
  ASSERT_TRUE(job.waitUntilDone(60s));
  ASSERT_EQ(good->size(), 2u);
  ASSERT_EQ(bad->size(), 2u);
  std::map<int64_t, Values> errors;
  for (auto& v : bad->values()) errors[std::get<int64_t>(v[0])] = v;
  EXPECT_EQ(std::get<Bytes>(errors.at(1)[1]).data, R"({"city":"Oslo","domain":)");
  EXPECT_EQ(std::get<Bytes>(errors.at(3)[1]).data, "not json at all");
  EXPECT_NE(std::get<std::string>(errors.at(1)[2]).find("bad JSON"), std::string::npos);
  std::filesystem::remove_all(chk);
}

}  // namespace
}  // namespace gale
