// KafkaSink as a two-phase-commit sink in exactly-once continuous mode, on librdkafka's mock
// cluster: the sink's protocol driven directly (a crash between the checkpoint record and the
// Kafka commit, a second recovery, corrupt state), and the word count into Kafka run to the end
// and killed with a checkpoint in flight. The mock cluster shows the records of an open
// transaction to read_committed consumers too (kafka_sink_test.cpp), so "read committed" here
// means everything in the topic: nothing may be there before its checkpoint completes.
#include <atomic>
#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "exactly_once_word_count.h"
#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_sink.h"
#include "gale/core/state_codec.h"
#include "temp_dir_for_test.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

struct Cluster {
  Cluster() {
    mc.createTopic("out", 3);
    mc.createTopic("gale_sink_markers", 1);
  }
  KafkaMockCluster mc;
};

KafkaSink::Options wordSink(const KafkaMockCluster& mc) {
  KafkaSink::Options o;
  o.bootstrapServers = mc.bootstraps();
  o.topic = "out";
  o.keyField = "word";
  o.valueField = "count";
  o.transactionalIdPrefix = "keos-test";
  o.producerProperties = {{"linger.ms", "1"}};
  return o;
}

// word -> its counts in the order Kafka holds them (one word is one key: one partition).
using Counts = std::map<std::string, std::vector<int64_t>>;
Counts countsInKafka(KafkaMockCluster& mc) {
  Counts seen;
  for (const auto& r : mc.consumeAll("out", /*readCommitted=*/true)) {
    seen[r.key].push_back(std::stoll(r.value));
  }
  return seen;
}

// Each word's counts are 1, 2, ..., n: nothing lost (a gap) and nothing twice (a repeat).
// `complete`: n is the word's direct count over all `total` sentences.
void expectCountsOnce(KafkaMockCluster& mc, int64_t total, bool complete) {
  std::vector<std::string> all;
  for (int64_t g = 0; g < total; ++g) all.push_back(SentenceSource::sentenceAt(g));
  auto oracle = directWordCount(all);
  auto seen = countsInKafka(mc);
  if (complete) {
    ASSERT_EQ(seen.size(), oracle.size());
  }
  for (const auto& [word, counts] : seen) {
    ASSERT_TRUE(oracle.count(word)) << word;
    std::vector<int64_t> expected;
    int64_t n = complete ? oracle[word] : static_cast<int64_t>(counts.size());
    for (int64_t i = 1; i <= n; ++i) expected.push_back(i);
    ASSERT_EQ(counts, expected) << "word '" << word << "'";
  }
}

Topology wordCountIntoKafka(const KafkaSink& sink, int64_t total, double rate = 0) {
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(total, rate), 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", CountWords{}, 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("kafka", sink, 2).fieldsGrouping("count", Fields{"word"});
  return b.build();
}

Continuous exactlyOnce(const TempDir& d, Duration interval) {
  return Continuous{.guarantee = Guarantee::ExactlyOnce, .checkpointInterval = interval,
                    .checkpointDir = d.sub("chk"), .checkpointSync = false};
}

class NullCollector final : public OutputCollector {
 public:
  void ack(const Tuple&) override {}
  void fail(const Tuple&) override {}
  void emitTuple(TaskId, std::string_view, const Tuple* const*, size_t, Values&&) override {}
};

// One sink task driven as the runtime drives it, for the protocol tests.
struct SinkTask {
  explicit SinkTask(const KafkaSink::Options& o) : sink(o) {
    sink.prepare(TopologyContext{.component = "kafka", .task = 0, .taskIndex = 0}, out);
  }
  void write(const std::string& word, int64_t count) {
    sink.execute(Tuple(schema, Values{word, count}), out);
  }
  ~SinkTask() { sink.cleanup(); }
  SchemaPtr schema = makeSchema("count", "default", Fields{"word", "count"});
  NullCollector out;
  KafkaSink sink;
};

TEST(KafkaSinkExactlyOnce, RecordsReachKafkaOnlyWhenTheirCheckpointCommits) {
  Cluster c;
  SinkTask t(wordSink(c.mc));
  t.sink.recover(0);
  t.write("a", 1);
  t.write("b", 1);
  t.sink.preCommit(1);
  t.write("a", 2);  // after barrier 1: checkpoint 2's
  EXPECT_TRUE(countsInKafka(c.mc).empty()) << "nothing before checkpoint 1 completes";
  t.sink.commit(1);
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"a", {1}}, {"b", {1}}}));
  t.sink.commit(1);  // idempotent
  t.sink.preCommit(2);
  t.sink.preCommit(3);  // an empty checkpoint
  t.write("b", 2);
  t.sink.preCommit(4);
  t.sink.commit(3);  // 2 and 3 in one transaction
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"a", {1, 2}}, {"b", {1}}}));
  t.sink.commit(4);
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"a", {1, 2}}, {"b", {1, 2}}}));
  EXPECT_EQ(t.sink.stats().transactions, 3u);
}

TEST(KafkaSinkExactlyOnce, ACrashBetweenTheCheckpointRecordAndTheKafkaCommitIsCommittedOnRecoveryOnce) {
  Cluster c;
  std::string state2;
  {
    SinkTask t(wordSink(c.mc));
    t.sink.recover(0);
    t.write("a", 1);
    t.sink.preCommit(1);
    ASSERT_TRUE(t.sink.preCommitState());  // checkpoint 1's state (its record: the runtime's)
    t.write("a", 2);
    t.sink.preCommit(2);
    state2 = *t.sink.preCommitState();  // checkpoint 2 holds both, neither is in Kafka yet
    t.write("a", 3);                    // after barrier 2: thrown away by the crash
    // The crash: checkpoint 2 completed in the store, the sink never committed it.
  }
  EXPECT_TRUE(countsInKafka(c.mc).empty());
  {
    SinkTask t(wordSink(c.mc));
    t.sink.restorePreCommitState(state2);
    t.sink.recover(2);
    EXPECT_EQ(t.sink.stats().transactions, 1u);
  }
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"a", {1, 2}}}));
  {
    // A crash right after that commit: the next run restores the same state, the marker says
    // checkpoint 2 is in Kafka, and nothing is written twice.
    SinkTask t(wordSink(c.mc));
    t.sink.restorePreCommitState(state2);
    t.sink.recover(2);
    EXPECT_EQ(t.sink.stats().transactions, 0u);
    EXPECT_EQ(t.sink.stats().skippedBatches, 2u);  // checkpoints 1 and 2
    t.write("a", 3);
    t.sink.preCommit(3);
    t.sink.commit(3);
  }
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"a", {1, 2, 3}}}));
}

TEST(KafkaSinkExactlyOnce, CorruptPreCommitStateIsRefusedNamingTheSink) {
  Cluster c;
  std::string good;
  {
    SinkTask t(wordSink(c.mc));
    t.sink.recover(0);
    t.write("a", 1);
    t.sink.preCommit(1);
    good = *t.sink.preCommitState();
  }
  for (std::string bad : {std::string("garbage"), good.substr(0, good.size() - 1), good + "x"}) {
    SinkTask t(wordSink(c.mc));
    try {
      t.sink.restorePreCommitState(bad);
      ADD_FAILURE() << "accepted " << bad.size() << " bytes of bad state";
    } catch (const SnapshotError& e) {
      EXPECT_NE(std::string(e.what()).find("kafka sink 'kafka' task 0"), std::string::npos)
          << e.what();
    }
  }
}

TEST(KafkaSinkExactlyOnce, ATupleThatCannotBeEncodedIsRefusedAndLeavesNothingBehind) {
  Cluster c;
  KafkaSink::Options o = wordSink(c.mc);
  o.topic.clear();
  o.topicField = "word";  // the topic from a field; an empty one cannot be written
  SinkTask t(o);
  t.sink.recover(0);
  t.write("out", 1);
  EXPECT_THROW(t.write("", 2), std::invalid_argument);
  t.write("out", 3);
  t.sink.preCommit(1);
  t.sink.commit(1);  // would fail on a half-encoded record for topic ""
  EXPECT_EQ(countsInKafka(c.mc), (Counts{{"out", {1, 3}}}));
}

TEST(KafkaSinkExactlyOnce, AWordCountIntoKafkaCommitsEveryCountOnceAndOnlyAfterItsCheckpoint) {
  Cluster c;
  TempDir d;
  const int64_t total = 3000;
  std::atomic<uint64_t> written{0};
  std::atomic<int> early{0};
  KafkaSink::Options o = wordSink(c.mc);
  o.onTransactionPoint = [&](const char* point, uint64_t id) {
    if (std::string_view(point) == "begin" && id > written.load()) ++early;
  };
  KafkaSink sink(o);
  Continuous cfg = exactlyOnce(d, 10ms);
  cfg.onCheckpointPoint = [&](CheckpointPoint p, uint64_t id) {
    if (p == CheckpointPoint::CheckpointWritten) written = id;
  };
  ASSERT_TRUE(runContinuous(wordCountIntoKafka(sink, total), cfg).waitUntilDone(120s));
  expectCountsOnce(c.mc, total, /*complete=*/true);
  EXPECT_EQ(early.load(), 0) << "a Kafka transaction began before its checkpoint was written";
  EXPECT_GE(sink.stats().transactions, 1u);
  size_t records = 0;
  for (const auto& [w, counts] : countsInKafka(c.mc)) records += counts.size();
  EXPECT_EQ(sink.stats().produced, records)
      << "every record produced is in a committed transaction";
}

TEST(KafkaSinkExactlyOnce, AWordCountKilledWithACheckpointInFlightResumesAndCommitsEachCountOnce) {
  Cluster c;
  TempDir d;
  const int64_t total = 20000;
  const double rate = 100000;  // 0.2 s of input: checkpoints every 5 ms reach 3 within it
  KafkaSink sink(wordSink(c.mc));
  // Run 1 ends with checkpoint 3 in flight.
  runUntilBarrierThenKill(wordCountIntoKafka(sink, total, rate), exactlyOnce(d, 5ms), 3);
  EXPECT_LE(StateStore::inspect(d.sub("chk"))->lastCommittedTxid(), 3u);
  // What is in Kafka now is output of completed checkpoints only: a prefix of each word's counts.
  expectCountsOnce(c.mc, total, /*complete=*/false);
  ASSERT_TRUE(runContinuous(wordCountIntoKafka(sink, total, rate), exactlyOnce(d, 5ms))
                  .waitUntilDone(120s));
  expectCountsOnce(c.mc, total, /*complete=*/true);
}

TEST(KafkaSinkExactlyOnce, ASinkThatFailsBeforeItsKafkaCommitStopsTheJobAndTheNextRunCommitsIt) {
  Cluster c;
  TempDir d;
  const int64_t total = 20000;
  const double rate = 100000;
  std::atomic<uint64_t> failedAt{0}, firstAfterRestart{0};
  std::atomic<bool> restarted{false};
  KafkaSink::Options o = wordSink(c.mc);
  o.onTransactionPoint = [&](const char* point, uint64_t id) {
    if (std::string_view(point) != "begin") return;
    if (restarted) {
      uint64_t zero = 0;
      firstAfterRestart.compare_exchange_strong(zero, id);
      return;
    }
    // From checkpoint 2 on, run 1 commits nothing more (while the topology stops, its tasks
    // would retry the commit; a dead process would not).
    uint64_t none = 0;
    if (id >= 2) failedAt.compare_exchange_strong(none, id);
    if (failedAt.load() != 0) {
      throw std::runtime_error("injected: the process dies before the Kafka commit");
    }
  };
  KafkaSink sink(o);
  {
    auto run1 = runContinuous(wordCountIntoKafka(sink, total, rate), exactlyOnce(d, 5ms));
    EXPECT_THROW(run1.waitUntilDone(120s), std::runtime_error);
  }
  ASSERT_GE(failedAt.load(), 2u);
  uint64_t completed = StateStore::inspect(d.sub("chk"))->lastCommittedTxid();
  ASSERT_GE(completed, failedAt.load()) << "the sink commits only completed checkpoints";
  expectCountsOnce(c.mc, total, /*complete=*/false);
  restarted = true;
  ASSERT_TRUE(runContinuous(wordCountIntoKafka(sink, total, rate), exactlyOnce(d, 5ms))
                  .waitUntilDone(120s));
  expectCountsOnce(c.mc, total, /*complete=*/true);
  EXPECT_EQ(firstAfterRestart.load(), completed)
      << "recovery commits the pre-committed records of the last completed checkpoint first";
}

}  // namespace
}  // namespace gale
