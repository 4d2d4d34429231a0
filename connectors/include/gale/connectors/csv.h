// CSV lines (RFC 4180 within one line) and text-to-value conversion, shared by FileSource
// (reading) and FileSink (writing).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/join.h"
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

// The static side of a stream-static join read from a CSV file with a header line (Spark's
// spark.read.option("header", true).csv): `key` and `columns` are found in the header by name
// (other columns are ignored) and converted to their declared types (parseTextValue); blank lines
// are skipped. Throws std::runtime_error naming the file (and line) for an unreadable file, a
// header lacking a column, a malformed line, a value that does not convert, or a repeated key.
std::shared_ptr<StaticTable> readCsvTable(const std::string& path, const FieldSpec& key,
                                          const Fields& columns);

}  // namespace gale
