#include "gale/connectors/json_line.h"

#include <bit>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace gale {
namespace {

const Fields kAd{FieldSpec{"user_id", Type::String}, FieldSpec{"ad_id", Type::String},
                 FieldSpec{"event_type", Type::String}, FieldSpec{"event_time", Type::Timestamp},
                 FieldSpec{"price", Type::Double}, FieldSpec{"n", Type::Int64},
                 FieldSpec{"ok", Type::Bool}};

TEST(JsonLineParser, ParsesAFlatObjectIntoTheDeclaredTypes) {
  JsonLineParser p(kAd);
  Values v;
  ASSERT_TRUE(p.parse(R"({"user_id":"u1","ad_id":"a\"2","event_type":"view","event_time":1700000000123456,)"
                      R"("price":2.5e1,"n":-42,"ok":true})",
                      v))
      << p.error();
  EXPECT_EQ(v, (Values{std::string("u1"), std::string("a\"2"), std::string("view"),
                       Timestamp{1700000000123456}, 25.0, int64_t{-42}, true}));
}

TEST(JsonLineParser, MembersInAnyOrderWithWhitespaceAndUnknownOnesSkipped) {
  JsonLineParser p(Fields{"a", "b"});
  Values v;
  ASSERT_TRUE(p.parse(" { \"b\" : 1.5 , \"x\": {\"ignored\": 1} } \r", v) == false);
  EXPECT_NE(p.error().find("nested"), std::string::npos) << p.error();
  ASSERT_TRUE(p.parse(" { \"b\" : 1.5 , \"x\": [1] } ", v) == false);
  ASSERT_TRUE(p.parse(" { \"b\" : 1.5 , \"x\": \"skip\\n\", \"a\": \"s\", \"y\": null, \"z\": false } \r", v))
      << p.error();
  EXPECT_EQ(v, (Values{std::string("s"), 1.5}));
}

TEST(JsonLineParser, AnyTypedFieldsTakeTheNaturalType) {
  JsonLineParser p(Fields{"i", "d", "s", "b", "z", "big"});
  Values v;
  ASSERT_TRUE(p.parse(R"({"i":7,"d":-0.25,"s":"x","b":false,"z":null,"big":123456789012345678901234})", v))
      << p.error();
  EXPECT_EQ(v[0], Value(int64_t{7}));
  EXPECT_EQ(v[1], Value(-0.25));
  EXPECT_EQ(v[2], Value(std::string("x")));
  EXPECT_EQ(v[3], Value(false));
  EXPECT_EQ(v[4], Value(std::monostate{}));
  EXPECT_DOUBLE_EQ(std::get<double>(v[5]), 1.23456789012345678901234e23);
}

TEST(JsonLineParser, MissingFieldsAreNullOrAnErrorAsConfigured) {
  Values v;
  JsonLineParser lenient(Fields{"a", "b"});
  ASSERT_TRUE(lenient.parse(R"({"a":1})", v));
  EXPECT_EQ(v, (Values{int64_t{1}, std::monostate{}}));
  JsonLineParser strict(Fields{"a", "b"}, {.missing = JsonLineParser::MissingField::Error});
  EXPECT_FALSE(strict.parse(R"({"a":1})", v));
  EXPECT_NE(strict.error().find("\"b\" is missing"), std::string::npos) << strict.error();
}

TEST(JsonLineParser, UnknownMembersAreRejectedWhenAsked) {
  Values v;
  JsonLineParser p(Fields{"a"}, {.rejectUnknownFields = true});
  EXPECT_FALSE(p.parse(R"({"a":1,"zz":2})", v));
  EXPECT_NE(p.error().find("unknown member \"zz\""), std::string::npos) << p.error();
  EXPECT_EQ(p.errorPosition(), 7u);
}

TEST(JsonLineParser, UnicodeEscapesBecomeUtf8IncludingSurrogatePairs) {
  JsonLineParser p(Fields{"s"});
  Values v;
  ASSERT_TRUE(p.parse(R"({"s":"\u00e9\u20ac\ud83d\ude00\/\t"})", v)) << p.error();
  EXPECT_EQ(std::get<std::string>(v[0]), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80/\t");
  EXPECT_FALSE(p.parse(R"({"s":"\ud83d"})", v));
  EXPECT_NE(p.error().find("high surrogate"), std::string::npos);
  EXPECT_FALSE(p.parse(R"({"s":"\ude00"})", v));
  EXPECT_FALSE(p.parse(R"({"s":"\u12g4"})", v));
}

struct BadCase {
  const char* line;
  size_t pos;
  const char* reason;
};

TEST(JsonLineParser, MalformedLinesGiveThePositionAndTheReason) {
  JsonLineParser p(kAd);
  const BadCase cases[] = {
      {"", 0, "empty"},
      {"[1]", 0, "expected '{'"},
      {R"({"n" 1})", 5, "expected ':' after the name \"n\""},
      {R"({"n":1,})", 7, "expected '\"' to start a member name"},
      {R"({"n":1 "ok":true})", 7, "expected ',' or '}'"},
      {R"({"n":1.5})", 5, "declared int64 but the value is the non-integral number 1.5"},
      {R"({"n":99999999999999999999})", 5, "out of the int64 range"},
      {R"({"n":"7"})", 5, "declared int64 but the value is a string"},
      {R"({"price":true})", 9, "declared double but the value is a boolean"},
      {R"({"ok":1})", 6, "declared bool but the value is a number"},
      {R"({"n":01})", 5, "leading zeros"},
      {R"({"n":-})", 5, "'-' must be followed by a digit"},
      {R"({"price":1.})", 9, "'.' must be followed by a digit"},
      {R"({"price":1e})", 9, "exponent must have digits"},
      {R"({"price":1e999})", 9, "out of the double range"},
      {R"({"user_id":"abc)", 11, "not terminated"},
      {"{\"user_id\":\"a\x01\"}", 13, "control character"},
      {R"({"user_id":"\q"})", 12, "unknown escape sequence \\q"},
      {R"({"n":1,"n":2})", 7, "\"n\" appears twice"},
      {R"({"n":tru})", 5, "expected a value"},
      {R"({"n":1} x)", 8, "after the object"},
      {R"({"n":1)", 6, "missing '}'"},
      {R"({"n":)", 5, "ends where a value was expected"},
  };
  for (const auto& c : cases) {
    Values v;
    EXPECT_FALSE(p.parse(c.line, v)) << c.line;
    EXPECT_EQ(p.errorPosition(), c.pos) << c.line << " -> " << p.error();
    EXPECT_NE(p.error().find(c.reason), std::string::npos) << c.line << " -> " << p.error();
    EXPECT_EQ(p.error().rfind("at byte " + std::to_string(c.pos) + ": ", 0), 0u) << p.error();
  }
}

// Strings are scanned 16 bytes at a time: every byte that ends a plain run ('"', '\\', a control
// character) is found at every offset in and across those blocks, in values and in names, and
// bytes that do not end one (0x20, 0x7f, UTF-8's 0x80-0xff) never do.
TEST(JsonLineParser, EveryByteThatEndsAPlainRunIsFoundAtEveryOffset) {
  JsonLineParser p(Fields{FieldSpec{"s", Type::String}});
  Values v;
  for (size_t at = 0; at < 40; ++at) {
    const std::string pad(at, 'x');
    for (unsigned char plain : {0x20, 0x7e, 0x7f, 0x80, 0xc3, 0xff}) {
      std::string want = pad + static_cast<char>(plain) + "tail-long-enough-for-a-block";
      ASSERT_TRUE(p.parse("{\"s\":\"" + want + "\"}", v)) << at << " " << int(plain) << p.error();
      EXPECT_EQ(v[0], Value(want)) << at << " " << int(plain);
    }
    ASSERT_TRUE(p.parse("{\"s\":\"" + pad + "\\\"q\\\\b\\n" + pad + "\"}", v)) << p.error();
    EXPECT_EQ(v[0], Value(pad + "\"q\\b\n" + pad)) << at;
    for (unsigned char control : {0x00, 0x01, 0x0a, 0x1f}) {
      std::string line = "{\"s\":\"" + pad + static_cast<char>(control) + "0123456789abcdef\"}";
      EXPECT_FALSE(p.parse(line, v)) << at << " " << int(control);
      EXPECT_EQ(p.errorPosition(), 6 + at) << p.error();
    }
    // An unterminated string: the scan must stop at the end of the line, not read past it.
    EXPECT_FALSE(p.parse("{\"s\":\"" + pad, v)) << at;
    // Names: an escaped one still matches its field; a name with a control character is refused.
    ASSERT_TRUE(p.parse("{\"" + pad + "\\u0041\":1,\"s\":\"ok\"}", v)) << at << p.error();
    EXPECT_EQ(v[0], Value(std::string("ok")));
    EXPECT_FALSE(p.parse("{\"" + pad + '\x02' + "\":1,\"s\":\"ok\"}", v)) << at;
  }
}

// The parser remembers the last line's member names in order (one compare per member); a
// line with its members in another order, with undeclared ones where declared ones were, or
// with fewer or more members, must still put every value in its own field.
TEST(JsonLineParser, AParserReusedOverLinesWithOtherMemberOrdersFindsEachField) {
  JsonLineParser p(Fields{FieldSpec{"a", Type::Int64}, FieldSpec{"b", Type::String}});
  Values v;
  ASSERT_TRUE(p.parse(R"({"a":1,"b":"x"})", v)) << p.error();
  EXPECT_EQ(v, (Values{int64_t{1}, std::string("x")}));
  ASSERT_TRUE(p.parse(R"({"b":"y","a":2})", v)) << p.error();
  EXPECT_EQ(v, (Values{int64_t{2}, std::string("y")}));
  ASSERT_TRUE(p.parse(R"({"c":"skip","b":"z","a":3,"d":4})", v)) << p.error();
  EXPECT_EQ(v, (Values{int64_t{3}, std::string("z")}));
  ASSERT_TRUE(p.parse(R"({"b":"w"})", v)) << p.error();
  EXPECT_EQ(v, (Values{std::monostate{}, std::string("w")}));
  // "a" where an undeclared member was, and a name that is a prefix of the remembered one.
  ASSERT_TRUE(p.parse(R"({"a":5,"bb":"no","b":"v"})", v)) << p.error();
  EXPECT_EQ(v, (Values{int64_t{5}, std::string("v")}));
  EXPECT_FALSE(p.parse(R"({"a":5,"a":6})", v));
  EXPECT_NE(p.error().find("\"a\" appears twice"), std::string::npos) << p.error();
  // Names of every length up to past 16 bytes, each against one that differs in a single byte
  // at each position: the remembered name must match only itself.
  for (size_t n = 1; n <= 20; ++n) {
    const std::string name(n, 'k');
    JsonLineParser q(Fields{FieldSpec{name, Type::Int64}});
    for (size_t at = 0; at < n; ++at) {
      std::string other = name;
      other[at] = 'j';
      ASSERT_TRUE(q.parse("{\"" + name + "\":1}", v)) << q.error();
      EXPECT_EQ(v, (Values{int64_t{1}})) << n << " " << at;
      ASSERT_TRUE(q.parse("{\"" + other + "\":2}", v)) << q.error();
      EXPECT_EQ(v, (Values{std::monostate{}})) << n << " " << at;
    }
  }
}

// Undeclared members are skipped without being decoded or copied, but their syntax is checked
// as strictly as a declared member's: a bad record is never passed on as good.
TEST(JsonLineParser, UndeclaredMembersAreCheckedThoughNotDecoded) {
  JsonLineParser p(Fields{FieldSpec{"a", Type::String}});
  Values v;
  ASSERT_TRUE(p.parse(R"({"x":"q\"\\\u00e9\ud83d\ude00","a":"kept"})", v)) << p.error();
  EXPECT_EQ(v, (Values{std::string("kept")}));
  const BadCase cases[] = {
      {R"({"x":"abc,"a":"s"})", 11, "expected ',' or '}' after the value of \"x\""},
      {R"({"a":"s","x":"abc)", 13, "not terminated"},
      {"{\"x\":\"a\x01\",\"a\":\"s\"}", 7, "control character"},
      {R"({"x":"\q","a":"s"})", 6, "unknown escape sequence \\q"},
      {R"({"x":"\u12","a":"s"})", 6, "4 hex digits"},
      {R"({"x":"\udc00","a":"s"})", 6, "lone low surrogate"},
      {R"({"x":"\ud800x","a":"s"})", 6, "not followed by a low one"},
  };
  for (const auto& c : cases) {
    EXPECT_FALSE(p.parse(c.line, v)) << c.line;
    EXPECT_EQ(p.errorPosition(), c.pos) << c.line << " -> " << p.error();
    EXPECT_NE(p.error().find(c.reason), std::string::npos) << c.line << " -> " << p.error();
  }
}

// A line with no whitespace takes the compact path; the same line after a space takes the
// general one. Over valid, odd and broken lines (escapes, non-string values, control bytes,
// repeated, unknown and missing members, truncations, stray bytes), both must give the same
// values, or the same error one byte further on.
TEST(JsonLineParser, ACompactLineParsesExactlyAsTheSameLineAfterASpace) {
  const char* names[] = {"user_id", "ad_id", "event_type", "event_time", "price", "n", "ok",
                         "x", "", "a_member_name_longer_than_16"};
  const char* values[] = {R"("s")", R"("a plain string longer than sixteen bytes")", "17", "-4",
                          "2.5", "1e3", "true", "false", "null", R"("esc\"aped")",
                          R"("\u00e9")", "\"ctl\x01\"", R"("unterminated)", "[1]", "01", R"("")"};
  const std::string stray = " \t\r\"\\,:{}\x01\xff" "0a";
  std::mt19937_64 rng(2026);
  struct Config {
    JsonLineParser::Options options;
    Fields fields;
  };
  JsonLineParser::Options strict;
  strict.missing = JsonLineParser::MissingField::Error;
  strict.rejectUnknownFields = true;
  const Config configs[] = {{{}, kAd}, {strict, kAd}, {{}, Fields{"user_id", "n", "price", "x"}}};
  size_t ok = 0, bad = 0;
  for (const Config& config : configs) {
    JsonLineParser compact(config.fields, config.options), general(config.fields, config.options);
    Values a, b;
    for (int i = 0; i < 20000; ++i) {
      std::string line = "{";
      for (int m = static_cast<int>(rng() % 6); m > 0; --m) {
        if (line.size() > 1) line += ',';
        line += std::string("\"") + names[rng() % std::size(names)] + "\":" +
                values[rng() % std::size(values)];
      }
      line += '}';
      if (i % 3 == 1) line[rng() % line.size()] = stray[rng() % stray.size()];
      if (i % 3 == 2) line.resize(rng() % (line.size() + 1));
      const bool compactOk = compact.parse(line, a);
      ASSERT_EQ(compactOk, general.parse(" " + line, b)) << line << " -> " << compact.error()
                                                         << " / " << general.error();
      if (compactOk) {
        ++ok;
        EXPECT_EQ(a, b) << line;
        continue;
      }
      ++bad;
      EXPECT_EQ(compact.errorPosition() + 1, general.errorPosition()) << line;
      auto reason = [](const std::string& e) { return e.substr(e.find(": ") + 2); };
      EXPECT_EQ(reason(compact.error()), reason(general.error())) << line;
    }
  }
  EXPECT_GT(ok, 1000u);
  EXPECT_GT(bad, 1000u);
}

TEST(JsonLineParser, OverlongLinesAreRejectedBeforeParsing) {
  JsonLineParser p(Fields{"s"}, {.maxLineLength = 16});
  Values v;
  EXPECT_FALSE(p.parse(R"({"s":"0123456789abc"})", v));
  EXPECT_NE(p.error().find("longer than maxLineLength 16"), std::string::npos) << p.error();
  EXPECT_TRUE(p.parse(R"({"s":"0123456"})", v));
}

TEST(JsonLineParser, DuplicateFieldDeclarationsAreRejected) {
  EXPECT_THROW(JsonLineParser(Fields{"a", "b", "a"}), std::invalid_argument);
}

TEST(JsonLineParser, WriterOutputParsesBackToTheSameValues) {
  const Fields f{FieldSpec{"s", Type::String}, FieldSpec{"i", Type::Int64}, FieldSpec{"d", Type::Double},
                 FieldSpec{"b", Type::Bool}, FieldSpec{"t", Type::Timestamp}, FieldSpec{"z", Type::Any}};
  std::mt19937_64 rng(3);
  JsonLineParser p(f, {.missing = JsonLineParser::MissingField::Error});
  for (int i = 0; i < 2000; ++i) {
    std::string s;
    for (int k = rng() % 20; k > 0; --k) s += static_cast<char>(rng() % 256);
    Values in{s, static_cast<int64_t>(rng()), std::bit_cast<double>(rng() >> 2),
              static_cast<bool>(rng() & 1), Timestamp{static_cast<int64_t>(rng() >> 1)}, std::monostate{}};
    std::string line;
    appendJsonObject(line, f, in);
    Values out;
    ASSERT_TRUE(p.parse(line, out)) << line << ": " << p.error();
    ASSERT_EQ(out, in) << line;
  }
  std::string bytes;
  appendJsonValue(bytes, Bytes{"hello"});
  EXPECT_EQ(bytes, "\"aGVsbG8=\"");
  std::string nan;
  appendJsonValue(nan, std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(nan, "null");
}

// Found by tests/fuzz/json_line_fuzz.cpp: an integral double was written in its shortest form
// ("3", "170000050200000"), which an `any` field reads back as an int64.
TEST(JsonLineParser, AnIntegralDoubleWrittenOutReadsBackAsADoubleIntoAnAnyField) {
  const Fields f{FieldSpec{"z", Type::Any}};
  JsonLineParser p(f);
  for (double d : {3.0, -1.0, 0.0, 1.700000502e14, 1e22, 0.5}) {
    std::string line;
    appendJsonObject(line, f, Values{d});
    Values out;
    ASSERT_TRUE(p.parse(line, out)) << line << ": " << p.error();
    ASSERT_EQ(out, Values{d}) << line;
    EXPECT_TRUE(std::holds_alternative<double>(out[0])) << line;
  }
  std::string three;
  appendJsonValue(three, 3.0);
  EXPECT_EQ(three, "3.0");
}

TEST(JsonLineParser, RandomBytesAndTruncationsNeverCrashAndGiveAnErrorOrAValidParse) {
  JsonLineParser p(kAd);
  JsonLineParser any(Fields{"user_id", "n", "price"});
  std::mt19937_64 rng(12345);
  const std::string good =
      R"({"user_id":"u\u00e91","ad_id":"a2","event_type":"view","event_time":17,"price":2.5,"n":-4,"ok":false})";
  const std::string alphabet = "{}[]\":,.-+eE0123456789tfnrulasx\\ \t\x01\xff";
  size_t ok = 0, bad = 0;
  Values v;
  auto check = [&](JsonLineParser& parser, const std::string& line) {
    if (parser.parse(line, v)) {
      ++ok;
      ASSERT_EQ(v.size(), parser.fields().size());
      ASSERT_EQ(parser.fields().mismatch(v), "") << line;
    } else {
      ++bad;
      ASSERT_FALSE(parser.error().empty());
      ASSERT_LE(parser.errorPosition(), line.size()) << line;
    }
  };
  for (size_t cut = 0; cut <= good.size(); ++cut) check(p, good.substr(0, cut));
  for (int i = 0; i < 30000; ++i) {
    std::string line;
    if (i % 3 == 0) {
      for (int k = rng() % 64; k > 0; --k) line += static_cast<char>(rng() % 256);
    } else if (i % 3 == 1) {
      for (int k = rng() % 64; k > 0; --k) line += alphabet[rng() % alphabet.size()];
    } else {
      line = good;  // mutate a valid line in a few places
      for (int k = 1 + rng() % 3; k > 0; --k) line[rng() % line.size()] = alphabet[rng() % alphabet.size()];
    }
    check(p, line);
    check(any, line);
  }
  EXPECT_GT(bad, 0u);
  EXPECT_GT(ok, 0u);
}

}  // namespace
}  // namespace gale
