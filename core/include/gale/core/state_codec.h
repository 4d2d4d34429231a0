// The compact binary encoding of operator state (snapshot()/restore()). Every read is
// length-checked: corrupt or truncated bytes throw SnapshotError naming what was being read and
// at which byte, never read past the end and never yield half-restored state silently.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "gale/core/value.h"

namespace gale {

class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class StateWriter {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(uint64_t v);
  void svarint(int64_t v) { varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void f64(double v);
  void str(std::string_view s);
  void value(const Value& v);
  void values(const Values& vs);
  // A 4-byte tag naming what follows, checked by StateReader::header.
  void header(std::string_view magic, uint8_t version);
  std::string take() { return std::move(out_); }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

class StateReader {
 public:
  // `what` names the owner in error messages, e.g. "window operator snapshot".
  StateReader(std::string_view bytes, std::string what) : in_(bytes), what_(std::move(what)) {}
  uint8_t u8(const char* field);
  uint64_t varint(const char* field);
  int64_t svarint(const char* field) {
    uint64_t u = varint(field);
    return static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  double f64(const char* field);
  std::string str(const char* field);
  Value value(const char* field);
  Values values(const char* field);
  // A count of elements that each take at least `minBytes` bytes: rejects counts the remaining
  // bytes cannot hold, so a corrupt count cannot make restore() allocate gigabytes.
  uint64_t count(const char* field, size_t minBytes = 1);
  void header(std::string_view magic, uint8_t version);
  // Accepts versions oldest..newest (a format that grew) and returns the one read.
  uint8_t header(std::string_view magic, uint8_t oldest, uint8_t newest);
  bool atEnd() const { return pos_ == in_.size(); }
  // Throws unless every byte was consumed (trailing garbage is corruption too).
  void expectEnd();
  [[noreturn]] void fail(const std::string& why) const;

 private:
  void need(size_t n, const char* field);
  std::string_view in_;
  size_t pos_ = 0;
  std::string what_;
};

// Values as bytes (used for the late stream's payload, so a late tuple keeps all its fields).
std::string encodeValues(const Values& values);
Values decodeValues(std::string_view bytes);

}  // namespace gale
