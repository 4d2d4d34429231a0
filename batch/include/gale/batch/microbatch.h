// Micro-batch mode: the job handle, its configuration and its progress, and Spark-style waiting
// and signal handling for several jobs in one process.
//
//   auto job = gale::runMicroBatch(topology, gale::MicroBatch{
//       .trigger = gale::BatchTrigger::processingTime(1s), .checkpoint = "chk/wordcount"});
//   gale::installSignalHandlers();      // SIGTERM/SIGINT: finish and commit the batch in flight
//   gale::awaitAnyTermination();
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/batch/coordinator.h"
#include "gale/batch/pipeline.h"
#include "gale/batch/trigger.h"
#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

struct MicroBatch {
  BatchTrigger trigger = BatchTrigger::unspecified();
  // The checkpoint directory (Spark's checkpointLocation): state, offsets and the commit log.
  // Required; one job per directory at a time.
  std::string checkpoint;
  // At most this many records per batch over all sources (0 = no limit).
  int64_t maxRecordsPerBatch = 0;
  // Batches that may be executing at once (they overlap in the pipeline; commits stay in txid
  // order). 1 = Spark's one batch at a time.
  int maxBatchesInFlight = 1;
  // For messages and metrics; defaults to the checkpoint directory.
  std::string name;
  // Fsync every commit (see StateStoreOptions::sync for what false risks).
  bool syncCommits = true;
  size_t initialMapSize = size_t{64} << 20;
  size_t maxMapSize = size_t{64} << 30;
  // With no new data and the unspecified trigger, look again after this long.
  Duration idlePoll{1000};
  // Processing time for triggers and commit records. A ManualClock makes triggers move only when
  // a test advances it.
  const Clock* clock = &SystemClock::instance();
  // Offset log (Spark's offsets/ directory): each batch's end offsets are written to the
  // checkpoint BEFORE the batch runs, and a batch replayed after a crash is cut to exactly those
  // offsets instead of to whatever is available then. Needed by sinks that cannot replace a
  // replayed batch's output (a committed Kafka transaction stays); runMicroBatch turns it on by
  // itself when a bolt of the topology is an ExactReplaySink. Costs one small LMDB write per batch.
  bool offsetLog = false;
  // Fault injection and tracing: called at each point of every commit.
  std::function<void(CommitPoint, uint64_t txid)> onCommitPoint;
  // The executors underneath (channels, spin, transport). Micro-batch mode always runs them with
  // acking off (a batch is replayed whole); BatchTrigger::continuous() runs the topology with exactly
  // this configuration. Its clock, when set, is also the job's clock.
  Continuous runtime;
};

// A snapshot of a job's progress (the web UI reads this).
struct BatchProgress {
  std::string name;
  bool running = false;
  bool failed = false;
  std::string error;
  uint64_t batches = 0;         // committed in this run
  uint64_t lastTxid = 0;        // last committed (also from earlier runs)
  uint64_t records = 0;         // records in committed batches of this run
  uint64_t triggerOverruns = 0; // batches that took longer than the trigger interval
  Offsets offsets;              // committed end offsets
  std::optional<Timestamp> watermark;
  size_t stateEntries = 0;
  Histogram batchNanos;         // cut -> commit, per batch
  Histogram recordNanos;        // record arrival (originNanos) -> its batch's commit
  Histogram commitNanos;        // the LMDB commit alone
  int64_t commitTotalNanos = 0; // time inside LMDB commits
  int64_t runNanos = 0;         // time since the job started
};

class BatchJob;

// The handle of a running micro-batch job. Copies share the job.
class MicroBatchJob {
 public:
  MicroBatchJob() = default;
  explicit MicroBatchJob(std::shared_ptr<BatchJob> job) : job_(std::move(job)) {}

  const std::string& name() const;
  // Graceful: no new batch is cut; the batches in flight finish and are committed. Returns at once.
  void stop();
  // Waits until the job ended (stopped, available-now finished, or failed); rethrows its error.
  void waitUntilDone();
  // As above with a time limit; false if it is still running.
  bool waitUntilDone(std::chrono::milliseconds timeout);
  bool done() const;
  BatchProgress progress() const;
  explicit operator bool() const { return job_ != nullptr; }

 private:
  std::shared_ptr<BatchJob> job_;
};

// Runs a batch pipeline under the coordinator: the engine underneath runMicroBatch(topology, ...),
// public for executors other than the topology runtime and for tests. `jobId` fingerprints the job
// (a checkpoint written under another id is refused). Throws at once (naming the job) when the
// checkpoint cannot be opened: in use by another job, another topology, a bad directory.
MicroBatchJob runBatchPipeline(std::vector<NamedSource> sources,
                               std::unique_ptr<BatchPipeline> pipeline, std::string jobId,
                               MicroBatch config);

// Runs `topology` in micro-batch mode: its SourceSpouts become batch spouts fed by the job's
// coordinator, its OperatorBolts get each batch's end (watermark, onBatchEnd, snapshot), and every
// batch commits in one LMDB transaction in config.checkpoint. With BatchTrigger::continuous() the
// topology runs in continuous mode instead (runContinuous with config.runtime) under the same
// handle. Throws at once, naming the job, for a topology that cannot run in micro-batch mode or a
// checkpoint that cannot be used.
MicroBatchJob runMicroBatch(const Topology& topology, MicroBatch config);
inline MicroBatchJob run(const Topology& topology, MicroBatch config) {
  return runMicroBatch(topology, std::move(config));
}

// Installs SIGTERM and SIGINT handlers that stop every running micro-batch job gracefully (the
// batch in flight finishes and is committed). Idempotent.
void installSignalHandlers();
// True once SIGTERM/SIGINT arrived after installSignalHandlers().
bool terminationRequested();
// Waits until any job of this process has ended (Spark's awaitAnyTermination: returns at once if
// one ended since the last resetTerminated()); rethrows that job's error. False on timeout.
bool awaitAnyTermination(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
// Waits until every job started in this process has ended.
void awaitTermination();
// Forgets the jobs that have ended, so awaitAnyTermination waits for the next one.
void resetTerminated();
// The jobs started in this process that are still running.
std::vector<MicroBatchJob> activeJobs();

}  // namespace gale
