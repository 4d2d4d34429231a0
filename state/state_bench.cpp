// Batched-commit throughput and commit latency of the state store: one BatchCommit per txid that
// updates N keys (read-modify-write of an int64 count in a transactional state, as a word count
// does) plus a source offset and a watermark. Prints puts/s and commit latency p50/p99/p99.9.
//
//   state_bench [dir] [seconds-per-case]
//
// Cases: 1000 and 10000 keys per commit, synced (fsync per commit) and MDB_NOSYNC (survives a
// process crash, not an OS crash or power loss: see docs/state.md).
#include <chrono>
#include <cstdio>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/state/codec.h"
#include "gale/state/state_store.h"

namespace {

void runCase(const std::string& base, size_t keysPerCommit, bool sync, double seconds,
             gale::StateKind kind) {
  std::string dir = base + "/case-" + std::to_string(keysPerCommit) + (sync ? "-sync" : "-nosync") +
                    "-" + gale::stateKindName(kind);
  std::filesystem::remove_all(dir);
  gale::StateStoreOptions o;
  o.jobId = "state-bench";
  o.sync = sync;
  o.initialMapSize = size_t{1} << 30;
  gale::Histogram latency;  // nanoseconds per commit
  uint64_t puts = 0, commits = 0;
  const size_t keySpace = 100'000;  // keys repeat across batches, as counts of a vocabulary do
  {
    gale::StateStore store(dir, o);
    gale::KeyedState& counts = store.keyedState("counts", kind);
    std::mt19937_64 rng(42);
    auto start = gale::SystemClock::steadyNanos();
    auto deadline = start + static_cast<int64_t>(seconds * 1e9);
    int64_t offset = 0;
    for (uint64_t txid = 1; gale::SystemClock::steadyNanos() < deadline; ++txid) {
      gale::BatchCommit c = store.beginCommit(txid);
      std::map<std::string, gale::Update> updates;
      while (updates.size() < keysPerCommit) {
        updates.emplace("key-" + std::to_string(rng() % keySpace), gale::addInt64(1));
      }
      c.apply(counts, std::move(updates));
      offset += static_cast<int64_t>(keysPerCommit);
      c.setOffset("bench", 0, offset).setWatermark(gale::Timestamp{offset});
      auto t0 = gale::SystemClock::steadyNanos();
      c.commit();
      latency.record(gale::SystemClock::steadyNanos() - t0);
      puts += keysPerCommit;
      ++commits;
    }
    double elapsed = (gale::SystemClock::steadyNanos() - start) / 1e9;
    std::printf("%-13s %6zu keys/commit  %-7s  %9.0f puts/s  %7.0f commits/s  commit latency %s\n",
                gale::stateKindName(kind), keysPerCommit, sync ? "synced" : "nosync",
                puts / elapsed, commits / elapsed, latency.summary(1e6, " ms").c_str());
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string base = (std::filesystem::temp_directory_path() / "gale-state-bench").string();
  double seconds = 3.0;
  CLI::App app{"state_bench: batched LMDB commits, synced and not, 1 K and 10 K keys", "state_bench"};
  app.add_option("dir", base, "directory for the benchmark's checkpoints")->capture_default_str();
  app.add_option("seconds", seconds, "seconds per case")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "state_bench: %s\n\n%s", e.what(), app.help().c_str());
    return 2;
  }
  std::filesystem::create_directories(base);
  std::printf("state_bench: batched commits into %s, %.1f s per case (puts/s include the "
              "read-modify-write, offsets, watermark and commit record)\n",
              base.c_str(), seconds);
  for (bool sync : {true, false}) {
    for (size_t keys : {size_t{1000}, size_t{10000}}) {
      runCase(base, keys, sync, seconds, gale::StateKind::Transactional);
    }
  }
  runCase(base, 10000, false, seconds, gale::StateKind::Plain);
  runCase(base, 10000, false, seconds, gale::StateKind::Opaque);
  std::filesystem::remove_all(base);
  return 0;
}
