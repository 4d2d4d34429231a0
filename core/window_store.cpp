// The window store: where a window operator's partial aggregates live (interned keys, panes,
// slots), how a tuple's fields are resolved and added, and how the whole state is written to and
// read from a snapshot. When windows fire and what they emit is window.cpp.
#include <numeric>
#include <stdexcept>

#include "gale/core/state_codec.h"
#include "gale/core/window_state.h"

namespace gale {
namespace window_detail {

WindowState::WindowState(const WindowConfig* c)
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

// ---- field resolution ----
void WindowState::resolveFields(const Tuple& t) {
  const Fields& f = t.fields();
  schema = nullptr;  // until resolved: a throw below must not leave another schema's positions
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
  const std::string& timeField = cfg->eventTime.field();
  timeIdx = timeField.empty() ? -1 : f.indexOf(timeField);
  schema = t.schema();
}


Values WindowState::row(const Values& key, Value start, Value end, const Acc* accs) const {
  Values v;
  v.reserve(key.size() + 2 + nA);
  v.insert(v.end(), key.begin(), key.end());
  v.push_back(std::move(start));
  v.push_back(std::move(end));
  for (size_t a = 0; a < nA; ++a) v.push_back(cfg->aggregates[a]->result(accs[a]));
  return v;
}

Values WindowState::row(const Values& key, Value start, Value end,
                        const std::vector<Acc>& accs) const {
  return row(key, std::move(start), std::move(end), accs.data());
}

// ---- pane windows ----

int64_t WindowState::lateAtOfPane(int64_t p) const {
  return clamp64(maxTsOf(kLastOf(paneStart(p))) + lateness);
}

Pane& WindowState::makePane(int64_t p) {
  Pane& pane = panes[p];
  pane.lateAt = lateAtOfPane(p);
  pane.firstDoneAt = clamp64(maxTsOf(kFirstOf(paneStart(p))));
  remember(p, &pane);
  return pane;
}

// The slot of key `id` in `pane`, created (with fresh partials) if absent.

// Removes key `id`'s slot from `pane` (the pane's last slot takes its place).
void WindowState::dropSlot(Pane& pane, uint32_t id) {
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


// Drops interned keys that no pane holds any more (amortized: only when most are dead).
void WindowState::compactKeys() {
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

Values WindowState::keyOf(const KeyView& kv) const {
  Values v;
  for (int i : *kv.idx) v.push_back((*kv.src)[i]);
  return v;
}

size_t WindowState::size() const {
  size_t n = frozen.size();
  for (const auto& [p, pane] : panes) n += pane.size();
  for (const auto& [k, list] : sessions) n += list.size();
  for (const auto& [k, c] : counts) n += c.panes.size();
  for (const auto& [k, m] : keyCounts) n += m.size();
  return n;
}

}  // namespace window_detail

using namespace window_detail;

// Snapshot layout (all integers varint/zigzag): "GWIN" v2, window kind, #aggregates, #keys,
// watermark, seq, late count, processing-time trigger state, then the kind's state, then the
// per-key count trigger's counts of pane windows. v2 added those counts (also one per session).
// A v1 snapshot is read with every count zero: v1 had no per-key count trigger, so a job
// restored with the configuration it was taken with had no counts — zero is exact. (A job that
// adds the trigger at the upgrade starts counting at the restore.)
constexpr uint8_t kWindowSnapshotVersion = 2;
std::string WindowOperator::snapshot() const { return encodeState(*state_); }

std::string WindowOperator::encodeState(const State& s) const {
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

void WindowOperator::restore(std::string_view bytes) { state_ = decodeState(bytes); }

std::unique_ptr<WindowOperator::State> WindowOperator::decodeState(std::string_view bytes) const {
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
  for (uint64_t n = r.count("finished rows"); n > 0; --n) {
    Values row = r.values("row");
    // A row starts with its key; a key-group split reads it there.
    if (row.size() < nk) r.fail("a finished row is shorter than its key");
    s.frozen.push_back(std::move(row));
  }
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
  return fresh;
}

}  // namespace gale
