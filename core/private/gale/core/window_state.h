// The window operator's state (private to core/window*.cpp): the window store — interned keys,
// panes of partial aggregates, sessions, count windows, per-key trigger counts — and the
// declarations of the code that fills it (window_store.cpp: adding, looking up, evicting,
// snapshots) and that decides when a window fires and what it emits (window.cpp).
#pragma once

#include <algorithm>
#include <bit>
#include <deque>
#include <limits>
#include <map>
#include <vector>

#include "gale/core/keyed.h"
#include "gale/core/window.h"

namespace gale::window_detail {

using namespace keyed;
using i128 = __int128;
constexpr int64_t kMinI = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxI = std::numeric_limits<int64_t>::max();

inline int64_t clamp64(i128 v) {
  if (v < kMinI) return kMinI;
  if (v > kMaxI) return kMaxI;
  return static_cast<int64_t>(v);
}
inline i128 floorDiv(i128 a, i128 b) {
  i128 q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// The keys of the pane windows, interned to small dense ids (open addressing, linear probing):
// a tuple's key is hashed and compared once, then every pane finds the key's partials by array
// index. Keys no pane holds any more are dropped by compact(), so key churn cannot grow it.
class KeyTable {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();

  uint32_t find(const KeyView& kv) const {
    if (slots_.empty()) return kNone;
    size_t mask = slots_.size() - 1;
    for (size_t i = kv.hash & mask;; i = (i + 1) & mask) {
      const Entry& e = slots_[i];
      if (e.id == kNone) return kNone;
      if (e.hash == kv.hash && equal(e.id, kv)) return e.id;
    }
  }
  uint32_t intern(const KeyView& kv) {
    if ((keys_.size() + 1) * 2 > slots_.size()) rehash(std::max<size_t>(64, slots_.size() * 2));
    size_t mask = slots_.size() - 1;
    for (size_t i = kv.hash & mask;; i = (i + 1) & mask) {
      Entry& e = slots_[i];
      if (e.id == kNone) {
        Key k;
        k.hash = kv.hash;
        k.values.reserve(kv.idx->size());
        for (int f : *kv.idx) k.values.push_back((*kv.src)[f]);
        e.hash = kv.hash;
        e.id = static_cast<uint32_t>(keys_.size());
        first_.push_back(k.values.empty() ? Value{} : k.values[0]);
        keys_.push_back(std::move(k));
        return e.id;
      }
      if (e.hash == kv.hash && equal(e.id, kv)) return e.id;
    }
  }
  const Key& key(uint32_t id) const { return keys_[id]; }
  size_t size() const { return keys_.size(); }
  // Keeps the keys with live[id]; returns old id -> new id (kNone for dropped keys).
  std::vector<uint32_t> compact(const std::vector<bool>& live) {
    std::vector<uint32_t> remap(keys_.size(), kNone);
    std::vector<Key> kept;
    std::vector<Value> keptFirst;
    for (size_t id = 0; id < keys_.size(); ++id) {
      if (!live[id]) continue;
      remap[id] = static_cast<uint32_t>(kept.size());
      kept.push_back(std::move(keys_[id]));
      keptFirst.push_back(std::move(first_[id]));
    }
    keys_ = std::move(kept);
    first_ = std::move(keptFirst);
    rehash(std::max<size_t>(64, std::bit_ceil((keys_.size() + 1) * 2)));
    return remap;
  }

 private:
  struct Entry {
    uint64_t hash = 0;
    uint32_t id = kNone;
  };
  // The first key value is also kept in a flat array: one memory access for single-field keys.
  bool equal(uint32_t id, const KeyView& kv) const {
    const size_t n = kv.idx->size();
    if (n == 0) return true;
    if (!sameValue(first_[id], (*kv.src)[(*kv.idx)[0]])) return false;
    for (size_t i = 1; i < n; ++i)
      if (!sameValue(keys_[id].values[i], (*kv.src)[(*kv.idx)[i]])) return false;
    return true;
  }
  void rehash(size_t cap) {
    slots_.assign(cap, Entry{});
    size_t mask = cap - 1;
    for (size_t id = 0; id < keys_.size(); ++id) {
      size_t i = keys_[id].hash & mask;
      while (slots_[i].id != kNone) i = (i + 1) & mask;
      slots_[i] = Entry{keys_[id].hash, static_cast<uint32_t>(id)};
    }
  }
  std::vector<Key> keys_;
  std::vector<Value> first_;
  std::vector<Entry> slots_;
};

// Partials that can be copied: Acc is move-only, so that no hot path copies one by accident, but
// the window state is copied whole for an asynchronous snapshot (window_async.cpp), so its
// containers of partials copy each with Acc::copy().
struct Accs : std::vector<Acc> {
  using std::vector<Acc>::vector;
  Accs() = default;
  Accs(std::vector<Acc>&& v) : std::vector<Acc>(std::move(v)) {}  // NOLINT: as a vector
  Accs(const Accs& o) : std::vector<Acc>() {
    reserve(o.size());
    for (const Acc& a : o) push_back(a.copy());
  }
  Accs(Accs&&) = default;
  Accs& operator=(Accs&&) = default;
  Accs& operator=(std::vector<Acc>&& v) {
    std::vector<Acc>::operator=(std::move(v));
    return *this;
  }
  Accs& operator=(const Accs& o) {
    if (this != &o) *this = Accs(o);
    return *this;
  }
};

// The partial aggregates of one pane (a slice of event time that lies in the same set of
// windows), one slot per key present, in flat arrays.
struct Pane {
  int64_t lateAt = 0;       // at this watermark the pane's last window is final: tuples are late
  int64_t firstDoneAt = 0;  // max time of its first window: from here on, a tuple re-fires
  std::vector<uint32_t> slotOf;  // by key id: slot + 1, or 0
  std::vector<uint32_t> keyOf;   // by slot: key id
  std::vector<uint64_t> seqOf;   // by slot: sequence number of the last tuple added
  Accs accs;                     // by slot * #aggregates + aggregate
  size_t size() const { return keyOf.size(); }
};
struct Sess {
  int64_t start = 0, end = 0;
  uint64_t seq = 0, firedSeq = 0;
  Accs accs;
  int64_t counted = 0;  // Trigger::countPerKey: elements since the session's last count firing
};
// Trigger::countPerKey's state of one key in one pane window.
struct KeyCount {
  int64_t counted = 0;    // elements since the last count firing
  uint64_t firedSeq = 0;  // seq at the last count firing (its row is not dirty before a newer)
};
struct CountPane {
  int64_t start = 0, fill = 0;
  Accs accs;
};
struct CountState {
  int64_t seen = 0, lastFireEnd = 0;
  std::deque<CountPane> panes;
};

struct WindowState {
  const WindowConfig* cfg;
  // Geometry of pane windows (tumbling, sliding, global).
  bool global = false;
  int64_t S = 0, L = 0, O = 0, P = 0;

  Timestamp wm = kNoWatermark;
  uint64_t seq = 0;
  uint64_t late = 0;
  bool procFired = false;
  int64_t lastProcFire = 0;
  int64_t sinceFire = 0;

  std::map<int64_t, Pane> panes;
  KeyTable keys;
  // The two most recently used panes (bounded disorder alternates between neighbours).
  int64_t cacheIdx[2] = {0, 0};
  Pane* cachePane[2] = {nullptr, nullptr};
  size_t nA = 0;
  std::map<int64_t, uint64_t> windowFired;  // window index -> seq at its last firing
  std::vector<Values> frozen;               // complete mode: rows of finished windows
  const int64_t lateness;                   // µs; effectively infinite in complete mode
  // Micro-batch mode (between onBatchBegin and onBatchEnd): complete mode writes its table
  // once, at the batch end, instead of at each firing inside the batch.
  bool inBatch = false;
  KeyMap<std::vector<Sess>> sessions;
  KeyMap<CountState> counts;
  // Trigger::countPerKey on pane windows: window index -> key -> count.
  std::map<int64_t, KeyMap<KeyCount>> keyCounts;
  const bool perKey;

  // Field positions, resolved once per input schema.
  // Held, not a raw address: a freed schema's address reused by another cannot match it.
  SchemaPtr schema;
  std::vector<int> keyIdx, aggIdx;
  int timeIdx = -1;  // the event-time field's position; -1: none, or an extractor function
  const Value kNull{};

  // Complete mode keeps every group and accepts late rows (Spark): no window is ever evicted
  // or late before the end of time.
  static constexpr int64_t kCompleteLateness = std::numeric_limits<int64_t>::max() / 4;
  explicit WindowState(const WindowConfig* c);

  // ---- geometry ----
  int64_t paneOf(int64_t ts) const {
    if (global) return 0;
    int64_t a;
    if (!__builtin_sub_overflow(ts, O, &a)) return a / P - ((a % P != 0) && (a < 0));
    return clamp64(floorDiv(i128(ts) - O, P));
  }
  int64_t paneStart(int64_t p) const { return global ? 0 : clamp64(i128(p) * P + O); }
  i128 kLastOf(int64_t ts) const { return global ? 0 : floorDiv(i128(ts) - O, L); }
  i128 kFirstOf(int64_t ts) const { return global ? 0 : floorDiv(i128(ts) - O - S, L) + 1; }
  i128 startOf(i128 k) const { return global ? i128(kMinI) : k * L + O; }
  i128 endOf(i128 k) const { return global ? i128(kMaxI) : k * L + O + S; }
  i128 maxTsOf(i128 k) const { return endOf(k) - 1; }
  // The last window whose max time is <= w (complete at watermark w).
  i128 kReady(i128 w) const {
    if (global) return w >= i128(kMaxI) - 1 ? 0 : -1;
    return floorDiv(w - O - S + 1, L);
  }
  i128 wmNow() const { return wm == kNoWatermark ? i128(kMinI) * 4 : i128(wm.micros); }
  i128 kReadyNow() const { return wm == kNoWatermark ? i128(kMinI) * 4 : kReady(wm.micros); }
  i128 kEvictedNow() const {
    return wm == kNoWatermark ? i128(kMinI) * 4 : kReady(i128(wm.micros) - lateness);
  }

  // ---- field resolution ----
  // Per tuple: only a new schema resolves again (out of line).
  void resolve(const Tuple& t) {
    if (t.schema() != schema || !schema) resolveFields(t);
  }
  void resolveFields(const Tuple& t);
  // A tuple's event time in µs by the position resolved with the schema (by name per tuple it
  // cost ~100 instructions); a function, a missing field or a value of another type goes
  // through EventTime::of, which throws naming the field.
  int64_t eventTimeOf(const Tuple& t) const {
    const Values& vs = t.values();
    if (timeIdx >= 0 && static_cast<size_t>(timeIdx) < vs.size()) {
      if (const auto* v = std::get_if<Timestamp>(&vs[timeIdx])) return v->micros;
      if (const auto* v = std::get_if<int64_t>(&vs[timeIdx])) return *v;
    }
    return cfg->eventTime.of(t).micros;
  }

  std::vector<Acc> freshAccs() const {
    std::vector<Acc> v;
    v.reserve(cfg->aggregates.size());
    for (const auto& a : cfg->aggregates) v.push_back(a->init());
    return v;
  }
  void addTo(Acc* accs, const Tuple& t, Timestamp ts) {
    const Values& vs = t.values();
    for (size_t a = 0; a < nA; ++a) {
      int i = aggIdx[a];
      cfg->aggregates[a]->add(accs[a], i >= 0 && static_cast<size_t>(i) < vs.size() ? vs[i] : kNull,
                              ts);
    }
  }
  void mergeInto(Acc* into, const Acc* from) const {
    for (size_t a = 0; a < nA; ++a) cfg->aggregates[a]->merge(into[a], from[a]);
  }
  void mergeInto(std::vector<Acc>& into, const std::vector<Acc>& from) const {
    mergeInto(into.data(), from.data());
  }
  Values row(const Values& key, Value start, Value end, const Acc* accs) const;
  Values row(const Values& key, Value start, Value end, const std::vector<Acc>& accs) const;

  void sendLate(const Tuple& t, int64_t ts, i128 wStart, i128 wEnd, Emitter& out);

  // ---- pane windows ----
  Pane* findPane(int64_t p) {
    if (cachePane[0] && cacheIdx[0] == p) return cachePane[0];
    if (cachePane[1] && cacheIdx[1] == p) {
      std::swap(cacheIdx[0], cacheIdx[1]);
      std::swap(cachePane[0], cachePane[1]);
      return cachePane[0];
    }
    auto it = panes.find(p);
    if (it == panes.end()) return nullptr;
    remember(p, &it->second);
    return &it->second;
  }
  void remember(int64_t p, Pane* pane) {
    cacheIdx[1] = cacheIdx[0];
    cachePane[1] = cachePane[0];
    cacheIdx[0] = p;
    cachePane[0] = pane;
  }
  void forgetPanes() { cachePane[0] = cachePane[1] = nullptr; }
  int64_t lateAtOfPane(int64_t p) const;
  Pane& makePane(int64_t p);
  // The slot of key `id` in `pane`, created (with fresh partials) if absent.
  uint32_t slotIn(Pane& pane, uint32_t id) {
    if (id >= pane.slotOf.size()) pane.slotOf.resize(std::max<size_t>(keys.size(), id + 1), 0);
    uint32_t s = pane.slotOf[id];
    if (s) return s - 1;
    s = static_cast<uint32_t>(pane.keyOf.size());
    pane.slotOf[id] = s + 1;
    pane.keyOf.push_back(id);
    pane.seqOf.push_back(0);
    for (const auto& a : cfg->aggregates) pane.accs.push_back(a->init());
    return s;
  }

  // Calls fn(k) once for every window in [lo, hi] that holds data, in increasing order.
  template <class Fn>
  void forWindowsWithData(i128 lo, i128 hi, Fn&& fn) {
    std::vector<i128> ks;
    i128 last = lo - 1;
    for (const auto& [p, pane] : panes) {
      if (pane.size() == 0) continue;
      int64_t ps = paneStart(p);
      i128 kf = std::max(kFirstOf(ps), std::max(lo, last + 1));
      i128 kl = std::min(kLastOf(ps), hi);
      for (i128 k = kf; k <= kl; ++k) ks.push_back(k);
      if (kl >= kf) last = kl;
    }
    for (i128 k : ks) fn(k);
  }

  // Scratch space for merging a sliding window's panes, reused across firings.
  std::vector<uint32_t> mergedOf;  // by key id: merged row + 1, or 0
  std::vector<uint32_t> mergedKey;
  std::vector<uint64_t> mergedSeq;
  Accs mergedAccs;

  // Emits window k's rows (all, or only those updated since its last firing) to `out`, or into
  // the frozen table.
  void emitWindow(i128 k, bool dirtyOnly, Emitter* out, bool freeze);

  void onTupleTime(const Tuple& t, int64_t ts, Emitter& out);

  // Trigger::countPerKey: each live window of the tuple counts it for its key; a window whose
  // count reaches n fires that key's row alone (Flink's CountTrigger on a keyed window).
  void countForKey(const KeyView& kv, uint32_t id, int64_t ts, Emitter& out);
  // One key's row of window k (its partials merged over the window's panes); with a purging
  // trigger the key's partials are dropped (windows that own their elements have one pane).
  void emitKeyWindow(i128 k, uint32_t id, Emitter& out);
  // Removes key `id`'s slot from `pane` (the pane's last slot takes its place).
  void dropSlot(Pane& pane, uint32_t id);

  // Drops interned keys that no pane holds any more (amortized: only when most are dead).
  void compactKeys();

  // ---- sessions ----
  void onTupleSession(const Tuple& t, int64_t ts, Emitter& out);
  void fireSession(const KeyView& kv, Sess& s, Emitter& out);
  Values keyOf(const KeyView& kv) const;

  // ---- count windows ----
  void onTupleCount(const Tuple& t, Emitter& out);
  void fireCount(const Key& key, CountState& c, Emitter& out);

  // ---- firing ----
  // Complete mode: the whole result table (finished rows, then live windows: completed ones, or
  // all of them for an early firing).
  void emitTable(bool allLive, Emitter& out);
  bool isSession() const { return cfg->window.kind == WindowKind::Session; }

  void fireEarly(Emitter& out);

  void advance(Timestamp w, Emitter& out);

  void advanceSessions(Emitter& out);

  size_t size() const;
};

}  // namespace gale::window_detail

namespace gale {
struct WindowOperator::State final : window_detail::WindowState {
  using WindowState::WindowState;
};
}  // namespace gale
