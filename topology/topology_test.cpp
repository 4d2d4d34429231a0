#include "gale/topology/topology.h"

#include <gtest/gtest.h>

#include "gale/core/frame.h"
#include "gale/core/incremental_state.h"
#include "gale/core/key_group.h"
#include "gale/core/source.h"
#include "gale/core/stream_join.h"
#include "test_support.h"

namespace gale {
namespace {

using testing::CountingSpout;
using testing::CountingState;
using testing::RecordingBolt;
using testing::Seen;

CountingSpout spout() { return CountingSpout(10, 2, std::make_shared<CountingState>()); }
RecordingBolt bolt(Fields out = Fields{}) {
  return RecordingBolt(std::make_shared<Seen>(), std::move(out));
}

// Expects build() to throw std::invalid_argument whose message contains every one of `parts`.
void expectRejected(const TopologyBuilder& b, std::initializer_list<std::string> parts) {
  try {
    b.build();
    FAIL() << "build() accepted an invalid topology";
  } catch (const std::invalid_argument& e) {
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos)
          << "message '" << e.what() << "' lacks '" << p << "'";
  }
}

struct Passthrough : Operator {
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"n", "key"});
    d.declareStream("late", Fields{"n"});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Passthrough>(); }
  void onTuple(const Tuple& t, Emitter& out) override { out.emit(t.values()); }
};

struct TinySource : Source {
  std::string name() const override { return "tiny"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"ts", Type::Timestamp}, {"v", Type::Int64}});
  }
  int partitions() const override { return 3; }
  int64_t available(int) override { return 0; }
  size_t read(int, int64_t, int64_t, std::vector<SourceRecord>&) override { return 0; }
};

TEST(TopologyBuilder, AValidTopologyExposesComponentsTasksInputsAndStreams) {
  TopologyBuilder b;
  b.setSpout("numbers", spout(), 2);
  b.setSpout("events", std::make_shared<TinySource>(), 3).withWatermark("ts", Duration(5000));
  b.setBolt("pass", Passthrough{}, 2).fieldsGrouping("numbers", {"key"});
  b.setBolt("sink", bolt(), 1).shuffleGrouping("pass").globalGrouping("pass", "late")
      .allGrouping("events");
  Topology t = b.build();
  ASSERT_EQ(t.components().size(), 4u);
  EXPECT_EQ(t.taskCount(), 2 + 3 + 2 + 1);
  EXPECT_EQ(t.tasksOf("pass"), (std::vector<TaskId>{5, 6}));
  EXPECT_EQ(t.componentOfTask(4).name, "events");

  const ComponentSpec& events = t.at("events");
  EXPECT_TRUE(events.isSpout());
  ASSERT_TRUE(events.source);
  ASSERT_TRUE(events.watermark);
  EXPECT_EQ(events.watermark->field, "ts");
  EXPECT_EQ(events.watermark->delay, Duration(5000));
  EXPECT_NE(dynamic_cast<const SourceSpout*>(events.spout.get()), nullptr);

  const ComponentSpec& pass = t.at("pass");
  ASSERT_TRUE(pass.op);
  EXPECT_NE(dynamic_cast<const OperatorBolt*>(pass.bolt.get()), nullptr);
  ASSERT_EQ(pass.inputs.size(), 1u);
  EXPECT_EQ(pass.inputs[0].grouping, Grouping::Fields);
  EXPECT_EQ(pass.inputs[0].fields, std::vector<std::string>{"key"});
  ASSERT_EQ(pass.outputs.size(), 2u);
  EXPECT_EQ(pass.findStream("late")->fields.names(), std::vector<std::string>{"n"});

  auto subs = t.subscribers("pass", "late");
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(subs[0].consumer->name, "sink");
  EXPECT_EQ(subs[0].input->grouping, Grouping::Global);
  EXPECT_EQ(t.upstreamOf("sink").size(), 2u);
  // Every declared stream has a wire id that maps back to its schema.
  const auto& reg = *t.registry();
  EXPECT_EQ(reg.idOf("pass", "late"), pass.findStream("late")->id);
  EXPECT_EQ((*reg.find(pass.findStream("late")->id))->stream, "late");
}

// Every mode opens an operator with its task's context on its own clock (the task's,
// exactly-once's coordinator's, micro-batch's driver's).
TEST(TopologyContext, TheOperatorContextIsTheTasksOnTheGivenClock) {
  ManualClock mine;
  TopologyContext ctx;
  ctx.component = "count";
  ctx.task = 7;
  ctx.taskIndex = 2;
  ctx.parallelism = 3;
  OperatorContext oc = ctx.operatorContext(&mine);
  EXPECT_EQ(oc.component, "count");
  EXPECT_EQ(oc.task, 7);
  EXPECT_EQ(oc.taskIndex, 2);
  EXPECT_EQ(oc.parallelism, 3);
  EXPECT_EQ(oc.clock, &mine);
}

TEST(TopologyBuilder, RebuildingFromTheStructureGivesTheSameGraph) {
  TopologyBuilder b;
  b.setSpout("numbers", spout(), 2);
  b.setBolt("sink", bolt(), 3).partialKeyGrouping("numbers", {"key"});
  Topology t = b.build();
  TopologyBuilder again;
  for (const auto& c : t.components()) {
    if (c.isSpout()) {
      again.setSpout(c.name, *c.spout, c.parallelism);
    } else {
      auto d = again.setBolt(c.name, *c.bolt, c.parallelism);
      for (const auto& in : c.inputs) d.grouping(in);
    }
  }
  EXPECT_EQ(again.build().toString(), t.toString());
}

TEST(TopologyValidation, AnEmptyTopologyIsRejected) {
  TopologyBuilder b;
  expectRejected(b, {"empty"});
}

TEST(TopologyValidation, ADuplicateNameIsRejectedNamingIt) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("numbers", bolt()).shuffleGrouping("numbers");
  expectRejected(b, {"'numbers'", "unique"});
}

TEST(TopologyValidation, ParallelismBelowOneIsRejectedNamingTheComponent) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt(), 0).shuffleGrouping("numbers");
  expectRejected(b, {"bolt 'sink'", "parallelism 0"});
}

TEST(TopologyValidation, AnUnknownInputComponentIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt()).shuffleGrouping("nubmers");
  expectRejected(b, {"bolt 'sink'", "unknown component 'nubmers'"});
}

TEST(TopologyValidation, AnUndeclaredStreamIsRejectedListingTheDeclaredOnes) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt()).shuffleGrouping("numbers", "odd");
  expectRejected(b, {"bolt 'sink'", "stream 'odd'", "declared: default"});
}

TEST(TopologyValidation, FieldsGroupingOnAnUndeclaredFieldIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt()).fieldsGrouping("numbers", {"word"});
  expectRejected(b, {"bolt 'sink'", "field 'word'", "[n:int64, key:int64]"});
}

TEST(TopologyValidation, PartialKeyGroupingOnAnUndeclaredFieldIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt()).partialKeyGrouping("numbers", {"nope"});
  expectRejected(b, {"bolt 'sink'", "partialKey", "'nope'"});
}

TEST(TopologyValidation, ACycleIsRejectedShowingIt) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("a", bolt(Fields{"n", "key"})).shuffleGrouping("numbers").shuffleGrouping("b");
  b.setBolt("b", bolt(Fields{"n", "key"})).shuffleGrouping("a");
  expectRejected(b, {"cycle", "a -> b -> a"});
}

TEST(TopologyValidation, ABoltWithoutInputsIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("lonely", bolt());
  expectRejected(b, {"bolt 'lonely'", "no inputs"});
}

TEST(TopologyValidation, AReservedNameIsRejected) {
  TopologyBuilder b;
  b.setSpout("__acker", spout());
  expectRejected(b, {"'__acker'", "reserved"});
}

TEST(TopologyValidation, SubscribingTwiceToOneStreamIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout());
  b.setBolt("sink", bolt()).shuffleGrouping("numbers").allGrouping("numbers");
  expectRejected(b, {"bolt 'sink'", "twice", "numbers:default"});
}

TEST(TopologyValidation, AWatermarkOnACustomSpoutIsRejected) {
  TopologyBuilder b;
  b.setSpout("numbers", spout()).withWatermark("n", Duration(0));
  expectRejected(b, {"spout 'numbers'", "emitWatermark"});
}

TEST(TopologyValidation, AWatermarkOnAFieldTheSourceLacksIsRejected) {
  TopologyBuilder b;
  b.setSpout("events", std::make_shared<TinySource>()).withWatermark("time", Duration(0));
  expectRejected(b, {"spout 'events'", "'time'"});
}

TEST(TopologyValidation, ANullSourceIsRejected) {
  TopologyBuilder b;
  b.setSpout("events", SourcePtr{});
  expectRejected(b, {"spout 'events'", "null"});
}

}  // namespace
}  // namespace gale

namespace gale {
namespace {

// A source of (k, ts) rows, enough for the build-time checks below.
class KeyTimeSource : public Source {
 public:
  explicit KeyTimeSource(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"k", Type::String}, {"ts", Type::Timestamp}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return 0; }
  size_t read(int, int64_t, int64_t, std::vector<SourceRecord>&) override { return 0; }

 private:
  std::string name_;
};

void joinTopology(TopologyBuilder& b, JoinType type, bool leftWatermark, bool rightWatermark) {
  const Fields f{{"k", Type::String}, {"ts", Type::Timestamp}};
  auto l = b.setSpout("clicks", std::make_shared<KeyTimeSource>("c"), 1);
  if (leftWatermark) l.withWatermark("ts", std::chrono::seconds(1));
  auto r = b.setSpout("views", std::make_shared<KeyTimeSource>("v"), 1);
  if (rightWatermark) r.withWatermark("ts", std::chrono::seconds(1));
  b.setBolt("join", StreamJoin({"clicks", f, {"k"}, "ts"}, {"views", f, {"k"}, "ts"}, type,
                               between(std::chrono::seconds(-5), std::chrono::seconds(5))), 2)
      .fieldsGrouping("clicks", Fields{"k"})
      .fieldsGrouping("views", Fields{"k"});
}

TEST(TopologyValidation, AnOuterJoinWithoutAWatermarkUpstreamIsRejectedSayingWhatToAdd) {
  TopologyBuilder outerWithout, outerWith, innerWithout;
  joinTopology(outerWithout, JoinType::LeftOuter, true, false);
  expectRejected(outerWithout, {"bolt 'join'", "LeftOuter", "add .withWatermark(field, delay)"});
  joinTopology(outerWith, JoinType::LeftOuter, true, true);
  EXPECT_NO_THROW(outerWith.build());
  joinTopology(innerWithout, JoinType::Inner, false, false);
  EXPECT_NO_THROW(innerWithout.build());
}

TEST(TopologyBuilder, WrappedComponentsKeepNamesParallelismGroupingsAndFusionSettings) {
  TopologyBuilder b;
  b.setSpout("numbers", spout(), 2).disableFusion();
  b.setBolt("pass", Passthrough{}, 2).fieldsGrouping("numbers", {"key"});
  b.setBolt("sink", bolt(), 1).shuffleGrouping("pass").globalGrouping("pass", "late")
      .disableFusion();
  Topology t = b.build();
  std::vector<std::string> wrapped;
  Topology w = wrapComponents(
      t, {.spout = [&](const ComponentSpec& c) -> std::unique_ptr<Spout> {
            wrapped.push_back(c.name);
            return std::make_unique<CountingSpout>(spout());
          },
          .bolt = [&](const ComponentSpec& c) -> std::unique_ptr<Bolt> {
            wrapped.push_back(c.name);
            // The bolt must declare the streams its consumers read: "pass" keeps its fields.
            return c.op ? std::unique_ptr<Bolt>(std::make_unique<OperatorBolt>(c.op))
                        : c.bolt->clone();
          }});
  EXPECT_EQ(wrapped, (std::vector<std::string>{"numbers", "pass", "sink"}));
  ASSERT_EQ(w.components().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const ComponentSpec& a = t.components()[i];
    const ComponentSpec& c = w.components()[i];
    EXPECT_EQ(c.name, a.name);
    EXPECT_EQ(c.parallelism, a.parallelism);
    EXPECT_EQ(c.fusion, a.fusion) << c.name;
    ASSERT_EQ(c.inputs.size(), a.inputs.size()) << c.name;
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      EXPECT_EQ(c.inputs[k].component, a.inputs[k].component);
      EXPECT_EQ(c.inputs[k].stream, a.inputs[k].stream);
      EXPECT_EQ(c.inputs[k].grouping, a.inputs[k].grouping);
      EXPECT_EQ(c.inputs[k].fields, a.inputs[k].fields);
    }
    EXPECT_FALSE(c.op) << "the wrappers replace the operator";
  }
  EXPECT_FALSE(w.components()[0].fusion);
  EXPECT_TRUE(w.components()[1].fusion);
  EXPECT_FALSE(w.components()[2].fusion);
}

// A stateful operator keyed by "key" that splits its (empty) state by key group.
struct KeyedCounter : Operator, KeyGroupedState {
  explicit KeyedCounter(std::vector<std::string> keys = {"key"}) : keys_(std::move(keys)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"key"}); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<KeyedCounter>(keys_); }
  void onTuple(const Tuple&, Emitter&) override {}
  bool stateful() const override { return true; }
  std::vector<std::string> keyGroupFields() const override { return keys_; }
  Split snapshotKeyGroups(uint32_t) const override { return {}; }
  void restoreKeyGroups(const std::vector<Head>&,
                        const std::map<uint32_t, std::string_view>&, uint32_t) override {}
  std::vector<std::string> keys_;
};
// Both ways of splitting state at once (micro-batch mode would restore each from what the other
// wrote).
struct IncrementalKeyedCounter : KeyedCounter, IncrementalState {
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<IncrementalKeyedCounter>();
  }
  void trackChanges() override {}
  std::string snapshotHead() const override { return {}; }
  Changes takeChanges() override { return {}; }
  void restoreIncremental(std::string_view,
                          const std::vector<std::pair<std::string, std::string>>&) override {}
};
struct StatefulPassthrough : Passthrough {
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<StatefulPassthrough>();
  }
  bool stateful() const override { return true; }
};

TEST(TopologyBuilder, AKeyGroupedBoltMustBeFieldsGroupedOnItsKeyFieldsInOrder) {
  auto with = [](const std::function<void(TopologyBuilder&)>& bolt) {
    auto b = std::make_unique<TopologyBuilder>();
    b->setSpout("numbers", spout(), 2);
    bolt(*b);
    return b;
  };
  auto ok = with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter{}, 3).maxParallelism(7).fieldsGrouping("numbers", {"key"});
  });
  Topology t = ok->build();
  EXPECT_EQ(t.at("count").maxParallelism, 7u);
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter{}, 3).maxParallelism(7).shuffleGrouping("numbers");
  }), {"bolt 'count'", "fieldsGrouping on exactly those fields", "shuffle"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter{}, 3).maxParallelism(7).fieldsGrouping("numbers", {"n"});
  }), {"bolt 'count'", "(key)"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter({"key", "n"}), 3).maxParallelism(7)
        .fieldsGrouping("numbers", {"n", "key"});
  }), {"bolt 'count'", "(key,n)", "in that order"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter{}, 8).maxParallelism(7).fieldsGrouping("numbers", {"key"});
  }), {"bolt 'count'", "parallelism 8 is above its maxParallelism 7"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter{}, 1).maxParallelism(kMaxKeyGroups + 1)
        .fieldsGrouping("numbers", {"key"});
  }), {"bolt 'count'", "is above 32768"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", StatefulPassthrough{}, 2).maxParallelism(7)
        .fieldsGrouping("numbers", {"key"});
  }), {"bolt 'count'", "does not implement KeyGroupedState"});
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("count", KeyedCounter(std::vector<std::string>{}), 2).maxParallelism(7)
        .fieldsGrouping("numbers", {"key"});
  }), {"bolt 'count'", "no key fields"});
  // Incremental state besides: only micro-batch mode stores it per task, and refuses it there
  // (batch/incremental_state_test.cpp); continuous exactly-once splits it by key group.
  EXPECT_NO_THROW(with([](TopologyBuilder& b) {
    b.setBolt("count", IncrementalKeyedCounter{}, 2).maxParallelism(7)
        .fieldsGrouping("numbers", {"key"});
  })->build());
  // A stateless operator (a sink among them) checkpoints per task too (pending parts, in-flight
  // tuples): refused, so a rescale cannot drop what a removed task held.
  expectRejected(*with([](TopologyBuilder& b) {
    b.setBolt("pass", Passthrough{}, 2).maxParallelism(7).fieldsGrouping("numbers", {"key"});
  }), {"bolt 'pass'", "does not implement KeyGroupedState", "per task"});
}

TEST(TopologyBuilder, WrappedComponentsKeepTheirKeyGroups) {
  TopologyBuilder b;
  b.setSpout("numbers", spout(), 2);
  b.setBolt("count", KeyedCounter{}, 3).maxParallelism(16).fieldsGrouping("numbers", {"key"});
  Topology w = wrapComponents(
      b.build(), {.spout = [](const ComponentSpec&) -> std::unique_ptr<Spout> {
                    return std::make_unique<CountingSpout>(spout());
                  },
                  .bolt = [](const ComponentSpec& c) -> std::unique_ptr<Bolt> {
                    return std::make_unique<OperatorBolt>(c.op);
                  }});
  EXPECT_EQ(w.at("count").maxParallelism, 16u);
  EXPECT_EQ(w.at("numbers").maxParallelism, 0u);
}

Topology fingerprinted(int countTasks, uint32_t maxParallelism, int spoutTasks = 2) {
  TopologyBuilder b;
  b.setSpout("numbers", spout(), spoutTasks);
  auto d = b.setBolt("count", KeyedCounter{}, countTasks);
  d.fieldsGrouping("numbers", {"key"});
  if (maxParallelism) d.maxParallelism(maxParallelism);
  b.setBolt("sink", bolt(), 2).shuffleGrouping("count");
  return b.build();
}

TEST(TopologyFingerprint, IgnoresOnlyTheParallelismOfKeyGroupedBolts) {
  // Without key groups the fingerprint is what it always was: checkpoints of earlier versions
  // keep opening (the value is pinned).
  EXPECT_EQ(topologyFingerprint(fingerprinted(2, 0)), "topology-b0df76c5028945ef");
  EXPECT_NE(topologyFingerprint(fingerprinted(2, 0)),
            topologyFingerprint(fingerprinted(4, 0)));
  // With them, the key-grouped bolt's parallelism may change, nothing else.
  std::string two = topologyFingerprint(fingerprinted(2, 128));
  EXPECT_EQ(two, topologyFingerprint(fingerprinted(4, 128)));
  EXPECT_EQ(two, topologyFingerprint(fingerprinted(1, 128)));
  EXPECT_NE(two, topologyFingerprint(fingerprinted(2, 64)));
  EXPECT_NE(two, topologyFingerprint(fingerprinted(2, 0)));
  EXPECT_NE(two, topologyFingerprint(fingerprinted(2, 128, 3)));
}

}  // namespace
}  // namespace gale
