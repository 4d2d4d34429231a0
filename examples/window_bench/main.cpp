// window_bench: a keyed sliding-window sum through ONE window operator by direct calls (no
// runtime, no transport): 10 K keys, 10 s windows sliding by 1 s, event times disordered by up
// to `--disorder-ms`, a watermark (max event time - disorder) every 100 ms of event time.
// Prints events/s and the latency from a watermark's arrival to each result row it releases
// (p50/p99/p99.9 from gale::Histogram).
//
//   window_bench [--events N] [--keys K] [--per-key-per-sec R] [--disorder-ms D]
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cli.h"
#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/core/window.h"

using namespace std::chrono_literals;

namespace {

// Counts rows and records, for rows released by a watermark, the time since its arrival.
class LatencyEmitter : public gale::Emitter {
 public:
  using Emitter::emit;
  void emit(std::string_view stream, gale::Values) override {
    if (stream == gale::kDefaultStream) ++rows;
    else ++late;
    if (watermarkAt) latency.record(gale::SystemClock::steadyNanos() - watermarkAt);
  }
  int64_t watermarkAt = 0;
  uint64_t rows = 0, late = 0;
  gale::Histogram latency;
};

// This thread's CPU time: unlike wall time, it does not count other processes' turns on a
// shared machine.
int64_t threadCpuNanos() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

struct Options {
  int64_t events = 20'000'000, keys = 10'000, perKeyPerSec = 20, disorderMs = 500;
};

// Every option of window_bench, in one place.
void defineOptions(CLI::App& app, Options& o) {
  app.description(
      "window_bench: a keyed Sliding(10s, 1s) sum through one window operator by direct calls: "
      "events/s and watermark -> result latency.");
  app.add_option("--events", o.events, "events")
      ->capture_default_str()
      ->check(gale::examples::positive<int64_t>());
  app.add_option("--keys", o.keys, "distinct keys")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(1, int64_t{100'000'000}));
  app.add_option("--per-key-per-sec", o.perKeyPerSec, "events per key per second of event time")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(1, int64_t{1'000'000}));
  app.add_option("--disorder-ms", o.disorderMs, "bounded disorder of event times")
      ->capture_default_str()
      ->check(gale::examples::number<int64_t>(0, int64_t{86'400'000}));
  // A watermark every 100 ms of event time must fall between events.
  app.callback([&o] {
    if (o.keys * o.perKeyPerSec < 10)
      throw CLI::ValidationError("--keys x --per-key-per-sec",
                                 "must be at least 10 events per second of event time");
  });
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app;
  defineOptions(app, o);
  if (auto rc = gale::examples::parseCommandLine(app, argc, argv)) return *rc;
  const int64_t events = o.events;
  const int64_t keys = o.keys;
  const int64_t perKeyPerSec = o.perKeyPerSec;
  const int64_t disorderUs = o.disorderMs * 1000;
  const int64_t perSec = keys * perKeyPerSec;  // events per second of event time

  auto op = gale::windowed(gale::Sliding(10s, 1s), gale::Sum{"v"})
                .keyBy({"key"})
                .eventTime("ts")
                .build();
  auto schema = gale::makeSchema("gen", gale::kDefaultStream, gale::Fields{"key", "ts", "v"});
  std::vector<std::string> names;
  for (int64_t k = 0; k < keys; ++k) names.push_back("k" + std::to_string(k));
  // Precomputed random streams so the generator costs little next to the operator.
  std::mt19937_64 rng(42);
  const size_t kRand = 1 << 16;
  std::vector<uint32_t> keyOf(kRand);
  std::vector<int64_t> jitter(kRand);
  for (size_t i = 0; i < kRand; ++i) {
    keyOf[i] = static_cast<uint32_t>(rng() % keys);
    jitter[i] = disorderUs ? static_cast<int64_t>(rng() % disorderUs) : 0;
  }

  gale::Tuple t(schema, gale::Values{std::string(), gale::Timestamp{0}, int64_t{1}});
  LatencyEmitter out;
  const int64_t wmEvery = perSec / 10;  // events per 100 ms of event time
  const int64_t start = 1'700'000'000'000'000;
  int64_t maxSeen = 0;
  gale::Histogram firingCpu;  // CPU time of a watermark that releases a window (10 K rows)
  size_t peakState = 0;
  auto t0 = std::chrono::steady_clock::now();
  std::clock_t c0 = std::clock();
  for (int64_t i = 0; i < events; ++i) {
    int64_t base = start + i * 1'000'000 / perSec;
    int64_t ts = base - jitter[i & (kRand - 1)];
    auto& vs = t.mutableValues();
    vs[0] = names[keyOf[(i * 7) & (kRand - 1)]];
    vs[1] = gale::Timestamp{ts};
    vs[2] = int64_t{i & 7};
    op->onTuple(t, out);
    if (ts > maxSeen) maxSeen = ts;
    if ((i + 1) % wmEvery == 0) {
      uint64_t rowsBefore = out.rows;
      int64_t cpu0 = threadCpuNanos();
      out.watermarkAt = gale::SystemClock::steadyNanos();
      op->onWatermark(gale::Timestamp{maxSeen - disorderUs - 1}, out);
      out.watermarkAt = 0;
      if (out.rows > rowsBefore) firingCpu.record(threadCpuNanos() - cpu0);
      if (op->stateSize() > peakState) peakState = op->stateSize();
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // CPU time too: the machine is shared, and wall time then counts other processes' turns.
  double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::printf("window_bench: keyed Sliding(10s, 1s) Sum, %lld keys, %lld events/s of event time, "
              "disorder %lld ms\n",
              static_cast<long long>(keys), static_cast<long long>(perSec),
              static_cast<long long>(disorderUs / 1000));
  std::printf("  events        %lld in %.2f s wall = %.2f M events/s; %.2f s CPU = %.2f M events/CPU-s\n",
              static_cast<long long>(events), secs, events / secs / 1e6, cpu, events / cpu / 1e6);
  std::printf("  result rows   %llu, late %llu, peak state %zu partials\n",
              static_cast<unsigned long long>(out.rows), static_cast<unsigned long long>(out.late),
              peakState);
  std::printf("  watermark -> result row latency (wall): %s\n",
              out.latency.summary(1000.0, " us").c_str());
  std::printf("  CPU time of a firing watermark (all rows of one window): %s\n",
              firingCpu.summary(1000.0, " us").c_str());
  return 0;
}
