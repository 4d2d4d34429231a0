// JSON lines for flat objects: a fast parser into typed Values, and the matching writer.
//
// The parser reads one object per line whose values are strings, numbers, booleans or null (the
// shape of event streams such as the Yahoo Streaming Benchmark's ad events) straight into Values
// for the declared Fields: no DOM, no allocation beyond the output strings (and none at all when
// the same Values are parsed into again, since string capacity is reused). Errors name the byte
// position and the reason, so a bad record can be found and fixed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/value.h"

namespace gale {

class JsonLineParser {
 public:
  enum class MissingField {
    Null,   // a declared field absent from the object becomes null
    Error,  // ... or makes the line an error
  };

  struct Options {
    MissingField missing = MissingField::Null;
    // Members that are not declared fields are skipped (their syntax is still checked) unless
    // this is set, in which case they make the line an error.
    bool rejectUnknownFields = false;
    // Longer lines are rejected before parsing (defends against a runaway producer).
    size_t maxLineLength = 1 << 20;
  };

  // Declared types decide conversions: int64 takes integral numbers only (no fraction, no
  // exponent, in range); double takes any number; timestamp takes integral microseconds since
  // the epoch; bool takes true/false; string and bytes take strings; any takes what comes
  // (integral -> int64, otherwise double; string; bool). null is accepted for every type.
  // Throws std::invalid_argument when two fields have the same name.
  JsonLineParser(Fields fields, Options options);
  explicit JsonLineParser(Fields fields) : JsonLineParser(std::move(fields), Options{}) {}

  // Parses `line` (one object, surrounding whitespace allowed, a trailing '\r' too) into `out`,
  // which is resized to fields().size(), in field order. Returns false on a malformed line;
  // then error() says why ("at byte 17: expected ':' after the name \"ad_id\"") and `out` holds
  // unspecified values.
  bool parse(std::string_view line, Values& out);

  const std::string& error() const { return error_; }
  // Byte position of the last error in the line.
  size_t errorPosition() const { return errorPos_; }

  const Fields& fields() const { return fields_; }

 private:
  struct Cursor;
  enum class Compact { Done, Failed, NotCompact };
  void nextLine();
  Compact parseCompact(std::string_view line, Values& out);
  bool endLine(size_t lineSize, Values& out);
  bool fail(size_t pos, std::string reason);
  bool parseString(Cursor& c, std::string* target);
  bool parseEscapedString(Cursor& c, std::string* target);
  bool skipString(Cursor& c);
  bool parseKey(Cursor& c, std::string_view& key);
  bool parseValue(Cursor& c, int field, Value& target);
  // The field named `key`, the line's member number `member` (-1: no field wants it).
  int lookup(size_t member, std::string_view key);
  int lookupAndRemember(size_t member, std::string_view key);

  Fields fields_;
  Options options_;
  std::vector<uint32_t> seen_;  // seen_[field] == line_: the field's member is in this line
  uint32_t line_ = 0;
  // The names of the last lines' members in order, each with its field: event streams list the
  // same members in the same order, so one compare finds a member's field, declared or not
  // (scanning the fields cost ~65 instructions per member). Bounded for lines with many members.
  struct KnownMember {
    std::string name;
    int field = -1;
    bool plain = false;  // no byte of the name ends a plain run: it can be compared in place
  };
  static constexpr size_t kRememberedMembers = 64;
  std::vector<KnownMember> order_;
  Value skipped_;  // an undeclared member's value is checked, never stored (stays null)
  std::string keyScratch_;
  std::string error_;
  size_t errorPos_ = 0;
};

// Appends `s` as a JSON string literal (quotes included, control characters, '"' and '\\'
// escaped; other bytes copied as they are).
void appendJsonString(std::string& out, std::string_view s);
// Appends one value: numbers (non-finite doubles as null), true/false, null, strings; a
// timestamp as integral microseconds; bytes as a base64 string.
void appendJsonValue(std::string& out, const Value& v);
// Appends {"name":value,...} for `values` under `fields` (no newline). Throws
// std::invalid_argument when the counts differ.
void appendJsonObject(std::string& out, const Fields& fields, const Values& values);

}  // namespace gale
