// What a job's checkpoint directory holds, as gale-state prints it and the web UI shows it:
// metadata, the newest commit records (txid, time, offsets per source and partition, watermark,
// what was written), the keyed states with entry counts and sizes, operator snapshot sizes and
// sink records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gale/state/state_store.h"

namespace gale {

struct CheckpointSummary {
  std::string directory;
  std::string jobId;
  uint32_t formatVersion = 0;
  Timestamp createdAt;
  size_t mapSize = 0;
  uint64_t lastCommittedTxid = 0;
  std::vector<CommitRecord> commits;  // the newest, oldest first
  std::vector<StateInfo> states;
  std::map<std::string, uint64_t> snapshotBytes;  // operator key (printable) -> bytes
  std::map<std::string, uint64_t> sinks;          // sink -> last txid it recorded as written
};

// Reads `store` (any thread, while it commits): at most `commits` commit records.
CheckpointSummary summarizeCheckpoint(const StateStore& store, size_t commits);

// The summary as one JSON object, the document of `gale-state --json` and of the UI's
// /api/v1/topology/:id/checkpoint: {"directory", "jobId", "formatVersion", "createdMicros",
// "mapSize", "lastCommittedTxid", "commits": [{"txid", "timeMicros", "watermarkMicros" (null:
// none), "offsets": {source: {partition: offset}}, "stateUpdates", "stateSkips", "snapshots",
// "bytes"}], "states": [{"name", "kind", "entries", "bytes"}], "snapshots": {key: bytes},
// "sinks": {sink: txid}}. Bytes that are not UTF-8 in a name become U+FFFD.
std::string checkpointSummaryJson(const CheckpointSummary& summary);

}  // namespace gale
