// The window operator: when windows fire and what they emit (watermarks, triggers, lateness,
// output modes), its configuration checks and its builder. Where the partial aggregates live and
// how they are snapshotted is the window store (window_state.h, window_store.cpp).
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

#include "gale/core/window_state.h"

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

namespace window_detail {
namespace {

std::string fmtTime(int64_t us) {
  if (us == kMinI) return "-inf";
  if (us == kMaxI) return "+inf";
  return std::to_string(us) + "us";
}

}  // namespace

void WindowState::sendLate(const Tuple& t, int64_t ts, i128 wStart, i128 wEnd, Emitter& out) {
  ++late;
  std::string reason = "event time " + fmtTime(ts) + " is too late for window [" +
                       fmtTime(clamp64(wStart)) + ", " + fmtTime(clamp64(wEnd)) +
                       "): watermark " + fmtTime(wm.micros) + " passed its end by at least " +
                       "the allowed lateness of " + std::to_string(lateness) + "us";
  out.emit(cfg->lateStream, Values{std::move(reason), Timestamp{ts}, wm,
                                   Bytes{encodeValues(t.values())}});
}

// Emits window k's rows (all, or only those updated since its last firing) to `out`, or into
// the frozen table.
void WindowState::emitWindow(i128 k, bool dirtyOnly, Emitter* out, bool freeze) {
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

void WindowState::onTupleTime(const Tuple& t, int64_t ts, Emitter& out) {
  const int64_t p = paneOf(ts);
  Pane* pane = findPane(p);
  // Every tuple of a pane has the same last window, so the pane knows when they become late.
  if (wm != kNoWatermark && wm.micros >= (pane ? pane->lateAt : lateAtOfPane(p))) {
    i128 kl = kLastOf(ts);
    sendLate(t, ts, startOf(kl), endOf(kl), out);
    return;
  }
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
    // Only here: the 128-bit division (a call into libgcc) cost ~50 instructions per tuple.
    const i128 kl = kLastOf(ts);
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
void WindowState::countForKey(const KeyView& kv, uint32_t id, int64_t ts, Emitter& out) {
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
void WindowState::emitKeyWindow(i128 k, uint32_t id, Emitter& out) {
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

// ---- sessions ----
void WindowState::onTupleSession(const Tuple& t, int64_t ts, Emitter& out) {
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

void WindowState::fireSession(const KeyView& kv, Sess& s, Emitter& out) {
  out.emit(row(keyOf(kv), Timestamp{s.start}, Timestamp{s.end}, s.accs));
  s.firedSeq = seq;
  if (cfg->trigger.purge) s.accs = freshAccs();
}

// ---- count windows ----
void WindowState::onTupleCount(const Tuple& t, Emitter& out) {
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

void WindowState::fireCount(const Key& key, CountState& c, Emitter& out) {
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
void WindowState::emitTable(bool allLive, Emitter& out) {
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

void WindowState::fireEarly(Emitter& out) {
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

void WindowState::advance(Timestamp w, Emitter& out) {
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

void WindowState::advanceSessions(Emitter& out) {
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

}  // namespace window_detail

using namespace window_detail;

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
                                                             : s.eventTimeOf(t);
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
