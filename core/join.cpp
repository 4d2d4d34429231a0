#include "gale/core/join.h"

#include <algorithm>
#include <bit>
#include <stdexcept>

#define XXH_INLINE_ALL  // the short-input paths inlined, no call into libxxhash
#include <xxhash.h>

namespace gale {

size_t ValueHash::operator()(const Value& v) const {
  if (const auto* s = std::get_if<std::string>(&v))
    return static_cast<size_t>(XXH3_64bits(s->data(), s->size()));
  return static_cast<size_t>(hashValue(v));
}

void StaticTable::add(Value key, Values row) {
  std::string why = columns_.mismatch(row);
  if (!why.empty()) throw std::invalid_argument("static table row for key " + toString(key) + ": " + why);
  if (rows_.contains(key))  // before the emplace, which may move the key even when it fails
    throw std::invalid_argument("static table already has a row for key " + toString(key));
  // The index grows before the row goes in: a throw (out of memory) leaves the table as it was.
  if (std::holds_alternative<int64_t>(key) && 2 * (intCount_ + 1) > ints_.size()) growIntIndex();
  auto it = rows_.emplace(std::move(key), std::move(row)).first;
  if (const int64_t* k = std::get_if<int64_t>(&it->first)) {
    place(ints_, intShift_, IntSlot{*k, &it->second});
    ++intCount_;
  }
}

void StaticTable::place(std::vector<IntSlot>& slots, int shift, IntSlot slot) {
  size_t i = slotOf(slot.key, shift);
  while (slots[i].row) i = (i + 1) & (slots.size() - 1);
  slots[i] = slot;
}

void StaticTable::growIntIndex() {
  std::vector<IntSlot> bigger(std::max<size_t>(16, 2 * ints_.size()));
  const int shift = 64 - std::countr_zero(bigger.size());
  for (const IntSlot& s : ints_)
    if (s.row) place(bigger, shift, s);
  ints_.swap(bigger);
  intShift_ = shift;
}

const Values* StaticTable::findOther(const Value& key) const {
  auto it = rows_.find(key);
  return it == rows_.end() ? nullptr : &it->second;
}

const char* joinTypeName(JoinType t) {
  switch (t) {
    case JoinType::Inner: return "Inner";
    case JoinType::LeftOuter: return "LeftOuter";
    case JoinType::RightOuter: return "RightOuter";
    case JoinType::FullOuter: return "FullOuter";
    case JoinType::LeftSemi: return "LeftSemi";
  }
  return "?";
}

StaticJoin::StaticJoin(std::shared_ptr<const StaticTable> table, std::string keyField, Fields keep,
                       JoinType type)
    : table_(std::move(table)), keyField_(std::move(keyField)), keep_(std::move(keep)), type_(type) {
  if (!table_) throw std::invalid_argument("StaticJoin: the table is null");
  if (type_ != JoinType::Inner && type_ != JoinType::LeftOuter) {
    throw std::invalid_argument(std::string("StaticJoin: a stream-static join is Inner or LeftOuter, "
                                            "not ") + joinTypeName(type_));
  }
  for (const auto& c : table_->columns().specs())
    if (keep_.contains(c.name))
      throw std::invalid_argument("StaticJoin: field '" + c.name +
                                  "' is both kept from the stream and a table column; rename one");
}

void StaticJoin::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> specs = keep_.specs();
  for (const auto& c : table_->columns().specs()) specs.push_back(c);
  d.declare(Fields(std::move(specs)));
}

std::unique_ptr<Operator> StaticJoin::clone() const {
  return std::make_unique<StaticJoin>(table_, keyField_, keep_, type_);
}

void StaticJoin::onTuple(const Tuple& t, Emitter& out) {
  if (t.schema() != resolvedFor_ || !resolvedFor_) {
    const Fields& in = t.fields();
    resolvedFor_ = nullptr;  // until resolved: a throw below must not leave half of them
    keyIndex_ = in.indexOf(keyField_);
    if (keyIndex_ < 0)
      throw std::invalid_argument("StaticJoin: input stream '" + t.sourceComponent() + ":" +
                                  t.sourceStream() + "' has no key field '" + keyField_ + "'");
    keepIndex_.clear();
    for (const auto& k : keep_.specs()) {
      int i = in.indexOf(k.name);
      if (i < 0)
        throw std::invalid_argument("StaticJoin: input stream '" + t.sourceComponent() + ":" +
                                    t.sourceStream() + "' has no field '" + k.name + "' to keep");
      keepIndex_.push_back(i);
    }
    resolvedFor_ = t.schema();
  }
  const Values* row = table_->find(t[keyIndex_]);
  if (!row) {
    ++unmatched_;
    if (type_ == JoinType::Inner) return;
  }
  // Lent (Emitter::emitBorrowed), as a parser lends its output: each value is assigned over the
  // last row's, so a string keeps its capacity and a fused next task (YSB's window) gets the
  // row without an allocation (the 36-byte campaign id was a new string per row). A list taken
  // downstream comes back empty and is filled again.
  Values& v = out_;
  const size_t nKeep = keepIndex_.size();
  v.resize(nKeep + table_->columns().size());
  for (size_t j = 0; j < nKeep; ++j) v[j] = t[keepIndex_[j]];
  if (row)
    std::copy(row->begin(), row->end(), v.begin() + static_cast<std::ptrdiff_t>(nKeep));
  else
    std::fill(v.begin() + static_cast<std::ptrdiff_t>(nKeep), v.end(), Value{});
  out.emitBorrowed(kDefaultStream, v);
}

}  // namespace gale
