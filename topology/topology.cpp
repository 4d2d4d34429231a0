#include "gale/topology/topology.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include "gale/core/frame.h"
#include "gale/core/incremental_state.h"

namespace gale {

Fields deadLetterFields() {
  return Fields{{"stream", Type::String},    {"values", Type::Bytes},
                {"component", Type::String}, {"error", Type::String},
                {"attempts", Type::Int64},   {"msg_id", Type::Int64}};
}

const char* groupingName(Grouping g) {
  switch (g) {
    case Grouping::Shuffle: return "shuffle";
    case Grouping::Fields: return "fields";
    case Grouping::All: return "all";
    case Grouping::Global: return "global";
    case Grouping::Direct: return "direct";
    case Grouping::LocalOrShuffle: return "localOrShuffle";
    case Grouping::PartialKey: return "partialKey";
  }
  return "?";
}

const StreamSpec* ComponentSpec::findStream(std::string_view stream) const {
  for (const auto& s : outputs)
    if (s.name == stream) return &s;
  return nullptr;
}

const ComponentSpec* Topology::find(std::string_view name) const {
  for (const auto& c : components_)
    if (c.name == name) return &c;
  return nullptr;
}

const ComponentSpec& Topology::at(std::string_view name) const {
  if (const ComponentSpec* c = find(name)) return *c;
  throw std::invalid_argument("the topology has no component '" + std::string(name) + "'");
}

std::vector<TaskId> Topology::tasksOf(std::string_view component) const {
  const ComponentSpec& c = at(component);
  std::vector<TaskId> out;
  for (int i = 0; i < c.parallelism; ++i) out.push_back(c.firstTask + i);
  return out;
}

const ComponentSpec& Topology::componentOfTask(TaskId task) const {
  if (task < 0 || task >= taskCount_)
    throw std::out_of_range("task " + std::to_string(task) + " is not a component task (0.." +
                            std::to_string(taskCount_ - 1) + ")");
  return components_[componentOfTask_[task]];
}

std::vector<Subscription> Topology::subscribers(std::string_view component,
                                                std::string_view stream) const {
  std::vector<Subscription> out;
  for (const auto& c : components_)
    for (const auto& in : c.inputs)
      if (in.component == component && in.stream == stream) out.push_back({&c, &in});
  return out;
}

std::vector<const ComponentSpec*> Topology::upstreamOf(std::string_view component) const {
  std::vector<const ComponentSpec*> out;
  for (const auto& in : at(component).inputs) {
    const ComponentSpec* up = find(in.component);
    if (std::find(out.begin(), out.end(), up) == out.end()) out.push_back(up);
  }
  return out;
}

std::string Topology::toString() const {
  std::string s;
  for (const auto& c : components_) {
    s += (c.isSpout() ? "spout " : "bolt ") + c.name + " x" + std::to_string(c.parallelism);
    for (const auto& in : c.inputs)
      s += " <-" + std::string(groupingName(in.grouping)) + "- " + in.component + ":" + in.stream;
    s += "\n";
  }
  return s;
}

SpoutDeclarer& SpoutDeclarer::withWatermark(std::string field, Duration delay) {
  WatermarkSpec w;
  w.field = std::move(field);
  w.delay = delay;
  return withWatermark(std::move(w));
}

SpoutDeclarer& SpoutDeclarer::withWatermark(WatermarkSpec spec) {
  spec_->watermark = std::move(spec);
  return *this;
}

namespace {
InputSpec input(std::string component, std::string stream, Grouping g,
                std::vector<std::string> fields = {}) {
  InputSpec in;
  in.component = std::move(component);
  in.stream = std::move(stream);
  in.grouping = g;
  in.fields = std::move(fields);
  return in;
}
}  // namespace

BoltDeclarer& BoltDeclarer::shuffleGrouping(std::string c, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::Shuffle));
}
BoltDeclarer& BoltDeclarer::fieldsGrouping(std::string c, const Fields& f, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::Fields, f.names()));
}
BoltDeclarer& BoltDeclarer::allGrouping(std::string c, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::All));
}
BoltDeclarer& BoltDeclarer::globalGrouping(std::string c, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::Global));
}
BoltDeclarer& BoltDeclarer::directGrouping(std::string c, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::Direct));
}
BoltDeclarer& BoltDeclarer::localOrShuffleGrouping(std::string c, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::LocalOrShuffle));
}
BoltDeclarer& BoltDeclarer::partialKeyGrouping(std::string c, const Fields& f, std::string s) {
  return grouping(input(std::move(c), std::move(s), Grouping::PartialKey, f.names()));
}
BoltDeclarer& BoltDeclarer::grouping(InputSpec in) {
  spec_->inputs.push_back(std::move(in));
  return *this;
}

SpoutDeclarer& SpoutDeclarer::disableFusion() {
  spec_->fusion = false;
  return *this;
}

BoltDeclarer& BoltDeclarer::disableFusion() {
  spec_->fusion = false;
  return *this;
}

BoltDeclarer& BoltDeclarer::maxParallelism(uint32_t keyGroups) {
  spec_->maxParallelism = keyGroups;
  return *this;
}

TopologyBuilder::TopologyBuilder() = default;
TopologyBuilder::~TopologyBuilder() = default;

SpoutDeclarer TopologyBuilder::setSpout(std::string name, const Spout& spout, int parallelism) {
  auto spec = std::make_unique<ComponentSpec>();
  spec->name = std::move(name);
  spec->kind = ComponentKind::Spout;
  spec->parallelism = parallelism;
  spec->spout = std::shared_ptr<const Spout>(spout.clone());
  specs_.push_back(std::move(spec));
  return SpoutDeclarer(specs_.back().get());
}

SpoutDeclarer TopologyBuilder::setSpout(std::string name, SourcePtr source, int parallelism) {
  auto spec = std::make_unique<ComponentSpec>();
  spec->name = std::move(name);
  spec->kind = ComponentKind::Spout;
  spec->parallelism = parallelism;
  spec->source = std::move(source);  // the SourceSpout is made in build(), once the watermark is known
  specs_.push_back(std::move(spec));
  return SpoutDeclarer(specs_.back().get());
}

BoltDeclarer TopologyBuilder::setBolt(std::string name, const Bolt& bolt, int parallelism) {
  auto spec = std::make_unique<ComponentSpec>();
  spec->name = std::move(name);
  spec->kind = ComponentKind::Bolt;
  spec->parallelism = parallelism;
  spec->bolt = std::shared_ptr<const Bolt>(bolt.clone());
  specs_.push_back(std::move(spec));
  return BoltDeclarer(specs_.back().get());
}

BoltDeclarer TopologyBuilder::setBolt(std::string name, const Operator& op, int parallelism) {
  auto spec = std::make_unique<ComponentSpec>();
  spec->name = std::move(name);
  spec->kind = ComponentKind::Bolt;
  spec->parallelism = parallelism;
  spec->op = std::shared_ptr<const Operator>(op.clone());
  spec->bolt = std::make_shared<OperatorBolt>(spec->op);
  specs_.push_back(std::move(spec));
  return BoltDeclarer(specs_.back().get());
}

namespace {
[[noreturn]] void reject(const ComponentSpec& c, const std::string& why) {
  throw std::invalid_argument(std::string(c.isSpout() ? "spout '" : "bolt '") + c.name + "': " +
                              why);
}

// A key-grouped bolt: its state must split by group, and the router's group of a key must be
// the state's, so every input is fields-grouped on the state's key fields in the same order.
void checkKeyGroups(const ComponentSpec& c) {
  const uint32_t m = c.maxParallelism;
  if (m == 0) return;
  if (m > kMaxKeyGroups)
    reject(c, "maxParallelism " + std::to_string(m) + " is above " + std::to_string(kMaxKeyGroups));
  if (static_cast<uint32_t>(c.parallelism) > m)
    reject(c, "parallelism " + std::to_string(c.parallelism) + " is above its maxParallelism " +
                  std::to_string(m));
  const KeyGroupedState* state = c.op ? dynamic_cast<const KeyGroupedState*>(c.op.get())
                                      : dynamic_cast<const KeyGroupedState*>(c.bolt.get());
  // Only KeyGroupedState restores at another parallelism. Anything else a task checkpoints (a
  // two-phase-commit sink's pending parts, a write-ahead sink's records, an unaligned
  // checkpoint's in-flight tuples) is kept per task index and would be dropped by a rescale, so
  // a component without it cannot have key groups, stateful or not.
  if (!state)
    reject(c, "maxParallelism needs state split by key group, but the " +
                  std::string(c.op ? "operator" : "bolt") +
                  " does not implement KeyGroupedState (what a task of it checkpoints stays "
                  "per task and would be lost by a rescale)");
  // Micro-batch mode would commit such an operator's state as a head and per-task entries
  // (IncrementalState) but restore it from key-group blobs, which were never written.
  if (c.op && dynamic_cast<const IncrementalState*>(c.op.get()))
    reject(c, "maxParallelism needs state split by key group, but the operator also keeps "
              "incremental state (IncrementalState), whose entries are stored per task");
  std::vector<std::string> keys = state->keyGroupFields();
  if (keys.empty())
    reject(c, "maxParallelism needs a keyed state, but it has no key fields");
  std::string keyList;
  for (const auto& k : keys) keyList += (keyList.empty() ? "" : ",") + k;
  for (const auto& in : c.inputs)
    if (in.grouping != Grouping::Fields || in.fields != keys)
      reject(c, "its state is split by key group over (" + keyList + "), so every input must be " +
                    "fieldsGrouping on exactly those fields in that order; " + in.component +
                    ":" + in.stream + " is " + groupingName(in.grouping) + " grouping");
}

std::string streamList(const ComponentSpec& c) {
  std::string s;
  for (const auto& o : c.outputs) s += (s.empty() ? "" : ", ") + o.name;
  return s.empty() ? "none" : s;
}
}  // namespace

Topology TopologyBuilder::build() const {
  if (specs_.empty())
    throw std::invalid_argument("the topology is empty: add a spout with setSpout()");
  Topology t;
  std::map<std::string, size_t> index;
  for (const auto& p : specs_) {
    ComponentSpec c = *p;
    if (c.name.empty()) throw std::invalid_argument("a component has an empty name");
    if (c.name.rfind("__", 0) == 0)
      reject(c, "names starting with '__' are reserved for the runtime (e.g. __acker)");
    if (index.count(c.name))
      reject(c, "the name is used by two components; give each a unique name");
    if (c.parallelism < 1)
      reject(c, "parallelism " + std::to_string(c.parallelism) + " must be at least 1");
    if (c.isSpout() && !c.spout && !c.source) reject(c, "the source is null");
    if (c.isSpout() && c.source) {
      c.spout = std::make_shared<SourceSpout>(c.source, c.watermark);
    } else if (c.watermark) {
      reject(c, "withWatermark() applies to a spout over a gale::Source; a custom Spout emits "
                "its own watermarks with SpoutOutputCollector::emitWatermark()");
    }
    if (!c.isSpout() && c.inputs.empty())
      reject(c, "the bolt has no inputs; subscribe it with a grouping, e.g. shuffleGrouping()");
    checkKeyGroups(c);
    OutputFieldsDeclarer d;
    try {
      if (c.isSpout())
        c.spout->declareOutputFields(d);
      else
        c.bolt->declareOutputFields(d);
    } catch (const std::exception& e) {
      reject(c, std::string("declareOutputFields failed: ") + e.what());
    }
    for (const auto& [name, fields] : d.streams()) {
      if (name == kDeadLetterStream)
        reject(c, std::string("declares stream '") + kDeadLetterStream +
                      "', which the runtime declares for every spout (dead letters)");
      c.outputs.push_back({name, fields, 0});
    }
    if (c.isSpout()) c.outputs.push_back({kDeadLetterStream, deadLetterFields(), 0});
    if (c.watermark) {
      const StreamSpec* def = c.findStream(kDefaultStream);
      if (!def || !def->fields.contains(c.watermark->field))
        reject(c, "watermark field '" + c.watermark->field +
                      "' is not a field of the source's default stream " +
                      (def ? def->fields.toString() : std::string("(not declared)")));
    }
    c.firstTask = t.taskCount_;
    t.taskCount_ += c.parallelism;
    for (int i = 0; i < c.parallelism; ++i)
      t.componentOfTask_.push_back(static_cast<int>(t.components_.size()));
    index[c.name] = t.components_.size();
    t.components_.push_back(std::move(c));
  }
  // Inputs: components, streams and fields exist.
  for (const auto& c : t.components_) {
    for (const auto& in : c.inputs) {
      auto it = index.find(in.component);
      if (it == index.end())
        reject(c, "subscribes to unknown component '" + in.component + "'");
      const ComponentSpec& up = t.components_[it->second];
      const StreamSpec* s = up.findStream(in.stream);
      if (!s)
        reject(c, "subscribes to stream '" + in.stream + "' which '" + up.name +
                      "' does not declare (declared: " + streamList(up) + ")");
      if (in.grouping == Grouping::Fields || in.grouping == Grouping::PartialKey) {
        if (in.fields.empty())
          reject(c, std::string(groupingName(in.grouping)) + " grouping on " + up.name + ":" +
                        in.stream + " names no fields");
        for (const auto& f : in.fields)
          if (!s->fields.contains(f))
            reject(c, std::string(groupingName(in.grouping)) + " grouping on field '" + f +
                          "' which stream " + up.name + ":" + in.stream + " does not declare " +
                          s->fields.toString());
      }
      for (const auto& other : c.inputs)
        if (&other != &in && other.component == in.component && other.stream == in.stream) {
          reject(c, "subscribes twice to " + in.component + ":" + in.stream +
                        "; a bolt reads a stream through one grouping");
        }
    }
  }
  // No cycles (depth-first search over component -> consumer edges).
  std::vector<int> state(t.components_.size(), 0);  // 0 new, 1 on the path, 2 done
  std::vector<std::string> path;
  std::function<void(size_t)> visit = [&](size_t i) {
    state[i] = 1;
    path.push_back(t.components_[i].name);
    for (size_t j = 0; j < t.components_.size(); ++j) {
      bool edge = false;
      for (const auto& in : t.components_[j].inputs)
        if (in.component == t.components_[i].name) edge = true;
      if (!edge) continue;
      if (state[j] == 1) {
        std::string cycle;
        auto from = std::find(path.begin(), path.end(), t.components_[j].name);
        for (auto p = from; p != path.end(); ++p) cycle += *p + " -> ";
        reject(t.components_[j], "is part of a cycle: " + cycle + t.components_[j].name);
      }
      if (state[j] == 0) visit(j);
    }
    path.pop_back();
    state[i] = 2;
  };
  for (size_t i = 0; i < t.components_.size(); ++i)
    if (state[i] == 0) visit(i);
  // Operators that check where they sit (e.g. an outer join needs watermarks upstream).
  for (const auto& c : t.components_) {
    if (!c.op) continue;
    std::vector<std::string> inputs;
    for (const auto& in : c.inputs)
      if (std::find(inputs.begin(), inputs.end(), in.component) == inputs.end())
        inputs.push_back(in.component);
    bool watermarked = true;
    std::vector<std::string> todo = inputs, seen;
    while (!todo.empty()) {
      std::string name = todo.back();
      todo.pop_back();
      if (std::find(seen.begin(), seen.end(), name) != seen.end()) continue;
      seen.push_back(name);
      const ComponentSpec& up = t.components_[index.at(name)];
      // A custom Spout emits its own watermarks; a spout over a Source needs withWatermark().
      if (up.isSpout() && up.source && !up.watermark) watermarked = false;
      for (const auto& in : up.inputs) todo.push_back(in.component);
    }
    std::string why = c.op->checkPlacement(inputs, watermarked);
    if (!why.empty()) reject(c, why);
  }
  // Wire-level stream ids, one per (component, stream).
  auto registry = std::make_shared<SchemaRegistry>();
  for (auto& c : t.components_)
    for (auto& s : c.outputs) s.id = registry->add(makeSchema(c.name, s.name, s.fields));
  t.registry_ = std::move(registry);
  return t;
}

Topology wrapComponents(const Topology& topology, const ComponentWrappers& wrappers) {
  TopologyBuilder b;
  for (const ComponentSpec& c : topology.components()) {
    if (c.isSpout()) {
      SpoutDeclarer d = b.setSpout(c.name, *wrappers.spout(c), c.parallelism);
      if (!c.fusion) d.disableFusion();
      continue;
    }
    BoltDeclarer d = b.setBolt(c.name, *wrappers.bolt(c), c.parallelism);
    for (const InputSpec& in : c.inputs) d.grouping(in);
    if (!c.fusion) d.disableFusion();
  }
  Topology wrapped = b.build();
  // The wrappers are not the state: the original passed the key-group checks, the routers of
  // the wrapped topology need the groups.
  for (ComponentSpec& c : wrapped.components_)
    c.maxParallelism = topology.at(c.name).maxParallelism;
  return wrapped;
}

std::string topologyFingerprint(const Topology& topology) {
  // FNV-1a over a canonical description; the description itself is short enough to keep too,
  // but a hash makes a readable job id.
  std::string d;
  for (const ComponentSpec& c : topology.components()) {
    // A key-grouped bolt's checkpoint restores into any parallelism up to its key groups.
    d += c.name + "|" + (c.isSpout() ? "spout" : "bolt") + "|" +
         (c.maxParallelism > 0 ? "maxp=" + std::to_string(c.maxParallelism)
                               : std::to_string(c.parallelism));
    // A source that names its partitions may gain some between runs (a checkpoint keeps its
    // numbering by name); another's partition count is part of the structure.
    if (c.source) {
      d += "|src=" + c.source->name();
      if (c.source->partitionIds().empty()) d += "/" + std::to_string(c.source->partitions());
    }
    for (const auto& in : c.inputs) {
      d += "|in=" + in.component + ":" + in.stream + ":" + groupingName(in.grouping);
      for (const auto& f : in.fields) d += "," + f;
    }
    for (const auto& s : c.outputs) {
      // The runtime's own streams (the dead-letter stream every spout has) are not the user's
      // structure: leaving them out keeps checkpoints of earlier versions readable.
      if (s.name.rfind("__", 0) == 0) continue;
      d += "|out=" + s.name + s.fields.toString();
    }
    d += ";";
  }
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : d) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return std::string("topology-") + buf;
}

}  // namespace gale
