// The byte layout of the records the state module stores (commit records, versioned values):
// fixed-width little-endian integers and length-prefixed strings. The reader checks every length
// against the bytes present, so a truncated or foreign record gives a StateError, never a crash.
//
// Every value gale puts into LMDB is sealed: payload, then the XXH3-64 of the payload seeded with
// the XXH3-64 of the key (8 bytes, little-endian). LMDB keeps no checksums of its own; the seal
// catches a flipped bit in a value, and (since the key seeds it) one in the key it is stored under.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "gale/state/state_store.h"

namespace gale {

// Keys may be binary: printable in messages and the CLI, escaping what is not.
inline std::string printableKey(std::string_view key) {
  std::string out;
  for (unsigned char c : key) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

inline constexpr size_t kSealBytes = 8;

inline uint64_t recordChecksum(std::string_view key, std::string_view payload) {
  XXH64_hash_t seed = XXH3_64bits(key.data(), key.size());
  return XXH3_64bits_withSeed(payload.data(), payload.size(), seed);
}

inline std::string seal(std::string_view key, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + kSealBytes);
  out.append(payload);
  uint64_t sum = recordChecksum(key, payload);
  for (size_t i = 0; i < kSealBytes; ++i) out.push_back(static_cast<char>(sum >> (8 * i)));
  return out;
}

// The payload of a sealed value, or nullopt when its checksum does not match (damage).
inline std::optional<std::string_view> unsealOrNull(std::string_view key, std::string_view stored) {
  if (stored.size() < kSealBytes) return std::nullopt;
  std::string_view payload = stored.substr(0, stored.size() - kSealBytes);
  uint64_t sum = 0;
  for (size_t i = 0; i < kSealBytes; ++i) {
    sum |= uint64_t{static_cast<uint8_t>(stored[payload.size() + i])} << (8 * i);
  }
  if (sum != recordChecksum(key, payload)) return std::nullopt;
  return payload;
}

class RecordWriter {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { fixed(v, 4); }
  void u64(uint64_t v) { fixed(v, 8); }
  void i64(int64_t v) { fixed(static_cast<uint64_t>(v), 8); }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  void raw(std::string_view s) { out_.append(s); }
  std::string take() { return std::move(out_); }

 private:
  void fixed(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  std::string out_;
};

class RecordReader {
 public:
  RecordReader(std::string_view in, std::string what) : in_(in), what_(std::move(what)) {}
  uint8_t u8() { return static_cast<uint8_t>(fixed(1)); }
  uint32_t u32() { return static_cast<uint32_t>(fixed(4)); }
  uint64_t u64() { return fixed(8); }
  int64_t i64() { return static_cast<int64_t>(fixed(8)); }
  std::string str() {
    uint32_t n = u32();
    need(n);
    std::string s(in_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  std::string_view rest() {
    std::string_view r = in_.substr(pos_);
    pos_ = in_.size();
    return r;
  }
  void expectEnd() const {
    if (pos_ != in_.size()) {
      throw StateError("malformed " + what_ + ": " + std::to_string(in_.size() - pos_) +
                       " unexpected trailing bytes");
    }
  }

 private:
  void need(size_t n) const {
    if (in_.size() - pos_ < n) {
      throw StateError("malformed " + what_ + ": truncated at byte " + std::to_string(pos_) +
                       " of " + std::to_string(in_.size()));
    }
  }
  uint64_t fixed(int n) {
    need(static_cast<size_t>(n));
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(in_[pos_ + i])} << (8 * i);
    pos_ += static_cast<size_t>(n);
    return v;
  }
  std::string_view in_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace gale
