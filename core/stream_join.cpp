#include "gale/core/stream_join.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "gale/core/state_codec.h"

namespace gale {

namespace {
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();
constexpr int kLeft = 0, kRight = 1;
const char* sideName(int s) { return s == kLeft ? "left" : "right"; }

int64_t saturatingAdd(int64_t a, int64_t b) {
  if (b > 0 && a > kNever - b) return kNever;
  if (b < 0 && a < std::numeric_limits<int64_t>::min() - b) return std::numeric_limits<int64_t>::min();
  return a + b;
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }
}  // namespace

JoinTimeCondition between(Duration lower, Duration upper) {
  return {JoinTimeCondition::Kind::Range, lower.count(), upper.count(), 0};
}

JoinTimeCondition sameTumblingWindow(Duration size) {
  return {JoinTimeCondition::Kind::TumblingWindow, 0, 0, size.count()};
}

StreamJoin::StreamJoin(JoinSide left, JoinSide right, JoinType type, JoinTimeCondition time)
    : side_{std::move(left), std::move(right)}, type_(type), time_(time) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument(std::string("stream join (") + joinTypeName(type_) + "): " + why);
  };
  if (side_[0].input.empty() || side_[1].input.empty()) bad("name both inputs");
  if (side_[0].input == side_[1].input) {
    bad("both sides read '" + side_[0].input + "'; a self-join needs two upstream components");
  }
  if (side_[0].keys.empty() || side_[0].keys.size() != side_[1].keys.size()) {
    bad("give the same number (at least one) of key fields on each side");
  }
  const bool timed = time_.kind != JoinTimeCondition::Kind::None;
  for (int s : {kLeft, kRight}) {
    const JoinSide& js = side_[s];
    for (const auto& k : js.keys) {
      int i = js.fields.indexOf(k);
      if (i < 0) bad(std::string(sideName(s)) + " key '" + k + "' is not a field of '" + js.input +
                     "' " + js.fields.toString());
      keyIdx_[s].push_back(i);
    }
    if (!js.eventTime.empty()) {
      timeIdx_[s] = js.fields.indexOf(js.eventTime);
      if (timeIdx_[s] < 0) {
        bad(std::string(sideName(s)) + " event-time field '" + js.eventTime + "' is not a field of '" +
            js.input + "' " + js.fields.toString());
      }
    } else if (timed) {
      bad("the time condition needs the " + std::string(sideName(s)) +
          " side's event-time field (JoinSide::eventTime)");
    }
  }
  if (!timed && type_ != JoinType::Inner) {
    bad("without a time condition no row can ever be known to have no match, so unmatched rows "
        "would never be emitted and state would grow for ever; add one, e.g. between(-5s, 5s) or "
        "sameTumblingWindow(1min), and a watermark on the inputs");
  }
  if (time_.kind == JoinTimeCondition::Kind::Range && time_.lower > time_.upper) {
    bad("between(lower, upper) needs lower <= upper, got " + std::to_string(time_.lower) + " > " +
        std::to_string(time_.upper) + " µs");
  }
  if (time_.lowerExclusive || time_.upperExclusive) {
    if (time_.kind != JoinTimeCondition::Kind::Range) {
      bad("exclusive bounds belong to a range: between(lower, upper).lowerBoundExclusive()");
    }
    if (time_.lower == time_.upper) {
      bad("between(x, x) with an exclusive bound matches nothing; make both bounds inclusive");
    }
  }
  if (time_.kind == JoinTimeCondition::Kind::TumblingWindow && time_.size <= 0) {
    bad("the window size must be > 0");
  }
}

void StreamJoin::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> specs = side_[kLeft].fields.specs();
  if (type_ != JoinType::LeftSemi) {
    for (FieldSpec f : side_[kRight].fields.specs()) {
      if (side_[kLeft].fields.contains(f.name)) f.name = side_[kRight].input + "_" + f.name;
      specs.push_back(std::move(f));
    }
  }
  d.declare(Fields(std::move(specs)));
  d.declareStream("late", Fields({FieldSpec{"reason", Type::String},
                                  FieldSpec{"event_time", Type::Timestamp},
                                  FieldSpec{"watermark", Type::Timestamp},
                                  FieldSpec{"values", Type::Bytes}}));
}

std::unique_ptr<Operator> StreamJoin::clone() const {
  return std::make_unique<StreamJoin>(side_[kLeft], side_[kRight], type_, time_);
}

std::string StreamJoin::checkPlacement(const std::vector<std::string>& inputs,
                                       bool everySpoutUpstreamHasAWatermark) const {
  for (int s : {kLeft, kRight}) {
    if (std::find(inputs.begin(), inputs.end(), side_[s].input) == inputs.end()) {
      return std::string("the join's ") + sideName(s) + " input '" + side_[s].input +
             "' is not among the bolt's inputs; subscribe to it (e.g. fieldsGrouping(\"" +
             side_[s].input + "\", keys))";
    }
  }
  for (const auto& in : inputs) {
    if (in != side_[kLeft].input && in != side_[kRight].input) {
      return "the bolt also reads '" + in + "', which is neither side of the join";
    }
  }
  if (type_ != JoinType::Inner && !everySpoutUpstreamHasAWatermark) {
    return std::string("a ") + joinTypeName(type_) + " join emits a row's result only when the "
           "watermark passes the end of its range, but a spout upstream declares no watermark: "
           "add .withWatermark(field, delay) to it";
  }
  return {};
}

int64_t StreamJoin::expiryOf(int side, int64_t t) const {
  switch (time_.kind) {
    case JoinTimeCondition::Kind::None: return kNever;
    case JoinTimeCondition::Kind::Range:
      return side == kLeft ? saturatingAdd(t, time_.upper) : saturatingAdd(t, -time_.lower);
    case JoinTimeCondition::Kind::TumblingWindow:
      return saturatingAdd(saturatingAdd(floorDiv(t, time_.size) * time_.size, time_.size), -1);
  }
  return kNever;
}

bool StreamJoin::matches(int64_t l, int64_t r) const {
  switch (time_.kind) {
    case JoinTimeCondition::Kind::None: return true;
    case JoinTimeCondition::Kind::Range: {
      const int64_t lo = saturatingAdd(l, time_.lower), hi = saturatingAdd(l, time_.upper);
      return (time_.lowerExclusive ? lo < r : lo <= r) && (time_.upperExclusive ? r < hi : r <= hi);
    }
    case JoinTimeCondition::Kind::TumblingWindow:
      return floorDiv(l, time_.size) == floorDiv(r, time_.size);
  }
  return false;
}

bool StreamJoin::outer(int side) const {
  return type_ == JoinType::FullOuter || (side == kLeft && type_ == JoinType::LeftOuter) ||
         (side == kRight && type_ == JoinType::RightOuter);
}

void StreamJoin::emitPair(const Values& left, const Values& right, Emitter& out) const {
  Values v;
  v.reserve(left.size() + right.size());
  v.insert(v.end(), left.begin(), left.end());
  if (type_ != JoinType::LeftSemi) v.insert(v.end(), right.begin(), right.end());
  out.emit(std::move(v));
}

void StreamJoin::store(int side, std::string key, Row row) {
  int64_t expiry = expiryOf(side, row.t);
  if (expiry != kNever) sides_[side].byExpiry.emplace(expiry, std::make_pair(key, row.id));
  auto bucket = sides_[side].byKey.try_emplace(std::move(key)).first;
  if (tracking_) stored(side, *bucket, row.id);
  bucket->second.push_back(std::move(row));
  ++sides_[side].rows;
}

void StreamJoin::onTuple(const Tuple& t, Emitter& out) {
  const std::string& from = t.schema()->component;
  int s;
  if (from == side_[kLeft].input) s = kLeft;
  else if (from == side_[kRight].input) s = kRight;
  else throw std::invalid_argument("stream join: a tuple from '" + from + "', which is neither side");
  const Values& v = t.values();
  int64_t ts = 0;
  if (timeIdx_[s] >= 0) {
    const Value& x = v.at(static_cast<size_t>(timeIdx_[s]));
    if (auto p = std::get_if<Timestamp>(&x)) ts = p->micros;
    else if (auto q = std::get_if<int64_t>(&x)) ts = *q;
    else throw std::invalid_argument("stream join: " + std::string(sideName(s)) + " event-time field '" +
                                     side_[s].eventTime + "' is not a timestamp");
    if (time_.kind != JoinTimeCondition::Kind::None && wm_ != kNoWatermark && ts <= wm_.micros) {
      ++late_;
      out.emit("late", Values{std::string("stream join: ") + sideName(s) +
                                  " row at or behind the watermark",
                              Timestamp{ts}, wm_, Bytes{encodeValues(v)}});
      return;
    }
  }
  Values key;
  for (int i : keyIdx_[s]) key.push_back(v.at(static_cast<size_t>(i)));
  // A null key matches nothing (SQL's rule), but an outer join still emits the row.
  bool nullKey = std::any_of(key.begin(), key.end(),
                             [](const Value& x) { return typeOf(x) == Type::Null; });
  std::string k = encodeValues(key);
  bool matched = false;
  const int o = 1 - s;
  if (!nullKey) {
    auto it = sides_[o].byKey.find(k);
    if (it != sides_[o].byKey.end()) {
      for (Row& other : it->second) {
        if (!(s == kLeft ? matches(ts, other.t) : matches(other.t, ts))) continue;
        if (type_ == JoinType::LeftSemi) {
          if (s == kLeft) {
            if (!matched) emitPair(v, {}, out);
          } else if (!other.matched) {
            emitPair(other.values, {}, out);
          }
        } else {
          if (s == kLeft) emitPair(v, other.values, out);
          else emitPair(other.values, v, out);
        }
        matched = true;
        if (!other.matched) {
          other.matched = true;
          // Only outer and semi joins read the flag, so only they rewrite the row's entry.
          if (tracking_ && type_ != JoinType::Inner) changed(other.id);
        }
      }
    }
  }
  if (type_ == JoinType::LeftSemi && s == kLeft && matched) return;  // emitted once, done
  store(s, std::move(k), Row{nextId_++, ts, v, matched});
}

void StreamJoin::onWatermark(Timestamp watermark, Emitter& out) {
  if (watermark <= wm_) return;
  wm_ = watermark;
  for (int s : {kLeft, kRight}) {
    Side& side = sides_[s];
    auto end = side.byExpiry.upper_bound(wm_.micros);
    for (auto it = side.byExpiry.begin(); it != end; ++it) {
      auto bucket = side.byKey.find(it->second.first);
      if (bucket == side.byKey.end()) continue;
      auto& rows = bucket->second;
      auto r = std::find_if(rows.begin(), rows.end(),
                            [&](const Row& x) { return x.id == it->second.second; });
      if (r == rows.end()) continue;
      if (!r->matched && outer(s)) {
        Values nulls(side_[1 - s].fields.size());
        if (s == kLeft) emitPair(r->values, nulls, out);
        else emitPair(nulls, r->values, out);
      }
      if (tracking_) gone(r->id);
      rows.erase(r);
      --side.rows;
      if (rows.empty()) side.byKey.erase(bucket);
    }
    side.byExpiry.erase(side.byExpiry.begin(), end);
  }
}

std::string StreamJoin::snapshot() const {
  StateWriter w;
  w.header("SJON", 1);
  w.svarint(wm_.micros);
  w.varint(late_);
  for (int s : {kLeft, kRight}) {
    w.varint(sides_[s].rows);
    for (const auto& [key, rows] : sides_[s].byKey) {
      for (const Row& r : rows) {
        w.str(key);
        w.svarint(r.t);
        w.values(r.values);
        w.u8(r.matched ? 1 : 0);
      }
    }
  }
  return w.take();
}

namespace {
// Entry keys are entry numbers, big-endian, so the store's key order is the rows' order.
std::string entryKey(uint64_t entry) {
  std::string k(8, '\0');
  for (int i = 7; i >= 0; --i, entry >>= 8) k[i] = static_cast<char>(entry & 0xff);
  return k;
}
}  // namespace

void StreamJoin::stored(int side, const Bucket& bucket, uint64_t id) {
  // Ids only grow, so an entry's rows stay in id order.
  entries_[id / kRowsPerEntry].push_back(Loc{id, &bucket, static_cast<uint8_t>(side)});
  changed(id);
}

void StreamJoin::gone(uint64_t id) {
  std::vector<Loc>& locs = entries_[id / kRowsPerEntry];
  auto loc = std::lower_bound(locs.begin(), locs.end(), id,
                              [](const Loc& l, uint64_t x) { return l.id < x; });
  if (loc != locs.end() && loc->id == id) loc->bucket = nullptr;  // dropped at the next take
  changed(id);
}

void StreamJoin::trackChanges() {
  tracking_ = true;
  entries_.clear();
  dirty_.clear();
  for (int s : {kLeft, kRight})
    for (const Bucket& bucket : sides_[s].byKey)
      for (const Row& row : bucket.second)
        entries_[row.id / kRowsPerEntry].push_back(Loc{row.id, &bucket, static_cast<uint8_t>(s)});
  for (auto& [entry, locs] : entries_)
    std::sort(locs.begin(), locs.end(), [](const Loc& a, const Loc& b) { return a.id < b.id; });
}

// The head: "SJOI" v1, watermark, late count, next row id.
std::string StreamJoin::snapshotHead() const {
  StateWriter w;
  w.header("SJOI", 1);
  w.svarint(wm_.micros);
  w.varint(late_);
  w.varint(nextId_);
  return w.take();
}

// An entry: its row count, then per row its id, side, key, event time, values and matched flag.
IncrementalState::Changes StreamJoin::takeChanges() {
  Changes out;
  for (uint64_t entry : dirty_) {
    std::optional<std::string>& bytes = out[entryKey(entry)];
    auto it = entries_.find(entry);
    if (it == entries_.end()) continue;
    std::vector<Loc>& locs = it->second;
    std::erase_if(locs, [](const Loc& l) { return l.bucket == nullptr; });
    if (locs.empty()) {
      entries_.erase(it);  // every row of it is gone: the entry is erased
      continue;
    }
    StateWriter w;
    w.varint(locs.size());
    for (const Loc& l : locs) {
      const std::vector<Row>& rows = l.bucket->second;
      auto row = std::lower_bound(rows.begin(), rows.end(), l.id,
                                  [](const Row& r, uint64_t x) { return r.id < x; });
      if (row == rows.end() || row->id != l.id) {
        throw std::logic_error("stream join: a stored row is lost");
      }
      w.varint(l.id);
      w.u8(l.side);
      w.str(l.bucket->first);
      w.svarint(row->t);
      w.values(row->values);
      w.u8(row->matched ? 1 : 0);
    }
    bytes = w.take();
  }
  dirty_.clear();
  return out;
}

void StreamJoin::restoreIncremental(
    std::string_view head, const std::vector<std::pair<std::string, std::string>>& entries) {
  if (head.substr(0, 4) == "SJON") {
    // A whole snapshot (written before the join was incremental): nothing is stored as entries
    // yet, so every entry is a change for the next commit.
    if (!entries.empty()) {
      throw SnapshotError("stream join snapshot is corrupt: a whole snapshot and " +
                          std::to_string(entries.size()) + " row entries beside it");
    }
    restore(head);
    trackChanges();
    for (const auto& [entry, locs] : entries_) dirty_.insert(entry);
    return;
  }
  StateReader r(head, "stream join snapshot head");
  r.header("SJOI", 1);
  Timestamp wm{r.svarint("watermark")};
  uint64_t late = r.varint("late rows");
  uint64_t nextId = r.varint("next row id");
  r.expectEnd();
  StreamJoin fresh(side_[kLeft], side_[kRight], type_, time_);
  uint64_t minId = 0;  // entries come in key order: ids increase
  for (const auto& [k, bytes] : entries) {
    StateReader e(bytes, "stream join row entry");
    if (k.size() != 8) e.fail("its key is not an entry number");
    uint64_t entry = 0;
    for (unsigned char c : k) entry = entry << 8 | c;
    for (uint64_t n = e.count("rows", 5); n > 0; --n) {
      uint64_t id = e.varint("row id");
      if (id < minId || id >= nextId || id / kRowsPerEntry != entry) {
        e.fail("row id " + std::to_string(id) + " out of order");
      }
      minId = id + 1;
      uint8_t side = e.u8("side");
      if (side > kRight) e.fail("side " + std::to_string(side));
      std::string key = e.str("key");
      int64_t t = e.svarint("event time");
      Values v = e.values("row");
      if (v.size() != side_[side].fields.size()) e.fail("a stored row does not fit its side");
      bool matched = e.u8("matched") != 0;
      fresh.store(side, std::move(key), Row{id, t, std::move(v), matched});
    }
    e.expectEnd();
  }
  sides_[kLeft] = std::move(fresh.sides_[kLeft]);
  sides_[kRight] = std::move(fresh.sides_[kRight]);
  nextId_ = nextId;
  wm_ = wm;
  late_ = late;
  trackChanges();
}

void StreamJoin::restore(std::string_view snapshot) {
  StateReader r(snapshot, "stream join snapshot");
  r.header("SJON", 1);
  Timestamp wm{r.svarint("watermark")};
  uint64_t late = r.varint("late rows");
  StreamJoin fresh(side_[kLeft], side_[kRight], type_, time_);
  for (int s : {kLeft, kRight}) {
    for (uint64_t n = r.count("rows", 4); n > 0; --n) {
      std::string key = r.str("key");
      int64_t t = r.svarint("event time");
      Values v = r.values("row");
      if (v.size() != side_[s].fields.size()) r.fail("a stored row does not fit its side's fields");
      bool matched = r.u8("matched") != 0;
      fresh.store(s, std::move(key), Row{fresh.nextId_++, t, std::move(v), matched});
    }
  }
  r.expectEnd();
  sides_[kLeft] = std::move(fresh.sides_[kLeft]);
  sides_[kRight] = std::move(fresh.sides_[kRight]);
  nextId_ = fresh.nextId_;
  wm_ = wm;
  late_ = late;
  // Whole-snapshot restores are continuous mode's; incremental tracking starts again only with
  // trackChanges() or restoreIncremental().
  tracking_ = false;
  entries_.clear();
  dirty_.clear();
}

}  // namespace gale
