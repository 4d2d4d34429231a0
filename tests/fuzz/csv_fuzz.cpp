// libFuzzer target: the CSV line splitter and the text-to-value conversion (connectors/csv.cpp)
// that FileSource runs on every line of a file. Properties: no crash, hang or sanitizer report;
// a line that splits, written back with appendCsvLine and split again, gives the same fields; a
// field that converts to int64, double or timestamp converts back from its printed form to the
// same value.
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "gale/connectors/csv.h"

using namespace gale;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  std::vector<std::string> fields;
  std::string error;
  if (!splitCsvLine(line, fields, error)) {
    fuzz::check(!error.empty(), "a rejected line without a reason");
    return 0;
  }
  fuzz::check(!fields.empty(), "a line split into no fields");
  Values asStrings;
  for (const auto& f : fields) asStrings.emplace_back(f);
  std::string again;
  appendCsvLine(again, asStrings);
  std::vector<std::string> fields2;
  fuzz::check(splitCsvLine(again, fields2, error), "what appendCsvLine wrote does not split");
  fuzz::check(fields == fields2, "a line written back splits into other fields");

  for (const auto& f : fields) {
    for (Type t : {Type::Int64, Type::Double, Type::Bool, Type::Timestamp, Type::String,
                   Type::Bytes, Type::Any}) {
      Value v;
      std::string why;
      if (!parseTextValue(f, t, v, why)) {
        fuzz::check(!why.empty(), "a rejected value without a reason");
        continue;
      }
      if (typeOf(v) == Type::Null) continue;
      if (t == Type::Int64 || t == Type::Double || t == Type::Timestamp) {
        std::string printed;
        appendCsvLine(printed, Values{v});
        Value back;
        fuzz::check(parseTextValue(printed, t, back, why), "a printed number does not convert back");
        fuzz::check(fuzz::sameValue(v, back), "a printed number converts back to another value");
      }
    }
  }
  return 0;
}
