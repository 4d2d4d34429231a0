// The one tuple type of gale: values of a declared stream, plus the bookkeeping the runtime
// needs (where it came from, which spout tuples it belongs to, when it was born).
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gale/core/value.h"

namespace gale {

using TaskId = int32_t;
using StreamId = uint16_t;
inline constexpr const char* kDefaultStream = "default";

// The schema a tuple refers to: component, stream and fields. Owned by the topology (or a test)
// and shared by every tuple of that stream.
struct StreamSchema {
  std::string component;
  std::string stream = kDefaultStream;
  Fields fields;
};
using SchemaPtr = std::shared_ptr<const StreamSchema>;
SchemaPtr makeSchema(std::string component, std::string stream, Fields fields);

// Storm's message id: for each spout tuple (root) this tuple descends from, the 64-bit edge id
// that the acker XORs into that root's ack value.
struct Anchor {
  uint64_t root = 0;
  uint64_t edge = 0;
  friend bool operator==(const Anchor&, const Anchor&) = default;
};

class Tuple {
 public:
  Tuple() = default;
  Tuple(SchemaPtr schema, Values values) : schema_(std::move(schema)), values_(std::move(values)) {}
  Tuple(const Tuple&) = default;
  Tuple(Tuple&&) noexcept = default;
  Tuple& operator=(const Tuple&) = default;
  Tuple& operator=(Tuple&&) noexcept = default;
  // Gives the values' vector to this thread's pool (recycledValues()); a moved-from tuple has
  // nothing to give, and skips the call.
  ~Tuple() {
    if (values_.capacity() != 0) recycleValues(std::move(values_));
  }

  const SchemaPtr& schema() const { return schema_; }
  const Fields& fields() const;
  const std::string& sourceComponent() const;
  const std::string& sourceStream() const;
  TaskId sourceTask() const { return sourceTask_; }
  void setSourceTask(TaskId t) { sourceTask_ = t; }

  size_t size() const { return values_.size(); }
  const Values& values() const { return values_; }
  Values& mutableValues() { return values_; }
  const Value& operator[](size_t i) const { return values_[i]; }
  const Value& get(size_t i) const { return values_.at(i); }
  // By field name; throws std::out_of_range naming the field and the stream.
  const Value& get(std::string_view field) const;
  bool contains(std::string_view field) const;

  // Typed accessors; throw std::invalid_argument naming the field when the value has another type.
  int64_t getInt(std::string_view field) const;
  double getDouble(std::string_view field) const;  // accepts int64 too
  bool getBool(std::string_view field) const;
  const std::string& getString(std::string_view field) const;
  Timestamp getTimestamp(std::string_view field) const;  // accepts int64 micros too
  // By index, inline: an operator reads its fields this way once per tuple.
  int64_t getInt(size_t i) const {
    if (i < values_.size())
      if (const int64_t* p = std::get_if<int64_t>(&values_[i])) return *p;
    wrongTypeAt(i, "int64");
  }
  const std::string& getString(size_t i) const {
    if (i < values_.size())
      if (const std::string* p = std::get_if<std::string>(&values_[i])) return *p;
    wrongTypeAt(i, "string");
  }

  // Reliability: the anchors (root, edge) of this tuple; empty when unanchored.
  const std::vector<Anchor>& anchors() const { return anchors_; }
  std::vector<Anchor>& mutableAnchors() { return anchors_; }

  // Monotonic nanoseconds at which the spout tuple this tuple descends from was created
  // (0 = unknown). Carried end to end so sinks can measure latency.
  int64_t originNanos() const { return originNanos_; }
  void setOriginNanos(int64_t ns) { originNanos_ = ns; }

  std::string toString() const;

 private:
  // Throws std::out_of_range (no field i) or std::invalid_argument (another type).
  [[noreturn]] void wrongTypeAt(size_t i, const char* want) const;

  SchemaPtr schema_;
  Values values_;
  std::vector<Anchor> anchors_;
  TaskId sourceTask_ = -1;
  int64_t originNanos_ = 0;
};

}  // namespace gale
