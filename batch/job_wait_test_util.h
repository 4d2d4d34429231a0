// Waiting for a micro-batch job's scheduling loop instead of sleeping (batch/*_test.cpp).
#pragma once

#include <chrono>
#include <thread>

#include "gale/batch/microbatch.h"

namespace gale::testing {

// Returns once the job's scheduling loop has completed a turn that began after this call, so the
// job has seen whatever the caller changed before it (a ManualClock moved, data added) and has
// made its decision (a batch cut or not). Two turns: the first may have read the clock before the
// change. False after `timeout` of real time (a stuck job), so a test fails rather than hangs.
inline bool jobHasLooked(const MicroBatchJob& job,
                         std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) {
  const uint64_t from = job.progress().schedulerTurns;
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (job.progress().schedulerTurns < from + 2) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace gale::testing
