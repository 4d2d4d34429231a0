#include "gale/core/state_codec.h"

#include <cstring>

namespace gale {

void StateWriter::varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void StateWriter::f64(double v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out_.append(b, 8);
}

void StateWriter::str(std::string_view s) {
  varint(s.size());
  out_.append(s.data(), s.size());
}

void StateWriter::value(const Value& v) {
  u8(static_cast<uint8_t>(v.index()));
  switch (typeOf(v)) {
    case Type::Null: break;
    case Type::Int64: svarint(std::get<int64_t>(v)); break;
    case Type::Double: f64(std::get<double>(v)); break;
    case Type::Bool: u8(std::get<bool>(v) ? 1 : 0); break;
    case Type::String: str(std::get<std::string>(v)); break;
    case Type::Bytes: str(std::get<Bytes>(v).data); break;
    case Type::Timestamp: svarint(std::get<Timestamp>(v).micros); break;
    default: break;
  }
}

void StateWriter::values(const Values& vs) {
  varint(vs.size());
  for (const auto& v : vs) value(v);
}

void StateWriter::header(std::string_view magic, uint8_t version) {
  out_.append(magic.data(), magic.size());
  u8(version);
}

void StateReader::fail(const std::string& why) const {
  throw SnapshotError(what_ + " is corrupt: " + why + " (at byte " + std::to_string(pos_) + " of " +
                      std::to_string(in_.size()) +
                      "); restore only bytes that snapshot() of the same operator configuration "
                      "produced");
}

void StateReader::need(size_t n, const char* field) {
  if (in_.size() - pos_ < n) {
    fail(std::string("truncated while reading ") + field + " (need " + std::to_string(n) +
         " bytes, " + std::to_string(in_.size() - pos_) + " left)");
  }
}

uint8_t StateReader::u8(const char* field) {
  need(1, field);
  return static_cast<uint8_t>(in_[pos_++]);
}

uint64_t StateReader::varint(const char* field) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = u8(field);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  fail(std::string("varint too long in ") + field);
}

double StateReader::f64(const char* field) {
  need(8, field);
  double v;
  std::memcpy(&v, in_.data() + pos_, 8);
  pos_ += 8;
  return v;
}

std::string StateReader::str(const char* field) {
  uint64_t n = varint(field);
  need(n, field);
  std::string s(in_.substr(pos_, n));
  pos_ += n;
  return s;
}

Value StateReader::value(const char* field) {
  uint8_t tag = u8(field);
  switch (static_cast<Type>(tag)) {
    case Type::Null: return std::monostate{};
    case Type::Int64: return svarint(field);
    case Type::Double: return f64(field);
    case Type::Bool: {
      uint8_t b = u8(field);
      if (b > 1) fail(std::string("bad bool in ") + field);
      return b == 1;
    }
    case Type::String: return str(field);
    case Type::Bytes: return Bytes{str(field)};
    case Type::Timestamp: return Timestamp{svarint(field)};
    default: fail(std::string("unknown value type tag ") + std::to_string(tag) + " in " + field);
  }
}

Values StateReader::values(const char* field) {
  uint64_t n = count(field);
  Values vs;
  vs.reserve(n);
  for (uint64_t i = 0; i < n; ++i) vs.push_back(value(field));
  return vs;
}

uint64_t StateReader::count(const char* field, size_t minBytes) {
  uint64_t n = varint(field);
  if (minBytes == 0) minBytes = 1;
  if (n > (in_.size() - pos_) / minBytes) {
    fail(std::string("count ") + std::to_string(n) + " of " + field + " exceeds the bytes left");
  }
  return n;
}

void StateReader::header(std::string_view magic, uint8_t version) {
  header(magic, version, version);
}

uint8_t StateReader::header(std::string_view magic, uint8_t oldest, uint8_t newest) {
  need(magic.size() + 1, "header");
  if (in_.substr(pos_, magic.size()) != magic) {
    fail("header is not '" + std::string(magic) + "' (a snapshot of another operator?)");
  }
  pos_ += magic.size();
  uint8_t v = u8("version");
  if (v < oldest || v > newest) {
    fail("version " + std::to_string(v) + ", expected " +
         (oldest == newest ? std::to_string(newest)
                           : std::to_string(oldest) + " to " + std::to_string(newest)));
  }
  return v;
}

void StateReader::expectEnd() {
  if (!atEnd()) fail(std::to_string(in_.size() - pos_) + " trailing bytes");
}

std::string encodeValues(const Values& values) {
  StateWriter w;
  w.values(values);
  return w.take();
}

Values decodeValues(std::string_view bytes) {
  StateReader r(bytes, "encoded values");
  Values vs = r.values("values");
  r.expectEnd();
  return vs;
}

}  // namespace gale
