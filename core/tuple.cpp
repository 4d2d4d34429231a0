#include "gale/core/tuple.h"

#include "gale/core/clock.h"
#include "gale/core/operator.h"

namespace gale {

SchemaPtr makeSchema(std::string component, std::string stream, Fields fields) {
  return std::make_shared<const StreamSchema>(
      StreamSchema{std::move(component), std::move(stream), std::move(fields)});
}

namespace {
const Fields kNoFields;
const std::string kNoName;
}  // namespace

const Fields& Tuple::fields() const { return schema_ ? schema_->fields : kNoFields; }
const std::string& Tuple::sourceComponent() const { return schema_ ? schema_->component : kNoName; }
const std::string& Tuple::sourceStream() const { return schema_ ? schema_->stream : kNoName; }

const Value& Tuple::get(std::string_view field) const {
  int i = fields().indexOf(field);
  if (i < 0 || static_cast<size_t>(i) >= values_.size()) {
    throw std::out_of_range("tuple of stream '" + sourceComponent() + ":" + sourceStream() +
                            "' has no field '" + std::string(field) + "' (fields are " +
                            fields().toString() + ")");
  }
  return values_[i];
}

bool Tuple::contains(std::string_view field) const { return fields().contains(field); }

namespace {
[[noreturn]] void wrongType(const Tuple& t, std::string_view field, const char* want,
                            const Value& v) {
  throw std::invalid_argument("field '" + std::string(field) + "' of stream '" +
                              t.sourceComponent() + ":" + t.sourceStream() + "' is " +
                              typeName(typeOf(v)) + ", not " + want);
}
}  // namespace

int64_t Tuple::getInt(std::string_view field) const {
  const Value& v = get(field);
  if (auto p = std::get_if<int64_t>(&v)) return *p;
  if (auto p = std::get_if<Timestamp>(&v)) return p->micros;
  wrongType(*this, field, "int64", v);
}
double Tuple::getDouble(std::string_view field) const {
  const Value& v = get(field);
  if (auto p = std::get_if<double>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return static_cast<double>(*p);
  wrongType(*this, field, "double", v);
}
bool Tuple::getBool(std::string_view field) const {
  const Value& v = get(field);
  if (auto p = std::get_if<bool>(&v)) return *p;
  wrongType(*this, field, "bool", v);
}
const std::string& Tuple::getString(std::string_view field) const {
  const Value& v = get(field);
  if (auto p = std::get_if<std::string>(&v)) return *p;
  wrongType(*this, field, "string", v);
}
Timestamp Tuple::getTimestamp(std::string_view field) const {
  const Value& v = get(field);
  if (auto p = std::get_if<Timestamp>(&v)) return *p;
  if (auto p = std::get_if<int64_t>(&v)) return Timestamp{*p};
  wrongType(*this, field, "timestamp", v);
}
void Tuple::wrongTypeAt(size_t i, const char* want) const {
  wrongType(*this, "#" + std::to_string(i), want, get(i));
}

std::string Tuple::toString() const {
  std::string s = "(";
  for (size_t i = 0; i < values_.size(); ++i) {
    if (i) s += ", ";
    s += gale::toString(values_[i]);
  }
  return s + ")";
}

SystemClock& SystemClock::instance() {
  static SystemClock clock;
  return clock;
}

void Emitter::forward(const Tuple& input) {
  Values v = recycledValues();
  v.assign(input.values().begin(), input.values().end());
  emit(kDefaultStream, std::move(v));
}

void Emitter::emitBorrowed(std::string_view stream, Values& values) {
  Values v = recycledValues();
  v.assign(values.begin(), values.end());
  emit(stream, std::move(v));
}

void OutputFieldsDeclarer::declareStream(std::string stream, Fields fields) {
  for (auto& [name, f] : streams_) {
    if (name == stream) throw std::invalid_argument("stream '" + stream + "' declared twice");
  }
  streams_.emplace_back(std::move(stream), std::move(fields));
}

const Fields* OutputFieldsDeclarer::find(std::string_view stream) const {
  for (auto& [name, f] : streams_)
    if (name == stream) return &f;
  return nullptr;
}

}  // namespace gale
