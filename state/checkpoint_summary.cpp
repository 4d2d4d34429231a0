// The summary of a checkpoint directory and its JSON (gale-state, the web UI).
#include "gale/state/checkpoint_summary.h"

#include <nlohmann/json.hpp>

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

std::string checkpointSummaryJson(const CheckpointSummary& c) {
  // ordered_json: the fields in the order above, as gale-state has always printed them.
  using json = nlohmann::ordered_json;
  json commits = json::array();
  for (const auto& r : c.commits) {
    json offsets = json::object();
    for (const auto& [source, parts] : r.offsets) {
      json& o = offsets[source] = json::object();
      for (const auto& [p, off] : parts) o[std::to_string(p)] = off;
    }
    commits.push_back({{"txid", r.txid},
                       {"timeMicros", r.time.micros},
                       {"watermarkMicros", r.watermark ? json(r.watermark->micros) : json(nullptr)},
                       {"offsets", offsets},
                       {"stateUpdates", r.stateUpdates},
                       {"stateSkips", r.stateSkips},
                       {"snapshots", r.snapshots},
                       {"bytes", r.bytes}});
  }
  json states = json::array();
  for (const auto& s : c.states)
    states.push_back({{"name", s.name},
                      {"kind", stateKindName(s.kind)},
                      {"entries", s.entries},
                      {"bytes", s.bytes}});
  json doc = {{"directory", c.directory},
              {"jobId", c.jobId},
              {"formatVersion", c.formatVersion},
              {"createdMicros", c.createdAt.micros},
              {"mapSize", c.mapSize},
              {"lastCommittedTxid", c.lastCommittedTxid},
              {"commits", commits},
              {"states", states},
              {"snapshots", c.snapshotBytes},
              {"sinks", c.sinks}};
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gale
