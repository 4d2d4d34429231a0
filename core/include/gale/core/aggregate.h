// Aggregate functions for windows and keyed state: count, sum, min, max, avg, first, last,
// distinct count and user-defined ones. Each is incremental (add one value at a time) and
// mergeable (combine two partial results), which is what pane-based sliding windows, session
// merges and partial aggregation need. The partial result lives in an Acc owned by the caller
// (the window operator keeps one per key per pane), so the count/sum/min/max/avg hot path does
// not allocate.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "gale/core/state_codec.h"
#include "gale/core/value.h"

namespace gale {

// One partial aggregate: 40 bytes, so that 10 K keys x a dozen panes stay cache-friendly.
// Numeric aggregates use n/i/d only; a Value (min/max/first/last, user state) or a hash set
// (distinct count) lives in `ext`, allocated once per partial, never per tuple.
struct AccExt {
  Value v;
  std::unordered_set<uint64_t> set;
  bool hasSet = false;
};

struct Acc {
  int64_t n = 0;       // values added (count; avg; "has a value" for min/max/first/last)
  int64_t i = 0;       // integer sum, or the event time of first/last
  double d = 0;        // double sum (sum once a double was seen; avg)
  bool isDouble = false;
  std::unique_ptr<AccExt> ext;

  Acc() = default;
  Acc(Acc&&) = default;
  Acc& operator=(Acc&&) = default;
  Acc copy() const;
  // The value slot (created on first use).
  Value& value() {
    if (!ext) ext = std::make_unique<AccExt>();
    return ext->v;
  }
  const Value& value() const;
  // The distinct-count set (created on first use).
  std::unordered_set<uint64_t>& set() {
    if (!ext) ext = std::make_unique<AccExt>();
    ext->hasSet = true;
    return ext->set;
  }
  bool hasSet() const { return ext && ext->hasSet; }
};

void encodeAcc(StateWriter& w, const Acc& a);
Acc decodeAcc(StateReader& r);

// An aggregate function over one input field (or over whole tuples, for Count{}).
class Aggregator {
 public:
  virtual ~Aggregator() = default;
  // The input field; empty when the aggregate needs no field (Count{} counts tuples).
  const std::string& field() const { return field_; }
  // The output field name: the one given to as(), else e.g. "count", "sum_x", "avg_price".
  const std::string& outputName() const { return name_; }
  virtual Type resultType() const = 0;
  virtual std::unique_ptr<Aggregator> clone() const = 0;

  // A fresh accumulator.
  virtual Acc init() const { return Acc{}; }
  // Adds one input value (`value` is null-typed for Count{} without a field) with its event time.
  virtual void add(Acc& acc, const Value& value, Timestamp eventTime) const = 0;
  // Folds `from` (a partial over later or disjoint input) into `into`.
  virtual void merge(Acc& into, const Acc& from) const = 0;
  virtual Value result(const Acc& acc) const = 0;

 protected:
  Aggregator(std::string field, std::string name) : field_(std::move(field)), name_(std::move(name)) {}
  std::string field_;
  std::string name_;
};

using AggregatorPtr = std::unique_ptr<Aggregator>;

// CRTP helper: clone() and as() for the concrete aggregators.
template <class Self>
class AggregatorOf : public Aggregator {
 public:
  std::unique_ptr<Aggregator> clone() const override {
    return std::make_unique<Self>(static_cast<const Self&>(*this));
  }
  // The same aggregate with another output field name: Sum{"price"}.as("revenue").
  Self as(std::string name) const {
    Self copy = static_cast<const Self&>(*this);
    copy.name_ = std::move(name);
    return copy;
  }

 protected:
  using Aggregator::Aggregator;
};

// Counts tuples; Count{"x"} counts tuples whose field x is not null (SQL's count(x)).
class Count : public AggregatorOf<Count> {
 public:
  Count() : AggregatorOf("", "count") {}
  explicit Count(std::string field) : AggregatorOf(field, "count_" + field) {}
  Type resultType() const override { return Type::Int64; }
  void add(Acc& a, const Value& v, Timestamp) const override {
    if (field_.empty() || typeOf(v) != Type::Null) ++a.n;
  }
  void merge(Acc& into, const Acc& from) const override { into.n += from.n; }
  Value result(const Acc& a) const override { return a.n; }
};

// Sums int64 (result int64) or double values (result double once any double was added).
// Nulls are skipped; any other type throws naming the field.
class Sum : public AggregatorOf<Sum> {
 public:
  explicit Sum(std::string field) : AggregatorOf(field, "sum_" + field) {}
  Type resultType() const override { return Type::Any; }
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override;
};

class Min : public AggregatorOf<Min> {
 public:
  explicit Min(std::string field) : AggregatorOf(field, "min_" + field) {}
  Type resultType() const override { return Type::Any; }
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override { return a.value(); }
};

class Max : public AggregatorOf<Max> {
 public:
  explicit Max(std::string field) : AggregatorOf(field, "max_" + field) {}
  Type resultType() const override { return Type::Any; }
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override { return a.value(); }
};

// Mean of numeric values as a double; null when there were none.
class Avg : public AggregatorOf<Avg> {
 public:
  explicit Avg(std::string field) : AggregatorOf(field, "avg_" + field) {}
  Type resultType() const override { return Type::Double; }
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override;
};

// The value with the earliest (First) or latest (Last) event time; ties go to the earlier
// (First) or later (Last) arrival, so the result is deterministic given the arrival order.
class First : public AggregatorOf<First> {
 public:
  explicit First(std::string field) : AggregatorOf(field, "first_" + field) {}
  Type resultType() const override { return Type::Any; }
  void add(Acc& a, const Value& v, Timestamp t) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override { return a.value(); }
};

class Last : public AggregatorOf<Last> {
 public:
  explicit Last(std::string field) : AggregatorOf(field, "last_" + field) {}
  Type resultType() const override { return Type::Any; }
  void add(Acc& a, const Value& v, Timestamp t) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override { return a.value(); }
};

// Number of distinct non-null values, exact up to 64-bit hash collisions (it keeps the set of
// gale::hashValue of the values seen, not the values).
class DistinctCount : public AggregatorOf<DistinctCount> {
 public:
  explicit DistinctCount(std::string field) : AggregatorOf(field, "distinct_" + field) {}
  Type resultType() const override { return Type::Int64; }
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override {
    return static_cast<int64_t>(a.hasSet() ? a.ext->set.size() : 0);
  }
};

// A user-defined aggregate whose state is one gale::Value (so it snapshots like everything
// else): init, add, merge and result, as Spark's Aggregator / Flink's AggregateFunction.
// Example, a product:  UserAggregate("product", "x", int64_t{1},
//     [](Value& s, const Value& v) { s = std::get<int64_t>(s) * std::get<int64_t>(v); },
//     [](Value& s, const Value& o) { s = std::get<int64_t>(s) * std::get<int64_t>(o); });
class UserAggregate : public AggregatorOf<UserAggregate> {
 public:
  using AddFn = std::function<void(Value& state, const Value& input)>;
  using MergeFn = std::function<void(Value& state, const Value& other)>;
  using ResultFn = std::function<Value(const Value& state)>;
  UserAggregate(std::string name, std::string field, Value initial, AddFn add, MergeFn merge,
                ResultFn result = nullptr, Type resultType = Type::Any);
  Type resultType() const override { return type_; }
  Acc init() const override;
  void add(Acc& a, const Value& v, Timestamp) const override;
  void merge(Acc& into, const Acc& from) const override;
  Value result(const Acc& a) const override;

 private:
  Value initial_;
  AddFn add_;
  MergeFn merge_;
  ResultFn result_;
  Type type_;
};

}  // namespace gale
