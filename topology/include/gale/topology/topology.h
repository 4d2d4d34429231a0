// Building a continuous-mode topology the Storm way: name spouts and bolts, give each a
// parallelism, and subscribe bolts to streams with groupings. build() checks the whole graph and
// returns an immutable Topology whose structure is readable (the micro-batch runtime rebuilds a
// topology from it with wrapped components).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/key_group.h"
#include "gale/core/operator.h"
#include "gale/core/source.h"
#include "gale/core/tuple.h"
#include "gale/topology/adapters.h"
#include "gale/topology/component.h"

namespace gale {

class SchemaRegistry;  // core's wire-level stream registry (private to the runtimes)
struct ComponentWrappers;

enum class ComponentKind { Spout, Bolt };

enum class Grouping {
  Shuffle,         // round-robin over a random permutation: even load
  Fields,          // hash of the named fields: one key -> one task, always the same
  All,             // every task gets a copy
  Global,          // the lowest task id only
  Direct,          // the emitter names the task (emitDirect)
  LocalOrShuffle,  // tasks in the same worker process if there are any, else shuffle
  PartialKey,      // two hash choices, the one this sender sent fewer to (Nasir et al.)
};
const char* groupingName(Grouping g);

// One subscription of a bolt: which stream it reads and how tuples are split over its tasks.
struct InputSpec {
  std::string component;
  std::string stream = kDefaultStream;
  Grouping grouping = Grouping::Shuffle;
  std::vector<std::string> fields;  // Fields and PartialKey groupings
};

struct StreamSpec {
  std::string name;
  Fields fields;
  StreamId id = 0;  // topology-wide id on the wire
};

struct ComponentSpec {
  std::string name;
  ComponentKind kind = ComponentKind::Bolt;
  int parallelism = 1;
  // The prototype the runtime clones per task. For setSpout(name, SourcePtr) it is a SourceSpout
  // and `source` / `watermark` are set; for setBolt(name, Operator) it is an OperatorBolt and
  // `op` is set.
  std::shared_ptr<const Spout> spout;
  std::shared_ptr<const Bolt> bolt;
  SourcePtr source;
  std::optional<WatermarkSpec> watermark;
  std::shared_ptr<const Operator> op;
  std::vector<InputSpec> inputs;    // bolts only
  std::vector<StreamSpec> outputs;  // declared output streams
  TaskId firstTask = 0;             // this component's tasks are firstTask .. +parallelism-1
  // Continuous mode may run this component in its upstream's tasks, or its downstream in its
  // own (fusion, docs/runtime.md); false: never (disableFusion()).
  bool fusion = true;
  // Bolts only: the number of key groups its keyed state is split into (0: none, its snapshots
  // are whole per task and its parallelism is part of the checkpoint's identity). With M > 0
  // fields grouping sends a key to the task owning its group, and the parallelism may change
  // between runs of an exactly-once or micro-batch job, up to M (gale/core/key_group.h).
  uint32_t maxParallelism = 0;

  const StreamSpec* findStream(std::string_view stream) const;
  bool isSpout() const { return kind == ComponentKind::Spout; }
};

// A consumer of one stream: the subscribing bolt and how.
struct Subscription {
  const ComponentSpec* consumer = nullptr;
  const InputSpec* input = nullptr;
};

class Topology {
 public:
  const std::vector<ComponentSpec>& components() const { return components_; }
  const ComponentSpec* find(std::string_view name) const;
  // Throws std::invalid_argument naming the component when there is none.
  const ComponentSpec& at(std::string_view name) const;
  // Tasks of components (ackers are extra, added by the runtime after these ids).
  int taskCount() const { return taskCount_; }
  std::vector<TaskId> tasksOf(std::string_view component) const;
  const ComponentSpec& componentOfTask(TaskId task) const;
  // Bolts subscribed to (component, stream), in component order.
  std::vector<Subscription> subscribers(std::string_view component,
                                        std::string_view stream) const;
  // Components whose streams `component` reads (each once).
  std::vector<const ComponentSpec*> upstreamOf(std::string_view component) const;
  const std::shared_ptr<const SchemaRegistry>& registry() const { return registry_; }
  std::string toString() const;

 private:
  friend class TopologyBuilder;
  friend Topology wrapComponents(const Topology&, const ComponentWrappers&);
  std::vector<ComponentSpec> components_;
  std::vector<int> componentOfTask_;
  int taskCount_ = 0;
  std::shared_ptr<const SchemaRegistry> registry_;
};

class TopologyBuilder;

class SpoutDeclarer {
 public:
  // In-band watermarks from the spout's tasks (only for setSpout(name, SourcePtr): a custom
  // Spout calls SpoutOutputCollector::emitWatermark itself).
  SpoutDeclarer& withWatermark(std::string field, Duration delay);
  SpoutDeclarer& withWatermark(WatermarkSpec spec);
  // No bolt is fused into this spout's tasks (ComponentSpec::fusion).
  SpoutDeclarer& disableFusion();

 private:
  friend class TopologyBuilder;
  explicit SpoutDeclarer(ComponentSpec* spec) : spec_(spec) {}
  ComponentSpec* spec_;
};

class BoltDeclarer {
 public:
  BoltDeclarer& shuffleGrouping(std::string component, std::string stream = kDefaultStream);
  BoltDeclarer& fieldsGrouping(std::string component, const Fields& fields,
                               std::string stream = kDefaultStream);
  BoltDeclarer& allGrouping(std::string component, std::string stream = kDefaultStream);
  BoltDeclarer& globalGrouping(std::string component, std::string stream = kDefaultStream);
  BoltDeclarer& directGrouping(std::string component, std::string stream = kDefaultStream);
  BoltDeclarer& localOrShuffleGrouping(std::string component,
                                       std::string stream = kDefaultStream);
  BoltDeclarer& partialKeyGrouping(std::string component, const Fields& fields,
                                   std::string stream = kDefaultStream);
  // Any subscription, e.g. one copied from another Topology's ComponentSpec::inputs.
  BoltDeclarer& grouping(InputSpec input);
  // This bolt runs on threads of its own: it is neither fused into its upstream's tasks nor
  // hosts its downstream (ComponentSpec::fusion; Flink's disableChaining).
  BoltDeclarer& disableFusion();
  // Splits the bolt's keyed state into `keyGroups` key groups (ComponentSpec::maxParallelism),
  // so that its parallelism can be changed up to that number while its state is kept. The
  // operator (or CheckpointedBolt) must implement KeyGroupedState and every input must be
  // fields-grouped on its keyGroupFields(), in order. Other components (stateless ones and
  // sinks included) keep their parallelism: what their tasks checkpoint is per task.
  BoltDeclarer& maxParallelism(uint32_t keyGroups);

 private:
  friend class TopologyBuilder;
  explicit BoltDeclarer(ComponentSpec* spec) : spec_(spec) {}
  ComponentSpec* spec_;
};

class TopologyBuilder {
 public:
  TopologyBuilder();
  ~TopologyBuilder();
  SpoutDeclarer setSpout(std::string name, const Spout& spout, int parallelism = 1);
  SpoutDeclarer setSpout(std::string name, SourcePtr source, int parallelism = 1);
  BoltDeclarer setBolt(std::string name, const Bolt& bolt, int parallelism = 1);
  BoltDeclarer setBolt(std::string name, const Operator& op, int parallelism = 1);

  // Checks the graph and returns it. Throws std::invalid_argument naming the component for: an
  // empty or reserved name, a name used twice, parallelism < 1, a bolt without inputs, an input
  // from an unknown component or stream, a (partial-)key grouping on fields the stream does not
  // declare or with no fields, a cycle, a watermark on a custom spout or on a field the source
  // does not declare, a missing source, a maxParallelism out of 1..kMaxKeyGroups or below the
  // parallelism, or on a stateful bolt without KeyGroupedState or whose inputs are not
  // fields-grouped on its key fields.
  Topology build() const;

 private:
  // Stable addresses for the declarers.
  std::vector<std::unique_ptr<ComponentSpec>> specs_;
};

// For the runtimes that run a topology through wrappers of their own (micro-batch mode,
// exactly-once continuous mode): the same components — names, parallelism, groupings, fusion
// settings — with each spout and bolt replaced by what `spout` / `bolt` make of its spec (called
// in component order).
struct ComponentWrappers {
  std::function<std::unique_ptr<Spout>(const ComponentSpec&)> spout;
  std::function<std::unique_ptr<Bolt>(const ComponentSpec&)> bolt;
};
Topology wrapComponents(const Topology& topology, const ComponentWrappers& wrappers);

// The key-grouped state of task `taskIndex` of `component` whose operator or bolt is `object`
// (empty when the component has no maxParallelism): for the runtimes' snapshot wrappers.
template <class T>
KeyGroupedTask keyGroupedTask(const Topology& topology, const std::string& component,
                              int taskIndex, int parallelism, T* object) {
  uint32_t m = topology.at(component).maxParallelism;
  auto* state = m ? dynamic_cast<KeyGroupedState*>(object) : nullptr;
  return {state, m, component, taskIndex, parallelism};
}

// A stable fingerprint of a topology's structure (components, parallelism, groupings, streams,
// sources): a checkpoint written by another structure is refused. A key-grouped bolt contributes
// its maxParallelism in place of its parallelism, which a restore may change.
std::string topologyFingerprint(const Topology& topology);

}  // namespace gale
