// For word_count --ui-cost: the web UI attached to a run and polled as an open page and a
// Prometheus scraper would poll it, so that the run's throughput and latency include the UI's cost.
#pragma once

#include <memory>

#include "gale/topology/runtime.h"

namespace gale::examples {

class UiWatcher {
 public:
  // Serves `job`'s UI (any free port, sampler at its default 1 s) and, every second, GETs what
  // an open topology page fetches (the summary and the topology document) and /metrics.
  explicit UiWatcher(RunningTopology& job);
  ~UiWatcher();  // stops polling, then the server: before `job` goes
  UiWatcher(const UiWatcher&) = delete;
  UiWatcher& operator=(const UiWatcher&) = delete;
  uint64_t polls() const;  // requests answered 200 so far

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace gale::examples
