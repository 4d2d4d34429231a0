// checkpoint_bench: what an exactly-once checkpoint costs a continuous job with large state
// (issue 13's figures): checkpoint duration, p99 latency during a checkpoint against steady state,
// and the time from a restart to processing again with that state restored.
//
//   checkpoint_bench [--state-mb 100] [--rate 20000] [--seconds 10] [--interval-ms 1000]
//                    [--snapshot async|sync]
//
// The job: generated records (field "n") at a fixed rate -> one task of a keyed operator holding
// --state-mb of state (keys of 100-byte values, each record rewrites a byte of key n % keys) in a
// CopyOnWriteMap, snapshotted asynchronously (AsyncSnapshot: frozen at the barrier, serialized on
// the checkpoint coordinator's thread) or, with --snapshot sync, whole by snapshot() at the
// barrier on the task's thread (as before asynchronous snapshots) ->
// a sink bolt that records each record's latency from the time it was due (no coordinated
// omission). Run 1 runs --seconds with a checkpoint every --interval-ms, then is killed; run 2
// restarts on the same checkpoint directory (as after a crash) and the bench times it until the
// operator has its state back and has processed a record.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cli.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/async_snapshot.h"
#include "gale/core/copy_on_write_map.h"
#include "gale/core/histogram.h"
#include "gale/core/state_codec.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

using namespace gale;
using namespace gale::examples;

namespace {

constexpr size_t kValueBytes = 100;

int64_t now() { return SystemClock::steadyNanos(); }

// What the tasks tell the bench (one stateful task, one sink task). The checkpoint writer's
// thread runs at nice 10 and shares no lock with the tasks here: preempted while holding one, it
// would stall the task that waits for it (the bench would measure its own priority inversion).
struct Probe {
  std::mutex mutex;  // the tasks' fields
  std::vector<int64_t> snapshotStarts;    // when the snapshot began on the task's thread
  std::vector<int64_t> snapshotNanos;     // time on the task's thread (snapshot() or the freeze)
  std::mutex writerMutex;  // the fields below, also written by the checkpoint writer's thread
  std::vector<int64_t> asyncNanos;        // time of the asynchronous part (another thread)
  std::map<uint64_t, size_t> snapshotHashes;  // checkpoint id -> hash of its state's bytes
  size_t snapshotBytes = 0;
  uint64_t shardCopies = 0;               // shards copied because a view held them
  size_t restoredHash = 0;
  int64_t restoredAt = 0;                 // when restore() returned
  std::atomic<int64_t> firstRecordAt{0};  // the first record processed after restore()
  std::vector<std::pair<int64_t, int64_t>> records;  // (due, reached the sink)
};

using Values100 = CopyOnWriteMap<int64_t, std::string>;

// The state's bytes, from the map or from a frozen view of it.
template <class Entries>
std::string encodeState(const Entries& entries) {
  StateWriter w;
  w.header("BIGS", 2);
  w.varint(entries.size());
  entries.forEach([&](int64_t key, const std::string& v) {
    w.svarint(key);
    w.str(v);
  });
  return w.take();
}

// Keyed state of `keys` values of kValueBytes; `prefill`: start with all of it (run 1) rather
// than empty (run 2 gets it from the checkpoint). Its whole snapshot() runs on the task's thread.
class BigState : public Operator {
 public:
  BigState(std::shared_ptr<Probe> probe, size_t keys, bool prefill)
      : probe_(std::move(probe)), keys_(keys), prefill_(prefill) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<BigState>(probe_, keys_, prefill_);
  }
  void open(const OperatorContext&) override {
    if (!prefill_) return;
    values_.reserve(keys_);
    for (size_t k = 0; k < keys_; ++k) values_[static_cast<int64_t>(k)].assign(kValueBytes, 'x');
  }
  void onTuple(const Tuple& t, Emitter& out) override {
    int64_t n = t.getInt(size_t{0});
    std::string& v = values_[n % static_cast<int64_t>(keys_)];
    v.resize(kValueBytes, 'x');
    v[static_cast<size_t>(n) % kValueBytes] ^= 1;
    if (restored_ && probe_->firstRecordAt == 0) probe_->firstRecordAt = now();
    out.emit(Values{n});
  }
  bool stateful() const override { return true; }
  std::string snapshot() const override {
    int64_t start = now();
    std::string bytes = encodeState(values_);
    record(start, now() - start);
    recordBytes(*probe_, ++snapshots_, bytes, 0);
    return bytes;
  }
  void restore(std::string_view bytes) override {
    StateReader r(bytes, "checkpoint_bench state");
    r.header("BIGS", 2);
    values_.clear();
    uint64_t n = r.count("keys", kValueBytes + 2);
    values_.reserve(n);
    for (; n > 0; --n) {
      int64_t key = r.svarint("key");
      values_[key] = r.str("value");
    }
    r.expectEnd();
    restored_ = true;
    std::lock_guard lk(probe_->mutex);
    probe_->restoredHash = std::hash<std::string_view>{}(bytes);
    probe_->restoredAt = now();
  }
  size_t stateSize() const override { return values_.size(); }

 protected:
  void record(int64_t start, int64_t took) const {
    std::lock_guard lk(probe_->mutex);
    probe_->snapshotStarts.push_back(start);
    probe_->snapshotNanos.push_back(took);
    probe_->shardCopies = values_.shardCopies();
  }
  // Also from the coordinator's thread, which may outlive the operator (a killed run). The hash
  // of 100 MB is taken before the lock, which the sink takes per record.
  static void recordBytes(Probe& probe, uint64_t id, const std::string& bytes,
                          int64_t asyncNanos) {
    size_t hash = std::hash<std::string>{}(bytes);
    std::lock_guard lk(probe.writerMutex);
    probe.snapshotHashes[id] = hash;
    probe.snapshotBytes = bytes.size();
    if (asyncNanos) probe.asyncNanos.push_back(asyncNanos);
  }

  std::shared_ptr<Probe> probe_;
  size_t keys_;
  bool prefill_;
  bool restored_ = false;
  mutable uint64_t snapshots_ = 0;  // snapshot() calls: checkpoint k is the k-th in a new run
  Values100 values_;
};

// The same state snapshotted asynchronously: frozen at the barrier, serialized by the checkpoint
// coordinator's thread while records after the barrier change the map.
class AsyncBigState final : public BigState, public AsyncSnapshot {
 public:
  using BigState::BigState;
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<AsyncBigState>(probe_, keys_, prefill_);
  }
  Write snapshotAsync(uint64_t id) override {
    int64_t start = now();
    Values100::View view = values_.freeze();
    record(start, now() - start);
    return [probe = probe_, view, id] {
      int64_t began = now();
      std::string bytes = encodeState(view);
      recordBytes(*probe, id, bytes, now() - began);
      return bytes;
    };
  }
};

class LatencySink final : public Bolt {
 public:
  explicit LatencySink(std::shared_ptr<Probe> probe) : probe_(std::move(probe)) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<LatencySink>(probe_); }
  void execute(const Tuple& t, OutputCollector&) override {
    int64_t at = now();
    std::lock_guard lk(probe_->mutex);
    probe_->records.emplace_back(t.originNanos(), at);
  }

 private:
  std::shared_ptr<Probe> probe_;
};

// rate 0: unthrottled.
Topology job(std::shared_ptr<Probe> probe, size_t keys, bool prefill, double rate, bool async) {
  GeneratorSource::Options o;
  o.name = "numbers";
  o.ratePerSecond = rate;
  TopologyBuilder b;
  b.setSpout("numbers",
             std::make_shared<GeneratorSource>(
                 Fields{{"n", Type::Int64}},
                 [](int, int64_t offset) { return Values{offset}; }, o),
             1);
  if (async) {
    b.setBolt("state", AsyncBigState(probe, keys, prefill), 1)
        .fieldsGrouping("numbers", Fields{"n"});
  } else {
    b.setBolt("state", BigState(probe, keys, prefill), 1).fieldsGrouping("numbers", Fields{"n"});
  }
  b.setBolt("sink", LatencySink(probe), 1).shuffleGrouping("state");
  return b.build();
}

struct Interval {
  int64_t start = 0, end = 0;  // barrier injected .. checkpoint record written
};

double ms(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

void printLatency(const char* what, const Histogram& h) {
  std::printf("  latency %-22s p50 %9.3f ms  p99 %9.3f ms  max %9.3f ms  (n=%llu)\n", what,
              ms(h.percentile(0.5)), ms(h.percentile(0.99)), ms(h.max()),
              static_cast<unsigned long long>(h.count()));
}

// --trace: one line per checkpoint point ("point,name,id,nanos"), per snapshot on the task's
// thread ("snapshot,start,nanos") and per record ("record,due,reached the sink"), for finding
// where the records that waited during a checkpoint lost their time.
void writeTrace(const std::string& path, const Probe& probe,
                const std::vector<std::tuple<CheckpointPoint, uint64_t, int64_t>>& points) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write the trace to " + path);
  for (auto [p, id, at] : points)
    std::fprintf(f, "point,%s,%llu,%lld\n", checkpointPointName(p),
                 static_cast<unsigned long long>(id), static_cast<long long>(at));
  for (size_t i = 0; i < probe.snapshotStarts.size(); ++i)
    std::fprintf(f, "snapshot,%lld,%lld\n", static_cast<long long>(probe.snapshotStarts[i]),
                 static_cast<long long>(probe.snapshotNanos[i]));
  for (auto [due, at] : probe.records)
    std::fprintf(f, "record,%lld,%lld\n", static_cast<long long>(due), static_cast<long long>(at));
  std::fclose(f);
}

struct Settings {
  double stateMb = 100;
  double rate = 20000;
  double seconds = 10;
  int intervalMs = 1000;
  bool sync = true;
  bool async = true;
  std::string trace;  // a file for every record's times and every checkpoint point (or empty)
};

int run(const Settings& s) {
  const size_t keys =
      std::max<size_t>(1, static_cast<size_t>(s.stateMb * 1e6 / (kValueBytes + 1)));
  std::filesystem::path chk = std::filesystem::temp_directory_path() /
                              ("gale-checkpoint-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(chk);
  std::printf("checkpoint_bench: %zu keys x %zu B of state in one task, %.0f records/s for %.0f s, "
              "a checkpoint every %d ms (%s), %s snapshots\n",
              keys, kValueBytes, s.rate, s.seconds, s.intervalMs,
              s.sync ? "fsync'ed" : "not fsync'ed", s.async ? "asynchronous" : "synchronous");

  // Run 1: checkpoints under a steady load, then killed.
  auto probe = std::make_shared<Probe>();
  // The points the tasks report and the one the writer reports (CheckpointWritten), under two
  // locks (see Probe).
  struct Points {
    std::mutex mutex;
    std::map<uint64_t, int64_t> at;  // checkpoint id -> its first such point
    std::vector<std::tuple<CheckpointPoint, uint64_t, int64_t>> all;  // for --trace
  } taskPoints, writerPoints;
  Continuous c{.guarantee = Guarantee::ExactlyOnce,
               .checkpointInterval = std::chrono::milliseconds(s.intervalMs),
               .checkpointDir = chk.string(),
               .checkpointSync = s.sync};
  c.onCheckpointPoint = [&](CheckpointPoint p, uint64_t id) {
    bool written = p == CheckpointPoint::CheckpointWritten;
    if (!written && p != CheckpointPoint::BarrierInjected && s.trace.empty()) return;
    Points& to = written ? writerPoints : taskPoints;
    int64_t t = now();
    std::lock_guard lk(to.mutex);
    if (written || p == CheckpointPoint::BarrierInjected) to.at.emplace(id, t);
    if (!s.trace.empty()) to.all.emplace_back(p, id, t);
  };
  // Room for every record up front: the vector's growth (a copy of megabytes under the lock the
  // sink takes per record) would itself delay records by a millisecond at each doubling.
  probe->records.reserve(static_cast<size_t>(s.rate * (s.seconds + 2)));
  {
    auto rt = runContinuous(job(probe, keys, true, s.rate, s.async), c);
    std::this_thread::sleep_for(std::chrono::duration<double>(s.seconds));
    rt.kill();
  }
  // A fused task snapshots inside the spout's emit of the barrier, before BarrierInjected is
  // reported: a checkpoint starts at whichever came first (checkpoint k is the k-th snapshot).
  std::vector<Interval> done;
  for (auto [id, end] : writerPoints.at) {
    auto started = taskPoints.at.find(id);
    if (started == taskPoints.at.end()) continue;
    Interval i{started->second, end};
    if (id <= probe->snapshotStarts.size())
      i.start = std::min(i.start, probe->snapshotStarts[id - 1]);
    done.push_back(i);
  }
  std::fflush(stdout);
  if (done.size() < 2) {
    std::fprintf(stderr, "checkpoint_bench: only %zu checkpoints completed in %.0f s; run longer "
                 "(--seconds) or checkpoint more often (--interval-ms)\n", done.size(), s.seconds);
    std::filesystem::remove_all(chk);
    return 1;
  }
  Histogram duration, snapshot;
  for (const Interval& i : done) duration.record(i.end - i.start);
  for (int64_t n : probe->snapshotNanos) snapshot.record(n);
  std::printf("  state snapshot %.1f MB; checkpoints completed %zu\n",
              static_cast<double>(probe->snapshotBytes) / 1e6, done.size());
  std::printf("  checkpoint duration (barrier injected -> record written): p50 %.1f ms  max %.1f "
              "ms; of it the snapshot on the task's thread: p50 %.1f ms  max %.1f ms\n",
              ms(duration.percentile(0.5)), ms(duration.max()), ms(snapshot.percentile(0.5)),
              ms(snapshot.max()));
  if (s.async) {
    Histogram async;
    for (int64_t n : probe->asyncNanos) async.record(n);
    std::printf("  asynchronous part (serializing the frozen view, coordinator's thread): p50 %.1f "
                "ms  max %.1f ms; shards copied on write while a view was held: %llu\n",
                ms(async.percentile(0.5)), ms(async.max()),
                static_cast<unsigned long long>(probe->shardCopies));
  }

  // A record is "during a checkpoint" when it was due while one was in progress (records due
  // before a barrier are ahead of it, so a pause at the barrier delays only those due after it);
  // records due before the first checkpoint completed are warm-up (the prefill).
  Histogram steady, during;
  for (auto [due, at] : probe->records) {
    if (due <= done.front().end) continue;
    bool inCheckpoint = std::any_of(done.begin(), done.end(), [&](const Interval& i) {
      return due >= i.start && due <= i.end;
    });
    (inCheckpoint ? during : steady).record(at - due);
  }
  printLatency("steady state", steady);
  printLatency("during a checkpoint", during);
  double ratio = steady.count() ? static_cast<double>(during.percentile(0.99)) /
                                      static_cast<double>(std::max<int64_t>(1, steady.percentile(0.99)))
                                : 0;
  std::printf("  p99 during a checkpoint / steady state: %.2f (target <= 2)\n", ratio);
  if (!s.trace.empty()) {
    taskPoints.all.insert(taskPoints.all.end(), writerPoints.all.begin(), writerPoints.all.end());
    writeTrace(s.trace, *probe, taskPoints.all);
  }

  // Run 2: a restart on the same directory; the source is unthrottled so records are there at once.
  uint64_t last = StateStore::inspect(chk.string())->lastCommittedTxid();
  auto probe2 = std::make_shared<Probe>();
  int64_t start = now();
  auto rt = runContinuous(job(probe2, keys, false, 0, s.async), c);
  while (probe2->firstRecordAt == 0 && now() - start < 60'000'000'000)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  rt.kill();
  std::filesystem::remove_all(chk);
  std::fflush(stdout);
  if (probe2->firstRecordAt == 0) {
    std::fprintf(stderr, "checkpoint_bench: the restarted job processed nothing in 60 s\n");
    return 1;
  }
  auto hash = probe->snapshotHashes.find(last);
  bool same = hash != probe->snapshotHashes.end() && probe2->restoredHash == hash->second;
  std::printf("  recovery from checkpoint %llu: state restored after %.1f ms, first record "
              "processed after %.1f ms (target < 1000 ms); restored state equals the "
              "checkpoint's: %s\n",
              static_cast<unsigned long long>(last), ms(probe2->restoredAt - start),
              ms(probe2->firstRecordAt - start), same ? "yes" : "NO");
  return same ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  bool noSync = false;
  CLI::App app("checkpoint cost of an exactly-once continuous job with large state");
  app.add_option("--state-mb", s.stateMb, "state held by the stateful task, in MB")
      ->check(positive<double>());
  app.add_option("--rate", s.rate, "records per second offered")->check(positive<double>());
  app.add_option("--seconds", s.seconds, "length of the measured run")->check(positive<double>());
  app.add_option("--interval-ms", s.intervalMs, "checkpoint interval")->check(positive<int>());
  app.add_flag("--no-sync", noSync, "do not fsync checkpoints");
  app.add_option("--trace", s.trace, "write every record's and checkpoint point's times here");
  std::string snapshotMode = "async";
  app.add_option("--snapshot", snapshotMode,
                 "async: frozen at the barrier, written by another thread; sync: whole, on the "
                 "task's thread at the barrier")
      ->check(CLI::IsMember({"async", "sync"}));
  if (auto rc = parseCommandLine(app, argc, argv)) return *rc;
  s.sync = !noSync;
  s.async = snapshotMode == "async";
  try {
    return run(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "checkpoint_bench: %s\n", e.what());
    return 1;
  }
}
