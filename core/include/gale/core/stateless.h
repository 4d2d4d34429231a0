// Stateless stream operators (Spark's map/filter/flatMap/select/withColumn) as gale::Operators:
// each declares its output fields, so they plug into a topology like any bolt and into a
// micro-batch job like any transformation.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

// One output tuple per input: fn's values must match `out` (checked, with a clear error).
class Map final : public Operator {
 public:
  Map(Fields out, std::function<Values(const Tuple&)> fn);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Map>(*this); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  Fields out_;
  std::function<Values(const Tuple&)> fn_;
};

// Passes the tuples for which pred is true, unchanged; `fields` are the input's fields.
class Filter final : public Operator {
 public:
  Filter(Fields fields, std::function<bool(const Tuple&)> pred);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(fields_); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Filter>(*this); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  Fields fields_;
  std::function<bool(const Tuple&)> pred_;
};

// Zero or more output tuples per input: fn appends them to `rows` (a reused buffer).
class FlatMap final : public Operator {
 public:
  using Fn = std::function<void(const Tuple&, std::vector<Values>& rows)>;
  FlatMap(Fields out, Fn fn);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<FlatMap>(*this); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  Fields out_;
  Fn fn_;
  std::vector<Values> rows_;
};

// Projection onto some fields, in the given order (a missing field is an error naming it).
class Select final : public Operator {
 public:
  explicit Select(std::vector<std::string> fields);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields(fields_)); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<Select>(*this); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  std::vector<std::string> fields_;
  const StreamSchema* schema_ = nullptr;
  std::vector<int> idx_;
};

// The input fields plus one derived field (Spark's withColumn): replaced in place when the
// input already has a field of that name, appended otherwise.
class WithColumn final : public Operator {
 public:
  WithColumn(Fields input, std::string name, std::function<Value(const Tuple&)> fn);
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(out_); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<WithColumn>(*this); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  Fields out_;
  int replace_;  // index of the replaced field, or -1 to append
  std::function<Value(const Tuple&)> fn_;
};

// explode(split(field)): one tuple (word, keep...) per whitespace-separated word of the string
// field `field`; `keep` are input fields copied into every output tuple (e.g. the event time).
FlatMap splitWords(std::string field, std::string wordField = "word",
                   std::vector<std::string> keep = {});

}  // namespace gale
