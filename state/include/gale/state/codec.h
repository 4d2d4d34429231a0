// Values of keyed states are bytes; these helpers store int64 and double in a fixed 8-byte
// little-endian form and build the common updates (add a delta, set a value), plus a typed view
// over a KeyedState so callers need not touch bytes.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gale/state/state_store.h"

namespace gale {

// Codec<T>: encode(T) -> bytes and decode(bytes) -> T (StateError on a malformed value).
template <class T>
struct Codec;

namespace state_detail {
[[noreturn]] void throwBadValue(const char* type, size_t size);

template <class T>
struct Fixed8 {
  static_assert(sizeof(T) == 8);
  static std::string encode(T v) {
    uint64_t u = std::bit_cast<uint64_t>(v);
    std::string out(8, '\0');
    for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(u >> (8 * i));
    return out;
  }
  static T decode(std::string_view bytes, const char* type) {
    if (bytes.size() != 8) throwBadValue(type, bytes.size());
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u |= uint64_t{static_cast<uint8_t>(bytes[i])} << (8 * i);
    return std::bit_cast<T>(u);
  }
};
}  // namespace state_detail

template <>
struct Codec<int64_t> {
  static std::string encode(int64_t v) { return state_detail::Fixed8<int64_t>::encode(v); }
  static int64_t decode(std::string_view b) {
    return state_detail::Fixed8<int64_t>::decode(b, "int64");
  }
};

template <>
struct Codec<double> {
  static std::string encode(double v) { return state_detail::Fixed8<double>::encode(v); }
  static double decode(std::string_view b) {
    return state_detail::Fixed8<double>::decode(b, "double");
  }
};

template <>
struct Codec<std::string> {
  static std::string encode(std::string v) { return v; }
  static std::string decode(std::string_view b) { return std::string(b); }
};

// An Update from a typed function of the old value (nullopt = absent); returning nullopt deletes.
template <class T>
Update typedUpdate(std::function<std::optional<T>(std::optional<T>)> f) {
  return [f = std::move(f)](std::optional<std::string_view> old) -> std::optional<std::string> {
    std::optional<T> in;
    if (old) in = Codec<T>::decode(*old);
    std::optional<T> out = f(std::move(in));
    if (!out) return std::nullopt;
    return Codec<T>::encode(std::move(*out));
  };
}

// old + delta (absent counts as 0).
inline Update addInt64(int64_t delta) {
  return typedUpdate<int64_t>([delta](std::optional<int64_t> old) -> std::optional<int64_t> {
    return old.value_or(0) + delta;
  });
}
inline Update addDouble(double delta) {
  return typedUpdate<double>([delta](std::optional<double> old) -> std::optional<double> {
    return old.value_or(0.0) + delta;
  });
}
// Replaces the value, whatever it was.
inline Update setValue(std::string value) {
  return [value = std::move(value)](std::optional<std::string_view>) -> std::optional<std::string> {
    return value;
  };
}

// A typed read view of a KeyedState whose values are Codec<T> encoded.
template <class T>
class TypedState {
 public:
  explicit TypedState(KeyedState& state) : state_(state) {}
  KeyedState& raw() const { return state_; }
  std::optional<T> get(std::string_view key) const {
    auto v = state_.get(key);
    if (!v) return std::nullopt;
    return Codec<T>::decode(*v);
  }
  std::vector<std::optional<T>> multiGet(const std::vector<std::string>& keys) const {
    std::vector<std::optional<T>> out;
    for (auto& v : state_.multiGet(keys)) {
      if (v) out.emplace_back(Codec<T>::decode(*v));
      else out.emplace_back(std::nullopt);
    }
    return out;
  }

 private:
  KeyedState& state_;
};

}  // namespace gale
