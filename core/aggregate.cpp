#include "gale/core/aggregate.h"

#include <stdexcept>

namespace gale {

const Value& Acc::value() const {
  static const Value kNull;
  return ext ? ext->v : kNull;
}

Acc Acc::copy() const {
  Acc c;
  c.n = n;
  c.i = i;
  c.d = d;
  c.isDouble = isDouble;
  if (ext) c.ext = std::make_unique<AccExt>(*ext);
  return c;
}

void encodeAcc(StateWriter& w, const Acc& a) {
  w.svarint(a.n);
  w.svarint(a.i);
  w.u8((a.isDouble ? 1 : 0) | (a.d != 0 ? 2 : 0) | (a.hasSet() ? 4 : 0) | (a.ext ? 8 : 0));
  if (a.d != 0) w.f64(a.d);
  if (a.ext) w.value(a.ext->v);
  if (a.hasSet()) {
    w.varint(a.ext->set.size());
    for (uint64_t h : a.ext->set) w.varint(h);
  }
}

Acc decodeAcc(StateReader& r) {
  Acc a;
  a.n = r.svarint("accumulator count");
  a.i = r.svarint("accumulator integer");
  uint8_t flags = r.u8("accumulator flags");
  if (flags & ~15) r.fail("unknown accumulator flags " + std::to_string(flags));
  a.isDouble = flags & 1;
  if (flags & 2) a.d = r.f64("accumulator double");
  if (flags & 8) a.value() = r.value("accumulator value");
  if (flags & 4) {
    uint64_t n = r.count("distinct set size");
    auto& set = a.set();
    set.reserve(n);
    for (uint64_t k = 0; k < n; ++k) set.insert(r.varint("distinct set element"));
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
  if (a.n == 0 || less(v, a.value())) a.value() = v;
  ++a.n;
}
void Min::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || less(from.value(), into.value())) into.value() = from.value();
  into.n += from.n;
}

void Max::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  if (a.n == 0 || less(a.value(), v)) a.value() = v;
  ++a.n;
}
void Max::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || less(into.value(), from.value())) into.value() = from.value();
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
    a.value() = v;
    a.i = t.micros;
  }
  ++a.n;
}
void First::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || from.i < into.i) {
    into.value() = from.value();
    into.i = from.i;
  }
  into.n += from.n;
}

void Last::add(Acc& a, const Value& v, Timestamp t) const {
  if (a.n == 0 || t.micros >= a.i) {
    a.value() = v;
    a.i = t.micros;
  }
  ++a.n;
}
void Last::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  if (into.n == 0 || from.i >= into.i) {
    into.value() = from.value();
    into.i = from.i;
  }
  into.n += from.n;
}

void DistinctCount::add(Acc& a, const Value& v, Timestamp) const {
  if (typeOf(v) == Type::Null) return;
  a.set().insert(hashValue(v));
  ++a.n;
}
void DistinctCount::merge(Acc& into, const Acc& from) const {
  if (!from.hasSet()) return;
  into.set().insert(from.ext->set.begin(), from.ext->set.end());
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
  a.value() = initial_;
  return a;
}
void UserAggregate::add(Acc& a, const Value& v, Timestamp) const {
  add_(a.value(), v);
  ++a.n;
}
void UserAggregate::merge(Acc& into, const Acc& from) const {
  if (from.n == 0) return;
  merge_(into.value(), from.value());
  into.n += from.n;
}
Value UserAggregate::result(const Acc& a) const { return result_ ? result_(a.value()) : a.value(); }

}  // namespace gale
