// The summary of a checkpoint directory (gale-state, the web UI).
#include "gale/state/checkpoint_summary.h"

#include "record_codec.h"

namespace gale {

CheckpointSummary summarizeCheckpoint(const StateStore& store, size_t commits) {
  CheckpointSummary s;
  s.directory = store.directory();
  s.jobId = store.jobId();
  s.formatVersion = store.formatVersion();
  s.createdAt = store.createdAt();
  s.mapSize = store.mapSize();
  s.lastCommittedTxid = store.lastCommittedTxid();
  if (commits > 0) {
    // Only the newest records are read: the log may hold thousands.
    uint64_t from = s.lastCommittedTxid >= commits ? s.lastCommittedTxid - commits + 1 : 0;
    s.commits = store.commitLog(from, commits);
  }
  s.states = store.states();
  // Operator keys are components' names, which may hold any bytes: escaped as gale-state has
  // always printed them, so that the summary is text (the UI's JSON wants UTF-8).
  for (const auto& [key, blob] : store.snapshots())
    s.snapshotBytes[printableKey(key)] = blob.size();
  s.sinks = store.sinks();
  return s;
}

}  // namespace gale
