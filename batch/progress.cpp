// Progress records as JSON lines, shaped like Spark's StreamingQueryProgress.
#include <nlohmann/json.hpp>

#include "gale/batch/microbatch.h"

namespace gale {

namespace {
double ms(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

std::string isoTime(int64_t micros) {
  time_t secs = static_cast<time_t>(micros / 1'000'000);
  if (micros % 1'000'000 < 0) --secs;
  int64_t milli = ((micros % 1'000'000) + 1'000'000) % 1'000'000 / 1000;
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[80];  // every int at its widest (77 bytes), not only 4-digit years: never cut short
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(milli));
  return buf;
}
}  // namespace

std::string progressJson(const std::string& jobName, const BatchRecord& r) {
  using nlohmann::json;
  json j;
  j["name"] = jobName;
  j["batchId"] = r.txid;
  j["timestamp"] = isoTime(r.cutMicros);
  j["numInputRows"] = r.records;
  j["inputRowsPerSecond"] = r.inputRowsPerSecond;
  j["processedRowsPerSecond"] = r.processedRowsPerSecond;
  j["durationMs"] = {{"execute", ms(r.executeNanos)},
                     {"waitForEarlierCommits", ms(r.waitNanos)},
                     {"commit", ms(r.commitNanos)},
                     {"triggerExecution", ms(r.executeNanos + r.waitNanos + r.commitNanos)}};
  json et = json::object();
  if (r.eventTime) {
    et["min"] = isoTime(r.eventTime->min.micros);
    et["avg"] = isoTime(r.eventTime->avg.micros);
    et["max"] = isoTime(r.eventTime->max.micros);
  }
  if (r.watermark) {
    et["watermark"] = r.watermark->micros >= INT64_MAX - 1 ? std::string("end of input")
                                                            : isoTime(r.watermark->micros);
  }
  j["eventTime"] = et;
  json ops = json::array();
  for (const auto& o : r.stateOperators) {
    ops.push_back({{"operatorName", o.name},
                   {"numRowsTotal", o.stateRows},
                   {"numRowsEmitted", o.rowsEmitted},
                   {"numRowsDroppedByWatermark", o.droppedByWatermark}});
  }
  j["stateOperators"] = ops;
  json sources = json::array();
  for (const auto& s : r.sources) {
    sources.push_back({{"description", s.name},
                       {"startOffset", s.startOffsets},
                       {"endOffset", s.endOffsets},
                       {"numInputRows", s.rows}});
  }
  j["sources"] = sources;
  return j.dump();
}

}  // namespace gale
