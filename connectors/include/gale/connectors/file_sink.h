// Writes tuples to files in a directory as text, JSON lines or CSV.
//
// Continuous mode: each task appends to its own part file, part-<task>.<ext> (at-least-once, like
// any appending sink: a replayed tuple is written again). Writes are buffered and flushed when
// the buffer passes Options::flushBytes, on processing-time ticks and at the end of input.
//
// Micro-batch mode: each task writes batch `txid` to a hidden temp file and, at onBatchEnd,
// renames it to part-<txid>-<task>.<ext> (txid zero-padded, so name order is batch order). A
// rename is atomic, so a reader sees a batch's file complete or not at all; a replayed txid
// writes the same name and replaces the earlier file, so committed output is exactly once. A
// batch that never ends (a failed attempt) leaves only its temp file, which the next attempt
// overwrites. Temp names start with '.', which FileSource ignores, so a FileSource can read a
// FileSink's directory.
//
// Continuous mode, exactly-once (Continuous::guarantee = ExactlyOnce): a two-phase-commit sink.
// Each task writes what arrives between two checkpoint barriers to a hidden in-progress file;
// at barrier `id` (preCommit) that file is synced and renamed to a hidden pending name, and once
// checkpoint `id` is complete (commit) it is renamed to part-<id>-<task>.<ext> (the micro-batch
// name, with the checkpoint id as txid). recover() after a restart commits the pending files of
// completed checkpoints and deletes the others and the in-progress file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gale/connectors/file_format.h"
#include "gale/core/operator.h"
#include "gale/core/two_phase_commit.h"

namespace gale {

class FileSink : public Operator, public TwoPhaseCommitSink {
 public:
  struct Options {
    // fsync the file (and the directory after a rename) when a batch ends, so a committed batch
    // survives a machine crash.
    bool sync = true;
    // Continuous mode: write the buffer out once it holds this many bytes.
    size_t flushBytes = 64 * 1024;
  };

  // Throws std::invalid_argument for an empty directory name.
  FileSink(std::string directory, FileFormat format, Options options);
  FileSink(std::string directory, FileFormat format) : FileSink(std::move(directory), format, Options{}) {}
  ~FileSink() override;

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  // Creates the directory if needed; throws std::runtime_error naming it when that fails.
  void open(const OperatorContext& context) override;
  // CSV: throws std::invalid_argument when a tuple's fields differ from the file's header.
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onProcessingTime(Timestamp now, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;
  void recover(uint64_t lastCompletedCheckpoint) override;
  void preCommit(uint64_t checkpointId) override;
  void commit(uint64_t checkpointId) override;

  // The file names a task writes (for tools and tests).
  static std::string continuousFileName(int taskIndex, FileFormat format);
  static std::string batchFileName(uint64_t txid, int taskIndex, FileFormat format);
  // Exactly-once continuous mode: checkpoint `id`'s file before it is committed.
  static std::string pendingFileName(uint64_t id, int taskIndex, FileFormat format);

 private:
  void format(const Tuple& tuple);
  void flushContinuous();
  void spill();
  std::string pathOf(const std::string& name) const;
  [[noreturn]] void fail(const std::string& what, const std::string& path) const;

  std::string directory_;
  FileFormat format_;
  Options options_;
  int taskIndex_ = 0;
  bool opened_ = false;

  std::string buffer_;      // formatted lines not yet written
  Fields header_;           // CSV: the columns of the current file
  bool headerWritten_ = false;
  bool inBatch_ = false;
  uint64_t txid_ = 0;
  int fd_ = -1;             // continuous mode's part file
  bool twoPhase_ = false;   // exactly-once continuous mode (recover() was called)
  int spillFd_ = -1;        // two-phase: the in-progress file, once the buffer passed flushBytes
  std::vector<uint64_t> preCommitted_;  // two-phase: pending files not yet committed
};

}  // namespace gale
