// Grouping keys of the keyed operators (window, DStream, updateStateByKey): the values of the
// key fields with their hash computed once, looked up without copying a tuple's values.
#pragma once

#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "gale/core/tuple.h"
#include "gale/core/value.h"

#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL  // the short-input paths inlined, no call into libxxhash
#endif
#include <xxhash.h>

namespace gale::keyed {

struct Key {
  Values values;
  uint64_t hash = 0;
};

// A tuple's key, borrowed: no allocation on the hot path.
struct KeyView {
  const Values* src;
  const std::vector<int>* idx;
  uint64_t hash;
};

// Equality of key values with the common cases (string, int64) first.
inline bool sameValue(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (auto* x = std::get_if<std::string>(&a)) return *x == *std::get_if<std::string>(&b);
  if (auto* x = std::get_if<int64_t>(&a)) return *x == *std::get_if<int64_t>(&b);
  return a == b;
}

// One key value's hash for these in-process maps: a string through XXH3 (hashValue's byte-wise
// FNV cost ~250 instructions per 36-byte YSB campaign id, XXH3 ~40), anything else as
// hashValue. Never sent or stored (a restore hashes its keys again), so it need not equal
// hashValue, which fields grouping needs stable across programs. XXH3's output is fixed by its
// specification, so the maps below still iterate in the same order in every run and process.
inline uint64_t hashKeyValue(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return XXH3_64bits(s->data(), s->size());
  return hashValue(v);
}

inline uint64_t hashKey(const Values& src, const std::vector<int>& idx) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (int i : idx) h = (h ^ hashKeyValue(src[i])) * 0x100000001b3ULL + (h >> 29);
  return h;
}

struct KeyHash {
  using is_transparent = void;
  size_t operator()(const Key& k) const { return k.hash; }
  size_t operator()(const KeyView& k) const { return k.hash; }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(const Key& a, const Key& b) const {
    if (a.hash != b.hash || a.values.size() != b.values.size()) return false;
    for (size_t i = 0; i < a.values.size(); ++i)
      if (!sameValue(a.values[i], b.values[i])) return false;
    return true;
  }
  bool operator()(const KeyView& a, const Key& b) const {
    if (a.hash != b.hash) return false;
    for (size_t i = 0; i < a.idx->size(); ++i)
      if (!sameValue((*a.src)[(*a.idx)[i]], b.values[i])) return false;
    return true;
  }
  bool operator()(const Key& a, const KeyView& b) const { return (*this)(b, a); }
};

template <class T>
using KeyMap = std::unordered_map<Key, T, KeyHash, KeyEq>;

inline Key ownKey(const KeyView& kv) {
  Key k;
  k.hash = kv.hash;
  k.values.reserve(kv.idx->size());
  for (int i : *kv.idx) k.values.push_back((*kv.src)[i]);
  return k;
}

// A key read back from a snapshot (its values are the whole key).
inline Key keyFromValues(Values values) {
  std::vector<int> idx(values.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
  Key k;
  k.hash = hashKey(values, idx);
  k.values = std::move(values);
  return k;
}

// Positions of named fields, resolved once per input schema. Throws naming the missing field.
class FieldIndex {
 public:
  explicit FieldIndex(std::vector<std::string> names, std::string owner)
      : names_(std::move(names)), owner_(std::move(owner)) {}
  const std::vector<int>& of(const Tuple& t) {
    if (t.schema() == schema_ && schema_) return idx_;
    schema_ = nullptr;  // until resolved: a throw below must not leave another schema's positions
    idx_.clear();
    for (const auto& n : names_) {
      int i = t.fields().indexOf(n);
      if (i < 0) {
        throw std::invalid_argument(owner_ + " needs field '" + n + "' but stream '" +
                                    t.sourceComponent() + ":" + t.sourceStream() + "' has " +
                                    t.fields().toString());
      }
      idx_.push_back(i);
    }
    schema_ = t.schema();
    return idx_;
  }
  KeyView view(const Tuple& t) {
    const auto& idx = of(t);
    return KeyView{&t.values(), &idx, hashKey(t.values(), idx)};
  }

 private:
  std::vector<std::string> names_;
  std::string owner_;
  SchemaPtr schema_;  // held: a freed schema's address reused by another cannot match
  std::vector<int> idx_;
};

}  // namespace gale::keyed
