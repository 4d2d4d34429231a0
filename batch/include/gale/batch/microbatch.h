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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/batch/coordinator.h"
#include "gale/batch/pipeline.h"
#include "gale/batch/trigger.h"
#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/core/watermark.h"
#include "gale/state/checkpoint_summary.h"
#include "gale/state/state_store.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale {

// When the watermark computed from a batch reaches the operators (docs/batch.md).
enum class WatermarkTiming {
  // gale's default: at the end of the batch that moved it, so windows fire one batch earlier than
  // in Spark (same rows, lower latency).
  EndOfBatch,
  // Spark's: the watermark computed from batch N is applied from batch N+1 on (before its rows,
  // which it judges late or not), so a job ported from Spark gives Spark's rows batch by batch.
  NextBatch,
};

struct BatchRecord;

// Points of the offset log (MicroBatch::onOffsetLog): a batch's entry was written to the file
// (not yet durable); a flush covering entries through txid is about to start; it finished (the
// entries are durable, and sinks waiting for them may commit).
enum class OffsetLogPoint { AfterAppend, BeforeFlush, AfterFlush };

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
  // A damaged checkpoint (empty, truncated, a bad page or checksum) stops the job at start with a
  // CheckpointDamaged naming the file. Set this to start over explicitly instead: the damaged
  // directory is moved aside to "<checkpoint>.damaged-<UTC time>" (kept) and the job starts from
  // nothing, reading its sources from the beginning (StateStoreOptions::startOverIfDamaged).
  bool startOverIfDamaged = false;
  // Walk every page and check every record's checksum of the checkpoint before resuming
  // (StateStoreOptions::verifyOnOpen; reads the used part of data.mdb once, docs/state.md).
  bool verifyCheckpointOnOpen = true;
  size_t initialMapSize = size_t{64} << 20;
  size_t maxMapSize = size_t{64} << 30;
  // With no new data and the unspecified trigger, look again after this long.
  Duration idlePoll{1000};
  // Processing time for triggers and commit records. A ManualClock makes triggers move only when
  // a test advances it.
  const Clock* clock = &SystemClock::instance();
  // How the watermarks of several sources combine into the job's (Spark's
  // spark.sql.streaming.multipleWatermarkPolicy): Min, the default, waits for the slowest source;
  // Max follows the fastest and may make the others' older records late. Each source keeps its own
  // watermark across batches; a batch without data from a source leaves it unchanged.
  WatermarkPolicy multipleWatermarkPolicy = WatermarkPolicy::Min;
  // Flink's withIdleness, for micro-batch mode: a source that had no data for this long (on
  // `clock`) is left out of the minimum until it has data again. Zero (the default, as Spark) =
  // a source without new data holds the watermark back.
  Duration watermarkIdleTimeout = Duration::zero();
  WatermarkTiming watermarkTiming = WatermarkTiming::EndOfBatch;
  // With NextBatch timing: after a batch that moved the watermark, run a batch without data (at
  // the next trigger, or at once under available-now and processAllAvailable) so its windows fire
  // without waiting for new data — Spark's spark.sql.streaming.noDataMicroBatches.enabled.
  bool noDataMicroBatches = true;
  // Called on the job's thread after every commit with the batch's progress record (Spark's
  // StreamingQueryListener.onQueryProgress); e.g. print progressJson(name, r) as JSON lines.
  std::function<void(const BatchRecord&)> onProgress;
  // Offset log (Spark's offsets/ directory): each batch's end offsets are written to the
  // checkpoint BEFORE the batch runs, and a batch replayed after a crash is cut to exactly those
  // offsets instead of to whatever is available then. Needed by sinks that cannot replace a
  // replayed batch's output (a committed Kafka transaction stays); runMicroBatch turns it on by
  // itself when a bolt of the topology is an ExactReplaySink. Costs one write() per batch to the
  // checkpoint's offsets.log, fdatasync'ed by a thread of the job (with syncCommits) while the
  // batch runs: sinks that commit externally wait for it (docs/batch.md, "The offset log").
  bool offsetLog = false;
  // Fault injection and tracing: called at each point of every commit.
  std::function<void(CommitPoint, uint64_t txid)> onCommitPoint;
  // Fault injection and tracing of the offset log: AfterAppend on the job's thread, BeforeFlush
  // and AfterFlush on its flusher thread (a test may block in BeforeFlush to hold a flush).
  std::function<void(OffsetLogPoint, uint64_t txid)> onOffsetLog;
  // The executors underneath (channels, spin, transport). Micro-batch mode always runs them with
  // acking off (a batch is replayed whole); BatchTrigger::continuous() runs the topology with exactly
  // this configuration. Its clock, when set, is also the job's clock.
  Continuous runtime;
};

// One committed batch, for the web UI's batch table (Spark's recent progress).
// (Spark's StreamingQueryProgress: progressJson() writes it as one JSON line.)
struct BatchRecord {
  uint64_t txid = 0;
  uint64_t records = 0;
  int64_t cutMicros = 0;     // when it was cut (the job's clock, µs since the epoch)
  int64_t executeNanos = 0;  // cut -> every task finished it
  int64_t waitNanos = 0;     // finished -> its commit began (earlier txids commit first)
  int64_t commitNanos = 0;   // the LMDB commit
  std::optional<Timestamp> watermark;  // after the batch
  size_t stateEntries = 0;
  // Rows per second arriving (records / time since the previous batch was cut) and processed
  // (records / cut-to-commit time).
  double inputRowsPerSecond = 0;
  double processedRowsPerSecond = 0;
  // Event time of the batch's records (sources with a watermark), if any.
  struct EventTimeStats {
    Timestamp min, max, avg;
  };
  std::optional<EventTimeStats> eventTime;
  struct SourceProgress {
    std::string name;
    std::vector<int64_t> startOffsets, endOffsets;  // per partition
    int64_t rows = 0;
  };
  std::vector<SourceProgress> sources;
  struct OperatorProgress {
    std::string name;
    uint64_t stateRows = 0, rowsEmitted = 0, droppedByWatermark = 0;
  };
  std::vector<OperatorProgress> stateOperators;
};

// One batch's record as a JSON object on one line, shaped like Spark's StreamingQueryProgress
// (id, batchId, timestamp, numInputRows, inputRowsPerSecond, processedRowsPerSecond, durationMs,
// eventTime, stateOperators, sources).
std::string progressJson(const std::string& jobName, const BatchRecord& record);

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
  // Completed turns of the job's scheduling loop (each reads the clock, asks the trigger and, when
  // due, the sources). A test that moved a ManualClock or added data waits for two more turns to
  // know the job has seen the change, instead of sleeping and hoping it ran.
  uint64_t schedulerTurns = 0;
  Offsets offsets;              // committed end offsets
  std::optional<Timestamp> watermark;
  size_t stateEntries = 0;
  // Records in committed batches that went out on a source stream no component subscribes to
  // (e.g. a FileSource's "errors"): dropped, and logged (rate-limited) by the runtime.
  uint64_t unroutedRecords = 0;
  Histogram batchNanos;         // cut -> commit, per batch
  Histogram recordNanos;        // record arrival (originNanos) -> its batch's commit
  Histogram commitNanos;        // the LMDB commit alone
  // The offset log's fdatasyncs (MicroBatch::offsetLog with syncCommits), each covering the
  // entries appended since the last one; off the job's thread, overlapping the batch's run.
  Histogram offsetLogFlushNanos;
  int64_t commitTotalNanos = 0; // time inside LMDB commits
  int64_t runNanos = 0;         // time since the job started
  bool paused = false;          // deactivate(): no batch is cut until activate()
  // The last kRecentBatches committed batches of this run, oldest first.
  static constexpr size_t kRecentBatches = 100;
  std::vector<BatchRecord> recent;
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
  // Spark's processAllAvailable(), for tests: runs every record the sources have now through
  // batches — at once, whatever the trigger — and returns when all of them are committed.
  // Rethrows the job's error; throws std::logic_error if the job stops first. The timed form
  // returns false when the time ran out.
  void processAllAvailable();
  bool processAllAvailable(std::chrono::milliseconds timeout);
  BatchProgress progress() const;
  // Storm's deactivate / activate, from any thread: no new batch is cut (the batches in flight
  // finish and commit) until activate(). With BatchTrigger::continuous() the spouts pause.
  void deactivate();
  void activate();
  // The executors' metrics (per component and task, as RunningTopology::metrics()) and the
  // topology they run (nullptr for a pipeline without one). For the web UI.
  TopologyMetrics metrics() const;
  const Topology* topology() const;
  // The checkpoint directory's summary with at most `commits` (<= 100) commit records, read from
  // the job's own store (opening the directory a second time in this process would break LMDB's
  // locks); after the job ended, as it was at the end. nullopt with BatchTrigger::continuous()
  // (no checkpoint) or when the store could not be read.
  std::optional<CheckpointSummary> checkpoint(size_t commits = 20) const;
  explicit operator bool() const { return job_ != nullptr; }

 private:
  std::shared_ptr<BatchJob> job_;
};

// Runs a batch pipeline under the coordinator: the engine underneath runMicroBatch(topology, ...),
// public for executors other than the topology runtime and for tests. `jobId` fingerprints the job
// (a checkpoint written under another id is refused). Throws at once (naming the job) when the
// checkpoint cannot be opened: in use by another job, another topology, a bad directory; a
// CheckpointDamaged (a StateError) for a damaged one (see MicroBatch::startOverIfDamaged).
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

// One worker of a micro-batch job spread over several worker processes (cluster worker mode;
// docs/batch.md, "Over several workers"). Every worker runs its tasks of the topology (runWorker);
// one, batchCoordinatorWorker(), also holds the job (planner, trigger, watermark, checkpoint and
// commits) and is the only one that commits. The others follow it over a link: plans and
// watermarks in, event times and their tasks' results out. A lost worker stops every worker with
// an error; the job started again resumes from its last commit and replays the batch in flight
// under its txid. Copies share the worker; the last one kill()s it.
class MicroBatchWorker {
 public:
  class Impl;
  explicit MicroBatchWorker(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

  bool coordinator() const;   // this process holds the job and its checkpoint
  MicroBatchJob job() const;  // the coordinator's worker: the job (progress, UI); else empty
  void deactivate();          // the coordinator stops cutting batches; no-op in a follower
  void activate();
  // Stops this worker's tasks at once; nothing in flight commits (it is replayed next run).
  void kill();
  // Non-empty once the worker stopped on an error: a lost worker, an abort, an operator's throw.
  std::string error() const;
  // True once the job ended (a bounded input committed to its end, every follower told) or the
  // worker stopped on an error; false when the time ran out.
  bool waitUntilDone(std::chrono::milliseconds timeout);

 private:
  std::shared_ptr<Impl> impl_;
};

// Runs worker assignment.self of `topology` in micro-batch mode over assignment.endpoints.size()
// workers, each of which must be started with the same topology, config and assignment (but its
// own `self`). Returns once every worker joined (the coordinator waits for all). Throws
// std::invalid_argument for a job that cannot run over several workers (Trident state, the
// continuous trigger, fewer tasks than workers) and as runMicroBatch does.
MicroBatchWorker runMicroBatchWorker(const Topology& topology, MicroBatch config,
                                     WorkerAssignment assignment);
// The worker that holds the job: taskCount() % workers (it binds its endpoint + taskCount()).
int batchCoordinatorWorker(const Topology& topology, const WorkerAssignment& assignment);

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
