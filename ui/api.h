// The REST API's documents (shaped like Storm's UI REST API where the concepts match) and the
// Prometheus exposition, rendered from JobSnapshots. Pure functions: tested without a server.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gale/core/log.h"
#include "gale/ui/ui_server.h"
#include "job_view.h"

namespace gale::ui {

// GET /api/v1/topology/summary
nlohmann::json summaryJson(const std::vector<JobSnapshot>& jobs);
// GET /api/v1/topology/{id}: stats per window, spouts, bolts, the graph, micro-batch progress.
nlohmann::json topologyJson(const JobSnapshot& job);
// GET /api/v1/topology/{id}/component/{name}; nullopt when the job has no such component.
std::optional<nlohmann::json> componentJson(const JobSnapshot& job, std::string_view name);
// GET /api/v1/topology/{id}/batches: micro-batch progress, recent batches (the commit history of
// this run), committed offsets and state size. Null for a continuous-mode job.
nlohmann::json batchesJson(const JobSnapshot& job);
// GET /api/v1/topology/{id}/checkpoint: the document `gale-state --json` prints
// (checkpointSummaryJson).
nlohmann::json checkpointJson(const CheckpointSummary& c);
// GET /api/v1/compare: the runs of a comparison so far, each with its latency percentiles and
// histogram (counts per bucket of a 1-2-5 log scale, in milliseconds).
nlohmann::json comparisonJson(const std::vector<ComparisonRun>& runs, size_t planned);
// GET /metrics: Prometheus text exposition format 0.0.4.
std::string prometheusText(const std::vector<JobSnapshot>& jobs);

// GET /api/v1/topology/{id}/logconfig: {"namedLoggerLevels": {"ROOT": {"target_level": "INFO"}}}
nlohmann::json logConfigJson(LogLevel level);
// The body of POST .../logconfig, Storm's shape with gale's one logger:
// {"namedLoggerLevels": {"ROOT": {"target_level": "DEBUG"}}}, the level DEBUG, INFO, WARN or
// ERROR (any case). nullopt with `why` set for anything else.
std::optional<LogLevel> parseLogConfig(const std::string& body, std::string& why);
const char* logLevelName(LogLevel level);  // "DEBUG", "INFO", "WARN", "ERROR"

// "1h 2m 3s", as Storm's uptime.
std::string prettySeconds(int64_t seconds);

}  // namespace gale::ui
