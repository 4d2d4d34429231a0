#include "gale/core/window.h"

#include <algorithm>
#include <limits>
#include <bit>
#include <deque>
#include <map>
#include <numeric>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "gale/core/state_codec.h"
#include "gale/core/keyed.h"

namespace gale {

const char* outputModeName(OutputMode m) {
  switch (m) {
    case OutputMode::Append: return "append";
    case OutputMode::Update: return "update";
    case OutputMode::Complete: return "complete";
  }
  return "?";
}

std::string WindowKind::describe() const {
  switch (kind) {
    case Tumbling: return "Tumbling(" + std::to_string(size) + "us)";
    case Sliding:
      return "Sliding(" + std::to_string(size) + "us, " + std::to_string(slide) + "us)";
    case Session: return "Session(" + std::to_string(size) + "us)";
    case Global: return "GlobalWindow()";
    case CountTumbling: return "CountTumbling(" + std::to_string(size) + ")";
    case CountSliding:
      return "CountSliding(" + std::to_string(size) + ", " + std::to_string(slide) + ")";
  }
  return "?";
}

WindowKind Tumbling(Duration size, Duration offset) {
  return {WindowKind::Tumbling, size.count(), size.count(), offset.count()};
}
WindowKind Sliding(Duration size, Duration slide, Duration offset) {
  return {WindowKind::Sliding, size.count(), slide.count(), offset.count()};
}
WindowKind Session(Duration gap) { return {WindowKind::Session, gap.count(), 0, 0}; }
WindowKind GlobalWindow() { return {WindowKind::Global, 0, 0, 0}; }
WindowKind CountTumbling(int64_t n) { return {WindowKind::CountTumbling, n, n, 0}; }
WindowKind CountSliding(int64_t n, int64_t slide) {
  return {WindowKind::CountSliding, n, slide, 0};
}

namespace {

using namespace keyed;
using i128 = __int128;
constexpr int64_t kMinI = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxI = std::numeric_limits<int64_t>::max();

int64_t clamp64(i128 v) {
  if (v < kMinI) return kMinI;
  if (v > kMaxI) return kMaxI;
  return static_cast<int64_t>(v);
}
i128 floorDiv(i128 a, i128 b) {
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

// The partial aggregates of one pane (a slice of event time that lies in the same set of
// windows), one slot per key present, in flat arrays.
struct Pane {
  int64_t lateAt = 0;       // at this watermark the pane's last window is final: tuples are late
  int64_t firstDoneAt = 0;  // max time of its first window: from here on, a tuple re-fires
  std::vector<uint32_t> slotOf;  // by key id: slot + 1, or 0
  std::vector<uint32_t> keyOf;   // by slot: key id
  std::vector<uint64_t> seqOf;   // by slot: sequence number of the last tuple added
  std::vector<Acc> accs;         // by slot * #aggregates + aggregate
  size_t size() const { return keyOf.size(); }
};
struct Sess {
  int64_t start = 0, end = 0;
  uint64_t seq = 0, firedSeq = 0;
  std::vector<Acc> accs;
  int64_t counted = 0;  // Trigger::countPerKey: elements since the session's last count firing
};
// Trigger::countPerKey's state of one key in one pane window.
struct KeyCount {
  int64_t counted = 0;    // elements since the last count firing
  uint64_t firedSeq = 0;  // seq at the last count firing (its row is not dirty before a newer)
};
struct CountPane {
  int64_t start = 0, fill = 0;
  std::vector<Acc> accs;
};
struct CountState {
  int64_t seen = 0, lastFireEnd = 0;
  std::deque<CountPane> panes;
};

std::string fmtTime(int64_t us) {
  if (us == kMinI) return "-inf";
  if (us == kMaxI) return "+inf";
  return std::to_string(us) + "us";
}

}  // namespace

struct WindowOperator::State {
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
  const StreamSchema* schema = nullptr;
  std::vector<int> keyIdx, aggIdx;
  const Value kNull{};

  // Complete mode keeps every group and accepts late rows (Spark): no window is ever evicted
  // or late before the end of time.
  static constexpr int64_t kCompleteLateness = std::numeric_limits<int64_t>::max() / 4;
  explicit State(const WindowConfig* c)
      : cfg(c),
        nA(c->aggregates.size()),
        lateness(c->mode == OutputMode::Complete ? kCompleteLateness : c->lateness),
        perKey(c->trigger.kind == Trigger::CountPerKey) {
    const auto& w = c->window;
    if (w.kind == WindowKind::Global) {
      global = true;
    } else if (w.kind == WindowKind::Tumbling || w.kind == WindowKind::Sliding) {
      S = w.size;
      L = w.slide;
      O = ((w.offset % L) + L) % L;
      P = std::gcd(S, L);
    }
  }

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
  void resolve(const Tuple& t) {
    if (t.schema().get() == schema && schema) return;
    const Fields& f = t.fields();
    keyIdx.clear();
    aggIdx.clear();
    for (const auto& k : cfg->keys) {
      int i = f.indexOf(k);
      if (i < 0) {
        throw std::invalid_argument("window operator keyed by '" + k + "' got a tuple of stream '" +
                                    t.sourceComponent() + ":" + t.sourceStream() +
                                    "' without that field (fields are " + f.toString() + ")");
      }
      keyIdx.push_back(i);
    }
    for (const auto& a : cfg->aggregates) {
      int i = -1;
      if (!a->field().empty()) {
        i = f.indexOf(a->field());
        if (i < 0) {
          throw std::invalid_argument("aggregate '" + a->outputName() + "' reads field '" +
                                      a->field() + "' but stream '" + t.sourceComponent() + ":" +
                                      t.sourceStream() + "' has fields " + f.toString());
        }
      }
      aggIdx.push_back(i);
    }
    schema = t.schema().get();
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
  Values row(const Values& key, Value start, Value end, const Acc* accs) const {
    Values v;
    v.reserve(key.size() + 2 + nA);
    v.insert(v.end(), key.begin(), key.end());
    v.push_back(std::move(start));
    v.push_back(std::move(end));
    for (size_t a = 0; a < nA; ++a) v.push_back(cfg->aggregates[a]->result(accs[a]));
    return v;
  }
  Values row(const Values& key, Value start, Value end, const std::vector<Acc>& accs) const {
    return row(key, std::move(start), std::move(end), accs.data());
  }

  void sendLate(const Tuple& t, int64_t ts, i128 wStart, i128 wEnd, Emitter& out) {
    ++late;
    std::string reason = "event time " + fmtTime(ts) + " is too late for window [" +
                         fmtTime(clamp64(wStart)) + ", " + fmtTime(clamp64(wEnd)) +
                         "): watermark " + fmtTime(wm.micros) + " passed its end by at least " +
                         "the allowed lateness of " + std::to_string(lateness) + "us";
    out.emit(cfg->lateStream, Values{std::move(reason), Timestamp{ts}, wm,
                                     Bytes{encodeValues(t.values())}});
  }

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
  int64_t lateAtOfPane(int64_t p) const {
    return clamp64(maxTsOf(kLastOf(paneStart(p))) + lateness);
  }
  Pane& makePane(int64_t p) {
    Pane& pane = panes[p];
    pane.lateAt = lateAtOfPane(p);
    pane.firstDoneAt = clamp64(maxTsOf(kFirstOf(paneStart(p))));
    remember(p, &pane);
    return pane;
  }
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
  std::vector<Acc> mergedAccs;

  // Emits window k's rows (all, or only those updated since its last firing) to `out`, or into
  // the frozen table.
  void emitWindow(i128 k, bool dirtyOnly, Emitter* out, bool freeze) {
    int64_t key64 = clamp64(k);
    auto fired = windowFired.find(key64);
    uint64_t lastSeq = fired == windowFired.end() ? 0 : fired->second;
    auto counted = perKey ? keyCounts.find(key64) : keyCounts.end();
    // A row is dirty if it changed since the window's last firing and since its key's last count
    // firing.
    auto dirty = [&](uint32_t id, uint64_t rowSeq) {
      if (rowSeq <= lastSeq) return false;
      if (counted == keyCounts.end()) return true;
      auto kc = counted->second.find(keys.key(id));
      return kc == counted->second.end() || rowSeq > kc->second.firedSeq;
    };
    Value start = Timestamp{clamp64(startOf(k))};
    Value end = Timestamp{clamp64(endOf(k))};
    auto put = [&](const Key& key, const Acc* accs) {
      Values r = row(key.values, start, end, accs);
      if (freeze) frozen.push_back(std::move(r));
      else out->emit(kDefaultStream, std::move(r));
    };
    int64_t p0 = global ? 0 : clamp64(floorDiv(startOf(k) - O, P));
    int64_t np = global ? 1 : S / P;
    if (np == 1) {
      auto it = panes.find(p0);
      if (it != panes.end()) {
        const Pane& pane = it->second;
        for (size_t s = 0; s < pane.size(); ++s)
          if (!dirtyOnly || dirty(pane.keyOf[s], pane.seqOf[s]))
            put(keys.key(pane.keyOf[s]), &pane.accs[s * nA]);
      }
    } else {
      mergedOf.resize(keys.size(), 0);
      size_t rows = 0;
      for (auto it = panes.lower_bound(p0); it != panes.end() && it->first < p0 + np; ++it) {
        const Pane& pane = it->second;
        for (size_t s = 0; s < pane.size(); ++s) {
          uint32_t id = pane.keyOf[s];
          uint32_t m = mergedOf[id];
          if (!m) {
            m = static_cast<uint32_t>(++rows);
            mergedOf[id] = m;
            if (mergedKey.size() < rows) {
              mergedKey.push_back(0);
              mergedSeq.push_back(0);
              for (size_t a = 0; a < nA; ++a) mergedAccs.emplace_back();
            }
            mergedKey[m - 1] = id;
            mergedSeq[m - 1] = 0;
            for (size_t a = 0; a < nA; ++a) mergedAccs[(m - 1) * nA + a] = cfg->aggregates[a]->init();
          }
          mergeInto(&mergedAccs[(m - 1) * nA], &pane.accs[s * nA]);
          mergedSeq[m - 1] = std::max(mergedSeq[m - 1], pane.seqOf[s]);
        }
      }
      for (size_t r = 0; r < rows; ++r) {
        if (!dirtyOnly || dirty(mergedKey[r], mergedSeq[r]))
          put(keys.key(mergedKey[r]), &mergedAccs[r * nA]);
        mergedOf[mergedKey[r]] = 0;
      }
    }
    windowFired[key64] = seq;
    // Fire-and-purge: the window (its one pane: purging needs windows that own their elements)
    // starts again empty; a later tuple for it makes a new pane.
    if (cfg->trigger.purge && out && np == 1 && panes.erase(p0)) forgetPanes();
  }

  void onTupleTime(const Tuple& t, int64_t ts, Emitter& out) {
    // Every tuple of a pane has the same last window, so the pane knows when they become late.
    if (wm != kNoWatermark && wm.micros >= lateAtOfPaneCached(ts)) {
      i128 kl = kLastOf(ts);
      sendLate(t, ts, startOf(kl), endOf(kl), out);
      return;
    }
    i128 kl = kLastOf(ts);
    const int64_t p = paneOf(ts);
    Pane* pane = findPane(p);
    if (!pane) pane = &makePane(p);
    KeyView kv{&t.values(), &keyIdx, hashKey(t.values(), keyIdx)};
    const uint32_t id = keys.intern(kv);
    uint32_t s = slotIn(*pane, id);
    addTo(&pane->accs[s * nA], t, Timestamp{ts});
    pane->seqOf[s] = ++seq;
    const int64_t firstDoneAt = pane->firstDoneAt;  // a purging count firing may drop the pane
    if (perKey) countForKey(kv, id, ts, out);
    // Late but within the allowed lateness: windows that already fired fire again now.
    if (cfg->mode != OutputMode::Append && wm != kNoWatermark && wm.micros >= firstDoneAt) {
      i128 kr = std::min(kReadyNow(), kl);
      i128 kf = std::max(kFirstOf(ts), kEvictedNow() + 1);
      if (kf <= kr) {
        if (cfg->mode == OutputMode::Update) {
          for (i128 k = kf; k <= kr; ++k) emitWindow(k, true, &out, false);
        } else {
          emitTable(false, out);
        }
      }
    }
  }

  // Trigger::countPerKey: each live window of the tuple counts it for its key; a window whose
  // count reaches n fires that key's row alone (Flink's CountTrigger on a keyed window).
  void countForKey(const KeyView& kv, uint32_t id, int64_t ts, Emitter& out) {
    const i128 kl = kLastOf(ts);
    for (i128 k = std::max(kFirstOf(ts), kEvictedNow() + 1); k <= kl; ++k) {
      KeyMap<KeyCount>& m = keyCounts[clamp64(k)];
      auto it = m.find(kv);
      if (it == m.end()) it = m.emplace(ownKey(kv), KeyCount{}).first;
      if (++it->second.counted < cfg->trigger.every) continue;
      it->second.counted = 0;
      it->second.firedSeq = seq;
      emitKeyWindow(k, id, out);
    }
  }
  // One key's row of window k (its partials merged over the window's panes); with a purging
  // trigger the key's partials are dropped (windows that own their elements have one pane).
  void emitKeyWindow(i128 k, uint32_t id, Emitter& out) {
    const int64_t p0 = global ? 0 : clamp64(floorDiv(startOf(k) - O, P));
    const int64_t np = global ? 1 : S / P;
    std::vector<Acc> accs = freshAccs();
    for (auto it = panes.lower_bound(p0); it != panes.end() && it->first < p0 + np; ++it) {
      const Pane& pane = it->second;
      if (id < pane.slotOf.size() && pane.slotOf[id])
        mergeInto(accs.data(), &pane.accs[(pane.slotOf[id] - 1) * nA]);
    }
    out.emit(row(keys.key(id).values, Timestamp{clamp64(startOf(k))},
                 Timestamp{clamp64(endOf(k))}, accs));
    if (!cfg->trigger.purge) return;
    auto it = panes.find(p0);
    if (it == panes.end()) return;
    dropSlot(it->second, id);
    if (it->second.size() == 0) {
      panes.erase(it);
      forgetPanes();
    }
  }
  // Removes key `id`'s slot from `pane` (the pane's last slot takes its place).
  void dropSlot(Pane& pane, uint32_t id) {
    if (id >= pane.slotOf.size() || !pane.slotOf[id]) return;
    const uint32_t s = pane.slotOf[id] - 1, last = static_cast<uint32_t>(pane.size() - 1);
    if (s != last) {
      pane.keyOf[s] = pane.keyOf[last];
      pane.seqOf[s] = pane.seqOf[last];
      for (size_t a = 0; a < nA; ++a) pane.accs[s * nA + a] = std::move(pane.accs[last * nA + a]);
      pane.slotOf[pane.keyOf[s]] = s + 1;
    }
    pane.keyOf.pop_back();
    pane.seqOf.pop_back();
    pane.accs.resize(pane.accs.size() - nA);
    pane.slotOf[id] = 0;
  }

  int64_t lateAtOfPaneCached(int64_t ts) {
    int64_t p = paneOf(ts);
    Pane* pane = findPane(p);
    return pane ? pane->lateAt : lateAtOfPane(p);
  }

  // Drops interned keys that no pane holds any more (amortized: only when most are dead).
  void compactKeys() {
    size_t held = 0;
    for (const auto& [p, pane] : panes) held += pane.size();
    if (keys.size() < 4096 || keys.size() <= 2 * held) return;
    std::vector<bool> live(keys.size(), false);
    for (const auto& [p, pane] : panes)
      for (uint32_t id : pane.keyOf) live[id] = true;
    std::vector<uint32_t> remap = keys.compact(live);
    for (auto& [p, pane] : panes) {
      pane.slotOf.assign(keys.size(), 0);
      for (size_t s = 0; s < pane.size(); ++s) {
        pane.keyOf[s] = remap[pane.keyOf[s]];
        pane.slotOf[pane.keyOf[s]] = static_cast<uint32_t>(s + 1);
      }
    }
    mergedOf.assign(keys.size(), 0);
  }

  // ---- sessions ----
  void onTupleSession(const Tuple& t, int64_t ts, Emitter& out) {
    int64_t gap = cfg->window.size;
    int64_t ns = ts, ne = clamp64(i128(ts) + gap);
    KeyView kv{&t.values(), &keyIdx, hashKey(t.values(), keyIdx)};
    auto it = sessions.find(kv);
    std::vector<Sess>* list = it == sessions.end() ? nullptr : &it->second;
    size_t first = 0, last = 0;  // overlapping range [first, last)
    int64_t ms = ns, me = ne;
    if (list) {
      // Sessions that touch merge (one ends exactly where the next begins), as Spark's
      // `sessionStart <= currentEnd` and Flink's TimeWindow.intersects.
      while (first < list->size() && (*list)[first].end < ns) ++first;
      last = first;
      while (last < list->size() && (*list)[last].start <= ne) {
        ms = std::min(ms, (*list)[last].start);
        me = std::max(me, (*list)[last].end);
        ++last;
      }
    }
    if (wm != kNoWatermark && i128(wm.micros) >= i128(me) - 1 + lateness) {
      sendLate(t, ts, ms, me, out);
      return;
    }
    if (!list) {
      Key key;
      key.hash = kv.hash;
      for (int i : keyIdx) key.values.push_back(t.values()[i]);
      list = &sessions.emplace(std::move(key), std::vector<Sess>{}).first->second;
      first = last = 0;
    }
    Sess* s;
    if (last == first) {
      s = &*list->insert(list->begin() + first, Sess{ns, ne, 0, 0, freshAccs(), 0});
    } else if (last == first + 1) {
      s = &(*list)[first];
      s->start = ms;
      s->end = me;
    } else {
      // The tuple bridges several sessions: they become one new session (a new row).
      // Their counts add up, as Flink's CountTrigger.onMerge.
      Sess merged{ms, me, 0, 0, freshAccs(), 0};
      for (size_t i = first; i < last; ++i) {
        mergeInto(merged.accs, (*list)[i].accs);
        merged.counted += (*list)[i].counted;
      }
      list->erase(list->begin() + first + 1, list->begin() + last);
      (*list)[first] = std::move(merged);
      s = &(*list)[first];
    }
    addTo(s->accs.data(), t, Timestamp{ts});
    s->seq = ++seq;
    if (perKey && ++s->counted >= cfg->trigger.every) {
      s->counted = 0;
      fireSession(kv, *s, out);
    }
    if (cfg->mode != OutputMode::Append && wm != kNoWatermark && i128(s->end) - 1 <= wm.micros &&
        s->seq > s->firedSeq) {
      if (cfg->mode == OutputMode::Update) {
        fireSession(kv, *s, out);
      } else {
        emitTable(false, out);
      }
    }
  }
  void fireSession(const KeyView& kv, Sess& s, Emitter& out) {
    out.emit(row(keyOf(kv), Timestamp{s.start}, Timestamp{s.end}, s.accs));
    s.firedSeq = seq;
    if (cfg->trigger.purge) s.accs = freshAccs();
  }
  Values keyOf(const KeyView& kv) const {
    Values v;
    for (int i : *kv.idx) v.push_back((*kv.src)[i]);
    return v;
  }

  // ---- count windows ----
  void onTupleCount(const Tuple& t, Emitter& out) {
    const int64_t N = cfg->window.size, M = cfg->window.slide, g = std::gcd(N, M);
    KeyView kv{&t.values(), &keyIdx, hashKey(t.values(), keyIdx)};
    auto it = counts.find(kv);
    if (it == counts.end()) {
      Key key;
      key.hash = kv.hash;
      for (int i : keyIdx) key.values.push_back(t.values()[i]);
      it = counts.emplace(std::move(key), CountState{}).first;
    }
    CountState& c = it->second;
    if (c.panes.empty() || c.panes.back().fill == g) c.panes.push_back({c.seen, 0, freshAccs()});
    addTo(c.panes.back().accs.data(), t, Timestamp{0});
    ++c.panes.back().fill;
    ++c.seen;
    if (c.seen % M == 0) {
      fireCount(it->first, c, out);
      int64_t nextStart = c.seen + M - N;
      while (!c.panes.empty() && c.panes.front().start < nextStart) c.panes.pop_front();
    }
  }
  void fireCount(const Key& key, CountState& c, Emitter& out) {
    int64_t from = c.seen - cfg->window.size;
    std::vector<Acc> accs = freshAccs();
    int64_t ws = -1;
    for (const auto& p : c.panes) {
      if (p.start < from) continue;
      if (ws < 0) ws = p.start;
      mergeInto(accs, p.accs);
    }
    if (ws < 0) return;
    out.emit(row(key.values, int64_t{ws}, int64_t{c.seen}, accs));
    c.lastFireEnd = c.seen;
  }

  // ---- firing ----
  // Complete mode: the whole result table (finished rows, then live windows: completed ones, or
  // all of them for an early firing).
  void emitTable(bool allLive, Emitter& out) {
    if (inBatch) return;  // written once at the batch end (WindowOperator::onBatchEnd)
    for (const auto& r : frozen) out.emit(r);
    if (isSession()) {
      for (auto& [key, list] : sessions)
        for (auto& s : list)
          if (allLive || (wm != kNoWatermark && i128(s.end) - 1 <= wm.micros)) {
            out.emit(row(key.values, Timestamp{s.start}, Timestamp{s.end}, s.accs));
            s.firedSeq = seq;
          }
    } else {
      i128 hi = allLive ? i128(kMaxI) * 4 : kReadyNow();
      forWindowsWithData(kEvictedNow() + 1, hi, [&](i128 k) { emitWindow(k, false, &out, false); });
    }
  }
  bool isSession() const { return cfg->window.kind == WindowKind::Session; }

  void fireEarly(Emitter& out) {
    if (cfg->mode == OutputMode::Complete) {
      emitTable(true, out);
    } else if (isSession()) {
      for (auto& [key, list] : sessions)
        for (auto& s : list)
          if (s.seq > s.firedSeq) {
            out.emit(row(key.values, Timestamp{s.start}, Timestamp{s.end}, s.accs));
            s.firedSeq = seq;
            if (cfg->trigger.purge) s.accs = freshAccs();
          }
    } else {
      forWindowsWithData(kEvictedNow() + 1, i128(kMaxI) * 4,
                         [&](i128 k) { emitWindow(k, true, &out, false); });
    }
  }

  void advance(Timestamp w, Emitter& out) {
    if (w <= wm) return;  // watermarks never go backwards; a stale one changes nothing
    if (isSession()) {
      wm = w;
      advanceSessions(out);
      return;
    }
    i128 krOld = kReadyNow(), keOld = kEvictedNow();
    wm = w;
    i128 kr = kReadyNow(), ke = kEvictedNow();
    const OutputMode mode = cfg->mode;
    if (mode == OutputMode::Update) {
      forWindowsWithData(krOld + 1, kr, [&](i128 k) {
        if (k > ke) emitWindow(k, true, &out, false);
      });
    }
    forWindowsWithData(keOld + 1, ke, [&](i128 k) {
      if (mode == OutputMode::Update) emitWindow(k, true, &out, false);
      else if (mode == OutputMode::Append) emitWindow(k, false, &out, false);
      else emitWindow(k, false, nullptr, true);
      windowFired.erase(clamp64(k));
    });
    keyCounts.erase(keyCounts.begin(), keyCounts.upper_bound(clamp64(ke)));
    // Panes whose last window is gone can never change an output again.
    bool evicted = false;
    while (!panes.empty()) {
      auto it = panes.begin();
      if (kLastOf(paneStart(it->first)) > ke) break;
      panes.erase(it);
      evicted = true;
    }
    if (evicted) {
      forgetPanes();
      compactKeys();
    }
    if (mode == OutputMode::Complete) emitTable(false, out);
  }

  void advanceSessions(Emitter& out) {
    const OutputMode mode = cfg->mode;
    const i128 w = wm.micros;
    for (auto it = sessions.begin(); it != sessions.end();) {
      auto& list = it->second;
      for (size_t i = 0; i < list.size();) {
        Sess& s = list[i];
        bool complete = i128(s.end) - 1 <= w;
        bool evict = i128(s.end) - 1 + lateness <= w;
        if (mode == OutputMode::Update && complete && s.seq > s.firedSeq) {
          out.emit(row(it->first.values, Timestamp{s.start}, Timestamp{s.end}, s.accs));
          s.firedSeq = seq;
          if (cfg->trigger.purge) s.accs = freshAccs();
        }
        if (evict) {
          if (mode == OutputMode::Append)
            out.emit(row(it->first.values, Timestamp{s.start}, Timestamp{s.end}, s.accs));
          else if (mode == OutputMode::Complete)
            frozen.push_back(row(it->first.values, Timestamp{s.start}, Timestamp{s.end}, s.accs));
          list.erase(list.begin() + i);
        } else {
          ++i;
        }
      }
      if (list.empty()) it = sessions.erase(it);
      else ++it;
    }
    if (mode == OutputMode::Complete) emitTable(false, out);
  }

  size_t size() const {
    size_t n = frozen.size();
    for (const auto& [p, pane] : panes) n += pane.size();
    for (const auto& [k, list] : sessions) n += list.size();
    for (const auto& [k, c] : counts) n += c.panes.size();
    for (const auto& [k, m] : keyCounts) n += m.size();
    return n;
  }
};

// ---------------------------------------------------------------------------------------------

namespace {
[[noreturn]] void bad(const std::string& why) {
  throw std::invalid_argument("window operator: " + why);
}
}  // namespace

WindowOperator::WindowOperator(WindowConfig config) : config_(std::move(config)) {
  const WindowConfig& c = config_;
  const WindowKind& w = c.window;
  if (c.aggregates.empty()) bad("no aggregate given; e.g. windowed(Tumbling(10s), Count{})");
  for (const auto& a : c.aggregates)
    if (!a) bad("null aggregate");
  switch (w.kind) {
    case WindowKind::Tumbling:
      if (w.size <= 0) bad("Tumbling size must be > 0, got " + std::to_string(w.size) + "us");
      break;
    case WindowKind::Sliding:
      if (w.size <= 0 || w.slide <= 0)
        bad("Sliding size and slide must be > 0, got " + w.describe());
      if (w.slide > w.size)
        bad(w.describe() + " has slide > size, which would drop the tuples between windows; use "
            "slide <= size (or Tumbling)");
      break;
    case WindowKind::Session:
      if (w.size <= 0) bad("Session gap must be > 0, got " + std::to_string(w.size) + "us");
      break;
    case WindowKind::Global: break;
    case WindowKind::CountTumbling:
    case WindowKind::CountSliding:
      if (w.size <= 0 || w.slide <= 0) bad(w.describe() + ": counts must be > 0");
      if (w.slide > w.size) bad(w.describe() + ": slide must be <= the window length");
      break;
  }
  if (c.lateness < 0) bad("allowedLateness must be >= 0");
  if (c.mode == OutputMode::Complete && c.lateness != 0)
    bad("complete mode keeps every group and accepts late rows, as Spark's does, so "
        "allowedLateness makes no sense there; remove it");
  if (c.trigger.kind == Trigger::ProcessingTime && c.trigger.every < 0)
    bad("Trigger::processingTime interval must be >= 0");
  if (c.trigger.kind == Trigger::Count && c.trigger.every <= 0)
    bad("Trigger::count(n) needs n > 0");
  if (c.trigger.kind == Trigger::CountPerKey) {
    if (c.trigger.every <= 0) bad("Trigger::countPerKey(n) needs n > 0");
    if (c.mode == OutputMode::Complete)
      bad("Trigger::countPerKey fires one key's row, but complete mode writes the whole table at "
          "every firing; use OutputMode::Update (or Trigger::count(n) for the whole table)");
  }
  if (c.trigger.purge) {
    if (c.mode != OutputMode::Update)
      bad(std::string("a purging trigger clears each window after it fires, which only means "
                      "something in OutputMode::Update (not ") + outputModeName(c.mode) + ")");
    if (w.kind == WindowKind::Sliding || w.isCount())
      bad("a purging trigger needs windows that own their elements (tumbling, session, global); " +
          w.describe() + " shares them with its neighbours");
  }
  if (w.isCount()) {
    if (c.processingTime) bad("count windows count tuples; they have no time to take from a clock");
    if (c.lateness != 0)
      bad("count windows have no event time, so allowedLateness makes no sense; remove it");
    if (c.mode != OutputMode::Update)
      bad(std::string("count windows emit each window once when it fills; output mode ") +
          outputModeName(c.mode) + " is not supported (use OutputMode::Update)");
    if (c.trigger.kind != Trigger::EventTime)
      bad("count windows fire when they fill; remove the trigger");
  } else {
    if (c.processingTime && c.eventTime.configured())
      bad("a window is over event time or over processing time, not both: drop .eventTime() or "
          ".processingTime()");
    if (c.processingTime && c.lateness != 0)
      bad("processing-time windows have no late tuples, so allowedLateness makes no sense");
    if (w.kind != WindowKind::Global && !c.eventTime.configured() && !c.processingTime)
      bad(w.describe() + " needs an event time: call .eventTime(\"field\") or pass an extractor "
          "(or .processingTime() for windows over arrival time)");
    if (w.kind == WindowKind::Global && c.lateness != 0)
      bad("a global window never ends, so allowedLateness makes no sense; remove it");
    if (c.mode == OutputMode::Append && w.kind == WindowKind::Global)
      bad("append mode emits a window once it is final, and a global window is final only at "
          "the end of input; use OutputMode::Update with a trigger");
    if (c.mode == OutputMode::Append && c.trigger.kind != Trigger::EventTime)
      bad("append mode emits each window once when the watermark makes it final; early-firing "
          "triggers contradict it (use OutputMode::Update)");
  }
  if (c.lateStream.empty() || c.lateStream == kDefaultStream)
    bad("the late stream needs its own name (not empty or 'default'), e.g. \"late\"");
  std::unordered_set<std::string> names;
  auto addName = [&](const std::string& n) {
    if (!names.insert(n).second)
      bad("output field '" + n + "' appears twice; rename an aggregate with .as(\"...\")");
  };
  for (const auto& k : c.keys) addName(k);
  addName("window_start");
  addName("window_end");
  for (const auto& a : c.aggregates) addName(a->outputName());
  state_ = std::make_unique<State>(&config_);
}

WindowOperator::~WindowOperator() = default;

void WindowOperator::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> f;
  for (const auto& k : config_.keys) f.push_back({k, Type::Any});
  Type wt = config_.window.isCount() ? Type::Int64 : Type::Timestamp;
  f.push_back({"window_start", wt});
  f.push_back({"window_end", wt});
  for (const auto& a : config_.aggregates) f.push_back({a->outputName(), a->resultType()});
  d.declare(Fields(std::move(f)));
  d.declareStream(config_.lateStream,
                  Fields({FieldSpec{"reason", Type::String}, FieldSpec{"event_time", Type::Timestamp},
                          FieldSpec{"watermark", Type::Timestamp}, FieldSpec{"values", Type::Bytes}}));
}

std::unique_ptr<Operator> WindowOperator::clone() const {
  return std::make_unique<WindowOperator>(config_);
}

void WindowOperator::onTuple(const Tuple& t, Emitter& out) {
  State& s = *state_;
  s.resolve(t);
  if (config_.window.isCount()) {
    s.onTupleCount(t, out);
    return;
  }
  int64_t ts = config_.processingTime                               ? clock_->now().micros
               : s.global && !config_.eventTime.configured() ? 0
                                                             : config_.eventTime.of(t).micros;
  if (config_.window.kind == WindowKind::Session) s.onTupleSession(t, ts, out);
  else s.onTupleTime(t, ts, out);
  if (config_.trigger.kind == Trigger::Count && ++s.sinceFire >= config_.trigger.every) {
    s.sinceFire = 0;
    s.fireEarly(out);
  }
}

void WindowOperator::onWatermark(Timestamp watermark, Emitter& out) {
  // Processing-time windows run on the clock; only the end of input reaches them.
  if (config_.processingTime && watermark != kEndOfTime) return;
  if (config_.window.isCount()) {
    if (watermark > state_->wm) state_->wm = watermark;
    return;
  }
  state_->advance(watermark, out);
}

void WindowOperator::onProcessingTime(Timestamp now, Emitter& out) {
  State& s = *state_;
  // Processing time is a perfect watermark for windows over arrival time: every tuple that
  // arrived before `now` is here.
  if (config_.processingTime) s.advance(Timestamp{now.micros - 1}, out);
  if (config_.trigger.kind != Trigger::ProcessingTime) return;
  if (s.procFired && now.micros - s.lastProcFire < config_.trigger.every) return;
  s.procFired = true;
  s.lastProcFire = now.micros;
  s.fireEarly(out);
}

void WindowOperator::onBatchBegin(uint64_t) {
  if (config_.mode == OutputMode::Complete) state_->inBatch = true;
}

void WindowOperator::onBatchEnd(uint64_t, Emitter& out) {
  // Spark's complete mode: every batch writes the entire result table (every group, whatever
  // the watermark), once — not once per firing inside the batch.
  if (config_.mode != OutputMode::Complete) return;
  state_->inBatch = false;
  state_->emitTable(true, out);
}

void WindowOperator::onEndOfInput(Emitter& out) {
  State& s = *state_;
  if (config_.window.isCount()) {
    for (auto& [key, c] : s.counts)
      if (c.seen > c.lastFireEnd) s.fireCount(key, c, out);
    return;
  }
  onWatermark(kEndOfTime, out);
}

size_t WindowOperator::stateSize() const { return state_->size(); }
uint64_t WindowOperator::lateCount() const { return state_->late; }
size_t WindowOperator::internedKeys() const { return state_->keys.size(); }
Timestamp WindowOperator::watermark() const { return state_->wm; }

// Snapshot layout (all integers varint/zigzag): "GWIN" v2, window kind, #aggregates, #keys,
// watermark, seq, late count, processing-time trigger state, then the kind's state, then the
// per-key count trigger's counts of pane windows. v2 added those counts (also one per session).
// A v1 snapshot is read with every count zero: v1 had no per-key count trigger, so a job
// restored with the configuration it was taken with had no counts — zero is exact. (A job that
// adds the trigger at the upgrade starts counting at the restore.)
constexpr uint8_t kWindowSnapshotVersion = 2;
std::string WindowOperator::snapshot() const {
  const State& s = *state_;
  StateWriter w;
  w.header("GWIN", kWindowSnapshotVersion);
  w.u8(static_cast<uint8_t>(config_.window.kind));
  w.varint(config_.aggregates.size());
  w.varint(config_.keys.size());
  w.svarint(s.wm.micros);
  w.varint(s.seq);
  w.varint(s.late);
  w.u8(s.procFired ? 1 : 0);
  w.svarint(s.lastProcFire);
  w.svarint(s.sinceFire);
  auto accs = [&](const std::vector<Acc>& v) {
    for (const auto& a : v) encodeAcc(w, a);
  };
  w.varint(s.panes.size());
  for (const auto& [p, pane] : s.panes) {
    w.svarint(p);
    w.varint(pane.size());
    for (size_t x = 0; x < pane.size(); ++x) {
      w.values(s.keys.key(pane.keyOf[x]).values);
      w.varint(pane.seqOf[x]);
      for (size_t a = 0; a < s.nA; ++a) encodeAcc(w, pane.accs[x * s.nA + a]);
    }
  }
  w.varint(s.windowFired.size());
  for (const auto& [k, q] : s.windowFired) {
    w.svarint(k);
    w.varint(q);
  }
  w.varint(s.frozen.size());
  for (const auto& r : s.frozen) w.values(r);
  w.varint(s.sessions.size());
  for (const auto& [key, list] : s.sessions) {
    w.values(key.values);
    w.varint(list.size());
    for (const auto& x : list) {
      w.svarint(x.start);
      w.svarint(x.end);
      w.varint(x.seq);
      w.varint(x.firedSeq);
      accs(x.accs);
      w.svarint(x.counted);
    }
  }
  w.varint(s.counts.size());
  for (const auto& [key, c] : s.counts) {
    w.values(key.values);
    w.svarint(c.seen);
    w.svarint(c.lastFireEnd);
    w.varint(c.panes.size());
    for (const auto& p : c.panes) {
      w.svarint(p.start);
      w.svarint(p.fill);
      accs(p.accs);
    }
  }
  w.varint(s.keyCounts.size());
  for (const auto& [k, m] : s.keyCounts) {
    w.svarint(k);
    w.varint(m.size());
    for (const auto& [key, kc] : m) {
      w.values(key.values);
      w.svarint(kc.counted);
      w.varint(kc.firedSeq);
    }
  }
  return w.take();
}

void WindowOperator::restore(std::string_view bytes) {
  auto fresh = std::make_unique<State>(&config_);
  State& s = *fresh;
  StateReader r(bytes, "window operator snapshot");
  const uint8_t version = r.header("GWIN", 1, kWindowSnapshotVersion);
  if (r.u8("window kind") != static_cast<uint8_t>(config_.window.kind))
    r.fail("it was taken from another kind of window than " + config_.window.describe());
  if (r.varint("aggregate count") != config_.aggregates.size())
    r.fail("it has another number of aggregates");
  size_t nk = config_.keys.size();
  if (r.varint("key count") != nk) r.fail("it has another number of key fields");
  s.wm = Timestamp{r.svarint("watermark")};
  s.seq = r.varint("sequence");
  s.late = r.varint("late count");
  s.procFired = r.u8("trigger state") != 0;
  s.lastProcFire = r.svarint("last processing-time firing");
  s.sinceFire = r.svarint("tuples since firing");
  const size_t na = config_.aggregates.size();
  auto accs = [&]() {
    std::vector<Acc> v;
    v.reserve(na);
    for (size_t a = 0; a < na; ++a) v.push_back(decodeAcc(r));
    return v;
  };
  auto key = [&]() {
    Key k;
    k.values = r.values("key");
    if (k.values.size() != nk) r.fail("a key has " + std::to_string(k.values.size()) + " values");
    std::vector<int> idx(nk);
    std::iota(idx.begin(), idx.end(), 0);
    k.hash = hashKey(k.values, idx);
    return k;
  };
  for (uint64_t n = r.count("panes", 2); n > 0; --n) {
    int64_t p = r.svarint("pane index");
    if (s.panes.count(p)) r.fail("duplicate pane");
    Pane& pane = s.makePane(p);
    for (uint64_t m = r.count("pane slots", 2); m > 0; --m) {
      Key k = key();
      std::vector<int> idx(nk);
      std::iota(idx.begin(), idx.end(), 0);
      uint32_t id = s.keys.intern(KeyView{&k.values, &idx, k.hash});
      if (id < pane.slotOf.size() && pane.slotOf[id]) r.fail("duplicate key in pane");
      uint32_t x = s.slotIn(pane, id);
      pane.seqOf[x] = r.varint("slot sequence");
      std::vector<Acc> v = accs();
      for (size_t a = 0; a < s.nA; ++a) pane.accs[x * s.nA + a] = std::move(v[a]);
    }
  }
  for (uint64_t n = r.count("fired windows", 2); n > 0; --n) {
    int64_t k = r.svarint("window index");
    s.windowFired[k] = r.varint("window sequence");
  }
  for (uint64_t n = r.count("finished rows"); n > 0; --n) s.frozen.push_back(r.values("row"));
  for (uint64_t n = r.count("session keys", 2); n > 0; --n) {
    Key k = key();
    std::vector<Sess> list;
    for (uint64_t m = r.count("sessions", 4); m > 0; --m) {
      Sess x;
      x.start = r.svarint("session start");
      x.end = r.svarint("session end");
      if (x.end <= x.start || (!list.empty() && x.start < list.back().end))
        r.fail("sessions out of order");
      x.seq = r.varint("session sequence");
      x.firedSeq = r.varint("session fired sequence");
      x.accs = accs();
      if (version >= 2) x.counted = r.svarint("session count");
      list.push_back(std::move(x));
    }
    s.sessions.emplace(std::move(k), std::move(list));
  }
  for (uint64_t n = r.count("count keys", 3); n > 0; --n) {
    Key k = key();
    CountState c;
    c.seen = r.svarint("count seen");
    c.lastFireEnd = r.svarint("count last firing");
    for (uint64_t m = r.count("count panes", 2); m > 0; --m) {
      CountPane p;
      p.start = r.svarint("count pane start");
      p.fill = r.svarint("count pane fill");
      p.accs = accs();
      c.panes.push_back(std::move(p));
    }
    s.counts.emplace(std::move(k), std::move(c));
  }
  if (version >= 2) {
    for (uint64_t n = r.count("counted windows", 2); n > 0; --n) {
      KeyMap<KeyCount>& m = s.keyCounts[r.svarint("counted window index")];
      for (uint64_t c = r.count("window key counts", 3); c > 0; --c) {
        Key k = key();
        KeyCount kc{r.svarint("key count"), r.varint("key fired sequence")};
        if (!m.emplace(std::move(k), kc).second) r.fail("duplicate key count");
      }
    }
  }
  r.expectEnd();
  state_ = std::move(fresh);
}

// ---------------------------------------------------------------------------------------------

WindowBuilder::WindowBuilder(WindowKind window,
                             std::vector<std::shared_ptr<const Aggregator>> aggregates) {
  config_.window = window;
  config_.aggregates = std::move(aggregates);
}
WindowBuilder& WindowBuilder::keyBy(std::vector<std::string> fields) {
  config_.keys = std::move(fields);
  return *this;
}
WindowBuilder& WindowBuilder::eventTime(std::string field) {
  config_.eventTime = EventTime(std::move(field));
  return *this;
}
WindowBuilder& WindowBuilder::eventTime(std::function<Timestamp(const Tuple&)> extractor) {
  config_.eventTime = EventTime(std::move(extractor));
  return *this;
}
WindowBuilder& WindowBuilder::processingTime() {
  config_.processingTime = true;
  return *this;
}
WindowBuilder& WindowBuilder::allowedLateness(Duration lateness) {
  config_.lateness = lateness.count();
  return *this;
}
WindowBuilder& WindowBuilder::outputMode(OutputMode mode) {
  config_.mode = mode;
  return *this;
}
WindowBuilder& WindowBuilder::trigger(Trigger trigger) {
  config_.trigger = trigger;
  return *this;
}
WindowBuilder& WindowBuilder::lateStream(std::string stream) {
  config_.lateStream = std::move(stream);
  return *this;
}
std::unique_ptr<WindowOperator> WindowBuilder::build() const {
  return std::make_unique<WindowOperator>(config_);
}

}  // namespace gale
