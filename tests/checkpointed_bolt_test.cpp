// A user's CheckpointedBolt in micro-batch mode: its state is committed with each batch and
// restored by the next run (exactly-once continuous mode: continuous_exactly_once_test.cpp), so
// the same stateful bolt is exactly-once in both modes.
#include <unistd.h>

#include <filesystem>
#include <map>

#include <gtest/gtest.h>

#include "exactly_once_word_count.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/memory_sink.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

// The word count with the counts in StatefulCountBolt, over the first `total` sentences, into
// `store` (each batch's count updates, in order per word).
Topology boltWordCount(int64_t total, MemoryStorePtr store, bool checkpointed) {
  TopologyBuilder b;
  b.setSpout("sentences", wordCountSentences(total), 2);
  b.setBolt("split", SplitWords{}, 2).shuffleGrouping("sentences");
  b.setBolt("count", StatefulCountBolt(checkpointed), 2).fieldsGrouping("split", Fields{"word"});
  b.setBolt("sink", MemorySink(store), 1).shuffleGrouping("count");
  return b.build();
}

// The last count of each word over the committed batches of `stores`, in order.
std::map<std::string, int64_t> latestCounts(const std::vector<MemoryStorePtr>& stores) {
  std::map<std::string, int64_t> m;
  for (const auto& store : stores)
    for (uint64_t txid : store->txids())
      for (const auto& row : store->batch(txid))
        m[std::get<std::string>(row.values[0])] = std::get<int64_t>(row.values[1]);
  return m;
}

// Two runs on one checkpoint: the first over 600 sentences, the second (the source grown to 920)
// from where the first committed. `checkpointed`: the bolt's counts are in its snapshot.
std::map<std::string, int64_t> countInTwoRuns(bool checkpointed) {
  fs::path dir = fs::temp_directory_path() / ("gale-checkpointed-bolt-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = 250;
  std::vector<MemoryStorePtr> stores;
  for (int64_t total : {600, 920}) {
    stores.push_back(std::make_shared<MemoryStore>());
    auto job = runMicroBatch(boltWordCount(total, stores.back(), checkpointed), cfg);
    EXPECT_TRUE(job.waitUntilDone(60s));
    EXPECT_EQ(job.progress().records, total == 600 ? 600u : 320u) << "the second run resumes";
  }
  fs::remove_all(dir);
  return latestCounts(stores);
}

std::map<std::string, int64_t> direct(int64_t total) {
  std::vector<std::string> all;
  for (int64_t g = 0; g < total; ++g) all.push_back(SentenceSource::sentenceAt(g));
  auto counts = directWordCount(all);
  return {counts.begin(), counts.end()};
}

TEST(CheckpointedBoltMicroBatch, ARestartedJobContinuesTheBoltsCommittedState) {
  EXPECT_EQ(countInTwoRuns(true), direct(920));
}

TEST(CheckpointedBoltMicroBatch, WithoutItsStateInTheSnapshotTheRestartedCountsStartAgain) {
  EXPECT_NE(countInTwoRuns(false), direct(920));
}

}  // namespace
}  // namespace gale
