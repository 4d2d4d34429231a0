// /metrics in the Prometheus text exposition format (0.0.4): one family per metric with HELP and
// TYPE once, `gale_` prefix, counters ending in _total, times in seconds, labels topology /
// component / task. `promtool check metrics` passes on it (ui/prometheus_test.cpp).
#include <cstdio>
#include <functional>
#include <map>

#include "api.h"
#include "gale/core/watermark.h"

namespace gale::ui {
namespace {

// Latency buckets (upper bounds in seconds): 1 µs .. 10 s, 1-2.5-5 per decade.
constexpr double kBuckets[] = {1e-6,  2.5e-6, 5e-6,  1e-5,  2.5e-5, 5e-5, 1e-4, 2.5e-4,
                               5e-4,  1e-3,   2.5e-3, 5e-3, 1e-2,  2.5e-2, 5e-2, 0.1,
                               0.25,  0.5,    1,     2.5,   5,     10};

std::string escapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}
std::string num(uint64_t v) { return std::to_string(v); }

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string labelText(const Labels& labels, const char* extraKey = nullptr,
                      const std::string& extraValue = "") {
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) out += ",";
    first = false;
    out += k + "=\"" + escapeLabel(v) + "\"";
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (extraKey) add(extraKey, extraValue);
  return out + "}";
}

// Families in the order first seen; samples appended per family so each family is contiguous.
class Exposition {
 public:
  void sample(const std::string& name, const char* type, const char* help, const Labels& labels,
              const std::string& value) {
    family(name, type, help) += name + labelText(labels) + " " + value + "\n";
  }
  // Nanosecond histogram -> seconds buckets.
  void histogram(const std::string& name, const char* help, const Labels& labels,
                 const Histogram& h) {
    std::string& f = family(name, "histogram", help);
    for (double le : kBuckets) {
      auto bound = static_cast<int64_t>(le * 1e9 + 0.5);
      f += name + "_bucket" + labelText(labels, "le", num(le)) + " " +
           num(h.countAtOrBelow(bound)) + "\n";
    }
    f += name + "_bucket" + labelText(labels, "le", "+Inf") + " " + num(h.count()) + "\n";
    f += name + "_sum" + labelText(labels) + " " + num(h.sum() / 1e9) + "\n";
    f += name + "_count" + labelText(labels) + " " + num(h.count()) + "\n";
  }
  std::string text() const {
    std::string out;
    for (const auto& n : order_) out += families_.at(n);
    return out;
  }

 private:
  std::string& family(const std::string& name, const char* type, const char* help) {
    auto it = families_.find(name);
    if (it != families_.end()) return it->second;
    order_.push_back(name);
    return families_[name] = "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
  }
  std::vector<std::string> order_;
  std::map<std::string, std::string> families_;
};

void taskMetrics(Exposition& e, const Labels& l, const TaskMetrics& m, bool spout) {
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    e.sample(name, "counter", help, l, num(v));
  };
  auto gauge = [&](const char* name, const char* help, double v) {
    e.sample(name, "gauge", help, l, num(v));
  };
  counter("gale_tuples_emitted_total", "Tuples emitted by the task (before grouping).", m.emitted);
  counter("gale_tuples_transferred_total", "Tuple copies the task sent to downstream tasks.",
          m.transferred);
  counter("gale_tuples_executed_total", "Tuples executed by the task (bolts).", m.executed);
  counter("gale_tuples_acked_total",
          "Spouts: tuple trees completed; bolts: inputs acked.", m.acked);
  counter("gale_tuples_failed_total",
          "Spouts: tuple trees failed or timed out; bolts: inputs failed.", m.failed);
  counter("gale_task_errors_total", "Exceptions thrown by the component's code.", m.errors);
  counter("gale_frames_received_total", "Frames the task took from its inbox.", m.framesReceived);
  counter("gale_frames_malformed_total", "Malformed frames dropped at the task's inbox.",
          m.malformedFrames);
  counter("gale_flushes_blocked_total",
          "Sends that waited for a full downstream queue (backpressure).", m.blockedFlushes);
  gauge("gale_task_capacity_ratio", "Fraction of the last interval the task spent executing.",
        m.capacity);
  // Flink's busy / back-pressured / idle time per second, as ratios (Prometheus' base unit).
  gauge("gale_task_busy_ratio", "Share of the last interval the task was busy.",
        m.busyTimeMsPerSecond / 1000);
  gauge("gale_task_backpressured_ratio",
        "Share of the last interval the task waited on a full downstream queue (spouts: also "
        "at the limit of trees in flight).",
        m.backPressuredTimeMsPerSecond / 1000);
  gauge("gale_task_idle_ratio", "Share of the last interval the task waited for input.",
        m.idleTimeMsPerSecond / 1000);
  gauge("gale_task_queue_depth_frames", "Frames sent to the task not yet taken from its inbox.",
        static_cast<double>(m.queueDepth()));
  gauge("gale_task_pending", "Spouts: tuple trees in flight; ackers: trees tracked.",
        static_cast<double>(m.pending));
  gauge("gale_task_buffered_items", "Items held back by batch alignment.",
        static_cast<double>(m.bufferedItems));
  gauge("gale_task_idle_inputs", "Upstream tasks whose watermark is marked idle.",
        static_cast<double>(m.idleInputs));
  if (m.watermark && *m.watermark != kEndOfTime)
    gauge("gale_task_watermark_seconds",
          "The task's watermark (spout: last sent; bolt: input), seconds since the epoch.",
          static_cast<double>(m.watermark->micros) / 1e6);
  e.histogram("gale_execute_latency_seconds",
              "Bolt execute / spout nextTuple time (sampled 1 in 16).", l, m.executeLatency);
  if (spout) {
    e.histogram("gale_complete_latency_seconds", "Spout emit to tuple tree completed.", l,
                m.completeLatency);
  } else {
    e.histogram("gale_process_latency_seconds", "Frame received to input acked (sampled).", l,
                m.processLatency);
  }
}

void batchMetrics(Exposition& e, const Labels& l, const BatchProgress& p) {
  e.sample("gale_batches_committed_total", "counter", "Micro-batches committed in this run.", l,
           num(p.batches));
  e.sample("gale_batch_rows_total", "counter", "Records in the batches committed in this run.", l,
           num(p.records));
  e.sample("gale_batch_trigger_overruns_total", "counter",
           "Batches that took longer than the trigger interval.", l, num(p.triggerOverruns));
  e.sample("gale_batch_last_txid", "gauge", "The last committed transaction id.", l,
           num(p.lastTxid));
  e.sample("gale_batch_state_entries", "gauge", "Entries of state held by the operators.", l,
           num(static_cast<uint64_t>(p.stateEntries)));
  if (p.watermark && *p.watermark != kEndOfTime)
    e.sample("gale_batch_watermark_seconds", "gauge",
             "The job's watermark after its last batch, seconds since the epoch.", l,
             num(static_cast<double>(p.watermark->micros) / 1e6));
  e.histogram("gale_batch_duration_seconds", "Batch cut to its commit.", l, p.batchNanos);
  e.histogram("gale_batch_commit_duration_seconds", "The LMDB commit of a batch.", l,
              p.commitNanos);
  e.histogram("gale_batch_offset_log_flush_seconds",
              "An fdatasync of the offset log, off the job's thread.", l, p.offsetLogFlushNanos);
  e.histogram("gale_batch_record_latency_seconds", "Record arrival to its batch's commit.", l,
              p.recordNanos);
}

}  // namespace

std::string prometheusText(const std::vector<JobSnapshot>& jobs) {
  Exposition e;
  for (const auto& job : jobs) {
    Labels jl = {{"topology", job.id}, {"mode", job.mode}};
    e.sample("gale_topology_active", "gauge", "1 while the job's spouts are active.", jl,
             job.active && job.status == "ACTIVE" ? "1" : "0");
    e.sample("gale_topology_uptime_seconds", "gauge", "Time since the UI started watching the job.",
             jl, num(static_cast<uint64_t>(job.uptimeSeconds)));
    for (const auto& c : job.metrics.components) {
      // An info metric (value 1, the fact in a label), present only for a fused component.
      if (!c.fusedInto.empty())
        e.sample("gale_component_fused_into_info", "gauge",
                 "The component runs inside the tasks of the component in `host` (fusion).",
                 {{"topology", job.id}, {"component", c.name}, {"host", c.fusedInto}}, "1");
      for (const auto& t : c.tasks)
        taskMetrics(e, {{"topology", job.id}, {"component", c.name},
                        {"task", std::to_string(t.task)}},
                    t, c.spout);
    }
    e.sample("gale_checkpoints_timed_out_total", "counter",
             "Exactly-once checkpoints aborted by the checkpoint timeout in this run.", jl,
             num(job.metrics.checkpointsTimedOut));
    if (job.batch) batchMetrics(e, {{"topology", job.id}}, *job.batch);
  }
  return e.text();
}

}  // namespace gale::ui
