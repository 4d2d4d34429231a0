// Cluster state without ZooKeeper: the placement rule, the JSON of every node, the worker file,
// and the committed offsets a restarted spout resumes from.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gale/cluster/committed_offsets.h"
#include "gale/cluster/state.h"
#include "gale/cluster/worker.h"
#include "gale/connectors/console_sink.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/connectors/memory_stream.h"
#include "gale/core/aggregate.h"
#include "gale/core/window.h"
#include "temp_dir_for_test.h"

namespace gale::cluster {
namespace {

std::map<std::string, SupervisorInfo> supervisors(int n, std::vector<int> ports = {100, 200}) {
  std::map<std::string, SupervisorInfo> out;
  for (int i = 1; i <= n; ++i) out["s" + std::to_string(i)] = {"10.0.0." + std::to_string(i), ports};
  return out;
}

TEST(Placement, AFreshTopologyIsSpreadOverTheSupervisors) {
  auto placed = place(3, {}, supervisors(3), {});
  ASSERT_TRUE(placed);
  EXPECT_EQ(*placed, (std::vector<Slot>{{"s1", 100}, {"s2", 100}, {"s3", 100}}));
}

TEST(Placement, WorkersOnLiveSupervisorsKeepTheirSlotsAndADeadSupervisorsWorkersMove) {
  std::vector<Slot> before{{"s1", 100}, {"s2", 100}, {"s3", 100}};
  auto live = supervisors(3);
  live.erase("s2");
  auto placed = place(3, before, live, {});
  ASSERT_TRUE(placed);
  EXPECT_EQ((*placed)[0], (Slot{"s1", 100}));
  EXPECT_EQ((*placed)[2], (Slot{"s3", 100}));
  EXPECT_EQ((*placed)[1], (Slot{"s1", 200}));  // ties between s1 and s3 go to the smaller id
}

TEST(Placement, SlotsHeldByOtherTopologiesAreNotReused) {
  auto placed = place(2, {}, supervisors(1), {{"s1", 100}});
  EXPECT_FALSE(placed) << "s1 has one free slot left, two are needed";
  placed = place(1, {{"s1", 100}}, supervisors(1), {{"s1", 100}});
  ASSERT_TRUE(placed);
  EXPECT_EQ(*placed, (std::vector<Slot>{{"s1", 200}}));
}

TEST(Placement, NotEnoughSlotsGivesNothingRatherThanAPartialAssignment) {
  EXPECT_FALSE(place(5, {}, supervisors(2), {}));
  EXPECT_FALSE(place(1, {}, {}, {}));
}

TEST(Placement, ARebalanceKeepsTheSlotsOfTheWorkersThatStay) {
  std::vector<Slot> before{{"s1", 100}, {"s2", 100}, {"s3", 100}};
  auto placed = place(2, before, supervisors(3), {});
  ASSERT_TRUE(placed);
  EXPECT_EQ(*placed, (std::vector<Slot>{{"s1", 100}, {"s2", 100}}));
  placed = place(4, before, supervisors(3), {});
  ASSERT_TRUE(placed);
  EXPECT_EQ(placed->size(), 4u);
  EXPECT_EQ((*placed)[3], (Slot{"s1", 200}));
}

TEST(Placement, ASlotWhosePortTheSupervisorNoLongerOffersMoves) {
  auto placed = place(1, {{"s1", 300}}, supervisors(1), {});
  ASSERT_TRUE(placed);
  EXPECT_EQ(*placed, (std::vector<Slot>{{"s1", 100}}));
}

TEST(Placement, ASlotWhosePortsRunIntoTheNextSlotCannotHoldTheTopology) {
  // A worker binds port + t for its tasks t: with 5 tasks, port 100 would collide with slot 103.
  std::map<std::string, SupervisorInfo> live{{"s1", {"h", {100, 103}, ""}}};
  EXPECT_FALSE(place(2, {}, live, {}, 5));
  auto placed = place(1, {{"s1", 100}}, live, {}, 5);
  ASSERT_TRUE(placed);
  EXPECT_EQ(*placed, (std::vector<Slot>{{"s1", 103}}));
  EXPECT_TRUE(place(2, {}, live, {}, 3)) << "3 tasks fit between 100 and 103";
  EXPECT_FALSE(place(1, {}, {{"s1", {"h", {65534}, ""}}}, {}, 3)) << "past port 65535";
}

TEST(ClusterJson, EveryNodeRoundTrips) {
  SupervisorInfo s{"127.0.0.2", {16000, 17000}, "key-of-s"};
  EXPECT_EQ(parseSupervisorInfo(toJson(s)).ports, s.ports);
  EXPECT_EQ(parseSupervisorInfo(toJson(s)).publicKey, "key-of-s");
  TopologySpec t{"/opt/wc", {"--input", "a b"}, 3, false, {{"lines", 0, 1}, {"split", 1, 2}}};
  TopologySpec t2 = parseTopologySpec(toJson(t));
  EXPECT_EQ(t2.components, t.components);
  EXPECT_EQ(t2.tasks(), 3);
  EXPECT_EQ(t2.binary, t.binary);
  EXPECT_EQ(t2.args, t.args);
  EXPECT_EQ(t2.workers, 3);
  EXPECT_FALSE(t2.active);
  Assignment a{7, {{"s1", 100}, {"s2", 200}}, {{"s1", "h1"}, {"s2", "h2"}}, {{"s1", "k1"}}};
  Assignment a2 = parseAssignment(toJson(a));
  EXPECT_EQ(a2.version, 7);
  EXPECT_EQ(a2.workers, a.workers);
  EXPECT_EQ(a2.endpoints(), (std::vector<std::string>{"tcp://h1:100", "tcp://h2:200"}));
  EXPECT_TRUE(a2.publicKeys().empty()) << "s2 has no key: no CURVE for this topology";
  a2.keys["s2"] = "k2";
  EXPECT_EQ(a2.publicKeys(), (std::vector<std::string>{"k1", "k2"}));
  WorkerStatus w = parseWorkerStatus(toJson(WorkerStatus{"s1", 42, 7, 2}));
  EXPECT_EQ(w.pid, 42);
  EXPECT_EQ(w.restarts, 2);
}

TEST(ClusterJson, BadNodesAreRefusedWithWhatIsWrong) {
  auto message = [](auto f) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message([] { parseTopologySpec("not json"); }).find("bad topology"), std::string::npos);
  EXPECT_NE(message([] { parseTopologySpec(R"({"binary":"wc","args":[],"workers":1})"); })
                .find("absolute"),
            std::string::npos);
  EXPECT_NE(message([] { parseTopologySpec(R"({"binary":"/wc","args":[],"workers":0})"); })
                .find("workers"),
            std::string::npos);
  EXPECT_NE(message([] { parseSupervisorInfo(R"({"host":"h","ports":[70000]})"); }).find("port"),
            std::string::npos);
  EXPECT_NE(message([] {
              parseComponents(R"({"components":[{"name":"a","firstTask":1,"tasks":1}]})");
            }).find("follow each other"),
            std::string::npos);
  EXPECT_NE(message([] { parseComponents("{}"); }).find("no components"), std::string::npos);
  EXPECT_NE(message([] {
              parseAssignment(R"({"version":1,"workers":[{"supervisor":"s9","port":1}],"hosts":{}})");
            }).find("s9"),
            std::string::npos);
  EXPECT_NE(message([] { parseWorkerFile(R"({"topology":"t","self":2,"endpoints":["tcp://h:1"]})"); })
                .find("self 2"),
            std::string::npos);
}

TEST(ClusterJson, TopologyNamesMustBeSafeAsNodeAndDirectoryNames) {
  EXPECT_NO_THROW(checkName("topology", "word-count_2.v1"));
  for (const std::string& bad : std::vector<std::string>{"", ".", "..", "a/b", "a b", std::string(65, 'x')})
    EXPECT_THROW(checkName("topology", bad), std::invalid_argument) << bad;
}

TEST(WorkerFile, RoundTripsAndTasksGoRoundRobin) {
  WorkerFile f{"wc", {{}, {"tcp://a:1", "tcp://b:2"}, 1, {"k1", "k2"}}, false, "/keys/s.key_secret"};
  WorkerFile g = parseWorkerFile(toJson(f));
  EXPECT_EQ(g.keyFile, f.keyFile);
  EXPECT_EQ(g.assignment.publicKeys, f.assignment.publicKeys);
  f.assignment.publicKeys.pop_back();
  EXPECT_THROW(parseWorkerFile(toJson(f)), std::invalid_argument)
      << "a CURVE worker without every peer's key";
  EXPECT_EQ(g.topology, "wc");
  EXPECT_EQ(g.assignment.self, 1);
  EXPECT_EQ(g.assignment.endpoints, f.assignment.endpoints);
  EXPECT_FALSE(g.active);
  EXPECT_EQ(roundRobinTasks(5, 2), (std::vector<int>{0, 1, 0, 1, 0}));
}

TEST(WorkerFile, AProgramDescribesItsTopologyForSubmitAndTasksGoToWorkersRoundRobin) {
  TopologyBuilder b;
  b.setSpout("numbers", std::make_shared<MemoryStream>("m", Fields{{"n", Type::Int64}}, 1), 1);
  b.setBolt("sink", ConsoleSink{}, 2).shuffleGrouping("numbers");
  Topology t = b.build();
  auto components = parseComponents(describeTopology(t, Continuous{}));
  EXPECT_EQ(components, (std::vector<ComponentTasks>{
                            {"numbers", 0, 1}, {"sink", 1, 2}, {"__acker", 3, 1}}));
  EXPECT_EQ(tasksOfWorker(components, 0, 2), (std::vector<std::string>{"numbers[0]", "sink[2]"}));
  EXPECT_EQ(tasksOfWorker(components, 1, 2), (std::vector<std::string>{"sink[1]", "__acker[3]"}));

  ::setenv(kDescribeEnv, "1", 1);
  ::testing::internal::CaptureStdout();
  auto rc = runIfClusterWorker(t, Continuous{});
  std::string out = ::testing::internal::GetCapturedStdout();
  ::unsetenv(kDescribeEnv);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 0);
  EXPECT_EQ(parseComponents(out.substr(out.rfind('\n', out.size() - 2) + 1)), components);
}

TEST(WorkerFile, ExactlyOnceAndMicroBatchJobsDescribeTheirModeAndTheirCoordinators) {
  TopologyBuilder b;
  b.setSpout("numbers", std::make_shared<MemoryStream>("m", Fields{{"n", Type::Int64}}, 1), 1);
  b.setBolt("sink", ConsoleSink{}, 2).shuffleGrouping("numbers");
  Topology t = b.build();
  Continuous exactlyOnce;
  exactlyOnce.guarantee = Guarantee::ExactlyOnce;
  // No ackers in either mode: exactly-once checkpoints, micro-batch replays whole batches. The
  // checkpoint coordinator of an exactly-once job, the batch coordinator of a micro-batch one, is
  // task 3 (its port is the worker's + 3).
  TopologyDescription d = parseDescription(describeTopology(t, exactlyOnce));
  EXPECT_EQ(d.mode, "exactly-once");
  EXPECT_EQ(d.components, (std::vector<ComponentTasks>{
                              {"numbers", 0, 1}, {"sink", 1, 2}, {"__checkpoint", 3, 1}}));
  d = parseDescription(describeTopology(t, MicroBatch{}));
  EXPECT_EQ(d.mode, "micro-batch");
  EXPECT_EQ(d.components, (std::vector<ComponentTasks>{
                              {"numbers", 0, 1}, {"sink", 1, 2}, {"__batch", 3, 1}}));
  EXPECT_EQ(d.oneWorker, "");
  MicroBatch continuousTrigger{.trigger = BatchTrigger::continuous(),
                               .checkpoint = ::testing::TempDir() + "/never"};
  EXPECT_NE(parseDescription(describeTopology(t, continuousTrigger)).oneWorker, "");
  EXPECT_EQ(parseDescription(describeTopology(t, Continuous{})).mode, "");

  TopologySpec spec{"/bin/job", {}, 1, true, {{"numbers", 0, 1}}};
  spec.mode = "micro-batch";
  EXPECT_EQ(parseTopologySpec(toJson(spec)).mode, "micro-batch");
  spec.workers = 2;
  EXPECT_EQ(parseTopologySpec(toJson(spec)).workers, 2) << "a micro-batch job in two workers";
  EXPECT_THROW(parseDescription(R"({"components":[{"name":"a","firstTask":0,"tasks":1}],)"
                                R"("mode":"turbo"})"),
               std::invalid_argument);

  // A worker of a job that runs in one worker given an assignment of two refuses it (exit 1).
  std::string file = ::testing::TempDir() + "/two-workers.json";
  std::ofstream(file) << toJson(WorkerFile{"eo", {{}, {"tcp://a:1", "tcp://b:2"}, 0, {}}});
  ::setenv(kAssignmentEnv, file.c_str(), 1);
  auto rc = runIfClusterWorker(t, continuousTrigger);
  ::unsetenv(kAssignmentEnv);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 1);
  EXPECT_FALSE(std::filesystem::exists(::testing::TempDir() + "/never")) << "the job ran";
}

TEST(WorkerFile, ARebalancedTaskCountReachesTheProgramThroughItsEnvironment) {
  std::map<std::string, int> p{{"count", 4}, {"split", 3}};
  EXPECT_EQ(parallelismText(p), "count=4,split=3");
  EXPECT_EQ(parseParallelism("count=4,split=3"), p);
  EXPECT_TRUE(parseParallelism("").empty());
  for (const char* bad : {"count", "=4", "count=0", "count=x", "count=4x", "count=4,count=5"})
    EXPECT_THROW(parseParallelism(bad), std::invalid_argument) << bad;

  ::unsetenv(kParallelismEnv);
  EXPECT_EQ(parallelism("count", 2), 2);
  ::setenv(kParallelismEnv, "count=4", 1);
  EXPECT_EQ(parallelism("count", 2), 4);
  EXPECT_EQ(parallelism("split", 2), 2) << "a component the rebalance did not name";
  ::setenv(kParallelismEnv, "count=-1", 1);
  EXPECT_THROW(parallelism("count", 2), std::invalid_argument);
  ::unsetenv(kParallelismEnv);

  // Kept in the topology's spec and copied into its assignment (a change restarts the workers).
  TopologySpec t{"/opt/wc", {}, 2, true, {{"lines", 0, 1}}, p};
  EXPECT_EQ(parseTopologySpec(toJson(t)).parallelism, p);
  Assignment a{3, {{"s1", 100}}, {{"s1", "h1"}}, {}, p};
  EXPECT_EQ(parseAssignment(toJson(a)).parallelism, p);
  EXPECT_THROW(parseTopologySpec(R"({"binary":"/wc","args":[],"workers":1,"parallelism":{"c":0}})"),
               std::invalid_argument);
}

// A task count the job's checkpoint cannot resume with is in the program's description, which
// `gale rebalance --parallelism` reads before it changes the count: a sliding window in update
// mode checkpointed at 2 tasks resumes in 4 (each task takes the groups of one old task) but not
// in 3 or 1 (a task would merge two old tasks' state), and the restore refuses with the same words.
TEST(WorkerFile, ATaskCountTheCheckpointCannotResumeWithIsRefusedInTheDescriptionNamingTheComponent) {
  using namespace std::chrono_literals;
  testing::TempDir dir;
  Fields fields{{"word", Type::String}, {"ts", Type::Timestamp}};
  auto source = std::make_shared<GeneratorSource>(
      fields,
      [](int, int64_t off) { return Values{"w" + std::to_string(off % 37), Timestamp{off * 1000}}; },
      GeneratorSource::Options{.name = "events", .partitions = 1, .total = 2000});
  auto window = windowed(Sliding(100ms, 50ms), Count{})
                    .keyBy({"word"})
                    .eventTime("ts")
                    .outputMode(OutputMode::Update)
                    .build();
  auto build = [&](int tasks) {
    TopologyBuilder b;
    b.setSpout("events", source, 1).withWatermark("ts", 5ms);
    b.setBolt("window", *window, tasks).maxParallelism(16).fieldsGrouping("events", Fields{"word"});
    b.setBolt("sink", MemorySink(std::make_shared<MemoryStore>()), 1).shuffleGrouping("window");
    return b.build();
  };
  MicroBatch config{.trigger = BatchTrigger::availableNow(), .checkpoint = dir.sub("chk"),
                    .maxRecordsPerBatch = 500};
  auto refused = [&](int tasks) {
    return parseDescription(describeTopology(build(tasks), config)).rescaleRefused;
  };
  EXPECT_EQ(refused(3), "") << "no checkpoint yet";
  runMicroBatch(build(2), config).waitUntilDone();
  EXPECT_EQ(refused(2), "");
  EXPECT_EQ(refused(4), "");
  const std::string why = "a sliding window that re-emits updated rows cannot merge";
  for (int tasks : {3, 1}) {
    std::string description = refused(tasks);
    EXPECT_NE(description.find("'window'"), std::string::npos) << description;
    EXPECT_NE(description.find(why), std::string::npos) << description;
    try {
      runMicroBatch(build(tasks), config).waitUntilDone();
      ADD_FAILURE() << "the restore took " << tasks << " tasks";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
    }
  }
}

TEST(WorkerFile, AProgramNotStartedByASupervisorRunsAsUsual) {
  ::unsetenv(kAssignmentEnv);
  EXPECT_FALSE(runIfClusterWorker(Topology{}, Continuous{}));
}

TEST(WorkerFile, AnUnreadableAssignmentExitsWithAnErrorForTheSupervisorToSee) {
  ::setenv(kAssignmentEnv, "/nonexistent/assignment.json", 1);
  auto rc = runIfClusterWorker(Topology{}, Continuous{});
  ::unsetenv(kAssignmentEnv);
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 1);
}

class CommittedOffsets : public ::testing::Test {
 protected:
  std::string dir = "/tmp/gale-offsets-" + std::to_string(::getpid());
  void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(CommittedOffsets, ARestartedSourceResumesAtTheLastCommittedOffset) {
  auto inner = std::make_shared<MemoryStream>("m", Fields{{"n", Type::Int64}}, 2);
  {
    CommittedOffsetsSource s(inner, dir);
    EXPECT_EQ(s.initialOffset(0), 0);
    s.commit(0, 17);
    s.commit(0, 42);
    s.commit(1, 5);
  }
  CommittedOffsetsSource again(inner, dir);  // another process would read the same files
  EXPECT_EQ(again.initialOffset(0), 42);
  EXPECT_EQ(again.initialOffset(1), 5);
}

TEST_F(CommittedOffsets, ADamagedOffsetFileIsAnErrorNotAReplayFromZero) {
  auto inner = std::make_shared<MemoryStream>("m", Fields{{"n", Type::Int64}}, 1);
  CommittedOffsetsSource s(inner, dir);
  std::ofstream(dir + "/partition-0") << "4x2";
  EXPECT_THROW(s.initialOffset(0), SourceError);
  EXPECT_THROW(CommittedOffsetsSource(nullptr, dir), std::invalid_argument);
}

// A source whose partitions have names, numbered as each test says (Kafka's, after a restart
// that found a partition sorting among the known ones).
class NamedPartitions final : public Source {
 public:
  explicit NamedPartitions(std::vector<std::string> ids) : ids_(std::move(ids)) {}
  std::string name() const override { return "named"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  int partitions() const override { return static_cast<int>(ids_.size()); }
  int64_t available(int) override { return 0; }
  size_t read(int, int64_t, int64_t, std::vector<SourceRecord>&) override { return 0; }
  std::vector<std::string> partitionIds() const override { return ids_; }

 private:
  std::vector<std::string> ids_;
};

TEST_F(CommittedOffsets, ASourceThatNamesItsPartitionsResumesEachByNameWhenNumberedAnew) {
  {
    CommittedOffsetsSource s(
        std::make_shared<NamedPartitions>(std::vector<std::string>{"b/0", "b/1"}), dir);
    s.commit(0, 17);
    s.commit(1, 5);
  }
  // The next process finds topic "a", which sorts first: every known partition's number moved.
  CommittedOffsetsSource again(
      std::make_shared<NamedPartitions>(std::vector<std::string>{"a/0", "b/0", "b/1"}), dir);
  EXPECT_EQ(again.initialOffset(0), 0) << "a/0 has no committed offset";
  EXPECT_EQ(again.initialOffset(1), 17);
  EXPECT_EQ(again.initialOffset(2), 5);
}

}  // namespace
}  // namespace gale::cluster
