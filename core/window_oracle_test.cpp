// The window operator against a brute-force oracle: random keyed streams with bounded disorder
// and random watermarks (so some tuples are late, some within lateness), for every window kind,
// output mode and trigger. The oracle keeps every event in plain lists and recomputes every row
// from them; the operator keeps panes, merges partials and evicts. A second operator instance is
// snapshotted and restored into a fresh clone at random points; all three must agree after every
// single call.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <limits>
#include <random>

#include "gale/core/window.h"
#include "window_test_util.h"

namespace gale {
namespace {

using testing::RecordingEmitter;

constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

struct Ev {
  std::string key;
  int64_t ts, v;
  uint64_t seq;
};

Values aggRow(const std::string& key, Value start, Value end, const std::vector<Ev>& evs) {
  int64_t sum = 0, mx = std::numeric_limits<int64_t>::min();
  for (const auto& e : evs) {
    sum += e.v;
    mx = std::max(mx, e.v);
  }
  return Values{key, std::move(start), std::move(end), int64_t(evs.size()), sum,
                evs.empty() ? Value{} : Value{mx}};
}

struct Config {
  WindowKind window;
  OutputMode mode;
  int64_t lateness;
  Trigger trigger;
};

class Oracle {
 public:
  explicit Oracle(Config c)
      : c_(c),
        // Complete mode keeps every group and accepts late rows (Spark): nothing is evicted or
        // late before the end of time.
        lat_(c.mode == OutputMode::Complete ? std::numeric_limits<int64_t>::max() / 4 : c.lateness) {}
  std::vector<Values> rows;  // emitted by the current call
  uint64_t late = 0;

  void tuple(const std::string& key, int64_t ts, int64_t v) {
    const auto& w = c_.window;
    if (w.isCount()) return countTuple(key, v);
    Ev e{key, ts, v, 0};
    if (w.kind == WindowKind::Session) sessionTuple(e);
    else timeTuple(e);
    if (c_.trigger.kind == Trigger::Count && ++since_ >= c_.trigger.every) {
      since_ = 0;
      early();
    }
  }
  void watermark(int64_t w) {
    if (c_.window.isCount() || w <= W_) return;
    int64_t old = W_;
    W_ = w;
    if (c_.window.kind == WindowKind::Session) return sessionWatermark();
    for (auto it = win_.begin(); it != win_.end();) {
      int64_t k = it->first;
      bool complete = maxTs(k) <= W_;
      bool evict = sat(maxTs(k)) <= W_;
      if (c_.mode == OutputMode::Update && complete) dirty(k);
      if (evict) {
        if (c_.mode == OutputMode::Append) all(k, rows);
        if (c_.mode == OutputMode::Complete) all(k, frozen_);
        fired_.erase(k);
        keyCount_.erase(k);
        keyFired_.erase(k);
        it = win_.erase(it);
      } else {
        ++it;
      }
    }
    (void)old;
    if (c_.mode == OutputMode::Complete) table(false);
  }
  void processingTime(int64_t now) {
    if (c_.trigger.kind != Trigger::ProcessingTime) return;
    if (procFired_ && now - lastProc_ < c_.trigger.every) return;
    procFired_ = true;
    lastProc_ = now;
    early();
  }
  void end() {
    if (!c_.window.isCount()) return watermark(std::numeric_limits<int64_t>::max());
    const int64_t N = c_.window.size, M = c_.window.slide, g = std::gcd(N, M);
    for (auto& [key, cs] : counts_) {
      int64_t seen = cs.vals.size();
      if (seen == cs.lastFire) continue;
      int64_t lo = std::max<int64_t>(0, seen - N);
      lo = (lo + g - 1) / g * g;
      int64_t ws = std::max(cs.lastFire > 0 ? cs.lastFire + M - N : 0, lo);
      countRow(key, cs, ws, seen);
    }
  }

 private:
  int64_t maxTs(int64_t k) const {
    return c_.window.kind == WindowKind::Global ? std::numeric_limits<int64_t>::max() - 1
                                                : k * c_.window.slide + c_.window.size - 1;
  }
  Value startOf(int64_t k) const {
    return c_.window.kind == WindowKind::Global ? Timestamp{kNone} : Timestamp{k * c_.window.slide};
  }
  Value endOf(int64_t k) const {
    return c_.window.kind == WindowKind::Global ? Timestamp{std::numeric_limits<int64_t>::max()}
                                                : Timestamp{k * c_.window.slide + c_.window.size};
  }
  std::vector<int64_t> windowsOf(int64_t ts) const {
    if (c_.window.kind == WindowKind::Global) return {0};
    std::vector<int64_t> ks;
    for (int64_t k = floorDiv(ts, c_.window.slide); k * c_.window.slide + c_.window.size > ts; --k)
      ks.insert(ks.begin(), k);
    return ks;
  }

  void timeTuple(Ev e) {
    auto ks = windowsOf(e.ts);
    if (W_ != kNone && W_ >= sat(maxTs(ks.back()))) {
      ++late;
      return;
    }
    e.seq = ++seq_;
    for (int64_t k : ks)
      if (W_ == kNone || W_ < sat(maxTs(k))) win_[k][e.key].push_back(e);
    if (perKey()) {
      // Flink's CountTrigger per key and window: only the key's row, each n of its elements.
      for (int64_t k : ks) {
        if (W_ != kNone && W_ >= sat(maxTs(k))) continue;
        if (++keyCount_[k][e.key] < c_.trigger.every) continue;
        keyCount_[k][e.key] = 0;
        rows.push_back(aggRow(e.key, startOf(k), endOf(k), win_[k][e.key]));
        keyFired_[k][e.key] = seq_;
        if (c_.trigger.purge) win_[k].erase(e.key);
      }
    }
    if (c_.mode == OutputMode::Append || W_ == kNone) return;
    std::vector<int64_t> refire;
    for (int64_t k : ks)
      if (maxTs(k) <= W_ && W_ < sat(maxTs(k))) refire.push_back(k);
    if (refire.empty()) return;
    if (c_.mode == OutputMode::Update)
      for (int64_t k : refire) dirty(k);
    else
      table(false);
  }
  bool perKey() const { return c_.trigger.kind == Trigger::CountPerKey; }
  void dirty(int64_t k) {
    for (const auto& [key, evs] : win_[k]) {
      uint64_t last = std::max(fired_[k], keyFired_[k][key]);
      uint64_t mx = 0;
      for (const auto& e : evs) mx = std::max(mx, e.seq);
      if (mx > last) rows.push_back(aggRow(key, startOf(k), endOf(k), evs));
    }
    fired_[k] = seq_;
    if (c_.trigger.purge) win_[k].clear();  // fire and purge: the window starts again empty
  }
  void all(int64_t k, std::vector<Values>& into) {
    for (const auto& [key, evs] : win_[k]) into.push_back(aggRow(key, startOf(k), endOf(k), evs));
    fired_[k] = seq_;
  }
  void table(bool allLive) {
    rows.insert(rows.end(), frozen_.begin(), frozen_.end());
    if (c_.window.kind == WindowKind::Session) {
      for (auto& [key, list] : sessions_)
        for (auto& s : list)
          if (allLive || (W_ != kNone && s.end - 1 <= W_)) {
            rows.push_back(aggRow(key, Timestamp{s.start}, Timestamp{s.end}, s.evs));
            s.firedSeq = seq_;
          }
      return;
    }
    for (auto& [k, keys] : win_)
      if (allLive || (W_ != kNone && maxTs(k) <= W_)) all(k, rows);
  }
  void early() {
    if (c_.mode == OutputMode::Complete) return table(true);
    if (c_.window.kind == WindowKind::Session) {
      for (auto& [key, list] : sessions_)
        for (auto& s : list)
          if (s.seq > s.firedSeq) fireSession(key, s);
      return;
    }
    for (auto& [k, keys] : win_) dirty(k);
  }

  struct Sess {
    int64_t start, end;
    std::vector<Ev> evs;
    uint64_t seq = 0, firedSeq = 0;
    int64_t counted = 0;  // countPerKey: elements since the last count firing
  };
  void fireSession(const std::string& key, Sess& s) {
    rows.push_back(aggRow(key, Timestamp{s.start}, Timestamp{s.end}, s.evs));
    s.firedSeq = seq_;
    if (c_.trigger.purge) s.evs.clear();
  }
  void sessionTuple(Ev e) {
    const int64_t gap = c_.window.size;
    auto& list = sessions_[e.key];
    int64_t ms = e.ts, me = e.ts + gap;
    std::vector<size_t> hit;
    for (size_t i = 0; i < list.size(); ++i)
      if (list[i].start <= e.ts + gap && e.ts <= list[i].end) {  // touching sessions merge
        hit.push_back(i);
        ms = std::min(ms, list[i].start);
        me = std::max(me, list[i].end);
      }
    if (W_ != kNone && W_ >= sat(me - 1)) {
      ++late;
      if (list.empty()) sessions_.erase(e.key);
      return;
    }
    e.seq = ++seq_;
    Sess* s;
    if (hit.empty()) {
      list.push_back(Sess{e.ts, e.ts + gap, {}});
      s = &list.back();
    } else if (hit.size() == 1) {
      s = &list[hit[0]];
      s->start = ms;
      s->end = me;
    } else {
      Sess merged{ms, me, {}};
      for (size_t i : hit) {
        merged.evs.insert(merged.evs.end(), list[i].evs.begin(), list[i].evs.end());
        merged.counted += list[i].counted;  // Flink's CountTrigger.onMerge
      }
      for (size_t j = hit.size(); j-- > 0;) list.erase(list.begin() + hit[j]);
      list.push_back(std::move(merged));
      s = &list.back();
    }
    s->evs.push_back(e);
    s->seq = seq_;
    std::sort(list.begin(), list.end(), [](const Sess& a, const Sess& b) { return a.start < b.start; });
    for (auto& x : list)
      if (x.seq == seq_) s = &x;
    if (perKey() && ++s->counted >= c_.trigger.every) {
      s->counted = 0;
      fireSession(e.key, *s);
    }
    if (c_.mode != OutputMode::Append && W_ != kNone && s->end - 1 <= W_ && s->seq > s->firedSeq) {
      if (c_.mode == OutputMode::Update) {
        fireSession(e.key, *s);
      } else {
        table(false);
      }
    }
  }
  void sessionWatermark() {
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      auto& list = it->second;
      for (size_t i = 0; i < list.size();) {
        Sess& s = list[i];
        bool complete = s.end - 1 <= W_;
        bool evict = sat(s.end - 1) <= W_;
        if (c_.mode == OutputMode::Update && complete && s.seq > s.firedSeq)
          fireSession(it->first, s);
        if (evict) {
          auto r = aggRow(it->first, Timestamp{s.start}, Timestamp{s.end}, s.evs);
          if (c_.mode == OutputMode::Append) rows.push_back(r);
          if (c_.mode == OutputMode::Complete) frozen_.push_back(r);
          list.erase(list.begin() + i);
        } else {
          ++i;
        }
      }
      if (list.empty()) it = sessions_.erase(it);
      else ++it;
    }
    if (c_.mode == OutputMode::Complete) table(false);
  }

  struct CountS {
    std::vector<int64_t> vals;
    int64_t lastFire = 0;
  };
  void countTuple(const std::string& key, int64_t v) {
    auto& cs = counts_[key];
    cs.vals.push_back(v);
    int64_t seen = cs.vals.size();
    if (seen % c_.window.slide == 0) countRow(key, cs, std::max<int64_t>(0, seen - c_.window.size), seen);
  }
  void countRow(const std::string& key, CountS& cs, int64_t from, int64_t to) {
    std::vector<Ev> evs;
    for (int64_t i = from; i < to; ++i) evs.push_back(Ev{key, 0, cs.vals[i], 0});
    rows.push_back(aggRow(key, from, to, evs));
    cs.lastFire = to;
  }

  // x + lateness, saturating (a global window's end is the end of time).
  int64_t sat(int64_t x) const {
    return x > std::numeric_limits<int64_t>::max() - lat_ ? std::numeric_limits<int64_t>::max()
                                                          : x + lat_;
  }
  Config c_;
  int64_t lat_;
  int64_t W_ = kNone;
  uint64_t seq_ = 0;
  int64_t since_ = 0;
  bool procFired_ = false;
  int64_t lastProc_ = 0;
  std::map<int64_t, std::map<std::string, std::vector<Ev>>> win_;
  std::map<int64_t, uint64_t> fired_;
  std::map<int64_t, std::map<std::string, int64_t>> keyCount_;    // countPerKey: per window, key
  std::map<int64_t, std::map<std::string, uint64_t>> keyFired_;   // seq at its last count firing
  std::vector<Values> frozen_;
  std::map<std::string, std::vector<Sess>> sessions_;
  std::map<std::string, CountS> counts_;
};

std::vector<Values> sorted(std::vector<Values> v) {
  std::sort(v.begin(), v.end());
  return v;
}

std::string describe(const Config& c, uint64_t seed) {
  return c.window.describe() + " mode=" + outputModeName(c.mode) +
         " lateness=" + std::to_string(c.lateness) + " trigger=" + std::to_string(c.trigger.kind) +
         "/" + std::to_string(c.trigger.every) + (c.trigger.purge ? " purging" : "") +
         " seed=" + std::to_string(seed);
}

// Runs one random stream through the operator, a snapshot-restored twin and the oracle.
void runOne(const Config& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto b = windowed(c.window, Count{}, Sum{"v"}, Max{"v"}).keyBy({"word"}).outputMode(c.mode)
               .trigger(c.trigger);
  if (!c.window.isCount()) b.eventTime("ts").allowedLateness(Duration(c.lateness));
  std::unique_ptr<Operator> op = b.build();
  std::unique_ptr<Operator> twin = op->clone();
  Oracle oracle(c);

  const int n = 150;
  const int64_t disorder = 6;
  struct In {
    int64_t arrival, ts;
    std::string key;
    int64_t v;
  };
  std::vector<In> in;
  for (int i = 0; i < n; ++i) {
    int64_t ts = i / 2 + static_cast<int64_t>(rng() % 3) - 20;
    in.push_back({ts + static_cast<int64_t>(rng() % disorder), ts,
                  std::string(1, static_cast<char>('a' + rng() % 3)), static_cast<int64_t>(rng() % 9) + 1});
  }
  std::stable_sort(in.begin(), in.end(), [](const In& x, const In& y) { return x.arrival < y.arrival; });

  int64_t maxSeen = kNone, now = 0;
  auto check = [&](RecordingEmitter& a, RecordingEmitter& t, const std::string& what) {
    ASSERT_EQ(sorted(a.main()), sorted(oracle.rows)) << what << " " << describe(c, seed);
    ASSERT_EQ(sorted(t.main()), sorted(oracle.rows)) << "restored twin, " << what << " "
                                                     << describe(c, seed);
    a.clear();
    t.clear();
    oracle.rows.clear();
  };
  for (size_t i = 0; i < in.size(); ++i) {
    RecordingEmitter a, t;
    Tuple tuple = testing::tup(in[i].key, Timestamp{in[i].ts}, in[i].v);
    op->onTuple(tuple, a);
    twin->onTuple(tuple, t);
    oracle.tuple(in[i].key, in[i].ts, in[i].v);
    check(a, t, "tuple " + std::to_string(i));
    maxSeen = std::max(maxSeen, in[i].ts);
    if (rng() % 3 == 0) {
      // Sometimes a watermark tighter than the disorder, so some tuples come late.
      int64_t w = maxSeen - static_cast<int64_t>(rng() % (disorder + 2));
      op->onWatermark(Timestamp{w}, a);
      twin->onWatermark(Timestamp{w}, t);
      oracle.watermark(w);
      check(a, t, "watermark " + std::to_string(w));
    }
    if (rng() % 5 == 0) {
      now += static_cast<int64_t>(rng() % 4);
      op->onProcessingTime(Timestamp{now}, a);
      twin->onProcessingTime(Timestamp{now}, t);
      oracle.processingTime(now);
      check(a, t, "processing time");
    }
    if (rng() % 7 == 0) {
      auto fresh = twin->clone();
      fresh->restore(twin->snapshot());
      twin = std::move(fresh);
    }
  }
  RecordingEmitter a, t;
  op->onEndOfInput(a);
  twin->onEndOfInput(t);
  oracle.end();
  check(a, t, "end of input");
  EXPECT_EQ(static_cast<WindowOperator&>(*op).lateCount(), oracle.late) << describe(c, seed);
  EXPECT_EQ(static_cast<WindowOperator&>(*twin).lateCount(), oracle.late) << describe(c, seed);
}

TEST(WindowOracle, EveryWindowKindOutputModeAndTriggerMatchesABruteForceOracle) {
  const std::vector<WindowKind> kinds = {
      Tumbling(Duration(10)), Sliding(Duration(10), Duration(4)), Sliding(Duration(9), Duration(3)),
      Session(Duration(4)), GlobalWindow()};
  int runs = 0;
  for (const auto& w : kinds) {
    for (OutputMode mode : {OutputMode::Append, OutputMode::Update, OutputMode::Complete}) {
      for (int64_t lateness : {0, 3}) {
        for (Trigger trig : {Trigger::eventTime(), Trigger::processingTime(Duration(3)),
                             Trigger::count(7), Trigger::countPerKey(3),
                             Trigger::countPerKey(2).purging()}) {
          if (w.kind == WindowKind::Global && (mode == OutputMode::Append || lateness)) continue;
          if (trig.kind == Trigger::CountPerKey && mode != OutputMode::Update) continue;
          if (trig.purge && w.kind == WindowKind::Sliding) continue;  // rejected: shared elements
          if (mode == OutputMode::Complete && lateness) continue;  // rejected: no lateness there
          if (mode == OutputMode::Append && trig.kind != Trigger::EventTime) continue;
          for (uint64_t seed = 1; seed <= 4; ++seed) {
            runOne(Config{w, mode, lateness, trig}, seed * 7919 + runs);
            if (HasFatalFailure()) return;
            ++runs;
          }
        }
      }
    }
  }
  for (const auto& w : {CountTumbling(3), CountSliding(5, 2), CountSliding(4, 4), CountSliding(6, 4)}) {
    for (uint64_t seed = 1; seed <= 10; ++seed) {
      runOne(Config{w, OutputMode::Update, 0, Trigger::eventTime()}, seed);
      if (HasFatalFailure()) return;
      ++runs;
    }
  }
  EXPECT_EQ(runs, 296) << "every combination ran";
}

}  // namespace
}  // namespace gale
