#include "gale/batch/trident.h"

#include <stdexcept>

#include "gale/batch/pipeline.h"
#include "gale/core/state_codec.h"

namespace gale {

namespace {

Fields concat(const Fields& a, const Fields& b) {
  std::vector<FieldSpec> v = a.specs();
  for (const auto& s : b.specs()) {
    if (a.contains(s.name)) {
      throw std::invalid_argument("trident: field '" + s.name + "' is already in the stream " +
                                  a.toString() + "; give the function's field another name");
    }
    v.push_back(s);
  }
  return Fields(std::move(v));
}

std::vector<int> indexes(const Fields& stream, const Fields& wanted, const char* what) {
  std::vector<int> idx;
  for (const auto& s : wanted.specs()) {
    int i = stream.indexOf(s.name);
    if (i < 0) {
      throw std::invalid_argument(std::string("trident: ") + what + " field '" + s.name +
                                  "' is not in the stream " + stream.toString());
    }
    idx.push_back(i);
  }
  return idx;
}

Values pick(const Tuple& t, const std::vector<int>& idx) {
  Values v;
  v.reserve(idx.size());
  for (int i : idx) v.push_back(t[i]);
  return v;
}

class EachOp final : public Operator {
 public:
  EachOp(TridentFunction fn, Fields out) : fn_(std::move(fn)), out_(std::move(out)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  OperatorPtr clone() const override { return std::make_unique<EachOp>(fn_, out_); }
  void onTuple(const Tuple& t, Emitter& e) override {
    rows_.clear();
    fn_(t, rows_);
    for (auto& r : rows_) {
      Values v = t.values();
      v.insert(v.end(), std::make_move_iterator(r.begin()), std::make_move_iterator(r.end()));
      e.emit(std::move(v));
    }
  }

 private:
  TridentFunction fn_;
  Fields out_;
  std::vector<Values> rows_;
};

class FilterOp final : public Operator {
 public:
  FilterOp(std::function<bool(const Tuple&)> keep, Fields f) : keep_(std::move(keep)), f_(std::move(f)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(f_); }
  OperatorPtr clone() const override { return std::make_unique<FilterOp>(keep_, f_); }
  void onTuple(const Tuple& t, Emitter& e) override {
    if (keep_(t)) e.emit(t.values());
  }

 private:
  std::function<bool(const Tuple&)> keep_;
  Fields f_;
};

class ProjectOp final : public Operator {
 public:
  ProjectOp(std::vector<int> idx, Fields f) : idx_(std::move(idx)), f_(std::move(f)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(f_); }
  OperatorPtr clone() const override { return std::make_unique<ProjectOp>(idx_, f_); }
  void onTuple(const Tuple& t, Emitter& e) override { e.emit(pick(t, idx_)); }

 private:
  std::vector<int> idx_;
  Fields f_;
};

// Per-batch partial aggregates per group; shared by aggregate() and persistentAggregate().
class GroupAggregate {
 public:
  GroupAggregate(std::vector<int> keyIdx, CombinerAggregator agg)
      : keyIdx_(std::move(keyIdx)), agg_(std::move(agg)) {}
  void add(const Tuple& t) {
    Values key = pick(t, keyIdx_);
    auto it = partial_.find(key);
    Value v = agg_.init(t);
    if (it == partial_.end()) {
      partial_.emplace(std::move(key), agg_.combine(agg_.zero, v));
    } else {
      it->second = agg_.combine(it->second, v);
    }
  }
  std::map<Values, Value> take() { return std::exchange(partial_, {}); }
  const CombinerAggregator& agg() const { return agg_; }

 private:
  std::vector<int> keyIdx_;
  CombinerAggregator agg_;
  std::map<Values, Value> partial_;
};

class BatchAggregateOp final : public Operator {
 public:
  BatchAggregateOp(std::vector<int> keyIdx, CombinerAggregator agg, Fields out)
      : keyIdx_(keyIdx), agg_(agg), group_(std::move(keyIdx), std::move(agg)), out_(std::move(out)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  OperatorPtr clone() const override {
    return std::make_unique<BatchAggregateOp>(keyIdx_, agg_, out_);
  }
  void onTuple(const Tuple& t, Emitter&) override { group_.add(t); }
  void onBatchEnd(uint64_t, Emitter& e) override {
    for (auto& [k, v] : group_.take()) {
      Values row = k;
      row.push_back(v);
      e.emit(std::move(row));
    }
  }

 private:
  std::vector<int> keyIdx_;
  CombinerAggregator agg_;
  GroupAggregate group_;
  Fields out_;
};

// persistentAggregate: the batch's partial per key, combined with the stored value in the commit
// (the state module applies it with the state's transactional / opaque rule), and the new values
// emitted (newValuesStream). New values come from a cache of this task's keys, read through from
// the last commit: with fields grouping on the keys, this task is the only writer of its keys, so
// the cache also covers batches finished but not committed yet (overlapping batches).
class PersistentAggregateOp final : public Operator, public BatchStateWriter {
 public:
  PersistentAggregateOp(StateSpec spec, std::vector<int> keyIdx, CombinerAggregator agg, Fields out)
      : spec_(std::move(spec)), keyIdx_(keyIdx), agg_(agg), group_(std::move(keyIdx), std::move(agg)),
        out_(std::move(out)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  OperatorPtr clone() const override {
    return std::make_unique<PersistentAggregateOp>(spec_, keyIdx_, agg_, out_);
  }
  void attachStore(StateStore& store) override { state_ = &store.keyedState(spec_.name, spec_.kind); }
  void onTuple(const Tuple& t, Emitter&) override { group_.add(t); }
  void onBatchEnd(uint64_t, Emitter& e) override {
    if (!state_) throw std::logic_error("persistentAggregate '" + spec_.name + "' runs outside a micro-batch job");
    auto partial = group_.take();
    std::vector<std::string> missing;
    std::vector<std::string> keys;
    for (auto& [k, v] : partial) {
      keys.push_back(encodeValues(k));
      if (!cache_.count(keys.back())) missing.push_back(keys.back());
    }
    if (!missing.empty()) {
      auto got = state_->multiGet(missing);
      for (size_t i = 0; i < missing.size(); ++i) {
        cache_[missing[i]] = got[i] ? decodeValues(*got[i]).at(0) : agg_.zero;
      }
    }
    size_t i = 0;
    for (auto& [k, v] : partial) {
      const std::string& key = keys[i++];
      Value& cur = cache_[key];
      cur = agg_.combine(cur, v);
      Values row = k;
      row.push_back(cur);
      e.emit(std::move(row));
      auto combine = agg_.combine;
      Value zero = agg_.zero;
      updates_[key] = [combine, zero, v](std::optional<std::string_view> old) {
        Value base = old ? decodeValues(*old).at(0) : zero;
        return std::optional<std::string>(encodeValues({combine(base, v)}));
      };
    }
  }
  void collectUpdates(uint64_t, std::map<std::string, KeyedStateUpdates>& out) override {
    if (updates_.empty()) return;
    auto& u = out[spec_.name];
    u.kind = spec_.kind;
    for (auto& [k, f] : updates_) u.updates[k] = std::move(f);
    updates_.clear();
  }
  size_t stateSize() const override { return cache_.size(); }

 private:
  StateSpec spec_;
  std::vector<int> keyIdx_;
  CombinerAggregator agg_;
  GroupAggregate group_;
  Fields out_;
  KeyedState* state_ = nullptr;
  std::map<std::string, Value> cache_;
  std::map<std::string, Update> updates_;
};

class StateQueryOp final : public Operator, public BatchStateWriter {
 public:
  StateQueryOp(StateSpec spec, std::vector<int> keyIdx, StateQueryFunction q, Fields out)
      : spec_(std::move(spec)), keyIdx_(std::move(keyIdx)), q_(std::move(q)), out_(std::move(out)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  OperatorPtr clone() const override {
    return std::make_unique<StateQueryOp>(spec_, keyIdx_, q_, out_);
  }
  void attachStore(StateStore& store) override { state_ = &store.keyedState(spec_.name, spec_.kind); }
  void collectUpdates(uint64_t, std::map<std::string, KeyedStateUpdates>&) override {}
  void onTuple(const Tuple& t, Emitter& e) override {
    if (!state_) throw std::logic_error("stateQuery on '" + spec_.name + "' runs outside a micro-batch job");
    auto raw = state_->get(encodeValues(pick(t, keyIdx_)));
    std::optional<Values> value;
    if (raw) value = decodeValues(*raw);
    Values extra = q_(t, value);
    Values v = t.values();
    v.insert(v.end(), std::make_move_iterator(extra.begin()), std::make_move_iterator(extra.end()));
    e.emit(std::move(v));
  }

 private:
  StateSpec spec_;
  std::vector<int> keyIdx_;
  StateQueryFunction q_;
  Fields out_;
  KeyedState* state_ = nullptr;
};

class PartitionPersistOp final : public Operator, public BatchStateWriter {
 public:
  PartitionPersistOp(StateSpec spec, StateUpdater updater)
      : spec_(std::move(spec)), updater_(std::move(updater)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  OperatorPtr clone() const override { return std::make_unique<PartitionPersistOp>(spec_, updater_); }
  void attachStore(StateStore& store) override { store.keyedState(spec_.name, spec_.kind); }
  void onTuple(const Tuple& t, Emitter&) override { batch_.push_back(t); }
  void onBatchEnd(uint64_t, Emitter&) override {
    for (auto& [k, f] : updater_(batch_)) {
      updates_[encodeValues(k)] = [f](std::optional<std::string_view> old) -> std::optional<std::string> {
        std::optional<Values> o;
        if (old) o = decodeValues(*old);
        auto n = f(o);
        if (!n) return std::nullopt;
        return encodeValues(*n);
      };
    }
    batch_.clear();
  }
  void collectUpdates(uint64_t, std::map<std::string, KeyedStateUpdates>& out) override {
    if (updates_.empty()) return;
    auto& u = out[spec_.name];
    u.kind = spec_.kind;
    for (auto& [k, f] : updates_) u.updates[k] = std::move(f);
    updates_.clear();
  }

 private:
  StateSpec spec_;
  StateUpdater updater_;
  std::vector<Tuple> batch_;
  std::map<std::string, Update> updates_;
};

}  // namespace

CombinerAggregator CombinerAggregator::count() {
  return {[](const Tuple&) { return Value{int64_t{1}}; },
          [](const Value& a, const Value& b) {
            return Value{std::get<int64_t>(a) + std::get<int64_t>(b)};
          },
          Value{int64_t{0}}};
}

CombinerAggregator CombinerAggregator::sum(std::string field) {
  return {[field](const Tuple& t) { return Value{t.getInt(field)}; },
          [](const Value& a, const Value& b) {
            return Value{std::get<int64_t>(a) + std::get<int64_t>(b)};
          },
          Value{int64_t{0}}};
}

TridentStream TridentTopology::newStream(std::string name, SourcePtr source, int parallelism) {
  if (!source) throw std::invalid_argument("trident: stream '" + name + "' has no source");
  OutputFieldsDeclarer d;
  source->declareOutputFields(d);
  const Fields* f = d.find(kDefaultStream);
  builder_.setSpout(name, std::move(source), parallelism);
  return TridentStream(this, name, f ? *f : Fields{});
}

TridentStream TridentStream::each(TridentFunction fn, Fields functionFields, int parallelism) const {
  Fields out = concat(fields_, functionFields);
  std::string name = topology_->nextName("each");
  topology_->builder_.setBolt(name, EachOp(std::move(fn), out), parallelism).shuffleGrouping(component_);
  return TridentStream(topology_, name, out);
}

TridentStream TridentStream::filter(std::function<bool(const Tuple&)> keep, int parallelism) const {
  std::string name = topology_->nextName("filter");
  topology_->builder_.setBolt(name, FilterOp(std::move(keep), fields_), parallelism)
      .shuffleGrouping(component_);
  return TridentStream(topology_, name, fields_);
}

TridentStream TridentStream::project(Fields fields) const {
  auto idx = indexes(fields_, fields, "project");
  std::vector<FieldSpec> specs;
  for (int i : idx) specs.push_back(fields_[i]);
  Fields out(std::move(specs));
  std::string name = topology_->nextName("project");
  topology_->builder_.setBolt(name, ProjectOp(std::move(idx), out), 1).shuffleGrouping(component_);
  return TridentStream(topology_, name, out);
}

GroupedStream TridentStream::groupBy(Fields fields) const {
  indexes(fields_, fields, "groupBy");
  return GroupedStream(*this, std::move(fields));
}

TridentStream TridentStream::stateQuery(const TridentState& state, Fields keyFields,
                                        StateQueryFunction query, Fields queryFields,
                                        int parallelism) const {
  auto idx = indexes(fields_, keyFields, "stateQuery key");
  Fields out = concat(fields_, queryFields);
  std::string name = topology_->nextName("query");
  topology_->builder_
      .setBolt(name, StateQueryOp(state.spec(), std::move(idx), std::move(query), out), parallelism)
      .shuffleGrouping(component_);
  return TridentStream(topology_, name, out);
}

TridentState TridentStream::partitionPersist(StateSpec spec, StateUpdater updater,
                                             int parallelism) const {
  std::string name = topology_->nextName("persist-" + spec.name);
  topology_->builder_.setBolt(name, PartitionPersistOp(spec, std::move(updater)), parallelism)
      .shuffleGrouping(component_);
  return TridentState(topology_, std::move(spec), "", Fields{});
}

void TridentStream::sink(std::string name, const Operator& sink, int parallelism) const {
  topology_->builder_.setBolt(std::move(name), sink, parallelism).shuffleGrouping(component_);
}

TridentStream TridentStream::apply(std::string name, const Operator& op, int parallelism) const {
  topology_->builder_.setBolt(name, op, parallelism).shuffleGrouping(component_);
  OutputFieldsDeclarer d;
  op.declareOutputFields(d);
  const Fields* f = d.find(kDefaultStream);
  return TridentStream(topology_, std::move(name), f ? *f : Fields{});
}

namespace {
Fields groupOutput(const Fields& stream, const Fields& group, const std::string& outField) {
  std::vector<FieldSpec> specs;
  for (const auto& g : group.specs()) specs.push_back(stream[stream.indexOf(g.name)]);
  if (group.contains(outField)) {
    throw std::invalid_argument("trident: the aggregate field '" + outField +
                                "' is also a group field");
  }
  specs.push_back({outField, Type::Any});
  return Fields(std::move(specs));
}
}  // namespace

TridentState GroupedStream::persistentAggregate(StateSpec spec, CombinerAggregator agg,
                                                std::string outField, int parallelism) const {
  auto idx = indexes(stream_.fields_, group_, "groupBy");
  Fields out = groupOutput(stream_.fields_, group_, outField);
  TridentTopology* t = stream_.topology_;
  std::string name = t->nextName("aggregate-" + spec.name);
  t->builder_
      .setBolt(name, PersistentAggregateOp(spec, std::move(idx), std::move(agg), out), parallelism)
      .fieldsGrouping(stream_.component_, group_);
  return TridentState(t, std::move(spec), name, out);
}

TridentStream GroupedStream::aggregate(CombinerAggregator agg, std::string outField,
                                       int parallelism) const {
  auto idx = indexes(stream_.fields_, group_, "groupBy");
  Fields out = groupOutput(stream_.fields_, group_, outField);
  TridentTopology* t = stream_.topology_;
  std::string name = t->nextName("batch-aggregate");
  t->builder_.setBolt(name, BatchAggregateOp(std::move(idx), std::move(agg), out), parallelism)
      .fieldsGrouping(stream_.component_, group_);
  return TridentStream(t, name, out);
}

TridentStream TridentState::newValuesStream() const {
  if (component_.empty()) {
    throw std::invalid_argument("trident: state '" + spec_.name +
                                "' has no new-values stream (only persistentAggregate has one)");
  }
  return TridentStream(topology_, component_, newValues_);
}

}  // namespace gale
