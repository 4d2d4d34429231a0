// Every thread gale starts is named (gale::nameThisThread), so perf, top and gdb captures say
// which thread is which: the tasks, the acker, the checkpoint writer, the micro-batch job's
// thread and the web UI's. Read back from /proc/self/task/*/comm while each runs.
#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"
#include "gale/ui/ui_server.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

// The names of this process's threads now.
std::multiset<std::string> threadNames() {
  std::multiset<std::string> names;
  DIR* dir = ::opendir("/proc/self/task");
  if (!dir) throw std::runtime_error("cannot list /proc/self/task");
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream comm(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    if (std::getline(comm, name)) names.insert(name);  // a thread that just ended has none
  }
  ::closedir(dir);
  return names;
}

// Whether every name in `expected` is a thread's name within `timeout` (the threads name
// themselves as they start, which may be after the call that started them returned).
::testing::AssertionResult threadsAppear(const std::set<std::string>& expected,
                                         std::chrono::seconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::multiset<std::string> names;
  for (;;) {
    names = threadNames();
    std::string missing;
    for (const auto& n : expected)
      if (!names.count(n)) missing += " " + n;
    if (missing.empty()) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() > deadline) {
      std::string seen;
      for (const auto& n : names) seen += " " + n;
      return ::testing::AssertionFailure() << "missing:" << missing << "; threads:" << seen;
    }
    std::this_thread::yield();
  }
}

// A slow endless source (a thousand numbers a second) into a sink, every task on its own thread.
Topology numbersIntoSink(int sinkTasks) {
  GeneratorSource::Options o;
  o.ratePerSecond = 1000;
  auto source = std::make_shared<GeneratorSource>(
      Fields{"n"}, [](int, int64_t offset) { return Values{Value{offset}}; }, o);
  TopologyBuilder b;
  b.setSpout("numbers", source, 1);
  b.setBolt("sink", MemorySink(std::make_shared<MemoryStore>()), sinkTasks)
      .shuffleGrouping("numbers");
  return b.build();
}

using ThreadNames = testing::CheckpointDirTest;

TEST_F(ThreadNames, EveryTaskOfATopologyAndItsAckerRunOnAThreadNamedAfterTheTask) {
  Continuous c;
  c.fusion = false;  // a fused task has no thread of its own
  c.numAckers = 1;
  RunningTopology rt = runContinuous(numbersIntoSink(2), c);
  std::vector<TaskId> ackers = rt.ackerTasks();
  ASSERT_EQ(ackers.size(), 1u);
  std::set<std::string> expected;
  for (TaskId t = 0; t < rt.taskCount(); ++t) {
    bool acker = std::find(ackers.begin(), ackers.end(), t) != ackers.end();
    expected.insert((acker ? "gale-acker-" : "gale-task-") + std::to_string(t));
  }
  ASSERT_EQ(expected.size(), 4u);  // spout, two sinks, the acker
  EXPECT_TRUE(threadsAppear(expected));
  rt.kill();
}

TEST_F(ThreadNames, AnExactlyOnceTopologyWritesItsCheckpointsOnAThreadNamedGaleCkpt) {
  Continuous c;
  c.guarantee = Guarantee::ExactlyOnce;
  c.checkpointDir = (dir / "checkpoints").string();
  c.checkpointInterval = 100ms;
  c.checkpointSync = false;
  RunningTopology rt = runContinuous(numbersIntoSink(1), c);
  EXPECT_TRUE(threadsAppear({"gale-ckpt", "gale-task-0"}));
  rt.kill();
}

TEST_F(ThreadNames, AMicroBatchJobRunsOnAThreadNamedGaleMbJobAndItsTasksOnTheirOwn) {
  MicroBatch cfg;
  cfg.trigger = BatchTrigger::processingTime(100ms);
  cfg.checkpoint = dir.string();
  cfg.syncCommits = false;
  cfg.runtime.fusion = false;
  MicroBatchJob job = runMicroBatch(numbersIntoSink(1), cfg);
  EXPECT_TRUE(threadsAppear({"gale-mb-job", "gale-task-0", "gale-task-1"}));
  job.stop();
  EXPECT_TRUE(job.waitUntilDone(60s));
}

TEST_F(ThreadNames, TheWebUiServesAndSamplesOnThreadsNamedGaleUi) {
  ui::UiServer server(ui::UiOptions{});
  EXPECT_TRUE(threadsAppear({"gale-ui", "gale-ui-sampler"}));
}

}  // namespace
}  // namespace gale
