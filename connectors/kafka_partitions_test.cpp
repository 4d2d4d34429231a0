// KafkaSource's partitions over time: partitions discovered while a job runs (numbered after the
// known ones, whatever their names) and a restart that resumes each partition by topic and
// partition, in micro-batch and exactly-once continuous mode, against librdkafka's mock cluster.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>
#include <thread>

#include "gale/batch/microbatch.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_sink.h"
#include "gale/connectors/kafka_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/topology/adapters.h"
#include "gale/topology/runtime.h"
#include "kafka_test_util.h"

using namespace std::chrono_literals;

namespace gale {
namespace {

using namespace gale::testing;

// librdkafka 2.0.2's mock cluster cannot add partitions to a topic (neither
// rd_kafka_mock_topic_create on an existing topic nor CreatePartitions is supported), so the
// tests add a topic matching the subscribed pattern: the same discovery (new (topic, partition)s
// in the metadata). The source over grow-.*, looking for new partitions every 10 ms.
KafkaSource::Options growingOptions(const MockCluster& mc) {
  auto o = baseOptions(mc, "");
  o.subscribe.clear();
  o.subscribePattern = "grow-.*";
  o.partitionDiscoveryInterval = 10ms;
  o.latestOffsetsInterval = 10ms;
  return o;
}

void expectNewPartitionsPickedUp(bool microBatch) {
  MockCluster mc;
  mc.createTopic("grow-a", 1);
  for (int i = 0; i < 50; ++i) mc.produce("grow-a", 0, "", "a" + std::to_string(i));
  mc.flush();
  auto o = growingOptions(mc);
  auto src = std::make_shared<KafkaSource>(o);
  auto store = std::make_shared<MemoryStore>();
  std::string chk = tempDir("grow");
  TopologyBuilder b;
  b.setSpout("kafka", src, 2);
  b.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
  std::optional<MicroBatchJob> job;
  std::optional<RunningTopology> running;
  if (microBatch) job.emplace(runMicroBatch(b.build(), MicroBatch{.checkpoint = chk}));
  else running.emplace(runContinuous(b.build(), Continuous{}));
  ASSERT_TRUE(store->waitForSize(50, 30s)) << store->size();
  mc.createTopic("grow-b", 2);
  for (int i = 0; i < 60; ++i) mc.produce("grow-b", i % 2, "", "b" + std::to_string(i));
  mc.flush();
  ASSERT_TRUE(store->waitForSize(110, 30s)) << store->size();
  EXPECT_EQ(src->partitions(), 3);
  EXPECT_EQ(src->topicPartition(2), std::pair(std::string("grow-b"), int32_t{1}));
  if (job) job->stop();
  if (running) running->stop();
  if (microBatch) {
    // The grown job resumes from its checkpoint (offsets keyed by topic and partition): one
    // more record in each topic, and nothing read twice.
    ASSERT_TRUE(job->waitUntilDone(30s));  // it lets go of the checkpoint
    job.reset();
    TopologyBuilder again;
    again.setSpout("kafka", std::make_shared<KafkaSource>(o), 2);
    again.setBolt("sink", MemorySink(store, {}), 1).shuffleGrouping("kafka");
    auto rerun = runMicroBatch(again.build(), MicroBatch{.checkpoint = chk});
    mc.produce("grow-a", 0, "", "a-after");
    mc.produce("grow-b", 1, "", "b-after");
    mc.flush();
    ASSERT_TRUE(store->waitForSize(112, 30s)) << store->size();
    rerun.stop();
    ASSERT_TRUE(rerun.waitUntilDone(30s));
    EXPECT_EQ(store->size(), 112u);
  }
  std::filesystem::remove_all(chk);
  std::set<std::string> values;
  for (const auto& v : store->values()) values.insert(asText(v[1]));
  EXPECT_EQ(values.size(), microBatch ? 112u : 110u);
}

TEST(KafkaSourceTest, partitions_added_while_a_continuous_job_runs_are_read_from_their_start) {
  expectNewPartitionsPickedUp(false);
}

TEST(KafkaSourceTest, partitions_added_while_a_micro_batch_job_runs_are_read_from_their_start) {
  expectNewPartitionsPickedUp(true);
}

// A checkpoint keys offsets by topic and partition: a partition added while the job was down
// that sorts before the known ones (so a fresh lookup numbers every partition differently) is
// read from its start, and the known ones resume where they were.
TEST(KafkaSourceTest, a_micro_batch_job_restarted_after_partitions_were_added_resumes_each_by_name) {
  MockCluster mc;
  mc.createTopic("grow-b", 2);
  for (int i = 0; i < 40; ++i) mc.produce("grow-b", i % 2, "", "b" + std::to_string(i));
  mc.flush();
  auto o = baseOptions(mc, "");
  o.subscribe.clear();
  o.subscribePattern = "grow-.*";
  std::string chk = tempDir("regrow");
  auto build = [&](std::shared_ptr<MemoryStore> store) {
    TopologyBuilder b;
    b.setSpout("kafka", std::make_shared<KafkaSource>(o), 1);
    b.setBolt("sink", MemorySink(std::move(store), {}), 1).shuffleGrouping("kafka");
    return b.build();
  };
  auto first = std::make_shared<MemoryStore>();
  {
    auto job = runMicroBatch(build(first), MicroBatch{.checkpoint = chk});
    ASSERT_TRUE(first->waitForSize(40, 30s)) << first->size();
    job.stop();
    ASSERT_TRUE(job.waitUntilDone(30s));
  }
  mc.createTopic("grow-a", 1);  // now (grow-a, 0) sorts first
  for (int i = 0; i < 10; ++i) mc.produce("grow-a", 0, "", "a" + std::to_string(i));
  for (int i = 40; i < 60; ++i) mc.produce("grow-b", i % 2, "", "b" + std::to_string(i));
  mc.flush();
  auto second = std::make_shared<MemoryStore>();
  auto job = runMicroBatch(build(second), MicroBatch{.checkpoint = chk});
  ASSERT_TRUE(second->waitForSize(30, 30s)) << second->size();
  job.stop();
  ASSERT_TRUE(job.waitUntilDone(30s));
  std::filesystem::remove_all(chk);
  std::multiset<std::string> values;
  for (const auto& v : second->values()) values.insert(asText(v[1]));
  std::multiset<std::string> expected;
  for (int i = 0; i < 10; ++i) expected.insert("a" + std::to_string(i));
  for (int i = 40; i < 60; ++i) expected.insert("b" + std::to_string(i));
  EXPECT_EQ(values, expected) << "lost, repeated or re-read records";
}

TEST(KafkaSourceTest, a_resumed_partition_order_naming_a_partition_that_is_gone_is_refused) {
  MockCluster mc(1);
  mc.createTopic("t", 1);
  KafkaSource src(baseOptions(mc, "t"));
  EXPECT_EQ(src.partitionIds(), std::vector<std::string>{"t/0"});
  EXPECT_THROW(src.resumePartitionOrder({"t-without-partition"}), SourceError);
  src.resumePartitionOrder({"gone/0", "t/0"});
  try {
    src.partitions();
    FAIL() << "a checkpoint's partition that is gone was not noticed";
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find("topic 'gone' partition 0 is in the checkpoint"),
              std::string::npos)
        << e.what();
  }
}

// The modes the test of a partition added among the known ones runs in.
enum class Run { Continuous, MicroBatch, ExactlyOnce };

// A job of `t` in `mode` on checkpoint directory `chk`; stop() ends it (an exactly-once job is
// killed, as a crash would end it), and it lets go of the checkpoint when destroyed.
struct GrowJob {
  std::optional<MicroBatchJob> batch;
  std::optional<RunningTopology> continuous;
  GrowJob(const Topology& t, Run mode, const std::string& chk) {
    if (mode == Run::MicroBatch) {
      batch.emplace(runMicroBatch(t, MicroBatch{.checkpoint = chk}));
    } else if (mode == Run::ExactlyOnce) {
      continuous.emplace(runContinuous(
          t, Continuous{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = 20ms,
                        .checkpointDir = chk, .checkpointSync = false}));
    } else {
      continuous.emplace(runContinuous(t, Continuous{}));
    }
  }
  void stop() {
    if (batch) {
      batch->stop();
      EXPECT_TRUE(batch->waitUntilDone(30s));
    }
    if (continuous) continuous->kill();
  }
};

// The values in `topic` (read_committed) once there are at least `n`, or what is there after 60 s.
std::multiset<std::string> awaitValues(MockCluster& mc, const std::string& topic, size_t n) {
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (true) {
    std::multiset<std::string> values;
    for (const auto& r : mc.consumeAll(topic, /*readCommitted=*/true)) values.insert(r.value);
    if (values.size() >= n || std::chrono::steady_clock::now() > deadline) return values;
    std::this_thread::sleep_for(20ms);
  }
}

// Kafka -> gale -> Kafka: a job of the spout "kafka" (2 tasks) writing its records' values to
// topic "out" through a transactional sink; grow-b (2 partitions) exists, and `expected` holds
// every value produced.
struct GrowPipeline {
  explicit GrowPipeline(const std::string& transactionalIdPrefix) {
    mc.createTopic("grow-b", 2);
    mc.createTopic("out", 1);
    mc.createTopic("gale_sink_markers", 1);
    sink.bootstrapServers = mc.bootstraps();
    sink.topic = "out";
    sink.transactionalIdPrefix = transactionalIdPrefix;
    sink.producerProperties = {{"linger.ms", "1"}};
  }
  void produce(const std::string& topic, int32_t partition, const std::string& value) {
    mc.produce(topic, partition, "", value);
    expected.insert(value);
  }
  Topology build(SourcePtr src) const {
    TopologyBuilder b;
    b.setSpout("kafka", std::move(src), 2);
    b.setBolt("out", KafkaSink(sink), 1).globalGrouping("kafka");
    return b.build();
  }
  MockCluster mc;
  KafkaSink::Options sink;
  std::multiset<std::string> expected;
};

// Kafka -> gale -> Kafka over the topics matching grow-.*: grow-b runs, grow-a (sorting first)
// is added while the job runs. The known partitions keep their numbers and grow-a/0 gets the
// next; a checkpointing job restarted after it (a fresh lookup would number grow-a/0 first)
// resumes each partition by name: one more record in each topic, and every record of the
// inputs in the output once.
void expectAnEarlierPartitionAddedWhileRunningIsReadAndResumedByName(Run mode) {
  GrowPipeline pipe("grow-early");
  MockCluster& mc = pipe.mc;
  const std::multiset<std::string>& expected = pipe.expected;
  for (int i = 0; i < 40; ++i) pipe.produce("grow-b", i % 2, "b" + std::to_string(i));
  mc.flush();
  auto o = growingOptions(mc);
  const std::string chk = tempDir("grow-early");
  auto src = std::make_shared<KafkaSource>(o);
  std::optional<GrowJob> first;
  first.emplace(pipe.build(src), mode, chk);
  ASSERT_EQ(awaitValues(mc, "out", 40).size(), 40u);
  mc.createTopic("grow-a", 1);
  for (int i = 0; i < 10; ++i) pipe.produce("grow-a", 0, "a" + std::to_string(i));
  mc.flush();
  std::multiset<std::string> got = awaitValues(mc, "out", 50);
  if (mode == Run::Continuous) {  // at-least-once: a replay may repeat a record
    EXPECT_EQ(std::set<std::string>(got.begin(), got.end()),
              std::set<std::string>(expected.begin(), expected.end()));
  } else {
    ASSERT_EQ(got, expected) << "lost or repeated records";
  }
  EXPECT_EQ(src->partitions(), 3);
  EXPECT_EQ(src->topicPartition(0), std::pair(std::string("grow-b"), int32_t{0}));
  EXPECT_EQ(src->topicPartition(2), std::pair(std::string("grow-a"), int32_t{0}));
  first->stop();
  first.reset();  // lets go of the checkpoint
  if (mode != Run::Continuous) {
    pipe.produce("grow-a", 0, "a-after");
    pipe.produce("grow-b", 1, "b-after");
    mc.flush();
    GrowJob second(pipe.build(std::make_shared<KafkaSource>(o)), mode, chk);
    auto values = awaitValues(mc, "out", expected.size());
    second.stop();
    EXPECT_EQ(values, expected) << "lost or repeated records";
  }
  std::filesystem::remove_all(chk);
}

TEST(KafkaSourceTest, a_partition_sorting_first_added_to_a_running_job_gets_the_next_number) {
  expectAnEarlierPartitionAddedWhileRunningIsReadAndResumedByName(Run::Continuous);
}

TEST(KafkaSourceTest, a_partition_sorting_first_added_to_a_micro_batch_job_resumes_by_name) {
  expectAnEarlierPartitionAddedWhileRunningIsReadAndResumedByName(Run::MicroBatch);
}

TEST(KafkaSourceTest, a_partition_sorting_first_added_to_an_exactly_once_job_resumes_by_name) {
  expectAnEarlierPartitionAddedWhileRunningIsReadAndResumedByName(Run::ExactlyOnce);
}

// An exactly-once continuous checkpoint names its partitions: a restart whose source no longer
// has one of them (a topic deleted or no longer subscribed) is refused naming it, instead of
// resuming other partitions at its offsets.
TEST(KafkaSourceTest, an_exactly_once_checkpoint_naming_a_partition_that_is_gone_is_refused) {
  MockCluster mc;
  mc.createTopic("keep", 1);
  mc.createTopic("gone", 1);
  mc.createTopic("out", 1);
  mc.createTopic("gale_sink_markers", 1);
  for (int i = 0; i < 10; ++i) {
    mc.produce("keep", 0, "", "k" + std::to_string(i));
    mc.produce("gone", 0, "", "g" + std::to_string(i));
  }
  mc.flush();
  auto build = [&](std::vector<std::string> topics) {
    auto o = baseOptions(mc, "");
    o.subscribe = std::move(topics);
    o.name = "kafka:events";  // the same source (and job) in both runs
    KafkaSink::Options ko;
    ko.bootstrapServers = mc.bootstraps();
    ko.topic = "out";
    TopologyBuilder b;
    b.setSpout("kafka", std::make_shared<KafkaSource>(o), 1);
    b.setBolt("out", KafkaSink(ko), 1).globalGrouping("kafka");
    return b.build();
  };
  const std::string chk = tempDir("gone-eo");
  {
    GrowJob first(build({"keep", "gone"}), Run::ExactlyOnce, chk);
    ASSERT_EQ(awaitValues(mc, "out", 20).size(), 20u);
    first.stop();
  }
  try {
    GrowJob second(build({"keep"}), Run::ExactlyOnce, chk);
    second.continuous->waitUntilDone(60s);
    ADD_FAILURE() << "resumed without the checkpoint's partition gone/0";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("topic 'gone' partition 0 is in the checkpoint"),
              std::string::npos)
        << e.what();
  }
  std::filesystem::remove_all(chk);
}

// A partition the checkpoint a run resumes from holds no offset of (added while the job was
// down; or found while it ran, but after the checkpoint's barrier passed the task it goes to)
// is read from its start, as Spark reads new partitions, not from startingOffsets: "latest"
// would lose the records written to it before the restart.
void expectAPartitionWithoutACheckpointOffsetReadFromItsStart(Run mode) {
  GrowPipeline pipe("no-offset");
  for (int i = 0; i < 20; ++i) pipe.produce("grow-b", i % 2, "b" + std::to_string(i));
  pipe.mc.flush();
  auto o = growingOptions(pipe.mc);
  o.startingOffsets = R"({"grow-b":{"0":-2,"1":-2}})";  // partitions not named: latest
  const std::string chk = tempDir("no-offset");
  {
    GrowJob first(pipe.build(std::make_shared<KafkaSource>(o)), mode, chk);
    ASSERT_EQ(awaitValues(pipe.mc, "out", 20), pipe.expected);
    first.stop();
  }
  pipe.mc.createTopic("grow-a", 1);
  for (int i = 0; i < 10; ++i) pipe.produce("grow-a", 0, "a" + std::to_string(i));
  pipe.mc.flush();
  GrowJob second(pipe.build(std::make_shared<KafkaSource>(o)), mode, chk);
  auto values = awaitValues(pipe.mc, "out", pipe.expected.size());
  second.stop();
  EXPECT_EQ(values, pipe.expected) << "lost or repeated records";
  std::filesystem::remove_all(chk);
}

TEST(KafkaSourceTest, a_partition_without_an_offset_in_a_micro_batch_checkpoint_is_read_from_its_start) {
  expectAPartitionWithoutACheckpointOffsetReadFromItsStart(Run::MicroBatch);
}

TEST(KafkaSourceTest, a_partition_without_an_offset_in_an_exactly_once_checkpoint_is_read_from_its_start) {
  expectAPartitionWithoutACheckpointOffsetReadFromItsStart(Run::ExactlyOnce);
}

// A spout task's tuples, as "topic/partition/value".
class Collected final : public SpoutOutputCollector {
 public:
  std::vector<std::string> records;
  void emitWatermark(Timestamp, bool) override {}
  void emitBatchBegin(uint64_t) override {}
  void emitBatchEnd(uint64_t) override {}
  void emitBarrier(uint64_t) override {}
  void emitEndOfStream() override {}

 protected:
  void emitTuple(TaskId, std::string_view, Values&& v, std::optional<MessageId>,
                 int64_t) override {
    records.push_back(asText(v[2]) + "/" + toString(v[3]) + "/" + asText(v[1]));
  }
};

// Two worker processes of one job build a source each, and number the partitions they discover
// while running each in its own order: worker A finds grow-c and then grow-a, worker B starts
// after both exist and numbers all four sorted. Spout task 0 runs in A and task 1 in B; by
// number, both would read grow-b/0 and grow-c/0 and neither grow-a/0 nor grow-b/1.
TEST(KafkaSourceTest, two_workers_numbering_discovered_partitions_differently_read_each_partition_once) {
  MockCluster mc;
  mc.createTopic("grow-b", 2);
  auto o = growingOptions(mc);
  auto a = std::make_shared<KafkaSource>(o);
  SourceSpout spoutA(a);
  Collected outA, outB;
  spoutA.open(TopologyContext{.component = "kafka", .task = 0, .taskIndex = 0, .parallelism = 2,
                              .acking = false},
              outA);
  auto awaitPartitions = [&](int n) {
    for (int i = 0; i < 3000 && a->partitions() < n; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_EQ(a->partitions(), n);
  };
  mc.createTopic("grow-c", 1);
  awaitPartitions(3);
  mc.createTopic("grow-a", 1);
  awaitPartitions(4);
  EXPECT_EQ(a->partitionIds(), (std::vector<std::string>{"grow-b/0", "grow-b/1", "grow-c/0",
                                                          "grow-a/0"}));
  auto b = std::make_shared<KafkaSource>(o);
  SourceSpout spoutB(b);
  spoutB.open(TopologyContext{.component = "kafka", .task = 1, .taskIndex = 1, .parallelism = 2,
                              .acking = false},
              outB);
  EXPECT_EQ(b->partitionIds(), (std::vector<std::string>{"grow-a/0", "grow-b/0", "grow-b/1",
                                                          "grow-c/0"}));
  std::set<std::string> expected;
  for (const std::string topic : {"grow-a", "grow-b", "grow-c"}) {
    for (int32_t p = 0; p < (topic == "grow-b" ? 2 : 1); ++p) {
      for (int i = 0; i < 5; ++i) {
        std::string v = "v" + std::to_string(i);
        mc.produce(topic, p, "", v);
        expected.insert(topic + "/" + std::to_string(p) + "/" + v);
      }
    }
  }
  mc.flush();
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (outA.records.size() + outB.records.size() < expected.size() &&
         std::chrono::steady_clock::now() < deadline) {
    if (!spoutA.nextTuple(outA) && !spoutB.nextTuple(outB)) std::this_thread::sleep_for(1ms);
    else spoutB.nextTuple(outB);
  }
  std::multiset<std::string> got(outA.records.begin(), outA.records.end());
  got.insert(outB.records.begin(), outB.records.end());
  EXPECT_EQ(got, std::multiset<std::string>(expected.begin(), expected.end()))
      << "a partition read twice, or by no task";
  std::set<std::string> partitionsA, partitionsB;
  for (const auto& r : outA.records) partitionsA.insert(r.substr(0, r.rfind('/')));
  for (const auto& r : outB.records) partitionsB.insert(r.substr(0, r.rfind('/')));
  for (const auto& p : partitionsA) EXPECT_FALSE(partitionsB.count(p)) << p << " read by both";
  spoutA.close();
  spoutB.close();
}

}  // namespace
}  // namespace gale
