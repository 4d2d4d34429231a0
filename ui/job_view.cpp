#include "job_view.h"

namespace gale::ui {
namespace {

class ContinuousView final : public JobView {
 public:
  explicit ContinuousView(RunningTopology& rt) : rt_(rt) {}
  const char* mode() const override { return "continuous"; }
  TopologyMetrics metrics() const override { return rt_.metrics(); }
  bool done() const override { return rt_.done(); }
  bool active() const override { return rt_.active(); }
  void deactivate() override { rt_.deactivate(); }
  void activate() override { rt_.activate(); }
  void requestStop() override { rt_.requestStop(); }

 private:
  RunningTopology& rt_;
};

class MicroBatchView final : public JobView {
 public:
  explicit MicroBatchView(MicroBatchJob job) : job_(std::move(job)) {}
  const char* mode() const override { return "micro-batch"; }
  TopologyMetrics metrics() const override { return job_.metrics(); }
  std::optional<BatchProgress> batch() const override { return job_.progress(); }
  std::optional<CheckpointSummary> checkpoint() const override {
    return job_.checkpoint(kCheckpointCommits);
  }
  bool done() const override { return job_.done(); }
  bool active() const override { return !job_.progress().paused; }
  bool failed() const override { return job_.progress().failed; }
  void deactivate() override { job_.deactivate(); }
  void activate() override { job_.activate(); }
  void requestStop() override { job_.stop(); }

 private:
  MicroBatchJob job_;
};

class FrozenView final : public JobView {
 public:
  explicit FrozenView(const JobView& v)
      : mode_(v.mode()),
        metrics_(v.metrics()),
        batch_(v.batch()),
        checkpoint_(v.checkpoint()),
        failed_(v.failed()) {}
  const char* mode() const override { return mode_; }
  TopologyMetrics metrics() const override { return metrics_; }
  std::optional<BatchProgress> batch() const override { return batch_; }
  std::optional<CheckpointSummary> checkpoint() const override { return checkpoint_; }
  bool done() const override { return true; }
  bool active() const override { return false; }
  bool failed() const override { return failed_; }
  bool controllable() const override { return false; }
  void deactivate() override {}
  void activate() override {}
  void requestStop() override {}

 private:
  const char* mode_;
  TopologyMetrics metrics_;
  std::optional<BatchProgress> batch_;
  std::optional<CheckpointSummary> checkpoint_;
  bool failed_;
};

}  // namespace

std::unique_ptr<JobView> viewOf(RunningTopology& job) {
  return std::make_unique<ContinuousView>(job);
}
std::unique_ptr<JobView> viewOf(MicroBatchJob job) {
  return std::make_unique<MicroBatchView>(std::move(job));
}
std::unique_ptr<JobView> frozen(const JobView& view) { return std::make_unique<FrozenView>(view); }

WindowCounters countersOf(const TaskMetrics& m) {
  return {m.emitted, m.transferred, m.executed, m.acked, m.failed, m.errors};
}

std::string urlSafe(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    out += ok ? c : '_';
  }
  return out.empty() ? "job" : out;
}

void JobEntry::sample(int64_t nowNanos) {
  std::lock_guard lk(mutex);
  Sample s;
  s.nanos = nowNanos;
  for (const auto& c : view->metrics().components)
    for (const auto& t : c.tasks) s.counters[t.task] = countersOf(t);
  samples.push_back(std::move(s));
  // Keep one sample at or before the window's start: the base of the windowed counters.
  int64_t windowStart = nowNanos - kWindowSeconds * 1'000'000'000;
  while (samples.size() >= 2 && samples[1].nanos <= windowStart) samples.pop_front();
}

JobSnapshot JobEntry::snapshot(int64_t nowNanos) const {
  JobSnapshot s;
  s.id = id;
  s.name = name;
  s.topology = topology;
  std::lock_guard lk(mutex);
  s.uptimeSeconds = ((endNanos ? endNanos : nowNanos) - startNanos) / 1'000'000'000;
  s.mode = view->mode();
  s.metrics = view->metrics();
  s.batch = view->batch();
  s.active = view->active();
  bool done = view->done();
  if (view->failed()) {
    s.status = "FAILED";
  } else if (killRequested) {
    s.status = "KILLED";
  } else if (done) {
    s.status = "FINISHED";
  } else {
    s.status = s.active ? "ACTIVE" : "INACTIVE";
  }
  int64_t windowStart = nowNanos - kWindowSeconds * 1'000'000'000;
  if (!samples.empty() && samples.front().nanos <= windowStart) {
    s.windowBase = samples.front().counters;
    s.windowSeconds = (nowNanos - samples.front().nanos) / 1'000'000'000;
  } else {
    s.windowSeconds = s.uptimeSeconds;  // the job is younger than the window: all of it
  }
  return s;
}

}  // namespace gale::ui
