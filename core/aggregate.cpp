#include "gale/core/aggregate.h"

#include <stdexcept>

namespace gale {

Acc Acc::copy() const {
  Acc c;
  c.n = n;
  c.i = i;
  c.d = d;
  c.isDouble = isDouble;
  c.v = v;
  if (set) c.set = std::make_unique<std::unordered_set<uint64_t>>(*set);
  return c;
}

void encodeAcc(StateWriter& w, const Acc& a) {
  w.svarint(a.n);
  w.svarint(a.i);
  w.u8((a.isDouble ? 1 : 0) | (a.d != 0 ? 2 : 0) | (a.set ? 4 : 0));
  if (a.d != 0) w.f64(a.d);
  w.value(a.v);
  if (a.set) {
    w.varint(a.set->size());
    for (uint64_t h : *a.set) w.varint(h);
  }
}

Acc decodeAcc(StateReader& r) {
  Acc a;
  a.n = r.svarint("accumulator count");
  a.i = r.svarint("accumulator integer");
  uint8_t flags = r.u8("accumulator flags");
  if (flags & ~7) r.fail("unknown accumulator flags " + std::to_string(flags));
  a.isDouble = flags & 1;
  if (flags & 2) a.d = r.f64("accumulator double");
  a.v = r.value("accumulator value");
  if (flags & 4) {
    uint64_t n = r.count("distinct set size");
    a.set = std::make_unique<std::unordered_set<uint64_t>>();
    a.set->reserve(n);
    for (uint64_t k = 0; k < n; ++k) a.set->insert(r.varint("distinct set element"));
  }
  return a;
}

namespace {

[[noreturn]] void notNumeric(const char* agg, const std::string& field, const Value& v) {
  throw std::invalid_argument(std::string(agg) + " over field '" + field + "' got a " +
                              typeName(typeOf(v)) + " value (" + toString(v) +
                              "); it needs int64 or double values");
}

bool isNumeric(const Value& v) {
  return typeOf(v) == Type::Int64 || typeOf(v) == Type::Double;
}
double asDouble(const Value& v) {
  return typeOf(v) == Type::Int64 ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
}
// Order for min/max: numbers compare by value across int64 and double; otherwise within a type.
bool less(const Value& a, const Value& b) {
  if (typeOf(a) == Type::Int64 && typeOf(b) == Type::Int64)
    return std::get<int64_t>(a) < std::get<int64_t>(b);
  if (isNumeric(a) && isNumeric(b)) return asDouble(a) < asDouble(b);
  return a < b;
}

}  // namespace

void Sum::add(Acc& a, const Value& v, Timestamp) const {
  switch (typeOf(v)) {
    case Type::Int64:
      if (a.isDouble) a.d += static_cast<double>(std::get<int64_t>(v));
      else a.i += std::get<int64_t>(v);
      break;
    case Type::Double:
      if (!a.isDouble) {
        a.isDouble = true;
        a.d = static_cast<double>(a.i);
      }
      a.d += std::get<double>(v);
      break;
    case Type::Null: return;
    default: notNumeric("Sum", field_, v);
  }
  ++a.n;
}

void Sum::merge(Acc& into, const Acc& from) const {
  if (from.isDouble && !into.isDouble) {
    into.isDouble = true;
    into.d = static_cast<double>(into.i);
  }
  if (into.isDouble) into.d += from.isDouble ? from.d : static_cast<double>(from.i);
  else into.i += from.i;
  into.n += from.n;
}

Value Sum::result(const Acc& a) const {
  if (a.isDouble) return a.d;
  return a.i;
}

void Min::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  if (a.n == 0 || less(v, a.v)) a.v = v;
  ++a.n;
}
void Min::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || less(from.v, into.v)) into.v = from.v;
  into.n += from.n;
}

void Max::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  if (a.n == 0 || less(a.v, v)) a.v = v;
  ++a.n;
}
void Max::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || less(into.v, from.v)) into.v = from.v;
  into.n += from.n;
}

void Avg::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  if (!isNumeric(v)) notNumeric("Avg", field_, v);
  a.d += asDouble(v);
  ++a.n;
}
void Avg::merge(Acc& into, const Acc& from) const {
  into.d += from.d;
  into.n += from.n;
}
Value Avg::result(const Acc& a) const {
  if (a.n == 0) return std::monostate{};
  return a.d / static_cast<double>(a.n);
}

void First::add(Acc& a, const Value& v, Timestamp t) const {
  if (a.n == 0 || t.micros < a.i) {
    a.v = v;
    a.i = t.micros;
  }
  ++a.n;
}
void First::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || from.i < into.i) {
    into.v = from.v;
    into.i = from.i;
  }
  into.n += from.n;
}

void Last::add(Acc& a, const Value& v, Timestamp t) const {
  if (a.n == 0 || t.micros >= a.i) {
    a.v = v;
    a.i = t.micros;
  }
  ++a.n;
}
void Last::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || from.i >= into.i) {
    into.v = from.v;
    into.i = from.i;
  }
  into.n += from.n;
}

void DistinctCount::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  if (!a.set) a.set = std::make_unique<std::unordered_set<uint64_t>>();
  a.set->insert(hashValue(v));
  ++a.n;
}
void DistinctCount::merge(Acc& into, const Acc& from) const {
  if (!from.set) return;
  if (!into.set) into.set = std::make_unique<std::unordered_set<uint64_t>>();
  into.set->insert(from.set->begin(), from.set->end());
  into.n += from.n;
}

UserAggregate::UserAggregate(std::string name, std::string field, Value initial, AddFn add,
                             MergeFn merge, ResultFn result, Type resultType)
    : AggregatorOf(std::move(field), std::move(name)),
      initial_(std::move(initial)),
      add_(std::move(add)),
      merge_(std::move(merge)),
      result_(std::move(result)),
      type_(resultType) {
  if (name_.empty()) throw std::invalid_argument("UserAggregate needs an output field name");
  if (!add_ || !merge_) {
    throw std::invalid_argument("UserAggregate '" + name_ +
                                "' needs both an add and a merge function (merge is what "
                                "sliding panes and session merges use)");
  }
}

Acc UserAggregate::init() const {
  Acc a;
  a.v = initial_;
  return a;
}
void UserAggregate::add(Acc& a, const Value& v, Timestamp) const {
  add_(a.v, v);
  ++a.n;
}
void UserAggregate::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  merge_(into.v, from.v);
  into.n += from.n;
}
Value UserAggregate::result(const Acc& a) const { return result_ ? result_(a.v) : a.v; }

}  // namespace gale
