#include "gale/connectors/json_line.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace gale {

struct JsonLineParser::Cursor {
  const char* begin;
  const char* p;
  const char* end;
  size_t pos() const { return static_cast<size_t>(p - begin); }
  bool atEnd() const { return p == end; }
  void skipSpace() {
    // Every byte above ' ' ends the run at once: one compare in the common case (no spaces).
    while (p != end && static_cast<unsigned char>(*p) <= ' ' &&
           (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
      ++p;
  }
};

namespace {

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char ch : s.substr(0, 64)) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  if (s.size() > 64) out += "...";
  return out + "\"";
}

std::string describeChar(const char* p, const char* end) {
  if (p == end) return "the end of the line";
  auto c = static_cast<unsigned char>(*p);
  if (c >= 0x20 && c < 0x7f) return std::string("'") + *p + "'";
  char buf[16];
  std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
  return buf;
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

#if defined(__SSE2__)
// Bit i set: byte at[i] ends a plain run.
[[gnu::always_inline]] inline unsigned stopMask(const char* at) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
  // x <= 0x1f (unsigned) exactly when min(x, 0x1f) == x.
  const __m128i stop =
      _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))),
                   _mm_cmpeq_epi8(_mm_min_epu8(x, _mm_set1_epi8(0x1f)), x));
  return static_cast<unsigned>(_mm_movemask_epi8(stop));
}
#endif

// The end of the run of plain string characters at p: the first '"', '\\' or control character
// (or `end`). Most of a line is such runs (YSB's events: ~170 of ~240 bytes are ids and words),
// so they are scanned 16 bytes at a time where SSE2 is there (every x86-64); byte by byte
// these scans were a fifth of an event's instructions in gale-compare's JSON YSB.
// `begin` is the line's first byte: the last bytes of a line long enough are scanned as the
// line's last 16 (shifted past the bytes before p), not byte by byte (~90 instructions per YSB
// event, whose last member is in those bytes).
[[gnu::always_inline]] inline const char* plainRunEnd(const char* p, const char* end,
                                                      const char* begin) {
#if defined(__SSE2__)
  while (end - p >= 16) {
    if (unsigned m = stopMask(p)) return p + __builtin_ctz(m);
    p += 16;
  }
  if (p != end && end - begin >= 16) {
    const unsigned m = stopMask(end - 16) >> (16 - (end - p));
    return m ? p + __builtin_ctz(m) : end;
  }
#else
  (void)begin;
#endif
  for (; p != end; ++p) {
    auto ch = static_cast<unsigned char>(*p);
    if (ch == '"' || ch == '\\' || ch < 0x20) break;
  }
  return p;
}

// By pointer and length: append(first, last) goes through replace() (~60 instructions more).
inline void appendRun(std::string& s, const char* first, const char* last) {
  s.append(first, static_cast<size_t>(last - first));
}

// A string held by `v`, reusing the capacity of the one already there.
std::string& stringIn(Value& v) {
  if (auto* s = std::get_if<std::string>(&v)) {
    s->clear();
    return *s;
  }
  return v.emplace<std::string>();
}

}  // namespace

JsonLineParser::JsonLineParser(Fields fields, Options options)
    : fields_(std::move(fields)), options_(options), seen_(fields_.size()) {
  for (size_t i = 0; i < fields_.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (fields_[i].name == fields_[j].name) {
        throw std::invalid_argument("JsonLineParser: field '" + fields_[i].name +
                                    "' is declared twice in " + fields_.toString());
      }
    }
  }
}

bool JsonLineParser::fail(size_t pos, std::string reason) {
  errorPos_ = pos;
  error_ = "at byte " + std::to_string(pos) + ": " + reason;
  return false;
}

namespace {

// a == b for strings of the same length n, without a call to memcmp: names are short, so two
// overlapping loads of 8 (or 4) bytes from each side cover them, and never read past either.
[[gnu::always_inline]] inline bool sameBytes(const char* a, const char* b, size_t n) {
  auto load8 = [](const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  auto load4 = [](const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  };
  if (n >= 8) {
    if (n > 16) return std::memcmp(a, b, n) == 0;
    return load8(a) == load8(b) && load8(a + n - 8) == load8(b + n - 8);
  }
  if (n >= 4) return load4(a) == load4(b) && load4(a + n - 4) == load4(b + n - 4);
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return false;
  return true;
}

}  // namespace

inline int JsonLineParser::lookup(size_t member, std::string_view key) {
  if (member < order_.size()) {
    const KnownMember& m = order_[member];
    if (m.name.size() == key.size() && sameBytes(m.name.data(), key.data(), key.size()))
      return m.field;
  }
  return lookupAndRemember(member, key);
}

// Out of line, so that the common path above saves and restores no registers for it.
int JsonLineParser::lookupAndRemember(size_t member, std::string_view key) {
  int field = -1;
  for (int i = 0; i < static_cast<int>(fields_.size()); ++i) {
    if (fields_[i].name == key) {
      field = i;
      break;
    }
  }
  if (member < kRememberedMembers) {
    if (order_.size() <= member) order_.resize(member + 1);
    order_[member].name.assign(key);
    order_[member].field = field;
    order_[member].plain = plainRunEnd(key.data(), key.data() + key.size(), key.data()) ==
                           key.data() + key.size();
  }
  return field;
}

// Reads a string literal (the cursor is on its opening quote) into `*target`, unescaping; with
// no target (a member no field wants) it is only checked, not decoded or copied.
inline bool JsonLineParser::parseString(Cursor& c, std::string* target) {
  // Most strings are one plain run up to the closing quote: taken here without the escape
  // machinery below (its register saves cost as much as the run's scan).
  const char* run = c.p + 1;
  const char* q = plainRunEnd(run, c.end, c.begin);
  if (q != c.end && *q == '"') {
    if (target) appendRun(*target, run, q);
    c.p = q + 1;
    return true;
  }
  return parseEscapedString(c, target);
}

bool JsonLineParser::parseEscapedString(Cursor& c, std::string* target) {
  const size_t start = c.pos();
  ++c.p;
  for (;;) {
    const char* run = c.p;
    c.p = plainRunEnd(c.p, c.end, c.begin);
    if (target) appendRun(*target, run, c.p);
    if (c.p == c.end) return fail(start, "string is not terminated (missing closing '\"')");
    const char ch = *c.p;
    if (ch == '"') {
      ++c.p;
      return true;
    }
    if (ch != '\\') {
      return fail(c.pos(), "control character " + describeChar(c.p, c.end) +
                               " inside a string must be escaped");
    }
    const size_t escPos = c.pos();
    auto put = [target](char e) {
      if (target) *target += e;
    };
    ++c.p;
    if (c.p == c.end) return fail(escPos, "string ends inside an escape sequence");
    switch (*c.p++) {
      case '"': put('"'); break;
      case '\\': put('\\'); break;
      case '/': put('/'); break;
      case 'b': put('\b'); break;
      case 'f': put('\f'); break;
      case 'n': put('\n'); break;
      case 'r': put('\r'); break;
      case 't': put('\t'); break;
      case 'u': {
        auto hex4 = [&](uint32_t& cp) {
          if (c.end - c.p < 4) return false;
          cp = 0;
          for (int i = 0; i < 4; ++i) {
            int d = hexDigit(c.p[i]);
            if (d < 0) return false;
            cp = cp << 4 | static_cast<uint32_t>(d);
          }
          c.p += 4;
          return true;
        };
        uint32_t cp;
        if (!hex4(cp)) return fail(escPos, "\\u must be followed by 4 hex digits");
        if (cp >= 0xdc00 && cp <= 0xdfff) {
          return fail(escPos, "\\u escape is a lone low surrogate (UTF-16 pairs start with D800-DBFF)");
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
          uint32_t low;
          if (c.end - c.p < 2 || c.p[0] != '\\' || c.p[1] != 'u') {
            return fail(escPos, "\\u escape is a high surrogate not followed by a low one");
          }
          c.p += 2;
          if (!hex4(low) || low < 0xdc00 || low > 0xdfff) {
            return fail(escPos, "\\u escape is a high surrogate not followed by a low one");
          }
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        if (target) appendUtf8(*target, cp);
        break;
      }
      default:
        return fail(escPos, "unknown escape sequence \\" + std::string(1, c.p[-1]) +
                                " (JSON knows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
    }
  }
}

bool JsonLineParser::skipString(Cursor& c) { return parseString(c, nullptr); }

inline bool JsonLineParser::parseKey(Cursor& c, std::string_view& key) {
  // Fast path: a name without escapes is used in place.
  const char* q = plainRunEnd(c.p + 1, c.end, c.begin);
  if (q != c.end && *q == '"') {
    key = std::string_view(c.p + 1, static_cast<size_t>(q - c.p - 1));
    c.p = q + 1;
    return true;
  }
  keyScratch_.clear();
  if (!parseEscapedString(c, &keyScratch_)) return false;
  key = keyScratch_;
  return true;
}

bool JsonLineParser::parseValue(Cursor& c, int field, Value& target) {
  const size_t start = c.pos();
  const Type want = field >= 0 ? fields_[field].type : Type::Any;
  auto nameOf = [&] { return field >= 0 ? "'" + fields_[field].name + "'" : std::string("?"); };
  auto typeError = [&](const char* got) {
    return fail(start, "field " + nameOf() + " is declared " + typeName(want) + " but the value is " +
                           got);
  };
  if (c.atEnd()) return fail(start, "the line ends where a value was expected");
  const char ch = *c.p;
  if (ch == '"') {
    if (field < 0) return skipString(c);
    if (want == Type::String || want == Type::Any) return parseString(c, &stringIn(target));
    if (want == Type::Bytes) {
      Bytes* b = std::get_if<Bytes>(&target);
      if (!b) b = &target.emplace<Bytes>();
      b->data.clear();
      return parseString(c, &b->data);
    }
    return typeError("a string");
  }
  if (ch == '-' || (ch >= '0' && ch <= '9')) {
    // JSON's number grammar, checked here because from_chars accepts more (inf, nan, hex...).
    const char* q = c.p;
    bool integral = true;
    if (*q == '-') ++q;
    if (q == c.end || *q < '0' || *q > '9') return fail(start, "'-' must be followed by a digit");
    if (*q == '0') {
      ++q;
      if (q != c.end && *q >= '0' && *q <= '9') return fail(start, "numbers must not have leading zeros");
    } else {
      while (q != c.end && *q >= '0' && *q <= '9') ++q;
    }
    if (q != c.end && *q == '.') {
      integral = false;
      ++q;
      if (q == c.end || *q < '0' || *q > '9') return fail(start, "'.' must be followed by a digit");
      while (q != c.end && *q >= '0' && *q <= '9') ++q;
    }
    if (q != c.end && (*q == 'e' || *q == 'E')) {
      integral = false;
      ++q;
      if (q != c.end && (*q == '+' || *q == '-')) ++q;
      if (q == c.end || *q < '0' || *q > '9') return fail(start, "exponent must have digits");
      while (q != c.end && *q >= '0' && *q <= '9') ++q;
    }
    const char* numEnd = q;
    const std::string_view text(c.p, static_cast<size_t>(numEnd - c.p));
    c.p = numEnd;
    if (field < 0) return true;
    auto parseInt = [&](int64_t& v) {
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      return r.ec == std::errc() && r.ptr == numEnd;
    };
    auto parseDouble = [&](double& v) {
      auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      return r.ec == std::errc() && r.ptr == numEnd;
    };
    switch (want) {
      case Type::Int64:
      case Type::Timestamp: {
        if (!integral) return typeError(("the non-integral number " + std::string(text)).c_str());
        int64_t v;
        if (!parseInt(v)) return fail(start, "field " + nameOf() + ": " + std::string(text) +
                                                 " is out of the int64 range");
        if (want == Type::Int64) target = v;
        else target = Timestamp{v};
        return true;
      }
      case Type::Double: {
        double v;
        if (!parseDouble(v)) return fail(start, "field " + nameOf() + ": " + std::string(text) +
                                                    " is out of the double range");
        target = v;
        return true;
      }
      case Type::Any: {
        int64_t i;
        if (integral && parseInt(i)) {
          target = i;
          return true;
        }
        double d;
        if (!parseDouble(d)) return fail(start, "field " + nameOf() + ": " + std::string(text) +
                                                    " is out of the double range");
        target = d;
        return true;
      }
      default:
        return typeError("a number");
    }
  }
  auto literal = [&](std::string_view word) {
    return static_cast<size_t>(c.end - c.p) >= word.size() &&
           std::memcmp(c.p, word.data(), word.size()) == 0;
  };
  if (literal("true") || literal("false")) {
    const bool v = *c.p == 't';
    c.p += v ? 4 : 5;
    if (field < 0) return true;
    if (want != Type::Bool && want != Type::Any) return typeError("a boolean");
    target = v;
    return true;
  }
  if (literal("null")) {
    c.p += 4;
    if (field >= 0) target = std::monostate{};
    return true;
  }
  if (ch == '{' || ch == '[') {
    return fail(start, "nested objects and arrays are not supported (field " + nameOf() +
                           "); the parser reads flat objects only");
  }
  return fail(start, "expected a value (string, number, true, false or null), found " +
                         describeChar(c.p, c.end));
}

// A new line number instead of clearing the seen flags (a memset call per line for a few
// bytes); they are cleared only when the number wraps.
inline void JsonLineParser::nextLine() {
  if (++line_ == 0) {
    std::fill(seen_.begin(), seen_.end(), 0);
    line_ = 1;
  }
}

// Event streams write {"name":"value",...}: no whitespace, no escapes. Such a line is parsed
// here with its cursor in registers and one check per separator (the general loop below keeps
// its cursor in memory for the out-of-line paths and scans for whitespace four times per
// member). A value that is not a string for a string field goes to parseValue, as in the
// general loop. Anything else (whitespace, an escape, a control character, a repeated or
// refused member, a malformed line) returns NotCompact before an error is set, and the line is
// parsed again from its start by the general loop, which words every error.
JsonLineParser::Compact JsonLineParser::parseCompact(std::string_view line, Values& out) {
  const char* const begin = line.data();
  const char* const end = begin + line.size();
  // A line that ends in '}' (checked first) has no member name or string value that runs to
  // its end, so the byte after a closing quote can be read without a bounds check.
  if (line.size() < 2 || *begin != '{' || end[-1] != '}') return Compact::NotCompact;
  const char* p = begin + 1;
  if (*p == '}') {
    if (p + 1 != end) return Compact::NotCompact;
    return endLine(line.size(), out) ? Compact::Done : Compact::Failed;
  }
  size_t declared = 0;  // declared fields seen: when all are, no field is left to null
  for (size_t member = 0;; ++member) {
    if (*p != '"') return Compact::NotCompact;
    // The name this position had in the last line, compared in place: a plain name's bytes
    // followed by '"' are that whole name, with no scan for the closing quote.
    const char* q;
    int field;
    const KnownMember* known = member < order_.size() ? &order_[member] : nullptr;
    const size_t n = known ? known->name.size() : 0;
    if (known && known->plain && static_cast<size_t>(end - p) > n + 1 && p[1 + n] == '"' &&
        sameBytes(p + 1, known->name.data(), n)) {
      q = p + 1 + n;
      field = known->field;
    } else {
      q = plainRunEnd(p + 1, end, begin);
      if (q == end || *q != '"') return Compact::NotCompact;
      field = lookup(member, std::string_view(p + 1, static_cast<size_t>(q - p - 1)));
    }
    if (q[1] != ':') return Compact::NotCompact;
    if (field < 0) {
      if (options_.rejectUnknownFields) return Compact::NotCompact;
    } else {
      if (seen_[field] == line_) return Compact::NotCompact;
      seen_[field] = line_;
      ++declared;
    }
    p = q + 2;  // the value: q[1] is ':', and the line's last byte is '}'
    if (*p == '"' && (field < 0 || fields_[field].type == Type::String)) {
      q = plainRunEnd(p + 1, end, begin);
      if (q == end || *q != '"') return Compact::NotCompact;
      if (field >= 0) appendRun(stringIn(out[field]), p + 1, q);
      p = q + 1;
    } else {
      if (static_cast<unsigned char>(*p) <= ' ') return Compact::NotCompact;  // whitespace
      Cursor c{begin, p, end};
      if (!parseValue(c, field, field >= 0 ? out[field] : skipped_)) return Compact::Failed;
      p = c.p;
      if (p == end) return Compact::NotCompact;
    }
    if (*p == ',') {
      ++p;  // not the last byte, which is '}'
      continue;
    }
    if (*p != '}' || p + 1 != end) return Compact::NotCompact;
    return declared == fields_.size() || endLine(line.size(), out) ? Compact::Done : Compact::Failed;
  }
}

bool JsonLineParser::parse(std::string_view line, Values& out) {
  if (line.size() > options_.maxLineLength) {
    return fail(0, "the line is " + std::to_string(line.size()) +
                       " bytes, longer than maxLineLength " + std::to_string(options_.maxLineLength));
  }
  out.resize(fields_.size());
  nextLine();
  switch (parseCompact(line, out)) {
    case Compact::Done: return true;
    case Compact::Failed: return false;
    case Compact::NotCompact: nextLine();  // forget the members it saw
  }
  size_t member = 0;
  Cursor c{line.data(), line.data(), line.data() + line.size()};
  c.skipSpace();
  if (c.atEnd()) return fail(c.pos(), "the line is empty (expected a JSON object)");
  if (*c.p != '{') return fail(c.pos(), "expected '{' to start an object, found " + describeChar(c.p, c.end));
  ++c.p;
  c.skipSpace();
  if (!c.atEnd() && *c.p == '}') {
    ++c.p;
  } else {
    for (;;) {
      if (c.atEnd() || *c.p != '"') {
        return fail(c.pos(), "expected '\"' to start a member name, found " + describeChar(c.p, c.end));
      }
      const size_t keyPos = c.pos();
      std::string_view key;
      if (!parseKey(c, key)) return false;
      c.skipSpace();
      if (c.atEnd() || *c.p != ':') {
        return fail(c.pos(), "expected ':' after the name " + quoted(key) + ", found " +
                                 describeChar(c.p, c.end));
      }
      ++c.p;
      c.skipSpace();
      const int field = lookup(member++, key);
      if (field < 0) {
        if (options_.rejectUnknownFields) {
          return fail(keyPos, "unknown member " + quoted(key) + " (declared fields are " +
                                  fields_.toString() + ")");
        }
      } else {
        if (seen_[field] == line_) return fail(keyPos, "member " + quoted(key) + " appears twice");
        seen_[field] = line_;
      }
      // A string for a string field or for none: straight to the string scan.
      if (!c.atEnd() && *c.p == '"' && (field < 0 || fields_[field].type == Type::String)) {
        if (!parseString(c, field < 0 ? nullptr : &stringIn(out[field]))) return false;
      } else if (!parseValue(c, field, field >= 0 ? out[field] : skipped_)) {
        return false;
      }
      c.skipSpace();
      if (c.atEnd()) return fail(c.pos(), "the line ends inside the object (missing '}')");
      if (*c.p == ',') {
        ++c.p;
        c.skipSpace();
        continue;
      }
      if (*c.p == '}') {
        ++c.p;
        break;
      }
      return fail(c.pos(), "expected ',' or '}' after the value of " + quoted(key) + ", found " +
                               describeChar(c.p, c.end));
    }
  }
  c.skipSpace();
  if (!c.atEnd()) {
    return fail(c.pos(), "unexpected " + describeChar(c.p, c.end) + " after the object (one object per line)");
  }
  return endLine(line.size(), out);
}

// Declared fields the line did not have: null, or the line's error.
bool JsonLineParser::endLine(size_t lineSize, Values& out) {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (seen_[i] == line_) continue;
    if (options_.missing == MissingField::Error) {
      return fail(lineSize, "member \"" + fields_[i].name + "\" is missing");
    }
    out[i] = std::monostate{};
  }
  return true;
}

// --- writer -----------------------------------------------------------------------------------

void appendJsonString(std::string& out, std::string_view s) {
  static const char* kHex = "0123456789abcdef";
  out += '"';
  const char* run = s.data();
  const char* end = s.data() + s.size();
  for (const char* p = run; p != end; ++p) {
    auto c = static_cast<unsigned char>(*p);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(run, p);
    run = p + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 15];
    }
  }
  out.append(run, end);
  out += '"';
}

namespace {
std::string base64(std::string_view in) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16 | static_cast<unsigned char>(in[i + 1]) << 8 |
                 static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}
}  // namespace

void appendJsonValue(std::string& out, const Value& v) {
  char buf[32];
  switch (typeOf(v)) {
    case Type::Null: out += "null"; return;
    case Type::Int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<int64_t>(v));
      out.append(buf, r.ptr);
      return;
    }
    case Type::Double: {
      double d = std::get<double>(v);
      if (!std::isfinite(d)) {
        out += "null";
        return;
      }
      auto r = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, r.ptr);
      // The shortest form of an integral double has no '.' or exponent ("3", "170000050200000"),
      // and a reader (ours, for an `any` field) takes that for an int64: keep it a double.
      if (std::find_if(buf, r.ptr, [](char ch) { return ch == '.' || ch == 'e'; }) == r.ptr)
        out += ".0";
      return;
    }
    case Type::Bool: out += std::get<bool>(v) ? "true" : "false"; return;
    case Type::String: appendJsonString(out, std::get<std::string>(v)); return;
    case Type::Bytes: appendJsonString(out, base64(std::get<Bytes>(v).data)); return;
    case Type::Timestamp: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<Timestamp>(v).micros);
      out.append(buf, r.ptr);
      return;
    }
    default: out += "null"; return;
  }
}

void appendJsonObject(std::string& out, const Fields& fields, const Values& values) {
  if (fields.size() != values.size()) {
    throw std::invalid_argument("appendJsonObject: " + std::to_string(values.size()) +
                                " values for fields " + fields.toString());
  }
  out += '{';
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    appendJsonString(out, fields[i].name);
    out += ':';
    appendJsonValue(out, values[i]);
  }
  out += '}';
}

}  // namespace gale
