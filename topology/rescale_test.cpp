// rescaleRefusal (what `gale rebalance --parallelism` and `gale submit` ask before they run a job
// on a checkpoint): a dry run of the restore, which never throws.
#include "gale/topology/rescale.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "gale/core/dedup.h"
#include "gale/core/key_group.h"
#include "gale/state/state_store.h"
#include "test_support.h"

namespace gale {
namespace {

namespace fs = std::filesystem;
using testing::CountingSpout;
using testing::CountingState;

const Fields kRows{{"n", Type::Int64}, {"key", Type::Int64}};

// A key-grouped deduplication of the counting spout's keys, `tasks` tasks of 8 key groups.
Topology dedupJob(int tasks) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(10, 2, std::make_shared<CountingState>()), 1);
  b.setBolt("dedup", dropDuplicates(kRows, {"key"}), tasks).maxParallelism(8)
      .fieldsGrouping("numbers", {"key"});
  return b.build();
}

struct Checkpoint {
  fs::path dir = fs::temp_directory_path() /
                 ("gale-rescale-" + std::to_string(::getpid()) + "-" +
                  ::testing::UnitTest::GetInstance()->current_test_info()->name());
  Checkpoint() { fs::remove_all(dir); }
  ~Checkpoint() { fs::remove_all(dir); }
  // Commits the given task blobs as the job's last checkpoint.
  void write(const std::map<std::string, std::string>& blobs) const {
    StateStore store(dir.string(), {.jobId = "rescale-test"});
    BatchCommit commit = store.beginCommit(store.lastCommittedTxid() + 1);
    for (const auto& [key, blob] : blobs) commit.putSnapshot(key, blob);
    commit.commit();
  }
};

struct Discard : Emitter {
  void emit(std::string_view, Values) override {}
};

// Task `task` of `tasks` of the deduplication, at watermark `wm`.
std::string dedupBlob(int task, int tasks, Timestamp wm) {
  auto op = dropDuplicates(kRows, {"key"});
  Discard out;
  op.onWatermark(wm, out);
  return encodeKeyGroupSnapshot(8, tasks, task, op.snapshotKeyGroups(8));
}

TEST(RescaleRefusal, ACheckpointOfEqualWatermarksRescalesAndTheSameCountIsNeverRefused) {
  Checkpoint c;
  c.write({{"dedup#0", dedupBlob(0, 2, Timestamp{5000})},
           {"dedup#1", dedupBlob(1, 2, Timestamp{5000})}});
  EXPECT_EQ(rescaleRefusal(dedupJob(2), c.dir.string()), "");
  EXPECT_EQ(rescaleRefusal(dedupJob(3), c.dir.string()), "");
  EXPECT_EQ(rescaleRefusal(dedupJob(1), c.dir.string()), "");
}

// The restore merges the heads of several old tasks only at one watermark (an aligned cut): the
// pre-check is that restore, so it refuses the same.
TEST(RescaleRefusal, TasksOfDifferentWatermarksMergedIntoOneAreRefusedNamingTheComponent) {
  Checkpoint c;
  c.write({{"dedup#0", dedupBlob(0, 2, Timestamp{5000})},
           {"dedup#1", dedupBlob(1, 2, Timestamp{7000})}});
  EXPECT_EQ(rescaleRefusal(dedupJob(2), c.dir.string()), "");
  EXPECT_EQ(rescaleRefusal(dedupJob(4), c.dir.string()), "") << "no new task merges two old ones";
  for (int n : {1, 3}) {
    std::string why = rescaleRefusal(dedupJob(n), c.dir.string());
    EXPECT_NE(why.find("'dedup' cannot resume its checkpoint of 2 tasks in " + std::to_string(n)),
              std::string::npos) << why;
    EXPECT_NE(why.find("watermarks differ"), std::string::npos) << why;
  }
}

// A damaged header is a refusal naming the component and the damage, not an exception out of the
// program's description (which made even `gale submit` fail without saying why).
TEST(RescaleRefusal, ADamagedKeyGroupHeaderIsARefusalNotAnException) {
  Checkpoint c;
  std::string damaged = dedupBlob(0, 2, Timestamp{5000});
  damaged.resize(5);  // "GKGS" and a truncated version: the header cannot be read
  c.write({{"dedup#0", damaged}, {"dedup#1", dedupBlob(1, 2, Timestamp{5000})}});
  for (int n : {2, 3}) {
    std::string why;
    EXPECT_NO_THROW(why = rescaleRefusal(dedupJob(n), c.dir.string()));
    EXPECT_NE(why.find("'dedup' cannot resume its checkpoint"), std::string::npos) << why;
    EXPECT_NE(why.find("dedup#0"), std::string::npos) << why;
  }
  // A damaged blob of another task is found by the dry run of the tasks that read it.
  Checkpoint c2;
  c2.dir += "-2";
  std::string other = dedupBlob(1, 2, Timestamp{5000});
  other.resize(other.size() - 1);
  c2.write({{"dedup#0", dedupBlob(0, 2, Timestamp{5000})}, {"dedup#1", other}});
  std::string why;
  EXPECT_NO_THROW(why = rescaleRefusal(dedupJob(3), c2.dir.string()));
  EXPECT_NE(why.find("'dedup' cannot resume its checkpoint of 2 tasks in 3"), std::string::npos)
      << why;
  fs::remove_all(c2.dir);
}

}  // namespace
}  // namespace gale
