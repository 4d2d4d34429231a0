// Values and field declarations: what a tuple is made of.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace gale {

// Microseconds since the Unix epoch. A distinct type (not int64) so that a tuple field can say
// "this is a point in time" and the wire format keeps that fact.
struct Timestamp {
  int64_t micros = 0;
  friend auto operator<=>(const Timestamp&, const Timestamp&) = default;
};

using Duration = std::chrono::microseconds;

inline int64_t toMicros(Duration d) { return d.count(); }

// Opaque binary payload. Distinct from a string so the wire format and printing differ.
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
  friend auto operator<=>(const Bytes&, const Bytes&) = default;
};

enum class Type : uint8_t { Null = 0, Int64, Double, Bool, String, Bytes, Timestamp, Any };

const char* typeName(Type t);

// One field value. Null is the monostate; index() order matches Type.
using Value = std::variant<std::monostate, int64_t, double, bool, std::string, Bytes, Timestamp>;
using Values = std::vector<Value>;

inline Type typeOf(const Value& v) { return static_cast<Type>(v.index()); }

// An empty Values with capacity, taken from a per-thread pool that every destroyed Tuple gives
// its values back to: an operator that builds its output with it (instead of Values{...})
// allocates nothing per tuple in steady state when the tuples it emits die on its thread (a
// fused chain, or a task's decoded input). Falls back to a new vector when the pool is empty.
Values recycledValues();
// Gives `values` (its capacity kept) to this thread's pool; small vectors only, and at most a
// bounded number of them (the rest are freed as usual). A list holding a string or bytes is
// cleared here; a list of scalars keeps its values until it is taken again.
void recycleValues(Values&& values);
// recycledValues() without the clear: the list holds whatever scalars its last tuple left in
// it (or nothing). For a producer that writes the same shape every time (a generator of typed
// records): it assigns over values of the right type, where clearing and emplacing destroys and
// constructs each variant (~25 instructions a value).
Values recycledValuesAsLeft();

std::string toString(const Value& v);
// A stable 64-bit hash of a value (used by fields grouping; equal on both sides of a wire).
uint64_t hashValue(const Value& v);

struct FieldSpec {
  std::string name;
  Type type = Type::Any;  // Any: the field accepts any value (Storm's untyped Fields).
};

// The declared fields of one output stream, in order. Immutable once built; shared by all tuples
// of the stream.
class Fields {
 public:
  Fields() = default;
  Fields(std::initializer_list<std::string> names);
  Fields(std::initializer_list<FieldSpec> specs);
  explicit Fields(std::vector<FieldSpec> specs);
  explicit Fields(const std::vector<std::string>& names);

  size_t size() const { return specs_.size(); }
  const FieldSpec& operator[](size_t i) const { return specs_[i]; }
  const std::vector<FieldSpec>& specs() const { return specs_; }
  std::vector<std::string> names() const;
  // Index of a field, or -1.
  int indexOf(std::string_view name) const;
  bool contains(std::string_view name) const { return indexOf(name) >= 0; }
  // Empty string when `values` fits these fields; otherwise why not (count or a field's type).
  std::string mismatch(const Values& values) const;
  std::string toString() const;
  friend bool operator==(const Fields& a, const Fields& b);

 private:
  std::vector<FieldSpec> specs_;
};

}  // namespace gale
