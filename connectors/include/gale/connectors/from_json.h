// Spark's from_json(column, schema) as an operator: the JSON object in one field (a string, or
// bytes such as a Kafka record's value) becomes typed fields. A malformed record is never
// dropped: it goes to the stream "errors" with the raw bytes and the reason, so a job can route
// bad input to a sink of its own (as FileSource does for files).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gale/connectors/json_line.h"
#include "gale/core/operator.h"

namespace gale {

class FromJson final : public Operator {
 public:
  static constexpr const char* kErrorStream = "errors";

  struct Options {
    std::string field = "value";  // holds the JSON text (string or bytes)
    Fields schema;                // the object's members with their types (JsonLineParser's rules)
    // Input fields copied in front of the parsed ones, on both streams (e.g. "key", "timestamp",
    // "partition", "offset"); declared Any.
    std::vector<std::string> keep;
    JsonLineParser::MissingField missing = JsonLineParser::MissingField::Null;
    size_t maxRawBytes = 4096;  // the raw bytes in an error record are cut here
  };

  // Throws std::invalid_argument on an empty schema, a duplicate name, or an empty field.
  explicit FromJson(Options options);
  FromJson(const FromJson& other);
  ~FromJson() override;

  // default: keep..., schema...; errors: keep..., raw (bytes), reason (string).
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;

  // Malformed records seen by all clones.
  uint64_t errors() const { return errors_->load(); }

 private:
  struct Parser;
  Options o_;
  std::shared_ptr<std::atomic<uint64_t>> errors_;
  std::unique_ptr<Parser> parser_;
  Values parsed_;
};

}  // namespace gale
