// The process's micro-batch jobs (for awaitAnyTermination and its kin) and the termination
// signal every job watches (installSignalHandlers).
#include "job_registry.h"

#include <signal.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace gale {

namespace {

std::atomic<bool> gSignalled{false};
std::atomic<bool> gHandlersInstalled{false};

// Every job of the process, for awaitAnyTermination. Holds the jobs (a job whose handles were all
// dropped keeps running until stopped); resetTerminated() forgets the ended ones.
struct Registry {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<MicroBatchJob> jobs;
};
Registry& registry() {
  static Registry* r = new Registry;  // never destroyed: jobs may end during static destruction
  return *r;
}

}  // namespace

namespace jobs {

void add(MicroBatchJob job) {
  std::lock_guard lk(registry().mutex);
  registry().jobs.push_back(std::move(job));
}

void ended() {
  std::lock_guard lk(registry().mutex);
  registry().changed.notify_all();
}

}  // namespace jobs

namespace {
void onTerminationSignal(int) { gSignalled.store(true); }
}  // namespace

void installSignalHandlers() {
  if (gHandlersInstalled.exchange(true)) return;
  struct sigaction sa {};
  sa.sa_handler = onTerminationSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
}

bool terminationRequested() { return gSignalled.load(); }

std::vector<MicroBatchJob> activeJobs() {
  std::vector<MicroBatchJob> out;
  std::lock_guard lk(registry().mutex);
  for (auto& j : registry().jobs) {
    if (!j.done()) out.push_back(j);
  }
  return out;
}

bool awaitAnyTermination(std::optional<std::chrono::milliseconds> timeout) {
  auto deadline = std::chrono::steady_clock::now() +
                  timeout.value_or(std::chrono::hours(24 * 365 * 100));
  std::unique_lock lk(registry().mutex);
  while (true) {
    for (auto& j : registry().jobs) {
      if (j.done()) {
        auto job = j;
        lk.unlock();
        job.waitUntilDone(std::chrono::milliseconds(0));  // rethrows its error
        return true;
      }
    }
    // Jobs notice a signal within a few milliseconds; wake up to look again.
    if (registry().changed.wait_until(lk, std::min(deadline, std::chrono::steady_clock::now() +
                                                                 std::chrono::milliseconds(20))) ==
            std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
  }
}

void awaitTermination() {
  std::vector<MicroBatchJob> jobs;
  {
    std::lock_guard lk(registry().mutex);
    jobs = registry().jobs;
  }
  std::exception_ptr first;
  for (auto& j : jobs) {
    try {
      j.waitUntilDone();
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

void resetTerminated() {
  std::vector<MicroBatchJob> ended;
  {
    std::lock_guard lk(registry().mutex);
    auto& jobs = registry().jobs;
    for (auto it = jobs.begin(); it != jobs.end();) {
      if (it->done()) {
        ended.push_back(std::move(*it));
        it = jobs.erase(it);
      } else {
        ++it;
      }
    }
  }
  // `ended` is destroyed here, outside the registry lock.
}

}  // namespace gale
