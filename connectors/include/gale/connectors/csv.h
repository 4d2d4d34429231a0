// CSV lines (RFC 4180 within one line) and text-to-value conversion, shared by FileSource
// (reading) and FileSink (writing).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "gale/core/value.h"

namespace gale {

// Splits one CSV line at commas; a field in double quotes may hold commas and doubled quotes
// (""). Returns false with a reason in `error` (e.g. an unterminated quote: fields spanning lines
// are not supported). `fields` is resized; its strings' capacity is reused.
bool splitCsvLine(std::string_view line, std::vector<std::string>& fields, std::string& error);

// Converts `text` to a value of `type`: int64 and timestamp (integral microseconds) and double
// must be numbers that use all of the text; bool is true/false; string, bytes and any take the
// text as it is. An empty text is null for every type but string and any ("" then).
// Returns false with a reason in `error`.
bool parseTextValue(std::string_view text, Type type, Value& out, std::string& error);

// Appends `values` as one CSV line (no newline): fields holding ',', '"', '\r' or '\n' are quoted.
// Values print as in toString(), timestamps as integral microseconds, null as an empty field.
void appendCsvLine(std::string& out, const Values& values);
// Appends a header line (no newline) of the field names.
void appendCsvHeader(std::string& out, const Fields& fields);

}  // namespace gale
