// Heap allocations per event in steady state, for the typed YSB pipeline (gale-compare --pipeline
// ysb-typed, parallelism 1: every stage fused into the spout's task) in both modes: this binary
// replaces the global operator new to count its calls. Two bounded runs of different lengths:
// their difference is what the extra events cost, without start-up, shutdown and the windows.
#include <gtest/gtest.h>

#include "counting_new.h"
#include "pipelines.h"
#include "runner.h"

namespace gale::compare {
namespace {

double allocationsPerEvent(const Mode& mode) {
  auto data = std::make_shared<const YsbData>();
  PipelineOptions o;
  o.pipeline = Pipeline::YsbTyped;
  o.window = std::chrono::seconds(1);
  auto allocations = [&](int64_t events) {
    uint64_t before = examples::gHeapAllocations.load();
    BoundedWindows w = runBoundedYsb(o, mode, events, data);
    EXPECT_FALSE(w.windows.empty());
    return examples::gHeapAllocations.load() - before;
  };
  // Both runs span five 1 s windows (runBoundedYsb spreads the events over them), so they fire
  // the same window rows; only the events per window differ.
  uint64_t small = allocations(50'000);
  uint64_t large = allocations(250'000);
  return (static_cast<double>(large) - static_cast<double>(small)) / 200'000.0;
}

TEST(TypedYsbAllocations, ContinuousModeAllocatesNothingPerEventInSteadyState) {
  double perEvent = allocationsPerEvent(Mode{});
  std::cout << "continuous: heap allocations per event " << perEvent << "\n";
  EXPECT_LE(perEvent, 0.05);
}

TEST(TypedYsbAllocations, MicroBatchModeAllocatesNothingPerEventInSteadyState) {
  double perEvent = allocationsPerEvent(Mode{true, Duration{0}});
  std::cout << "micro-batch: heap allocations per event " << perEvent << "\n";
  EXPECT_LE(perEvent, 0.05);
}

}  // namespace
}  // namespace gale::compare
