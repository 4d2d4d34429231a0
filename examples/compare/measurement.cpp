#include "measurement.h"

#include <algorithm>

namespace gale::compare {

void TaskRecorder::recordArrival(int64_t originNanos) {
  records_.fetch_add(1, std::memory_order_relaxed);
  int64_t now = clock_.monoNanos();
  if (originNanos <= 0 || !measuring(now)) return;
  latency_.record(now - originNanos);
}

void TaskRecorder::recordWindowResult(Timestamp windowEnd) {
  int64_t nowMicros = clock_.now().micros;
  if (!measuring(clock_.monoNanos())) return;
  latency_.record(std::max<int64_t>(
      0, (nowMicros - windowEnd.micros) * 1000 - windowOffset_.load(std::memory_order_relaxed)));
}

TaskRecorder& RunMeasurements::newTask() {
  std::lock_guard lock(mutex_);
  tasks_.push_back(std::make_unique<TaskRecorder>(clock_));
  tasks_.back()->setWarmupEnd(warmupEnd_);
  tasks_.back()->setWindowLatencyOffset(windowOffset_);
  tasks_.back()->setMeasurementEnd(measurementEnd_);
  return *tasks_.back();
}

void RunMeasurements::setWarmupEnd(int64_t warmupEndNanos) {
  std::lock_guard lock(mutex_);
  warmupEnd_ = warmupEndNanos;
  for (auto& t : tasks_) t->setWarmupEnd(warmupEndNanos);
}

void RunMeasurements::setMeasurementEnd(int64_t endNanos) {
  std::lock_guard lock(mutex_);
  measurementEnd_ = endNanos;
  for (auto& t : tasks_) t->setMeasurementEnd(endNanos);
}

void RunMeasurements::setWindowLatencyOffset(int64_t nanos) {
  std::lock_guard lock(mutex_);
  windowOffset_ = nanos;
  for (auto& t : tasks_) t->setWindowLatencyOffset(nanos);
}

uint64_t RunMeasurements::records() const {
  std::lock_guard lock(mutex_);
  uint64_t n = 0;
  for (auto& t : tasks_) n += t->records();
  return n;
}

Histogram RunMeasurements::mergedLatency() const {
  std::lock_guard lock(mutex_);
  Histogram h;
  for (auto& t : tasks_) h.merge(t->latencyNanos());
  return h;
}

void RunMeasurements::recordWindowValue(const std::string& key, int64_t windowStart,
                                        int64_t value) {
  std::lock_guard lock(mutex_);
  windows_[{key, windowStart}] = value;
}

WindowResults RunMeasurements::windowResults() const {
  std::lock_guard lock(mutex_);
  return windows_;
}

std::string compareWindowResults(const WindowResults& a, const WindowResults& b,
                                 int64_t upToWindowStart) {
  auto describe = [](const std::pair<std::string, int64_t>& k) {
    return "window (" + k.first + ", start " + std::to_string(k.second) + ")";
  };
  for (const auto& [k, v] : a) {
    if (k.second > upToWindowStart) continue;
    auto it = b.find(k);
    if (it == b.end()) return describe(k) + " is missing from the second run";
    if (it->second != v)
      return describe(k) + ": " + std::to_string(v) + " vs " + std::to_string(it->second);
  }
  for (const auto& [k, v] : b) {
    if (k.second > upToWindowStart) continue;
    if (!a.count(k)) return describe(k) + " is missing from the first run";
  }
  return {};
}

}  // namespace gale::compare
