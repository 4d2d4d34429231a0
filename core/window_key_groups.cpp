// The window operator's state split by key group and put together again in another parallelism
// (gale/core/key_group.h). Each group's blob is an ordinary window snapshot of that group's keys
// (with the task's watermark, sequence and fired windows, which the merge needs); the head is
// one with no keys.
#include <numeric>

#include "gale/core/state_codec.h"
#include "gale/core/window_state.h"

namespace gale {

namespace {
using namespace window_detail;

void copyHead(WindowState& to, const WindowState& from) {
  to.wm = from.wm;
  to.seq = from.seq;
  to.late = from.late;
  to.procFired = from.procFired;
  to.lastProcFire = from.lastProcFire;
  to.sinceFire = from.sinceFire;
  to.windowFired = from.windowFired;
}

// Partial aggregates are move-only: a split copies them (the live state stays as it is).
std::vector<Acc> copyAccs(const std::vector<Acc>& v) {
  std::vector<Acc> out;
  out.reserve(v.size());
  for (const Acc& a : v) out.push_back(a.copy());
  return out;
}
std::vector<Sess> copySessions(const std::vector<Sess>& list) {
  std::vector<Sess> out;
  for (const Sess& x : list)
    out.push_back(Sess{x.start, x.end, x.seq, x.firedSeq, copyAccs(x.accs), x.counted});
  return out;
}
CountState copyCounts(const CountState& c) {
  CountState out{c.seen, c.lastFireEnd, {}};
  for (const CountPane& p : c.panes)
    out.panes.push_back(CountPane{p.start, p.fill, copyAccs(p.accs)});
  return out;
}

// Adds every key's data of `from` to the state `target(key)` picks (one pass over the state).
template <class Target>
void distribute(const WindowState& from, Target&& target) {
  const size_t nk = from.cfg->keys.size(), nA = from.nA;
  std::vector<int> idx(nk);
  std::iota(idx.begin(), idx.end(), 0);
  std::vector<WindowState*> ofId(from.keys.size(), nullptr);  // by key id, once per key
  for (const auto& [p, pane] : from.panes) {
    for (size_t s = 0; s < pane.size(); ++s) {
      WindowState*& to = ofId[pane.keyOf[s]];
      if (!to) to = target(from.keys.key(pane.keyOf[s]).values);
      Pane* tp = to->findPane(p);
      if (!tp) tp = &to->makePane(p);
      const Key& k = from.keys.key(pane.keyOf[s]);
      uint32_t x = to->slotIn(*tp, to->keys.intern(KeyView{&k.values, &idx, k.hash}));
      tp->seqOf[x] = pane.seqOf[s];
      for (size_t a = 0; a < nA; ++a) tp->accs[x * nA + a] = pane.accs[s * nA + a].copy();
    }
  }
  for (const Values& row : from.frozen) {
    Values key(row.begin(), row.begin() + static_cast<std::ptrdiff_t>(nk));  // a row starts with it
    target(key)->frozen.push_back(row);
  }
  for (const auto& [key, list] : from.sessions)
    target(key.values)->sessions.emplace(key, copySessions(list));
  for (const auto& [key, c] : from.counts) target(key.values)->counts.emplace(key, copyCounts(c));
  for (const auto& [k, m] : from.keyCounts)
    for (const auto& [key, kc] : m) target(key.values)->keyCounts[k].emplace(key, kc);
}

// Several old tasks' sequence numbers are unrelated: a row is re-emitted by an update-mode
// firing when its sequence is above its window's last firing (and its key's last count
// firing). Rebased onto `seq`, a row dirty against its own task's firings gets `seq`, a clean
// one 0, and every firing is recorded at `seq - 1`. A pane lies in one window only where
// windows own their elements (tumbling, global); sessions compare their own two sequences.
void rebase(WindowState& g, uint64_t seq) {
  for (auto& [p, pane] : g.panes) {
    const int64_t k = clamp64(g.kLastOf(g.paneStart(p)));
    auto fired = g.windowFired.find(k);
    const uint64_t lastSeq = fired == g.windowFired.end() ? 0 : fired->second;
    auto counted = g.keyCounts.find(k);
    for (size_t s = 0; s < pane.size(); ++s) {
      uint64_t rowSeq = pane.seqOf[s];
      bool dirty = rowSeq > lastSeq;
      if (dirty && counted != g.keyCounts.end()) {
        auto kc = counted->second.find(g.keys.key(pane.keyOf[s]));
        dirty = kc == counted->second.end() || rowSeq > kc->second.firedSeq;
      }
      pane.seqOf[s] = dirty ? seq : 0;
    }
  }
  for (auto& [k, m] : g.keyCounts)
    for (auto& [key, kc] : m) kc.firedSeq = seq - 1;
}
}  // namespace

KeyGroupedState::Split WindowOperator::snapshotKeyGroups(uint32_t maxParallelism) const {
  Split out;
  State head(&config_);
  copyHead(head, *state_);
  out.head = encodeState(head);
  std::map<uint32_t, std::unique_ptr<State>> parts;
  distribute(*state_, [&](const Values& key) -> WindowState* {
    std::unique_ptr<State>& part = parts[keyGroupOf(hashKeyValues(key), maxParallelism)];
    if (!part) {
      part = std::make_unique<State>(&config_);
      copyHead(*part, *state_);
    }
    return part.get();
  });
  for (const auto& [g, part] : parts) out.groups.emplace(g, encodeState(*part));
  return out;
}

std::string WindowOperator::whyTasksCannotMerge() const {
  State probe(&config_);
  const bool slidingDirty = probe.S != probe.P && config_.mode != OutputMode::Complete &&
                            (config_.mode == OutputMode::Update ||
                             config_.trigger.kind != Trigger::EventTime);
  if (!slidingDirty) return {};
  return "a sliding window that re-emits updated rows cannot merge the state of several tasks "
         "(rescale to a multiple of the parallelism it was checkpointed at)";
}

void WindowOperator::restoreKeyGroups(const std::vector<Head>& heads,
                                      const std::map<uint32_t, std::string_view>& groups,
                                      uint32_t maxParallelism) {
  if (heads.empty()) throw SnapshotError("window operator: a key-group restore without a head");
  auto merged = std::make_unique<State>(&config_);
  std::vector<std::unique_ptr<State>> old;
  for (const Head& h : heads) old.push_back(decodeState(h.bytes));
  const bool rebased = heads.size() > 1;
  if (rebased) {
    if (std::string why = whyTasksCannotMerge(); !why.empty())
      throw SnapshotError("window operator: " + why);
    for (const auto& o : old)
      if (o->wm != old.front()->wm)
        throw SnapshotError("window operator: the tasks' watermarks differ (" +
                            std::to_string(o->wm.micros) + " and " +
                            std::to_string(old.front()->wm.micros) +
                            "): not an aligned checkpoint");
    uint64_t seq = 0;
    for (const auto& o : old) seq = std::max(seq, o->seq);
    merged->seq = seq + 1;
    for (const auto& o : old)
      for (const auto& [k, q] : o->windowFired) merged->windowFired[k] = merged->seq - 1;
  } else {
    copyHead(*merged, *old.front());
    merged->late = merged->sinceFire = 0;
  }
  merged->wm = old.front()->wm;
  // Task-wide counters: each old task's once, in the task that owns its first group.
  for (size_t i = 0; i < heads.size(); ++i) {
    if (!heads[i].owner) continue;
    merged->late += old[i]->late;
    merged->sinceFire += old[i]->sinceFire;
  }
  for (const auto& o : old) {
    merged->procFired = merged->procFired || o->procFired;
    merged->lastProcFire = std::max(merged->lastProcFire, o->lastProcFire);
  }
  for (const auto& [group, bytes] : groups) {
    const uint32_t g = group;  // a copy: clang 14 (the fuzz build) cannot capture a binding
    std::unique_ptr<State> part = decodeState(bytes);
    if (part->wm != merged->wm)
      throw SnapshotError("window operator: key group " + std::to_string(g) +
                          " was taken at another watermark than its task's head");
    if (rebased) rebase(*part, merged->seq);
    distribute(*part, [&](const Values& key) -> WindowState* {
      if (keyGroupOf(hashKeyValues(key), maxParallelism) != g)
        throw SnapshotError("window operator: key group " + std::to_string(g) +
                            " holds a key of another group");
      return merged.get();
    });
  }
  state_ = std::move(merged);
}

}  // namespace gale
