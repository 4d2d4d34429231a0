#include "gale/connectors/from_json.h"

#include <stdexcept>

#include "gale/connectors/json_simd.h"

namespace gale {

// The parser the record format benchmark chose (docs/benchmarks.md, "JSON parsing").
struct FromJson::Parser {
  explicit Parser(const FromJson::Options& o) : p(o.schema, JsonLineParser::Options{.missing = o.missing}) {}
  SimdJsonParser p;
};

FromJson::FromJson(Options options)
    : o_(std::move(options)), errors_(std::make_shared<std::atomic<uint64_t>>(0)) {
  if (o_.field.empty()) throw std::invalid_argument("from_json: the JSON field name is empty");
  if (o_.schema.size() == 0) throw std::invalid_argument("from_json: the schema is empty");
  parser_ = std::make_unique<Parser>(o_);  // also checks the schema's names
  for (const auto& k : o_.keep) {
    if (o_.schema.contains(k)) {
      throw std::invalid_argument("from_json: kept field '" + k + "' is also in the schema");
    }
  }
}

FromJson::FromJson(const FromJson& other)
    : o_(other.o_), errors_(other.errors_), parser_(std::make_unique<Parser>(o_)) {}

FromJson::~FromJson() = default;

std::unique_ptr<Operator> FromJson::clone() const { return std::make_unique<FromJson>(*this); }

void FromJson::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> out, err;
  for (const auto& k : o_.keep) {
    out.push_back({k, Type::Any});
    err.push_back({k, Type::Any});
  }
  for (const auto& f : o_.schema.specs()) out.push_back(f);
  err.push_back({"raw", Type::Bytes});
  err.push_back({"reason", Type::String});
  d.declare(Fields(std::move(out)));
  d.declareStream(kErrorStream, Fields(std::move(err)));
}

void FromJson::onTuple(const Tuple& t, Emitter& out) {
  const Value& v = t.get(o_.field);
  std::string_view text;
  if (auto b = std::get_if<Bytes>(&v)) {
    text = b->data;
  } else if (auto s = std::get_if<std::string>(&v)) {
    text = *s;
  }
  Values row;
  row.reserve(o_.keep.size() + o_.schema.size());
  for (const auto& k : o_.keep) row.push_back(t.get(k));
  std::string reason;
  if (std::holds_alternative<std::monostate>(v)) {
    reason = "field '" + o_.field + "' is null";
  } else if (!std::holds_alternative<Bytes>(v) && !std::holds_alternative<std::string>(v)) {
    reason = "field '" + o_.field + "' is a " + typeName(typeOf(v)) + ", not JSON text";
  } else if (!parser_->p.parse(text, parsed_)) {
    reason = parser_->p.error();
  }
  if (reason.empty()) {
    for (auto& x : parsed_) row.push_back(std::move(x));
    out.emit(std::move(row));
    return;
  }
  errors_->fetch_add(1);
  row.push_back(Bytes{std::string(text.substr(0, o_.maxRawBytes))});
  row.push_back(std::move(reason));
  out.emit(kErrorStream, std::move(row));
}

}  // namespace gale
