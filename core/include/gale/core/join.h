// Stream-static join (Spark's stream-static join, YSB's ad -> campaign lookup): every tuple looks
// its key up in an immutable table shared by all tasks. Stateless, so it behaves the same in both
// modes and needs no watermark.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

// The static table's hash: in-process only (never sent or stored), so strings take XXH3, a few
// times cheaper than hashValue's byte-wise FNV on 36-byte ids; other values hash as hashValue.
struct ValueHash {
  size_t operator()(const Value& v) const;
};

// key -> the row's other columns, in the order of `columns`.
class StaticTable {
 public:
  explicit StaticTable(Fields columns) : columns_(std::move(columns)) {}
  // Not copyable: the Int64 index points at the rows of the map it was built over (a copy's
  // lookups would read the original's rows). Moves keep the map's nodes, so they are safe.
  StaticTable(const StaticTable&) = delete;
  StaticTable& operator=(const StaticTable&) = delete;
  StaticTable(StaticTable&&) = default;
  StaticTable& operator=(StaticTable&&) = default;
  // Throws std::invalid_argument if the row does not fit the columns or the key is already there.
  void add(Value key, Values row);
  const Values* find(const Value& key) const {
    if (const int64_t* k = std::get_if<int64_t>(&key)) return findInt(*k);
    return findOther(key);
  }
  const Fields& columns() const { return columns_; }
  size_t size() const { return rows_.size(); }

 private:
  // Every Int64 key is also in a flat index (open addressing, linear probing, at most half
  // full, Fibonacci hashing): a typed join's lookup (YSB's integer ad ids) is a multiply and a
  // compare or two, where the map's was a variant hash, a modulo and a variant compare (~230
  // instructions a lookup, ~75 per typed YSB event).
  struct IntSlot {
    int64_t key = 0;
    const Values* row = nullptr;  // null: an empty slot
  };
  const Values* findInt(int64_t key) const {
    if (ints_.empty()) return nullptr;
    for (size_t i = intSlot(key);; i = (i + 1) & (ints_.size() - 1)) {
      const IntSlot& s = ints_[i];
      if (!s.row) return nullptr;
      if (s.key == key) return s.row;
    }
  }
  size_t intSlot(int64_t key) const { return slotOf(key, intShift_); }
  static size_t slotOf(int64_t key, int shift) {
    return static_cast<size_t>((static_cast<uint64_t>(key) * 0x9E3779B97F4A7C15ULL) >> shift);
  }
  static void place(std::vector<IntSlot>& slots, int shift, IntSlot slot);
  const Values* findOther(const Value& key) const;
  void growIntIndex();

  Fields columns_;
  std::unordered_map<Value, Values, ValueHash> rows_;  // owns the rows (nodes: stable addresses)
  std::vector<IntSlot> ints_;                          // a power of two in size, or empty
  size_t intCount_ = 0;
  int intShift_ = 64;
};

// Inner and LeftOuter for both joins; RightOuter, FullOuter and LeftSemi for stream-stream joins.
enum class JoinType { Inner, LeftOuter, RightOuter, FullOuter, LeftSemi };
const char* joinTypeName(JoinType t);

class StaticJoin final : public Operator {
 public:
  // Output: the `keep` fields of the input (by name), then the table's columns. An inner join
  // drops tuples whose key is not in the table (counted in unmatched()); a left outer join emits
  // them with nulls.
  StaticJoin(std::shared_ptr<const StaticTable> table, std::string keyField, Fields keep,
             JoinType type = JoinType::Inner);

  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  uint64_t unmatched() const { return unmatched_; }

 private:
  std::shared_ptr<const StaticTable> table_;
  std::string keyField_;
  Fields keep_;
  JoinType type_;
  uint64_t unmatched_ = 0;
  // Input field positions, resolved on the first tuple of each schema.
  SchemaPtr resolvedFor_;  // held: a freed schema's address reused cannot match
  int keyIndex_ = -1;
  std::vector<int> keepIndex_;
  Values out_;  // the row being emitted, lent downstream and reused
};

}  // namespace gale
