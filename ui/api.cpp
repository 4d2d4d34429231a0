#include "api.h"

#include <algorithm>
#include <cctype>

#include "gale/core/watermark.h"

namespace gale::ui {

using nlohmann::json;

namespace {

constexpr const char* kAcker = "__acker";

double ms(int64_t nanos) { return static_cast<double>(nanos) / 1e6; }

// p50 / p99 / p99.9 as Storm shows latencies: milliseconds.
json latencyJson(const Histogram& h) {
  return {{"count", h.count()},
          {"mean", h.mean() / 1e6},
          {"p50", ms(h.percentile(0.5))},
          {"p99", ms(h.percentile(0.99))},
          {"p999", ms(h.percentile(0.999))},
          {"max", ms(h.max())}};
}

json watermarkJson(const std::optional<Timestamp>& wm) {
  if (!wm) return nullptr;
  if (*wm == kEndOfTime) return "end";  // every input ended
  return wm->micros;
}

WindowCounters sum(const ComponentMetrics& c, const std::map<TaskId, WindowCounters>* base) {
  WindowCounters w;
  for (const auto& t : c.tasks) {
    WindowCounters now = countersOf(t), b;
    if (base) {
      auto it = base->find(t.task);
      if (it != base->end()) b = it->second;
    }
    w.emitted += now.emitted - b.emitted;
    w.transferred += now.transferred - b.transferred;
    w.executed += now.executed - b.executed;
    w.acked += now.acked - b.acked;
    w.failed += now.failed - b.failed;
    w.errors += now.errors - b.errors;
  }
  return w;
}

json countersJson(const WindowCounters& w) {
  return {{"emitted", w.emitted},   {"transferred", w.transferred}, {"executed", w.executed},
          {"acked", w.acked},       {"failed", w.failed},           {"errors", w.errors}};
}

// Storm's two windows here: the last 10 minutes (or all of a younger job) and all time.
json windowsJson(const JobSnapshot& job, const ComponentMetrics& c) {
  json w10 = countersJson(sum(c, &job.windowBase));
  w10["window"] = std::to_string(kWindowSeconds);
  w10["windowPretty"] = prettySeconds(std::min<int64_t>(job.windowSeconds, kWindowSeconds));
  json all = countersJson(sum(c, nullptr));
  all["window"] = ":all-time";
  all["windowPretty"] = "All time";
  return json::array({w10, all});
}

// The fields of one task or of a component's total.
json taskFields(const TaskMetrics& m, bool spout) {
  json j = {{"emitted", m.emitted},
            {"transferred", m.transferred},
            {"acked", m.acked},
            {"failed", m.failed},
            {"errors", m.errors},
            {"capacity", m.capacity},
            {"busyTimeMsPerSecond", m.busyTimeMsPerSecond},
            {"backPressuredTimeMsPerSecond", m.backPressuredTimeMsPerSecond},
            {"idleTimeMsPerSecond", m.idleTimeMsPerSecond},
            {"queueDepth", m.queueDepth()},
            {"framesReceived", m.framesReceived},
            {"malformedFrames", m.malformedFrames},
            {"blockedFlushes", m.blockedFlushes},
            {"watermark", watermarkJson(m.watermark)},
            {"watermarkIdle", m.watermarkIdle},
            {"lastError", m.lastError},
            {"lastErrorTime", m.lastError.empty() ? json(nullptr) : json(m.lastErrorTime.micros)}};
  j["executeLatency"] = latencyJson(m.executeLatency);
  if (spout) {
    j["pending"] = m.pending;
    j["completeLatency"] = latencyJson(m.completeLatency);
  } else {
    j["executed"] = m.executed;
    j["bufferedItems"] = m.bufferedItems;
    j["idleInputs"] = m.idleInputs;
    j["processLatency"] = latencyJson(m.processLatency);
  }
  return j;
}

// The component whose tasks run this one (Continuous::fusion), or null: it runs its own.
json fusedIntoJson(const ComponentMetrics* c) {
  if (!c || c->fusedInto.empty()) return nullptr;
  return c->fusedInto;
}

json componentRow(const ComponentMetrics& c) {
  TaskMetrics total = c.total();
  json j = taskFields(total, c.spout);
  j[c.spout ? "spoutId" : "boltId"] = c.name;
  j["encodedId"] = c.name;  // the client percent-encodes it into URLs
  j["executors"] = c.tasks.size();
  j["tasks"] = c.tasks.size();
  j["fusedInto"] = fusedIntoJson(&c);
  return j;
}

const ComponentSpec* specOf(const JobSnapshot& job, std::string_view name) {
  return job.topology ? job.topology->find(name) : nullptr;
}

json graphJson(const JobSnapshot& job) {
  json nodes = json::array(), edges = json::array();
  if (job.topology) {
    for (const auto& c : job.topology->components()) {
      nodes.push_back({{"id", c.name},
                       {"type", c.isSpout() ? "spout" : "bolt"},
                       {"parallelism", c.parallelism},
                       {"fusedInto", fusedIntoJson(job.metrics.find(c.name))}});
      for (const auto& in : c.inputs) {
        edges.push_back({{"from", in.component},
                         {"to", c.name},
                         {"stream", in.stream},
                         {"grouping", groupingName(in.grouping)},
                         {"fields", in.fields}});
      }
    }
  } else {
    for (const auto& c : job.metrics.components) {
      if (c.name == kAcker) continue;
      nodes.push_back({{"id", c.name},
                       {"type", c.spout ? "spout" : "bolt"},
                       {"parallelism", c.tasks.size()},
                       {"fusedInto", fusedIntoJson(&c)}});
    }
  }
  return {{"nodes", nodes}, {"edges", edges}};
}

}  // namespace

json checkpointJson(const CheckpointSummary& c) {
  // gale-state's own document (one function writes both); parsed to travel as the other answers.
  return json::parse(checkpointSummaryJson(c));
}

json comparisonJson(const std::vector<ComparisonRun>& runs, size_t planned) {
  json list = json::array();
  for (const auto& r : runs) {
    const Histogram& h = r.latency;
    // Buckets 1 µs .. 100 s at 1-2-5 per decade, the same for every run so that the page can
    // put them side by side; each counts the samples above the previous bound and at or below
    // its own; the last (le null) those above 100 s.
    json buckets = json::array();
    uint64_t below = 0;
    for (int64_t decade = 1000; decade <= 100'000'000'000; decade *= 10) {
      for (int64_t f : {1, 2, 5}) {
        if (decade == 100'000'000'000 && f > 1) break;
        uint64_t atOrBelow = h.countAtOrBelow(decade * f);
        buckets.push_back({{"le", ms(decade * f)}, {"count", atOrBelow - below}});
        below = atOrBelow;
      }
    }
    buckets.push_back({{"le", nullptr}, {"count", h.count() - below}});
    list.push_back({{"pipeline", r.pipeline},
                    {"mode", r.mode},
                    {"load", r.load},
                    {"knobs", r.knobs},
                    {"latencyKind", r.latencyKind},
                    {"throughput", r.throughput},
                    {"sustained", r.sustained},
                    {"latency", latencyJson(h)},
                    {"p90", ms(h.percentile(0.9))},
                    {"histogram", buckets}});
  }
  return {{"planned", planned}, {"runs", list}};
}

const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "DEBUG";
    case LogLevel::Info: return "INFO";
    case LogLevel::Warn: return "WARN";
    case LogLevel::Error: return "ERROR";
  }
  return "INFO";
}

json logConfigJson(LogLevel level) {
  return {{"namedLoggerLevels", {{"ROOT", {{"target_level", logLevelName(level)}}}}}};
}

std::optional<LogLevel> parseLogConfig(const std::string& body, std::string& why) {
  const std::string shape =
      R"(expected {"namedLoggerLevels": {"ROOT": {"target_level": "DEBUG|INFO|WARN|ERROR"}}})";
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    why = "the body is not JSON: " + shape;
    return std::nullopt;
  }
  if (!j.is_object() || !j.contains("namedLoggerLevels") || !j["namedLoggerLevels"].is_object()) {
    why = shape;
    return std::nullopt;
  }
  const json& loggers = j["namedLoggerLevels"];
  for (const auto& [name, v] : loggers.items()) {
    if (name != "ROOT") {
      why = "no logger '" + name + "': gale has one, ROOT";
      return std::nullopt;
    }
    for (const auto& [field, _] : v.items())
      if (field != "target_level") {
        why = "'" + field + "' is not supported (only target_level)";
        return std::nullopt;
      }
  }
  if (!loggers.contains("ROOT") || !loggers["ROOT"].is_object() ||
      !loggers["ROOT"].contains("target_level") || !loggers["ROOT"]["target_level"].is_string()) {
    why = shape;
    return std::nullopt;
  }
  std::string want = loggers["ROOT"]["target_level"];
  for (char& c : want) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error})
    if (want == logLevelName(l)) return l;
  why = "unknown level '" + loggers["ROOT"]["target_level"].get<std::string>() +
        "': DEBUG, INFO, WARN or ERROR";
  return std::nullopt;
}

std::string prettySeconds(int64_t s) {
  if (s < 0) s = 0;
  int64_t d = s / 86400, h = s / 3600 % 24, m = s / 60 % 60, sec = s % 60;
  std::string out;
  if (d) out += std::to_string(d) + "d ";
  if (d || h) out += std::to_string(h) + "h ";
  if (d || h || m) out += std::to_string(m) + "m ";
  return out + std::to_string(sec) + "s";
}

// What the summary and the topology page both say about a job.
json jobHeader(const JobSnapshot& j) {
  size_t tasks = 0, components = 0;
  for (const auto& c : j.metrics.components) {
    tasks += c.tasks.size();
    if (c.name != kAcker) ++components;
  }
  return {{"id", j.id},
          {"encodedId", j.id},
          {"name", j.name},
          {"mode", j.mode},
          {"status", j.status},
          {"uptime", prettySeconds(j.uptimeSeconds)},
          {"uptimeSeconds", j.uptimeSeconds},
          {"tasksTotal", tasks},
          {"executorsTotal", tasks},
          {"workersTotal", 1},
          {"componentsTotal", components}};
}

json summaryJson(const std::vector<JobSnapshot>& jobs) {
  json list = json::array();
  for (const auto& j : jobs) list.push_back(jobHeader(j));
  return {{"topologies", list}};
}

json topologyJson(const JobSnapshot& job) {
  json spouts = json::array(), bolts = json::array(), system = json::array();
  ComponentMetrics spoutTotals, allTotals;  // for the topology's stats
  spoutTotals.spout = true;
  for (const auto& c : job.metrics.components) {
    json row = componentRow(c);
    if (c.name == kAcker) {
      system.push_back(row);
      continue;
    }
    if (const ComponentSpec* spec = specOf(job, c.name); spec && !c.spout) {
      json inputs = json::array();
      for (const auto& in : spec->inputs)
        inputs.push_back({{"component", in.component},
                          {"stream", in.stream},
                          {"grouping", groupingName(in.grouping)},
                          {"fields", in.fields}});
      row["inputs"] = inputs;
    }
    (c.spout ? spouts : bolts).push_back(row);
    for (const auto& t : c.tasks) {
      allTotals.tasks.push_back(t);
      if (c.spout) spoutTotals.tasks.push_back(t);
    }
  }
  // Topology stats, as Storm's: emitted / transferred over all components, acked / failed and
  // complete latency at the spouts.
  json stats = windowsJson(job, allTotals), spoutStats = windowsJson(job, spoutTotals);
  TaskMetrics spoutAll = spoutTotals.total();
  for (size_t i = 0; i < stats.size(); ++i) {
    stats[i]["acked"] = spoutStats[i]["acked"];
    stats[i]["failed"] = spoutStats[i]["failed"];
    stats[i].erase("executed");
  }
  json out = jobHeader(job);
  out["active"] = job.active;
  out["topologyStats"] = stats;
  out["completeLatency"] = latencyJson(spoutAll.completeLatency);
  out["spouts"] = spouts;
  out["bolts"] = bolts;
  out["system"] = system;
  out["graph"] = graphJson(job);
  out["batch"] = batchesJson(job);
  return out;
}

std::optional<json> componentJson(const JobSnapshot& job, std::string_view name) {
  const ComponentMetrics* c = job.metrics.find(name);
  if (!c) return std::nullopt;
  json executors = json::array();
  for (const auto& t : c->tasks) {
    json e = taskFields(t, c->spout);
    e["id"] = "[" + std::to_string(t.task) + "-" + std::to_string(t.task) + "]";
    e["task"] = t.task;
    e["host"] = "localhost";
    e["uptime"] = prettySeconds(job.uptimeSeconds);
    executors.push_back(e);
  }
  json out = {{"id", c->name},
              {"encodedId", c->name},
              {"name", c->name},
              {"componentType", c->spout ? "spout" : "bolt"},
              {"topologyId", job.id},
              {"encodedTopologyId", job.id},
              {"executors", c->tasks.size()},
              {"tasks", c->tasks.size()},
              {"fusedInto", fusedIntoJson(c)},
              {c->spout ? "spoutSummary" : "boltStats", windowsJson(job, *c)},
              {"total", componentRow(*c)},
              {"executorStats", executors}};
  json inputs = json::array(), outputs = json::array();
  if (const ComponentSpec* spec = specOf(job, name)) {
    for (const auto& in : spec->inputs)
      inputs.push_back({{"component", in.component},
                        {"stream", in.stream},
                        {"grouping", groupingName(in.grouping)},
                        {"fields", in.fields}});
    for (const auto& s : spec->outputs) {
      outputs.push_back({{"stream", s.name}, {"fields", s.fields.names()}});
    }
  }
  out["inputStats"] = inputs;
  out["outputStats"] = outputs;
  return out;
}

json batchesJson(const JobSnapshot& job) {
  if (!job.batch) return nullptr;
  const BatchProgress& p = *job.batch;
  json recent = json::array();
  for (const auto& b : p.recent) {
    recent.push_back({{"txid", b.txid},
                      {"rows", b.records},
                      {"cutMicros", b.cutMicros},
                      {"executeMs", ms(b.executeNanos)},
                      {"waitMs", ms(b.waitNanos)},
                      {"commitMs", ms(b.commitNanos)},
                      {"totalMs", ms(b.executeNanos + b.waitNanos + b.commitNanos)},
                      {"watermark", watermarkJson(b.watermark)},
                      {"stateEntries", b.stateEntries}});
  }
  json offsets = json::object();
  for (const auto& [source, parts] : p.offsets) offsets[source] = parts;
  return {{"name", p.name},
          {"running", p.running},
          {"paused", p.paused},
          {"failed", p.failed},
          {"error", p.error},
          {"batches", p.batches},
          {"lastTxid", p.lastTxid},
          {"rows", p.records},
          {"triggerOverruns", p.triggerOverruns},
          {"watermark", watermarkJson(p.watermark)},
          {"stateEntries", p.stateEntries},
          {"committedOffsets", offsets},
          {"batchLatency", latencyJson(p.batchNanos)},
          {"recordLatency", latencyJson(p.recordNanos)},
          {"commitLatency", latencyJson(p.commitNanos)},
          {"offsetLogFlushLatency", latencyJson(p.offsetLogFlushNanos)},
          {"commitTimeMs", ms(p.commitTotalNanos)},
          {"recent", recent}};
}

}  // namespace gale::ui
