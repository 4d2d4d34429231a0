// libFuzzer target: the JSON-lines parser (connectors/json_line.cpp), which reads whatever a file
// or socket holds. The first byte picks the parser's options; the rest is the line. Properties:
// no crash, hang or sanitizer report; a rejected line has a reason and a position inside it;
// an accepted line, written back with appendJsonObject and parsed again, gives the same values.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "gale/connectors/json_line.h"

using namespace gale;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  JsonLineParser::Options o;
  o.missing = (data[0] & 1) ? JsonLineParser::MissingField::Error : JsonLineParser::MissingField::Null;
  o.rejectUnknownFields = (data[0] & 2) != 0;
  o.maxLineLength = (data[0] & 4) ? 64 : size_t{1} << 20;
  // Every type but bytes (written as base64, so it does not read back as the same text).
  static const Fields fields{{"s", Type::String}, {"i", Type::Int64},     {"d", Type::Double},
                             {"b", Type::Bool},   {"t", Type::Timestamp}, {"a", Type::Any}};
  JsonLineParser parser(fields, o);
  std::string_view line(reinterpret_cast<const char*>(data) + 1, size - 1);
  Values values;
  if (!parser.parse(line, values)) {
    fuzz::check(!parser.error().empty(), "a rejected line without a reason");
    fuzz::check(parser.errorPosition() <= line.size(), "an error position past the line");
    return 0;
  }
  fuzz::check(values.size() == fields.size(), "an accepted line of the wrong arity");
  fuzz::check(fields.mismatch(values).empty(), "an accepted line whose values do not fit the fields");
  std::string again;
  appendJsonObject(again, fields, values);
  JsonLineParser reparse(fields, JsonLineParser::Options{});
  Values values2;
  fuzz::check(reparse.parse(again, values2), "what appendJsonObject wrote does not parse");
  fuzz::check(fuzz::sameValues(values, values2), "a line written back reads as other values");

  // The same line into one bytes field per name: a different conversion path, crash-free too.
  static const Fields bytes{{"s", Type::Bytes}, {"a", Type::Bytes}};
  JsonLineParser bytesParser(bytes, o);
  bytesParser.parse(line, values);
  return 0;
}
