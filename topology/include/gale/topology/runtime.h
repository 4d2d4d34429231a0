// Running a topology in continuous mode: one thread per task, one inbox per task, tuples and
// in-band control over gale's ZeroMQ channels, Storm's XOR acker for at-least-once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/histogram.h"
#include "gale/core/security.h"
#include "gale/topology/topology.h"

namespace gale {

enum class TransportScheme { Inproc, Ipc, Tcp };

// What continuous mode promises for each source record (docs/runtime.md, "Exactly-once").
enum class Guarantee {
  None,         // no acking: a tuple lost to a failure is lost
  AtLeastOnce,  // Storm's acker (Continuous::acking): failed trees are replayed, a sink may see a
                // record twice
  ExactlyOnce,  // checkpoint barriers, operator snapshots and source offsets in LMDB, sinks with
                // a two-phase commit: after a crash the job resumes from the last checkpoint
};

// Points of an exactly-once checkpoint, reported to Continuous::onCheckpointPoint (fault
// injection, tracing), in the order one checkpoint passes them.
enum class CheckpointPoint : uint8_t {
  BarrierInjected,    // a spout task sent the barrier (and reported its source offsets)
  SnapshotTaken,      // a bolt task aligned the barrier and reported its operator snapshot
  SinkPreCommitted,   // a two-phase-commit sink task pre-committed its output
  CheckpointWritten,  // the checkpoint record is committed to LMDB: the checkpoint is complete
  SinkCommitted,      // a sink task made the checkpoint's output visible
};
const char* checkpointPointName(CheckpointPoint p);

struct Continuous {
  // AtLeastOnce uses `acking` below (acking = false is the same as None). ExactlyOnce needs
  // sources (setSpout(name, SourcePtr)), runs without the acker, and takes a checkpoint every
  // checkpointInterval into checkpointDir (created if needed; one directory per job). A run on
  // a directory with a completed checkpoint restores the operators' snapshots, resumes the
  // sources at its offsets and lets two-phase-commit sinks finish or abort what they had.
  Guarantee guarantee = Guarantee::AtLeastOnce;
  Duration checkpointInterval = std::chrono::seconds(1);
  std::string checkpointDir;
  bool checkpointSync = true;  // fsync each checkpoint (false: a machine crash may lose the last)
  // A checkpoint not complete this long after it was triggered (a task stuck, a report lost) is
  // aborted, with an error in the log, and the next is triggered at once (Flink's
  // checkpointTimeout). The final checkpoint of a bounded job cannot be followed by another: its
  // timeout stops the job, which resumes from its last completed checkpoint.
  Duration checkpointTimeout = std::chrono::minutes(10);
  std::function<void(CheckpointPoint, uint64_t checkpointId)> onCheckpointPoint;
  // Exactly-once: unaligned checkpoints (Flink's, for jobs under backpressure). A task with
  // several inputs snapshots at the FIRST input's barrier and forwards it at once, instead of
  // holding back the inputs that delivered it until every input did; the tuples that arrive from
  // the other inputs before their barriers are processed as usual and also stored in the
  // checkpoint, and replayed into the task before anything else on recovery.
  bool unalignedCheckpoints = false;
  // Reliability: Storm's acker. Off: tuples are unanchored and spouts never see ack/fail.
  bool acking = true;
  int numAckers = 1;
  size_t maxSpoutPending = 4096;  // in-flight trees per spout task (checked before nextTuple)
  Duration messageTimeout = std::chrono::seconds(30);
  // On (default): the limit on trees in flight per spout task is lowered to (measured completion
  // rate x messageTimeout / 10), so trees queued behind a slow bolt do not time out: a slow bolt
  // costs throughput, not replays (docs/runtime.md, "Slow bolts"). maxSpoutPending stays the cap.
  bool adaptiveMaxPending = true;
  // Failed trees (a bolt failed or threw, or the tree timed out) are replayed by the spout's
  // fail(msgId), called after a backoff of retryBackoffMin doubling per failure of the message up
  // to retryBackoffMax (by `clock`). A message whose tree failed maxRetries + 1 times is not
  // replayed: the spout task emits it on the dead-letter stream (kDeadLetterStream) and the spout
  // gets deadLettered(msgId). maxRetries < 0: replay forever (Storm's default).
  int maxRetries = 8;
  Duration retryBackoffMin = std::chrono::milliseconds(50);
  Duration retryBackoffMax = std::chrono::seconds(5);
  // Channels.
  int highWaterMark = 16;          // frames queued per channel before the sender blocks
  size_t maxItemsPerFrame = 256;   // a busy sender packs up to this many items per frame
  // Fusion (Flink's operator chaining): a bolt whose every input reads one component with a
  // grouping that may keep tuples on the same task index (shuffle or local-or-shuffle at equal
  // parallelism; any grouping but direct at parallelism 1) runs in that component's tasks,
  // called directly: no channel, no encoding, no thread switch between them. Off: one thread per
  // task. Per component: disableFusion(). ComponentMetrics::fusedInto shows the chains.
  bool fusion = true;
  // An idle task spins this long on its inbox before blocking (latency when lightly loaded).
  Duration idleSpin = std::chrono::microseconds(50);
  // Low-latency setting: an idle task first busy-polls (no system calls, no yield) for up to
  // this long after its last work before the idleSpin / blocking wait above, and a spout whose
  // nextTuple() returned false asks again after ~1 us instead of sleeping its back-off. Each idle
  // task then keeps a core busy for the budget: use it with a core per busy task. 0 (default):
  // no busy polling, idle tasks block (docs/runtime.md, "Tasks, threads, channels").
  Duration spinBudget = Duration::zero();
  // A spout whose nextTuple() returned false sleeps this long, doubling up to the max.
  Duration spoutBackoffMin = std::chrono::microseconds(20);
  Duration spoutBackoffMax = std::chrono::microseconds(200);
  // A spout whose source signals arriving records (Spout::wakeFd, e.g. Kafka) blocks on that when
  // idle instead of sleeping its back-off, and looks again at its timers (tree timeouts, the
  // adaptive pending limit, publishing its metrics) and at deactivate/activate after at most this
  // long (or when its inbox gets acks). The stop and the kill wake it at once. Exactly-once:
  // an idle spout task sees a checkpoint coming due (and injects its barrier) at that next
  // look, so checkpoints start up to this late: keep it well below checkpointInterval.
  Duration spoutWakeTimeout = std::chrono::milliseconds(1);
  Duration tickInterval = std::chrono::milliseconds(100);  // Bolt::onTick, Operator processing time
  Duration metricsInterval = std::chrono::milliseconds(100);  // how often latencies are published
  const Clock* clock = nullptr;  // nullptr: the system clock. Ticks and timeouts read it.
  TransportScheme transport = TransportScheme::Inproc;
  std::string ipcDir = "/tmp";     // ipc:// endpoints are <ipcDir>/gale-<instance>-<task>
  std::string tcpHost = "127.0.0.1";
  // Security of the tcp:// and ipc:// channels (docs/security.md). With `curve` set, every
  // inbox is a CURVE server that accepts only `curve->authorizedClients` (and this worker's own
  // key) and every sender authenticates with `curve->keyPair`; see WorkerAssignment::publicKeys.
  // Without it, anyone who reaches a port can send tuples: trusted networks only.
  std::optional<CurveConfig> curve;
  PeerLimits peerLimits;  // per inbox: connections held, handshake timeout, listen backlog
  // runWorker: how long a worker waits for its connections to the other workers' tasks before
  // it starts its spouts (Storm activates a topology once its workers are connected). Past it,
  // the worker starts anyway, says which workers it has not reached, and tuples to them queue
  // until they come up. Zero: do not wait.
  Duration peerConnectTimeout = std::chrono::seconds(10);
};

// Counters are totals since start; latencies in nanoseconds.
struct TaskMetrics {
  TaskId task = 0;
  uint64_t emitted = 0;       // tuples emitted by the component (before grouping)
  uint64_t transferred = 0;   // copies sent to downstream tasks
  uint64_t executed = 0;      // bolt: tuples executed
  uint64_t acked = 0;         // spout: trees completed; bolt: inputs acked
  uint64_t failed = 0;        // spout: trees failed or timed out; bolt: inputs failed
  uint64_t errors = 0;        // exceptions thrown by the component's code
  uint64_t framesReceived = 0;
  uint64_t framesSentToTask = 0;  // by upstream senders in this process
  uint64_t malformedFrames = 0;
  uint64_t blockedFlushes = 0;    // times a send had to wait for a full downstream
  uint64_t bufferedItems = 0;     // held back by batch alignment
  uint64_t pending = 0;           // spout: trees in flight; acker: trees tracked
  uint64_t pendingLimit = 0;      // spout: the (adaptive) limit on trees in flight
  uint64_t timedOut = 0;          // spout: trees failed by the message timeout (in `failed`)
  uint64_t retried = 0;           // spout: fail(msgId) calls, i.e. replays asked for
  uint64_t deadLettered = 0;      // spout: messages sent to the dead-letter stream
  // Tuples emitted on a stream no component subscribes to (dropped). Those on a stream other
  // than "default" (a source's "errors", the dead-letter stream, a window's "late") are also
  // logged, rate-limited.
  uint64_t unrouted = 0;
  double capacity = 0;            // fraction of the last interval spent executing
  // Flink's view of the last metrics interval, in milliseconds per second (the three sum to
  // 1000): back-pressured is waiting on a full downstream queue, or a spout at its limit of
  // trees in flight waiting for completions; idle is waiting for input (a spout: for its source);
  // busy is the rest (executing, handling frames, sending). Measured by reading the clock only
  // around waits. A component's total() takes the busiest task's busy and back-pressured and the
  // least idle task's idle (Flink colours a vertex by its busiest subtask).
  double busyTimeMsPerSecond = 0;
  double backPressuredTimeMsPerSecond = 0;
  double idleTimeMsPerSecond = 0;
  // Spout: the watermark it last sent; bolt: its input watermark (none yet: nullopt).
  std::optional<Timestamp> watermark;
  bool watermarkIdle = false;     // that watermark is marked idle (bolt: every live input is idle)
  uint64_t idleInputs = 0;        // bolt: upstream tasks whose watermark is marked idle
  std::string lastError;          // the last exception from the component's code, if any
  Timestamp lastErrorTime;        // when (the runtime's clock)
  Histogram executeLatency;       // Bolt::execute / Spout::nextTuple
  Histogram processLatency;       // frame received -> input acked
  Histogram completeLatency;      // spout: emit -> tree completed
  // Frames sent to this task that it has not received yet (as far as this process knows).
  uint64_t queueDepth() const {
    return framesSentToTask > framesReceived ? framesSentToTask - framesReceived : 0;
  }
};

struct ComponentMetrics {
  std::string name;  // "__acker" for the ackers
  bool spout = false;
  // Fused (Continuous::fusion): the upstream component whose tasks run this one's (task i in
  // its task i); empty: it runs its own. A fused task has no inbox (frame counters stay 0) and
  // its capacity is counted in its host's.
  std::string fusedInto;
  std::vector<TaskMetrics> tasks;
  TaskMetrics total() const;  // counters summed, histograms merged, capacity = max
};

struct TopologyMetrics {
  std::vector<ComponentMetrics> components;
  // Exactly-once: checkpoints aborted by Continuous::checkpointTimeout in this run (over several
  // workers, counted by the worker that holds the checkpoint coordinator; 0 in the others).
  uint64_t checkpointsTimedOut = 0;
  const ComponentMetrics* find(std::string_view name) const;
};

// Which worker process runs which task, and where each worker's tasks listen. Task t of worker w
// binds <endpoint of w> + t: tcp://host:port -> tcp://host:(port + t); ipc://path -> ipc://path-t.
struct WorkerAssignment {
  std::vector<int> workerOfTask;       // indexed by task id, ackers included
  std::vector<std::string> endpoints;  // per worker: "tcp://127.0.0.1:15000" or "ipc:///tmp/x"
  int self = 0;                        // the worker this process is
  // With Continuous::curve: each worker's public key (Z85), parallel to `endpoints`; senders
  // use it to authenticate the worker they connect to.
  std::vector<std::string> publicKeys;
};

class RunningTopology {
 public:
  class Impl;
  explicit RunningTopology(std::unique_ptr<Impl> impl);
  RunningTopology(RunningTopology&&) noexcept;
  RunningTopology& operator=(RunningTopology&&) noexcept;
  ~RunningTopology();  // kill()s if still running

  // Graceful: spouts stop emitting, trees in flight complete (or time out), EndOfStream flows
  // through every bolt, then cleanup. Returns when all of it happened. Replays waiting for
  // their backoff are dropped (the spout's source replays them on the next run).
  void stop();
  // Immediate: threads leave their loops; in-flight tuples are dropped.
  void kill();
  // Waits until every spout task ended its stream (bounded sources fully read and acked) and
  // every bolt processed it, then shuts the tasks down. False if `timeout` passed first.
  // The three throw std::runtime_error with error() when the topology stopped on an error.
  void waitUntilDone();
  bool waitUntilDone(Duration timeout);
  bool done() const;
  // Why the runtime stopped the topology, or empty. A component that emits on a stream it did
  // not declare, or values that do not fit the stream's declared fields, stops it (a bug in the
  // component, not in a record: docs/runtime.md, "Bad emits").
  std::string error() const;

  // Storm's deactivate / activate (for the web UI and operators; callable from any thread):
  // while deactivated, spout tasks do not call nextTuple() but keep completing the trees in
  // flight, and bolts keep running.
  void deactivate();
  void activate();
  bool active() const;
  // stop() without waiting, from any thread: the owner's waitUntilDone() returns once drained.
  void requestStop();
  const Topology& topology() const;

  TopologyMetrics metrics() const;
  int taskCount() const;                       // components' tasks + ackers
  std::vector<TaskId> ackerTasks() const;
  std::string endpointOf(TaskId task) const;   // the inbox a task binds (local tasks)
  // Handshakes, refused peers and connections of this process's tcp:// and ipc:// inboxes.
  PeerStats peerStats() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs every task in this process. Throws std::invalid_argument for a bad configuration and
// std::runtime_error naming the component when a spout's open() or a bolt's prepare() throws.
RunningTopology runContinuous(const Topology& topology, Continuous config = {});
inline RunningTopology run(const Topology& topology, Continuous config) {
  return runContinuous(topology, std::move(config));
}
// Runs the tasks assigned to `assignment.self`; the other workers run the rest. Exactly-once:
// the checkpoint coordinator runs in worker taskCount() % workers (at that worker's endpoint +
// taskCount()); runWorker returns only once every worker joined it, and a worker stops with an
// error when the job lost a worker (every worker must then be started again: the job resumes
// from its last checkpoint). docs/runtime.md, "Exactly-once over several workers".
RunningTopology runWorker(const Topology& topology, Continuous config,
                          WorkerAssignment assignment);
// Component tasks plus ackers under `config`.
int totalTasks(const Topology& topology, const Continuous& config);

}  // namespace gale
