// `gale rebalance --parallelism` as a user runs it: the gale program as a child process, against
// a ZooKeeper the test starts, for the windowed Kafka job (cluster_kafka_windows, its window of
// 128 key groups in 2 tasks) submitted over a checkpoint the test writes. No worker runs: the
// rebalance asks the program's description whether the checkpoint resumes at the new task count
// (a dry run of the restore, gale/topology/rescale.h). A checkpoint that would not — damaged, or
// of window tasks at different watermarks merged into one — is refused: exit 1, the reason
// named, the topology's spec and the checkpoint unchanged. One that would is accepted.
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "gale/cluster/daemons.h"
#include "gale/cluster/state.h"
#include "gale/core/aggregate.h"
#include "gale/core/key_group.h"
#include "gale/core/window.h"
#include "gale/state/state_store.h"
#include "run_program_for_test.h"
#include "temp_dir_for_test.h"
#include "test_cluster.h"

namespace gale::cluster {
namespace {

using namespace std::chrono_literals;
using gale::testing::ProgramRun;
using gale::testing::runProgram;
using gale::testing::TempDir;
using testing::readFile;
using testing::TestZooKeeper;

constexpr uint32_t kKeyGroups = 128;  // cluster_kafka_windows's window

struct Discard : Emitter {
  void emit(std::string_view, Values) override {}
};

// Task `task` of 2 of cluster_kafka_windows's window operator, at watermark `wm`, as its
// checkpoint stores it.
std::string windowBlob(int task, Timestamp wm) {
  OperatorPtr op = windowed(Tumbling(std::chrono::milliseconds(10000)), Count{})
                       .keyBy({"word"})
                       .eventTime("ts")
                       .outputMode(OutputMode::Append)
                       .build();
  Discard out;
  op->onWatermark(wm, out);
  return encodeKeyGroupSnapshot(kKeyGroups, 2, task,
                                dynamic_cast<KeyGroupedState&>(*op).snapshotKeyGroups(kKeyGroups));
}

class RebalanceCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = TestZooKeeper::missing(); !why.empty()) GTEST_SKIP() << "no ZooKeeper: " << why;
    zookeeper_ = std::make_unique<TestZooKeeper>(tmp_.sub("zookeeper"));
    zk_ = std::make_unique<ZkClient>(ZkClient::Options{zookeeper_->servers(), 2000ms, 30s});
  }

  std::string checkpoint() const { return tmp_.sub("checkpoint"); }

  // Commits `blobs` as the job's last checkpoint, and submits the job over it.
  void submitOver(const std::map<std::string, std::string>& blobs) {
    {
      StateStore store(checkpoint(), {.jobId = "kw"});
      BatchCommit commit = store.beginCommit(1);
      for (const auto& [key, blob] : blobs) commit.putSnapshot(key, blob);
      commit.commit();
    }
    ProgramRun r = gale("submit kw --binary " GALE_KAFKA_WINDOWS
                        " -- --bootstrap 127.0.0.1:1 --topic words --checkpoint " +
                        checkpoint() + " --output " + tmp_.sub("out") + " --mode exactly-once");
    ASSERT_EQ(r.exitCode, 0) << r.out;
  }

  ProgramRun gale(const std::string& args) const {
    return runProgram(GALE_BIN, "--zookeeper " + zookeeper_->servers() + " " + args);
  }

  TopologySpec spec() const {
    return parseTopologySpec(*zk_->get(topologiesPath(ClusterOptions{}) + "/kw"));
  }

  // `gale rebalance kw --parallelism window=<n>` is refused naming `reason`, and changes nothing.
  void expectRefused(int tasks, const std::string& reason) {
    SCOPED_TRACE("window=" + std::to_string(tasks));
    const std::string before = readFile(checkpoint() + "/data.mdb");
    ASSERT_FALSE(before.empty());
    ProgramRun r = gale("rebalance kw --parallelism window=" + std::to_string(tasks));
    EXPECT_EQ(r.exitCode, 1) << r.out;
    EXPECT_NE(r.out.find("gale: 'window' cannot resume its checkpoint"), std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find(reason), std::string::npos) << r.out;
    EXPECT_TRUE(spec().parallelism.empty()) << "the refused task count was stored";
    EXPECT_EQ(readFile(checkpoint() + "/data.mdb"), before) << "the checkpoint was changed";
  }

  TempDir tmp_;
  std::unique_ptr<TestZooKeeper> zookeeper_;
  std::unique_ptr<ZkClient> zk_;
};

TEST_F(RebalanceCli, ADamagedCheckpointIsRefusedNamingTheDamagedEntryAndNothingChanges) {
  std::string damaged = windowBlob(0, Timestamp{5000});
  damaged.resize(5);  // "GKGS" and a truncated version: the header cannot be read
  submitOver({{"window#0", damaged}, {"window#1", windowBlob(1, Timestamp{5000})}});
  expectRefused(3, "its entry 'window#0'");
}

TEST_F(RebalanceCli, WindowTasksAtDifferentWatermarksAreRefusedAMergeButNotASplit) {
  submitOver({{"window#0", windowBlob(0, Timestamp{5000})},
              {"window#1", windowBlob(1, Timestamp{7000})}});
  // Three tasks: one of them takes groups of both old tasks, which the restore refuses.
  expectRefused(3, "watermarks differ");
  expectRefused(1, "watermarks differ");
  // Four: each new task takes groups of one old task only.
  ProgramRun r = gale("rebalance kw --parallelism window=4");
  EXPECT_EQ(r.exitCode, 0) << r.out;
  EXPECT_EQ(spec().parallelism, (std::map<std::string, int>{{"window", 4}}));
}

TEST_F(RebalanceCli, ACheckpointThatResumesAtTheNewCountIsAcceptedAndKeptAsItWas) {
  submitOver({{"window#0", windowBlob(0, Timestamp{5000})},
              {"window#1", windowBlob(1, Timestamp{5000})}});
  const std::string before = readFile(checkpoint() + "/data.mdb");
  ProgramRun r = gale("rebalance kw --parallelism window=3");
  ASSERT_EQ(r.exitCode, 0) << r.out;
  TopologySpec s = spec();
  EXPECT_EQ(s.parallelism, (std::map<std::string, int>{{"window", 3}}));
  auto window = std::find_if(s.components.begin(), s.components.end(),
                             [](const ComponentTasks& c) { return c.name == "window"; });
  ASSERT_NE(window, s.components.end());
  EXPECT_EQ(window->tasks, 3) << "the spec's task ids were not described again";
  EXPECT_EQ(readFile(checkpoint() + "/data.mdb"), before);
}

}  // namespace
}  // namespace gale::cluster
