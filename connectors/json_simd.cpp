#include "gale/connectors/json_simd.h"

#include <simdjson.h>

#include <cstring>
#include <stdexcept>
#include <unordered_set>
#include <vector>

namespace gale {

// The DOM API, not On-Demand: Debian's libsimdjson dispatches the DOM parser at run time to the
// best kernel of the CPU (haswell, ...), while On-Demand is compiled into the caller for the
// compiler's target (without -march: the slow fallback kernel).
struct SimdJsonParser::Impl {
  simdjson::dom::parser parser;
  std::string padded;  // the line copied with SIMDJSON_PADDING bytes after it
  std::vector<unsigned char> seen;
};

SimdJsonParser::SimdJsonParser(Fields fields, JsonLineParser::Options options)
    : fields_(std::move(fields)), options_(options), impl_(std::make_unique<Impl>()) {
  std::unordered_set<std::string> names;
  for (const auto& f : fields_.specs()) {
    if (!names.insert(f.name).second) {
      throw std::invalid_argument("SimdJsonParser: field '" + f.name + "' is declared twice");
    }
  }
  impl_->seen.resize(fields_.size());
}

SimdJsonParser::~SimdJsonParser() = default;
SimdJsonParser::SimdJsonParser(SimdJsonParser&&) noexcept = default;
SimdJsonParser& SimdJsonParser::operator=(SimdJsonParser&&) noexcept = default;

bool SimdJsonParser::fail(std::string reason) {
  error_ = std::move(reason);
  return false;
}

bool SimdJsonParser::parse(std::string_view line, Values& out) {
  if (line.size() > options_.maxLineLength) {
    return fail("the line is " + std::to_string(line.size()) + " bytes, over the limit of " +
                std::to_string(options_.maxLineLength));
  }
  Impl& m = *impl_;
  m.padded.resize(line.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(m.padded.data(), line.data(), line.size());
  out.resize(fields_.size());
  std::fill(m.seen.begin(), m.seen.end(), 0);
  auto bad = [&](simdjson::error_code e) {
    return fail(std::string("bad JSON: ") + simdjson::error_message(e));
  };
  simdjson::dom::element doc;
  if (auto e = m.parser.parse(m.padded.data(), line.size(), false).get(doc)) return bad(e);
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) return fail("not a JSON object");
  for (auto [key, v] : obj) {
    int f = fields_.indexOf(key);
    auto t = v.type();
    using ET = simdjson::dom::element_type;
    if (f < 0) {
      if (options_.rejectUnknownFields) {
        return fail("member \"" + std::string(key) + "\" is not a declared field");
      }
      if (t == ET::OBJECT || t == ET::ARRAY) {
        return fail("member \"" + std::string(key) + "\" is nested (flat objects only)");
      }
      continue;
    }
    if (m.seen[f]) return fail("member \"" + std::string(key) + "\" appears twice");
    m.seen[f] = 1;
    const Type want = fields_[f].type;
    Value& target = out[f];
    auto typeError = [&](const char* got) {
      return fail("field '" + fields_[f].name + "' is declared " + typeName(want) +
                  " but the value is " + got);
    };
    switch (t) {
      case ET::NULL_VALUE:
        target = std::monostate{};
        break;
      case ET::BOOL:
        if (want != Type::Bool && want != Type::Any) return typeError("a boolean");
        target = v.get_bool().value_unsafe();
        break;
      case ET::STRING: {
        std::string_view sv = v.get_string().value_unsafe();
        if (want == Type::String || want == Type::Any) {
          if (auto cur = std::get_if<std::string>(&target)) {
            cur->assign(sv);  // reuse the capacity
          } else {
            target = std::string(sv);
          }
        } else if (want == Type::Bytes) {
          target = Bytes{std::string(sv)};
        } else {
          return typeError("a string");
        }
        break;
      }
      case ET::INT64: {
        int64_t i = v.get_int64().value_unsafe();
        if (want == Type::Int64 || want == Type::Any) target = i;
        else if (want == Type::Timestamp) target = Timestamp{i};
        else if (want == Type::Double) target = static_cast<double>(i);
        else return typeError("a number");
        break;
      }
      case ET::UINT64:
        if (want == Type::Double || want == Type::Any) {
          target = static_cast<double>(v.get_uint64().value_unsafe());
        } else if (want == Type::Int64 || want == Type::Timestamp) {
          return fail("field '" + fields_[f].name + "': the number is out of the int64 range");
        } else {
          return typeError("a number");
        }
        break;
      case ET::DOUBLE:
        if (want == Type::Double || want == Type::Any) target = v.get_double().value_unsafe();
        else if (want == Type::Int64 || want == Type::Timestamp) return typeError("a non-integral number");
        else return typeError("a number");
        break;
      default:
        return fail("field '" + fields_[f].name + "' is nested (flat objects only)");
    }
  }
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (m.seen[i]) continue;
    if (options_.missing == JsonLineParser::MissingField::Error) {
      return fail("field '" + fields_[i].name + "' is missing");
    }
    out[i] = std::monostate{};
  }
  return true;
}

}  // namespace gale
