// A sink's side of an exactly-once checkpoint in continuous mode (Flink's TwoPhaseCommitSinkFunction).
// The runtime calls these on the sink's own task thread:
//
//   recover(C)    once, after open() and before any tuple: C is the last completed checkpoint (0:
//                 none). Output pre-committed under an id <= C is committed now (the crash came
//                 after the checkpoint record, before the commit); anything else (pre-committed
//                 under a later id, or written after the last pre-commit) is thrown away, because
//                 the job replays it from C's source offsets.
//   preCommit(id) at checkpoint barrier `id`: everything written since the previous pre-commit is
//                 made durable but stays invisible to readers, under `id`.
//   commit(id)    once checkpoint `id` is complete (its record is in the checkpoint store): the
//                 output pre-committed under every id <= `id` becomes visible. Idempotent.
//
// Readers therefore see output only of completed checkpoints, each piece once.
//
// A write-ahead sink (KafkaSink: a Kafka transaction cannot outlive its producer, so it cannot
// hold pre-committed output itself) keeps the pre-committed output in the checkpoint instead:
// preCommitState(), called right after preCommit(id), is stored under the task in checkpoint id,
// and the state of the last completed checkpoint goes to restorePreCommitState() before
// recover(). nullopt (the default): the sink keeps its pre-committed output itself (FileSink).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace gale {

class TwoPhaseCommitSink {
 public:
  virtual ~TwoPhaseCommitSink() = default;
  virtual void recover(uint64_t lastCompletedCheckpoint) = 0;
  virtual void preCommit(uint64_t checkpointId) = 0;
  virtual void commit(uint64_t checkpointId) = 0;
  virtual std::optional<std::string> preCommitState() { return std::nullopt; }
  virtual void restorePreCommitState(const std::string&) {}
};

}  // namespace gale
