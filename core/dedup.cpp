#include "gale/core/dedup.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include "gale/core/state_codec.h"

namespace gale {

namespace {
constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// The snapshot's bytes, from the held keys or a frozen view of them.
template <class Held>
std::string encodeSnapshot(Timestamp wm, uint64_t duplicates, uint64_t late, const Held& held) {
  StateWriter w;
  w.header("DDUP", 1);
  w.svarint(wm.micros);
  w.varint(duplicates);
  w.varint(late);
  w.varint(held.size());
  held.forEach([&](const std::string& key, int64_t expires) {
    w.str(key);
    w.svarint(expires);
  });
  return w.take();
}

// A held-keys container for encodeSnapshot: one key group's keys, or none (a head).
struct HeldList {
  std::vector<std::pair<std::string, int64_t>> keys;
  size_t size() const { return keys.size(); }
  template <class F>
  void forEach(F&& f) const {
    for (const auto& [k, e] : keys) f(k, e);
  }
};

struct Decoded {
  Timestamp wm;
  uint64_t duplicates = 0, late = 0;
  std::vector<std::pair<std::string, int64_t>> held;
};

Decoded decodeSnapshot(std::string_view snapshot) {
  StateReader r(snapshot, "deduplicate snapshot");
  r.header("DDUP", 1);
  Decoded d;
  d.wm = Timestamp{r.svarint("watermark")};
  d.duplicates = r.varint("duplicates");
  d.late = r.varint("late");
  for (uint64_t n = r.count("held keys", 2); n > 0; --n) {
    std::string key = r.str("key");
    d.held.emplace_back(std::move(key), r.svarint("expiry"));
  }
  r.expectEnd();
  return d;
}

int64_t timeOf(const Value& v, const std::string& field) {
  if (auto t = std::get_if<Timestamp>(&v)) return t->micros;
  if (auto i = std::get_if<int64_t>(&v)) return *i;
  throw std::invalid_argument("deduplicate: event-time field '" + field +
                              "' is not a timestamp or int64 in this row");
}
}  // namespace

Deduplicate::Deduplicate(Config config) : config_(std::move(config)) {
  auto bad = [](const std::string& why) { throw std::invalid_argument("deduplicate: " + why); };
  if (config_.keys.empty()) bad("no key fields given (which fields make rows duplicates?)");
  for (const auto& k : config_.keys) {
    int i = config_.input.indexOf(k);
    if (i < 0) bad("key field '" + k + "' is not in the input " + config_.input.toString());
    keyIdx_.push_back(i);
  }
  if (!config_.eventTime.empty()) {
    timeIdx_ = config_.input.indexOf(config_.eventTime);
    if (timeIdx_ < 0) {
      bad("event-time field '" + config_.eventTime + "' is not in the input " +
          config_.input.toString());
    }
  }
  if (config_.withinWatermark) {
    if (timeIdx_ < 0) {
      bad("dropDuplicatesWithinWatermark needs an event-time field and its watermark delay");
    }
    if (config_.delay.count() < 0) bad("the watermark delay must be >= 0");
    evicts_ = true;
  } else {
    evicts_ = timeIdx_ >= 0 && std::find(keyIdx_.begin(), keyIdx_.end(), timeIdx_) != keyIdx_.end();
  }
  if (config_.lateStream.empty() || config_.lateStream == kDefaultStream) {
    bad("the late stream needs a name of its own");
  }
}

void Deduplicate::declareOutputFields(OutputFieldsDeclarer& d) const {
  d.declare(config_.input);
  d.declareStream(config_.lateStream,
                  Fields({FieldSpec{"reason", Type::String}, FieldSpec{"event_time", Type::Timestamp},
                          FieldSpec{"watermark", Type::Timestamp}, FieldSpec{"values", Type::Bytes}}));
}

std::unique_ptr<Operator> Deduplicate::clone() const {
  return std::make_unique<Deduplicate>(config_);
}


void Deduplicate::onTuple(const Tuple& t, Emitter& out) {
  const Values& v = t.values();
  int64_t ts = 0;
  if (timeIdx_ >= 0) {
    ts = timeOf(v.at(static_cast<size_t>(timeIdx_)), config_.eventTime);
    if (wm_ != kNoWatermark && ts <= wm_.micros) {
      ++late_;
      out.emit(config_.lateStream,
               Values{std::string("deduplicate: event time is at or behind the watermark"),
                      Timestamp{ts}, wm_, Bytes{encodeValues(v)}});
      return;
    }
  }
  Values key;
  key.reserve(keyIdx_.size());
  for (int i : keyIdx_) key.push_back(v.at(static_cast<size_t>(i)));
  std::string k = encodeValues(key);
  int64_t expires = kNever;
  if (evicts_) {
    const int64_t delay = config_.withinWatermark ? config_.delay.count() : 0;
    expires = ts > kNever - 1 - delay ? kNever - 1 : ts + delay;
  }
  if (!held_.insert(k, expires)) {
    ++duplicates_;
    return;
  }
  if (expires != kNever) byExpiry_.emplace(expires, std::move(k));
  out.emit(v);
}

void Deduplicate::onWatermark(Timestamp watermark, Emitter&) {
  if (watermark <= wm_) return;
  wm_ = watermark;
  // A key whose expiry the watermark reached can have no on-time duplicate any more.
  auto end = byExpiry_.upper_bound(wm_.micros);
  for (auto it = byExpiry_.begin(); it != end; ++it) held_.erase(it->second);
  byExpiry_.erase(byExpiry_.begin(), end);
}

std::string Deduplicate::snapshot() const {
  return encodeSnapshot(wm_, duplicates_, late_, held_);
}

AsyncSnapshot::Write Deduplicate::snapshotAsync(uint64_t) {
  return [wm = wm_, dups = duplicates_, late = late_, view = held_.freeze()] {
    return encodeSnapshot(wm, dups, late, view);
  };
}

void Deduplicate::restore(std::string_view snapshot) {
  Decoded d = decodeSnapshot(snapshot);
  restoreHeld(d.wm, d.duplicates, d.late, std::move(d.held));
}

void Deduplicate::restoreHeld(Timestamp wm, uint64_t dups, uint64_t late,
                              std::vector<std::pair<std::string, int64_t>> keys) {
  std::unordered_map<std::string, int64_t> held;
  std::multimap<int64_t, std::string> byExpiry;
  for (auto& [key, expires] : keys) {
    if (!held.emplace(key, expires).second)
      throw SnapshotError("deduplicate snapshot: a key is held twice");
    if (expires != kNever) byExpiry.emplace(expires, std::move(key));
  }
  wm_ = wm;
  duplicates_ = dups;
  late_ = late;
  held_.clear();
  held_.reserve(held.size());
  for (auto& [key, expires] : held) held_[key] = expires;
  byExpiry_ = std::move(byExpiry);
}

KeyGroupedState::Split Deduplicate::snapshotKeyGroups(uint32_t maxParallelism) const {
  Split out;
  out.head = encodeSnapshot(wm_, duplicates_, late_, HeldList{});
  std::map<uint32_t, HeldList> groups;
  held_.forEach([&](const std::string& key, int64_t expires) {
    groups[keyGroupOf(hashKeyValues(decodeValues(key)), maxParallelism)].keys.emplace_back(key,
                                                                                          expires);
  });
  for (const auto& [g, list] : groups) out.groups.emplace(g, encodeSnapshot(wm_, 0, 0, list));
  return out;
}

void Deduplicate::restoreKeyGroups(const std::vector<Head>& heads,
                                   const std::map<uint32_t, std::string_view>& groups,
                                   uint32_t maxParallelism) {
  if (heads.empty()) throw SnapshotError("deduplicate: a key-group restore without a head");
  Timestamp wm;
  uint64_t dups = 0, late = 0;
  for (size_t i = 0; i < heads.size(); ++i) {
    Decoded h = decodeSnapshot(heads[i].bytes);
    if (i > 0 && h.wm != wm)
      throw SnapshotError("deduplicate: the tasks' watermarks differ (" +
                          std::to_string(h.wm.micros) + " and " + std::to_string(wm.micros) +
                          "): not an aligned checkpoint");
    wm = h.wm;
    if (heads[i].owner) {
      dups += h.duplicates;
      late += h.late;
    }
  }
  std::vector<std::pair<std::string, int64_t>> held;
  for (const auto& [g, bytes] : groups) {
    Decoded d = decodeSnapshot(bytes);
    for (auto& entry : d.held) {
      if (keyGroupOf(hashKeyValues(decodeValues(entry.first)), maxParallelism) != g)
        throw SnapshotError("deduplicate: key group " + std::to_string(g) +
                            " holds a key of another group");
      held.push_back(std::move(entry));
    }
  }
  restoreHeld(wm, dups, late, std::move(held));
}

Deduplicate dropDuplicates(Fields input, std::vector<std::string> keys, std::string eventTime) {
  return Deduplicate({.input = std::move(input), .keys = std::move(keys),
                      .eventTime = std::move(eventTime)});
}

Deduplicate dropDuplicatesWithinWatermark(Fields input, std::vector<std::string> keys,
                                          std::string eventTime, Duration delay) {
  return Deduplicate({.input = std::move(input), .keys = std::move(keys),
                      .eventTime = std::move(eventTime), .withinWatermark = true, .delay = delay});
}

}  // namespace gale
