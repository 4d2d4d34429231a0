// The messages of a micro-batch job spread over several workers (runMicroBatchWorker), carried by
// a WorkerLink (topology/private/worker_link.h: membership, START, ABORT, heartbeats) between the
// worker that holds the job's BatchJob (the batch coordinator: planner, watermark, commits) and
// its followers. What a task tells the in-process BatchShared by a function call crosses here:
// plans, watermarks and the commit status out; event times and results in. Every message is
// idempotent (a plan or watermark of a txid is the same each time; an event time counts once per
// spout task, a result once per worker), so a sender re-sends until the progress that
// acknowledges it, and neither loss nor repetition changes what commits. docs/batch.md.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gale/batch/coordinator.h"
#include "gale/batch/pipeline.h"
#include "gale/core/tuple.h"
#include "gale/state/state_store.h"

namespace gale::batchlink {

enum class Kind : uint8_t {
  Plan = 'L',       // coordinator -> follower: a dispatched, uncommitted batch (every 100 ms)
  Watermark = 'W',  // coordinator -> follower: a batch's watermark once every spout task reported
  Status = 'T',     // coordinator -> follower: the last commit, the results held (every 100 ms)
  EventTime = 'E',  // follower -> coordinator: a spout task's max event times in a batch
  Result = 'R',     // follower -> coordinator: its tasks' merged reports of a batch
};

// What START carries to a follower: where the job resumes.
struct Start {
  uint64_t lastTxid = 0;
  std::optional<Timestamp> watermark;
  std::map<std::string, std::string> snapshots;  // every task's (a follower reads its own)
  // Incremental operators' entries: state ("$entries:<component>") -> (key, value), every task's.
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> entries;
  SourceOffsets offsets;                         // committed, per source (Source::commit)
  std::map<std::string, std::string> partitionOrders;  // source -> encodePartitionOrder
};

struct Watermark {
  uint64_t txid = 0;
  std::optional<Timestamp> watermark;
  std::string snapshot;  // the per-source watermarks after the batch (committed with it)
};

struct Status {
  uint64_t committed = 0;
  std::vector<uint64_t> held;  // txids whose RESULT the coordinator holds from this follower
  bool done = false;           // the job ended: the follower stops
};

struct EventTime {
  uint64_t txid = 0;
  TaskId spoutTask = 0;
  uint64_t source = 0;
  std::map<int, int64_t> maxEvent;  // per partition
  bool endOfInput = false;
};

struct Result {
  uint64_t txid = 0;
  int tasks = 0;  // the follower's tasks whose reports it merges
  BatchResult result;
};

// Throws std::logic_error for a result with keyed (Trident state) updates: they are functions
// and do not cross workers (such jobs run in one worker).
std::string encodeStart(const Start& s);
std::string encode(const BatchPlan& p);
std::string encode(const Watermark& w);
std::string encode(const Status& s);
std::string encode(const EventTime& e);
std::string encode(const Result& r);

// Each throws SnapshotError for a malformed message (or one of another kind).
Kind kindOf(std::string_view body);
Start decodeStart(std::string_view body);
BatchPlan decodePlan(std::string_view body);
Watermark decodeWatermark(std::string_view body);
Status decodeStatus(std::string_view body);
EventTime decodeEventTime(std::string_view body);
Result decodeResult(std::string_view body);

}  // namespace gale::batchlink
