// Groupings, observed end to end through a running topology (and the Router for what one
// process cannot show, e.g. locality).
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "router.h"
#include "test_support.h"

namespace gale {
namespace {

using namespace testing;

// Runs numbers(n, keys) -> sink(p) with the grouping `g` and returns tuples per sink task.
std::map<TaskId, std::vector<int64_t>> runGrouping(
    int64_t n, int keys, int p, const std::function<void(BoltDeclarer&)>& g, int spouts = 2) {
  auto st = std::make_shared<CountingState>();
  auto seen = std::make_shared<Seen>();
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(n, keys, st), spouts);
  auto d = b.setBolt("sink", RecordingBolt(seen), p);
  g(d);
  // Counts are checked exactly: no tree may time out and be replayed, even on a slow machine.
  Continuous c = fastConfig();
  c.messageTimeout = std::chrono::seconds(120);
  auto rt = runContinuous(b.build(), c);
  EXPECT_TRUE(rt.waitUntilDone(std::chrono::seconds(60)));
  EXPECT_EQ(st->distinctAcked(), static_cast<size_t>(n));
  std::map<TaskId, std::vector<int64_t>> out;
  for (auto& [task, v] : seen->tuples) out[task].push_back(std::get<int64_t>(v[0]));
  return out;
}

TEST(Grouping, FieldsSendsEachKeyToExactlyOneTaskAndEveryTupleOnce) {
  auto got = runGrouping(2000, 17, 3, [](BoltDeclarer& d) { d.fieldsGrouping("numbers", {"key"}); });
  std::map<int64_t, std::set<TaskId>> tasksOfKey;
  size_t total = 0;
  for (auto& [task, ns] : got) {
    total += ns.size();
    for (int64_t n : ns) tasksOfKey[n % 17].insert(task);
  }
  EXPECT_EQ(total, 2000u);
  ASSERT_EQ(tasksOfKey.size(), 17u);
  for (auto& [key, tasks] : tasksOfKey) EXPECT_EQ(tasks.size(), 1u) << "key " << key;
  EXPECT_GE(got.size(), 2u) << "17 keys over 3 tasks all landed on one task";
}

TEST(Grouping, FieldsHashIsTheSameOnEverySender) {
  Values a{int64_t{5}, std::string("x")}, b{int64_t{5}, std::string("x")};
  EXPECT_EQ(hashFields(a, {0, 1}), hashFields(b, {0, 1}));
  EXPECT_NE(hashFields(a, {0, 1}), hashFields(Values{int64_t{6}, std::string("x")}, {0, 1}));
}

// A stateless bolt may be key-grouped too; the router's choice is all this test looks at.
// A recording bolt keyed by "key" (its state is empty): the builder accepts key groups only
// on state that splits by them.
class KeyedRecordingBolt : public RecordingBolt, public KeyGroupedState {
 public:
  using RecordingBolt::RecordingBolt;
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<KeyedRecordingBolt>(seen_, out_);
  }
  std::vector<std::string> keyGroupFields() const override { return {"key"}; }
  Split snapshotKeyGroups(uint32_t) const override { return {}; }
  void restoreKeyGroups(const std::vector<Head>&, const std::map<uint32_t, std::string_view>&,
                        uint32_t) override {}
};

TEST(KeyGroups, EveryGroupHasExactlyOneOwnerAndTheRouterSendsItThere) {
  for (uint32_t m : {1u, 7u, 128u}) {
    for (int n = 1; n <= static_cast<int>(m); ++n) {
      std::vector<int> owners(m, 0);
      uint32_t next = 0;
      for (int j = 0; j < n; ++j) {
        KeyGroupRange r = keyGroupRange(j, n, m);
        ASSERT_EQ(r.first, next) << "M " << m << " n " << n << " task " << j;
        ASSERT_GT(r.end, r.first) << "task " << j << " of " << n << " owns no group of " << m;
        next = r.end;
        for (uint32_t g = r.first; g < r.end; ++g) {
          ++owners[g];
          ASSERT_EQ(taskOfKeyGroup(g, m, n), j) << "M " << m << " n " << n << " group " << g;
        }
      }
      ASSERT_EQ(next, m) << "M " << m << " n " << n << ": the ranges do not cover every group";
      for (uint32_t g = 0; g < m; ++g) ASSERT_EQ(owners[g], 1);
    }
  }
  // The router sends a key to the task whose range holds the key's group.
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(1, 1, std::make_shared<CountingState>()), 1);
  b.setBolt("sink", KeyedRecordingBolt(std::make_shared<Seen>()), 5).maxParallelism(128)
      .fieldsGrouping("numbers", {"key"});
  Topology t = b.build();
  const ComponentSpec& from = t.at("numbers");
  Router router(t, from, *from.findStream(kDefaultStream), {}, 0, 1);
  const TaskId first = t.at("sink").firstTask;
  for (int64_t k = 0; k < 10000; ++k) {
    Values v{k * 7, k};
    std::vector<TaskId> out;
    router.route(v, -1, out);
    ASSERT_EQ(out.size(), 1u);
    uint32_t g = keyGroupOf(hashKeyValues(Values{k}), 128);
    ASSERT_TRUE(keyGroupRange(out[0] - first, 5, 128).contains(g)) << "key " << k;
  }
}

TEST(Grouping, AllSendsEveryTupleToEveryTask) {
  auto got = runGrouping(300, 3, 3, [](BoltDeclarer& d) { d.allGrouping("numbers"); });
  ASSERT_EQ(got.size(), 3u);
  for (auto& [task, ns] : got) {
    std::set<int64_t> distinct(ns.begin(), ns.end());
    EXPECT_EQ(ns.size(), 300u) << "task " << task;
    EXPECT_EQ(distinct.size(), 300u);
  }
}

TEST(Grouping, GlobalSendsEverythingToTheLowestTask) {
  auto got = runGrouping(300, 3, 3, [](BoltDeclarer& d) { d.globalGrouping("numbers"); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got.begin()->first, 2);  // spout tasks are 0 and 1, sink tasks 2..4
  EXPECT_EQ(got.begin()->second.size(), 300u);
}

TEST(Grouping, ShuffleSpreadsRoughlyEvenly) {
  auto got = runGrouping(3000, 3, 3, [](BoltDeclarer& d) { d.shuffleGrouping("numbers"); });
  ASSERT_EQ(got.size(), 3u);
  for (auto& [task, ns] : got) {
    EXPECT_GT(ns.size(), 900u) << "task " << task;
    EXPECT_LT(ns.size(), 1100u) << "task " << task;
  }
}

TEST(Grouping, LocalOrShuffleInOneProcessIsShuffle) {
  auto got =
      runGrouping(3000, 3, 3, [](BoltDeclarer& d) { d.localOrShuffleGrouping("numbers"); });
  ASSERT_EQ(got.size(), 3u);
  for (auto& [task, ns] : got) EXPECT_GT(ns.size(), 900u) << "task " << task;
}

TEST(Grouping, LocalOrShufflePrefersTasksOfTheSameWorker) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(1, 1, std::make_shared<CountingState>()), 1);
  b.setBolt("sink", RecordingBolt(std::make_shared<Seen>()), 4).localOrShuffleGrouping("numbers");
  Topology t = b.build();
  // Tasks: spout 0 on worker 0; sink 1, 2 on worker 1, sink 3, 4 on worker 0.
  std::vector<int> workerOf{0, 1, 1, 0, 0};
  const ComponentSpec& from = t.at("numbers");
  Router local(t, from, from.outputs[0], workerOf, 0, 42);
  std::map<TaskId, int> count;
  for (int i = 0; i < 1000; ++i) {
    std::vector<TaskId> out;
    local.route(Values{int64_t{i}, int64_t{0}}, -1, out);
    ASSERT_EQ(out.size(), 1u);
    ++count[out[0]];
  }
  EXPECT_EQ(count.size(), 2u);
  EXPECT_EQ(count[3] + count[4], 1000);
  EXPECT_GT(count[3], 400);
  // A worker without a local sink task falls back to all of them.
  std::vector<int> remoteOnly{0, 1, 1, 1, 1};
  Router far(t, from, from.outputs[0], remoteOnly, 0, 42);
  std::set<TaskId> used;
  for (int i = 0; i < 100; ++i) {
    std::vector<TaskId> out;
    far.route(Values{int64_t{i}, int64_t{0}}, -1, out);
    used.insert(out[0]);
  }
  EXPECT_EQ(used.size(), 4u);
}

TEST(Grouping, PartialKeySpreadsAHotKeyOverExactlyTwoTasks) {
  // One key only: fields grouping would put it all on one task.
  auto got = runGrouping(4000, 1, 4, [](BoltDeclarer& d) { d.partialKeyGrouping("numbers", {"key"}); },
                         1);
  ASSERT_EQ(got.size(), 2u);
  for (auto& [task, ns] : got) {
    EXPECT_GE(ns.size(), 1900u) << "task " << task;
    EXPECT_LE(ns.size(), 2100u) << "task " << task;
  }
}

// Sends n to sink task (first + n % p) with emitDirect; also tries a task that is no direct
// subscriber and records the error.
class DirectSpout : public Spout {
 public:
  DirectSpout(int64_t n, std::shared_ptr<std::string> error) : n_(n), error_(std::move(error)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n"}); }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<DirectSpout>(n_, error_);
  }
  void open(const TopologyContext& ctx, SpoutOutputCollector& out) override {
    sinks_ = ctx.topology->tasksOf("sink");
    try {
      out.emitDirect(ctx.topology->tasksOf("other")[0], Values{int64_t{-1}});
    } catch (const std::invalid_argument& e) {
      *error_ = e.what();
    }
  }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (i_ == n_) {
      out.emitEndOfStream();
      return false;
    }
    out.emitDirect(sinks_[static_cast<size_t>(i_) % sinks_.size()], Values{i_}, i_);
    ++i_;
    return true;
  }

 private:
  int64_t n_, i_ = 0;
  std::shared_ptr<std::string> error_;
  std::vector<TaskId> sinks_;
};

TEST(Grouping, DirectDeliversToTheNamedTaskOnlyAndRejectsOthers) {
  auto seen = std::make_shared<Seen>();
  auto otherSeen = std::make_shared<Seen>();
  auto error = std::make_shared<std::string>();
  TopologyBuilder b;
  b.setSpout("numbers", DirectSpout(300, error), 1);
  b.setBolt("sink", RecordingBolt(seen), 3).directGrouping("numbers");
  b.setBolt("other", RecordingBolt(otherSeen), 1).shuffleGrouping("numbers");
  Topology t = b.build();
  auto rt = runContinuous(t, fastConfig());
  ASSERT_TRUE(rt.waitUntilDone(std::chrono::seconds(20)));
  auto sinks = t.tasksOf("sink");
  ASSERT_EQ(seen->tuples.size(), 300u);
  for (auto& [task, v] : seen->tuples)
    EXPECT_EQ(task, sinks[static_cast<size_t>(std::get<int64_t>(v[0])) % 3]);
  EXPECT_TRUE(otherSeen->tuples.empty()) << "a direct emit reached a shuffle subscriber";
  EXPECT_NE(error->find("emitted directly to task 4"), std::string::npos) << *error;
  EXPECT_NE(error->find("1, 2, 3"), std::string::npos) << *error;
}

// The executors skip route() when the router says its targets are fixed: that must be exactly
// what route() gives every normal emit, and never claimed when a tuple's values or a cursor
// decide.
TEST(Grouping, FixedTargetsAreWhatEveryNormalEmitIsRoutedTo) {
  TopologyBuilder b;
  b.setSpout("numbers", CountingSpout(1, 1, std::make_shared<CountingState>()), 1);
  b.setBolt("byKey", RecordingBolt(std::make_shared<Seen>()), 1).fieldsGrouping("numbers", {"key"});
  b.setBolt("all", RecordingBolt(std::make_shared<Seen>()), 1).allGrouping("numbers");
  b.setBolt("partial", RecordingBolt(std::make_shared<Seen>()), 1)
      .partialKeyGrouping("numbers", {"key"});
  b.setBolt("direct", RecordingBolt(std::make_shared<Seen>()), 2).directGrouping("numbers");
  b.setBolt("spread", RecordingBolt(std::make_shared<Seen>()), 2).shuffleGrouping("numbers");
  Topology t = b.build();
  const ComponentSpec& from = t.at("numbers");
  Router r(t, from, from.outputs[0], {}, 0, 42);
  EXPECT_EQ(r.fixedTargets(), nullptr) << "a shuffle over two tasks moves its cursor";
  r.forwardTo("spread", t.tasksOf("spread")[1]);  // fused: its task 1 only
  const std::vector<TaskId>* fixed = r.fixedTargets();
  ASSERT_NE(fixed, nullptr);
  for (int i = 0; i < 50; ++i) {
    std::vector<TaskId> out;
    r.route(Values{int64_t{i}, int64_t{i % 7}}, -1, out);
    EXPECT_EQ(out, *fixed) << "emit " << i;
  }
  EXPECT_EQ(fixed->size(), 4u) << "the direct subscriber gets nothing from a normal emit";
  // A direct emit still goes through route(), which checks the named task.
  std::vector<TaskId> out;
  r.route(Values{int64_t{1}, int64_t{1}}, t.tasksOf("direct")[1], out);
  EXPECT_EQ(out, std::vector<TaskId>{t.tasksOf("direct")[1]});

  TopologyBuilder keyed;
  keyed.setSpout("numbers", CountingSpout(1, 1, std::make_shared<CountingState>()), 1);
  keyed.setBolt("byKey", RecordingBolt(std::make_shared<Seen>()), 3).fieldsGrouping("numbers", {"key"});
  Topology k = keyed.build();
  Router byKey(k, k.at("numbers"), k.at("numbers").outputs[0], {}, 0, 42);
  EXPECT_EQ(byKey.fixedTargets(), nullptr) << "a key over three tasks decides per tuple";
}

}  // namespace
}  // namespace gale
