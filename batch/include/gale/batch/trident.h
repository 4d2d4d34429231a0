// Trident's stream API for micro-batch jobs, as a thin layer: every operation becomes a bolt
// running a gale::Operator in an ordinary Topology, which runMicroBatch runs like any other.
//
//   gale::TridentTopology t;
//   auto counts = t.newStream("sentences", source)
//                     .each(splitWords, {"word"})
//                     .groupBy({"word"})
//                     .persistentAggregate({"counts", gale::StateKind::Opaque},
//                                          gale::CombinerAggregator::count(), "count");
//   counts.newValuesStream().sink("out", gale::ConsoleSink{});
//   gale::runMicroBatch(t.build(), {.checkpoint = "chk/"});
//
// Keyed states live in the job's checkpoint (gale::StateStore): keys and values are encoded with
// gale::encodeValues, so `gale-state` and StateStore::keyedState(name, kind) can read them.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/operator.h"
#include "gale/state/state_store.h"
#include "gale/topology/topology.h"

namespace gale {

class TridentTopology;
class GroupedStream;
class TridentState;

// Which keyed state, and with which replay semantics (see gale::StateKind).
struct StateSpec {
  std::string name;
  StateKind kind = StateKind::Opaque;
};

// Trident's CombinerAggregator: one value per tuple, combined associatively, starting from zero.
struct CombinerAggregator {
  std::function<Value(const Tuple&)> init;
  std::function<Value(const Value&, const Value&)> combine;
  Value zero;
  static CombinerAggregator count();
  static CombinerAggregator sum(std::string field);  // int64 sum of `field`
};

// each(): called per tuple with an emitter of the function's fields (zero or more rows).
using TridentFunction = std::function<void(const Tuple& input, std::vector<Values>& out)>;
// stateQuery(): the query result for one tuple, given the state's value for its key (nullopt if
// absent): the values of the query's output fields.
using StateQueryFunction =
    std::function<Values(const Tuple& input, const std::optional<Values>& stateValue)>;
// partitionPersist(): the batch's tuples of one task -> key -> (old value -> new value); keys and
// values are Values (encoded for the store by the runtime).
using StateUpdater = std::function<std::map<Values, std::function<std::optional<Values>(
    const std::optional<Values>& old)>>(const std::vector<Tuple>& batch)>;

class TridentStream {
 public:
  // Appends the fields `functionFields` computed by `fn` from the tuple (Trident's each); one
  // output tuple per row fn emits.
  TridentStream each(TridentFunction fn, Fields functionFields, int parallelism = 1) const;
  TridentStream filter(std::function<bool(const Tuple&)> keep, int parallelism = 1) const;
  // Keeps only `fields`, in that order. Throws std::invalid_argument naming a missing field.
  TridentStream project(Fields fields) const;
  GroupedStream groupBy(Fields fields) const;
  // Looks up each tuple's `keyFields` in `state` (its last committed value) and appends the
  // fields `queryFields` returned by `query`.
  TridentStream stateQuery(const TridentState& state, Fields keyFields, StateQueryFunction query,
                           Fields queryFields, int parallelism = 1) const;
  // Writes the batch's tuples into a keyed state with a user updater (Trident's partitionPersist).
  TridentState partitionPersist(StateSpec spec, StateUpdater updater, int parallelism = 1) const;
  // Ends the stream in a sink operator (e.g. MemorySink, ConsoleSink, FileSink).
  void sink(std::string name, const Operator& sink, int parallelism = 1) const;
  // Any operator (a window, a DStream operator...) on this stream, shuffled.
  TridentStream apply(std::string name, const Operator& op, int parallelism = 1) const;

  const Fields& fields() const { return fields_; }
  const std::string& component() const { return component_; }

 private:
  friend class TridentTopology;
  friend class GroupedStream;
  friend class TridentState;
  TridentStream(TridentTopology* t, std::string component, Fields fields)
      : topology_(t), component_(std::move(component)), fields_(std::move(fields)) {}
  TridentTopology* topology_;
  std::string component_;
  Fields fields_;
};

class GroupedStream {
 public:
  // Aggregates each group into the keyed state `spec` (group fields -> aggregate); the state is
  // updated once per key per batch in the batch's commit.
  TridentState persistentAggregate(StateSpec spec, CombinerAggregator agg, std::string outField,
                                   int parallelism = 1) const;
  // Aggregates each group within each batch only: (group fields..., outField) per batch.
  TridentStream aggregate(CombinerAggregator agg, std::string outField, int parallelism = 1) const;

 private:
  friend class TridentStream;
  GroupedStream(TridentStream s, Fields g) : stream_(std::move(s)), group_(std::move(g)) {}
  TridentStream stream_;
  Fields group_;
};

class TridentState {
 public:
  // The keys this state changed in each batch, with their new values: (key fields..., value
  // field) — Trident's newValuesStream. Only for persistentAggregate states.
  TridentStream newValuesStream() const;
  const StateSpec& spec() const { return spec_; }

 private:
  friend class TridentStream;
  friend class GroupedStream;
  TridentState(TridentTopology* t, StateSpec spec, std::string component, Fields newValues)
      : topology_(t), spec_(std::move(spec)), component_(std::move(component)),
        newValues_(std::move(newValues)) {}
  TridentTopology* topology_;
  StateSpec spec_;
  std::string component_;  // the persisting bolt ("" for partitionPersist)
  Fields newValues_;
};

class TridentTopology {
 public:
  TridentStream newStream(std::string name, SourcePtr source, int parallelism = 1);
  // The topology to pass to runMicroBatch. Throws std::invalid_argument like TopologyBuilder.
  Topology build() const { return builder_.build(); }
  TopologyBuilder& builder() { return builder_; }

 private:
  friend class TridentStream;
  friend class GroupedStream;
  friend class TridentState;
  std::string nextName(const std::string& kind) {
    return "t" + std::to_string(++counter_) + "-" + kind;
  }
  TopologyBuilder builder_;
  int counter_ = 0;
};

}  // namespace gale
