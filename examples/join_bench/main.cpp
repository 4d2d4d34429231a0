// join_bench: the stateful operators of issue #9 beside the window operator, on the same
// machine in the same run. Streams: per side, event g has key splitmix(g) % keys and event time
// start + g * step - jitter (jitter < disorder), so with the defaults (1 M events per side, 10 K
// keys, 1 ms step, 1 s disorder) a key has an event every ~10 s per side.
//
//  - interval join: left join right on key, between(-range, +range) (default 5 s), inner;
//  - the same join with whole snapshots: micro-batch mode commits its whole state at every batch
//    end, as before the join's state was incremental (the "before" figure, in the same run);
//  - dropDuplicatesWithinWatermark on a guid (g / 2: every event twice), 1 s delay;
//  - a tumbling 10 s count per key (the window operator, for comparison).
//
// Each runs (a) as one operator called directly (watermark every 1000 events = max - disorder),
// and (b) through the continuous runtime (acking off) and the micro-batch runtime (available-now),
// source -> operator -> counting sink, one task each. Prints events/s (events in / wall seconds,
// final flush included) and the output row count (equal across (a) and (b) for the join and the
// window; checked).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <unistd.h>

#include "cli.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/core/aggregate.h"
#include "gale/core/dedup.h"
#include "gale/core/stream_join.h"
#include "gale/core/window.h"
#include "gale/topology/runtime.h"

using namespace std::chrono_literals;
using gale::Fields;
using gale::Timestamp;
using gale::Type;
using gale::Values;

namespace {

struct Params {
  int64_t events = 1'000'000;  // per side
  int64_t keys = 10'000;
  int64_t stepUs = 1'000;
  int64_t disorderUs = 1'000'000;
  int64_t rangeUs = 5'000'000;
  int64_t batchRecords = 200'000;  // micro-batch: records per batch
};

uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

const Fields kFields{{"k", Type::Int64}, {"ts", Type::Timestamp}};
constexpr int64_t kStart = 1'700'000'000'000'000;

Values event(const Params& p, uint64_t salt, int64_t g) {
  int64_t jitter = p.disorderUs > 0 ? static_cast<int64_t>(splitmix(g ^ salt) % p.disorderUs) : 0;
  return Values{static_cast<int64_t>(splitmix(g + salt) % p.keys),
                Timestamp{kStart + g * p.stepUs - jitter}};
}
// Dedup input: events come twice (same guid and event time).
Values twice(const Params& p, int64_t g) { return event(p, 0, g / 2); }

double secondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Counts what reaches it; the count is shared by every clone.
class CountingSink final : public gale::Operator {
 public:
  explicit CountingSink(std::shared_ptr<std::atomic<int64_t>> n) : n_(std::move(n)) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  std::unique_ptr<gale::Operator> clone() const override {
    return std::make_unique<CountingSink>(n_);
  }
  void onTuple(const gale::Tuple&, gale::Emitter&) override { n_->fetch_add(1); }

 private:
  std::shared_ptr<std::atomic<int64_t>> n_;
};

// The join as before incremental snapshots: an Operator that is not an IncrementalState, so the
// micro-batch runtime commits its whole snapshot() at every batch end.
class WholeSnapshots final : public gale::Operator {
 public:
  explicit WholeSnapshots(std::unique_ptr<gale::Operator> op) : op_(std::move(op)) {}
  void declareOutputFields(gale::OutputFieldsDeclarer& d) const override {
    op_->declareOutputFields(d);
  }
  std::unique_ptr<gale::Operator> clone() const override {
    return std::make_unique<WholeSnapshots>(op_->clone());
  }
  std::string checkPlacement(const std::vector<std::string>& inputs,
                             bool watermarked) const override {
    return op_->checkPlacement(inputs, watermarked);
  }
  void open(const gale::OperatorContext& c) override { op_->open(c); }
  void onTuple(const gale::Tuple& t, gale::Emitter& out) override { op_->onTuple(t, out); }
  void onWatermark(Timestamp w, gale::Emitter& out) override { op_->onWatermark(w, out); }
  void onProcessingTime(Timestamp now, gale::Emitter& out) override {
    op_->onProcessingTime(now, out);
  }
  void onEndOfInput(gale::Emitter& out) override { op_->onEndOfInput(out); }
  void onBatchBegin(uint64_t txid) override { op_->onBatchBegin(txid); }
  void onBatchEnd(uint64_t txid, gale::Emitter& out) override { op_->onBatchEnd(txid, out); }
  bool stateful() const override { return op_->stateful(); }
  std::string snapshot() const override { return op_->snapshot(); }
  void restore(std::string_view bytes) override { op_->restore(bytes); }
  size_t stateSize() const override { return op_->stateSize(); }
  uint64_t droppedByWatermark() const override { return op_->droppedByWatermark(); }

 private:
  std::unique_ptr<gale::Operator> op_;
};

struct CountingEmitter : gale::Emitter {
  using Emitter::emit;
  void emit(std::string_view stream, Values) override { rows += stream == gale::kDefaultStream; }
  int64_t rows = 0;
};

struct Case {
  std::string name;
  std::unique_ptr<gale::Operator> op;
  int sides;                                    // 1 or 2 inputs
  std::function<Values(int side, int64_t g)> gen;
};

// (a): the operator alone; inputs interleaved one event per side at a time.
int64_t runOperator(const Params& p, const Case& c, double& eps) {
  auto op = c.op->clone();
  CountingEmitter out;
  gale::SchemaPtr schema[2] = {gale::makeSchema("left", gale::kDefaultStream, kFields),
                               gale::makeSchema("right", gale::kDefaultStream, kFields)};
  int64_t maxTs = INT64_MIN;
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t g = 0; g < p.events; ++g) {
    for (int s = 0; s < c.sides; ++s) {
      Values v = c.gen(s, g);
      maxTs = std::max(maxTs, std::get<Timestamp>(v[1]).micros);
      op->onTuple(gale::Tuple(schema[s], std::move(v)), out);
    }
    if (g % 1000 == 999) op->onWatermark(Timestamp{maxTs - p.disorderUs}, out);
  }
  op->onWatermark(gale::kEndOfTime, out);
  op->onEndOfInput(out);
  eps = static_cast<double>(p.events * c.sides) / secondsSince(t0);
  return out.rows;
}

gale::Topology topology(const Params& p, const Case& c, std::shared_ptr<std::atomic<int64_t>> n) {
  gale::TopologyBuilder b;
  const char* names[2] = {"left", "right"};
  for (int s = 0; s < c.sides; ++s) {
    gale::GeneratorSource::Options o;
    o.name = names[s];
    o.total = p.events;
    auto gen = [g = c.gen, s](int, int64_t off) { return g(s, off); };
    b.setSpout(names[s], std::make_shared<gale::GeneratorSource>(kFields, gen, o), 1)
        .withWatermark("ts", gale::Duration(p.disorderUs));
  }
  auto bolt = b.setBolt("op", *c.op, 1);
  for (int s = 0; s < c.sides; ++s) bolt.fieldsGrouping(names[s], Fields{"k"});
  b.setBolt("sink", CountingSink(n), 1).shuffleGrouping("op");
  return b.build();
}

int64_t runContinuous(const Params& p, const Case& c, double& eps) {
  auto n = std::make_shared<std::atomic<int64_t>>(0);
  gale::Continuous cfg;
  cfg.acking = false;
  auto t0 = std::chrono::steady_clock::now();
  auto running = gale::runContinuous(topology(p, c, n), cfg);
  running.waitUntilDone();
  eps = static_cast<double>(p.events * c.sides) / secondsSince(t0);
  return n->load();
}

// Also returns the bytes the batches committed to LMDB (keys, values and snapshots, from the
// commit log): a measure of the state writes that does not depend on the machine's load.
int64_t runMicroBatch(const Params& p, const Case& c, double& eps, uint64_t& committedBytes) {
  auto n = std::make_shared<std::atomic<int64_t>>(0);
  auto dir = std::filesystem::temp_directory_path() /
             ("gale-join-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  gale::MicroBatch cfg;
  cfg.trigger = gale::BatchTrigger::availableNow();
  cfg.checkpoint = dir.string();
  cfg.maxRecordsPerBatch = p.batchRecords;
  auto t0 = std::chrono::steady_clock::now();
  auto job = gale::runMicroBatch(topology(p, c, n), cfg);
  job.waitUntilDone();
  eps = static_cast<double>(p.events * c.sides) / secondsSince(t0);
  committedBytes = 0;
  for (const auto& r : gale::StateStore::inspect(dir.string())->commitLog()) {
    committedBytes += r.bytes;
  }
  std::filesystem::remove_all(dir);
  return n->load();
}

}  // namespace

int main(int argc, char** argv) {
  Params p;
  std::string only;
  bool microBatchOnly = false;
  CLI::App app{"join_bench: interval join and deduplication beside the window operator, as one "
               "operator and through both runtimes",
               "join_bench"};
  using gale::examples::number;
  using gale::examples::positive;
  app.add_option("--events", p.events, "events per side")->check(positive<int64_t>());
  app.add_option("--keys", p.keys, "distinct keys")->check(positive<int64_t>());
  app.add_option("--step-us", p.stepUs, "event-time step per event (µs)")->check(positive<int64_t>());
  app.add_option("--disorder-us", p.disorderUs, "max disorder = watermark delay (µs)")
      ->check(number<int64_t>(0));
  app.add_option("--range-us", p.rangeUs, "join range: right.t within left.t +- this (µs)")
      ->check(number<int64_t>(0));
  app.add_option("--batch-records", p.batchRecords, "micro-batch: records per batch (both sides)")
      ->check(positive<int64_t>());
  app.add_flag("--micro-batch-only", microBatchOnly,
               "run only the micro-batch column (for profiling it)");
  app.add_option("--only", only, "run the cases whose name has this: join, dedup or window");
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;

  std::vector<Case> cases;
  auto join = [&] {
    return std::make_unique<gale::StreamJoin>(
        gale::JoinSide{"left", kFields, {"k"}, "ts"}, gale::JoinSide{"right", kFields, {"k"}, "ts"},
        gale::JoinType::Inner,
        gale::between(gale::Duration(-p.rangeUs), gale::Duration(p.rangeUs)));
  };
  auto joinInput = [&](int s, int64_t g) { return event(p, s ? 0x5151 : 0, g); };
  cases.push_back({"interval join", join(), 2, joinInput});
  cases.push_back(
      {"join, whole snapshots", std::make_unique<WholeSnapshots>(join()), 2, joinInput});
  cases.push_back({"dedup", std::make_unique<gale::Deduplicate>(gale::dropDuplicatesWithinWatermark(
                                kFields, {"k", "ts"}, "ts", gale::Duration(p.disorderUs))),
                   1, [&](int, int64_t g) { return twice(p, g); }});
  cases.push_back({"window", windowed(gale::Tumbling(10s), gale::Count{}).keyBy({"k"})
                                 .eventTime("ts").outputMode(gale::OutputMode::Append).build(),
                   1, [&](int, int64_t g) { return event(p, 0, g); }});

  std::printf("join_bench: %lld events per side, %lld keys, step %lld us, disorder %lld us, "
              "join range +-%lld us, %lld records per micro-batch\n",
              static_cast<long long>(p.events), static_cast<long long>(p.keys),
              static_cast<long long>(p.stepUs), static_cast<long long>(p.disorderUs),
              static_cast<long long>(p.rangeUs), static_cast<long long>(p.batchRecords));
  std::printf("%-22s %14s %14s %14s %12s %14s\n", "case", "operator ev/s", "continuous",
              "micro-batch", "rows", "MB committed");
  for (const Case& c : cases) {
    if (!only.empty() && c.name.find(only) == std::string::npos) continue;
    double a = 0, b = 0, m = 0;
    int64_t rm = 0;
    uint64_t bytes = 0;
    if (microBatchOnly) {
      rm = runMicroBatch(p, c, m, bytes);
      std::printf("%-22s %14s %14s %14.0f %12lld %14.1f\n", c.name.c_str(), "-", "-", m,
                  static_cast<long long>(rm), static_cast<double>(bytes) / 1e6);
      continue;
    }
    int64_t ra = runOperator(p, c, a);
    int64_t rb = runContinuous(p, c, b);
    rm = runMicroBatch(p, c, m, bytes);
    std::printf("%-22s %14.0f %14.0f %14.0f %12lld %14.1f%s\n", c.name.c_str(), a, b, m,
                static_cast<long long>(ra), static_cast<double>(bytes) / 1e6,
                (ra == rb && ra == rm) ? "" : "  ROWS DIFFER");
    if (ra != rb || ra != rm) {
      std::printf("  rows: operator %lld, continuous %lld, micro-batch %lld (late rows differ "
                  "with the watermark's timing)\n",
                  static_cast<long long>(ra), static_cast<long long>(rb), static_cast<long long>(rm));
    }
  }
  return 0;
}
