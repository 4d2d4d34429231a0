// A flat JSON object into typed Values with simdjson (On-Demand): the same contract as
// JsonLineParser (json_line.h) — declared types decide conversions, a missing field is null or
// an error, duplicate members and nested values are errors — so the two are interchangeable and
// can be compared on the same records (connectors_json_line_bench).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "gale/connectors/json_line.h"

namespace gale {

class SimdJsonParser {
 public:
  SimdJsonParser(Fields fields, JsonLineParser::Options options);
  explicit SimdJsonParser(Fields fields) : SimdJsonParser(std::move(fields), {}) {}
  ~SimdJsonParser();
  SimdJsonParser(SimdJsonParser&&) noexcept;
  SimdJsonParser& operator=(SimdJsonParser&&) noexcept;

  // As JsonLineParser::parse: false on a malformed object, error() says why.
  bool parse(std::string_view line, Values& out);
  const std::string& error() const { return error_; }
  const Fields& fields() const { return fields_; }

 private:
  struct Impl;
  bool fail(std::string reason);
  Fields fields_;
  JsonLineParser::Options options_;
  std::unique_ptr<Impl> impl_;
  std::string error_;
};

}  // namespace gale
