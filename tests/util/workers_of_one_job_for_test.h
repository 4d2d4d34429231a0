// The workers of one job over several workers, all in this process (each with its own ZeroMQ
// context, talking over ipc:// as separate processes would): batch/microbatch_workers_test.cpp
// and topology/exactly_once_workers_test.cpp.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace gale::testing {

// `Worker` is what launch(w) returns (a RunningTopology, a MicroBatchWorker): it returns once
// every worker joined the job's coordinator, so each is launched on a thread of its own.
template <class Worker>
class WorkersOfOneJob {
 public:
  explicit WorkersOfOneJob(int workers) : workers(workers) {}
  virtual ~WorkersOfOneJob() = default;

  // Starts worker `w` (joinStarts() waits until it has).
  void start(int w) {
    threads.emplace_back([this, w] {
      try {
        Worker worker = launch(w);
        std::lock_guard lk(mutex);
        running[static_cast<size_t>(w)].emplace(std::move(worker));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "worker " << w << " did not start: " << e.what();
      }
    });
  }
  void startAll() {
    running.resize(static_cast<size_t>(workers));
    for (int w = 0; w < workers; ++w) start(w);
    joinStarts();
  }
  void joinStarts() {
    for (auto& t : threads) t.join();
    threads.clear();
  }
  Worker& worker(int w) { return *running[static_cast<size_t>(w)]; }

  // Worker 0 is lost and started again while the others run on: every other worker must stop,
  // saying that the job restarts (worker 0 then waits for them to join again). Wrap in
  // ASSERT_NO_FATAL_FAILURE.
  void loseWorkerZeroUntilTheOthersStop() {
    running[0].reset();
    start(0);
    for (int w = 1; w < workers; ++w) {
      bool stopped = false;
      for (int i = 0; i < 60000 && !stopped; ++i) {
        stopped = !worker(w).error().empty();
        if (!stopped) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      ASSERT_TRUE(stopped) << "worker " << w << " ran on after worker 0 was started again";
      EXPECT_NE(worker(w).error().find("restart"), std::string::npos) << worker(w).error();
    }
  }
  // Then the others start again: the job resumes with worker 0, which was waiting for them.
  void restartTheOthers() {
    for (int w = 1; w < workers; ++w) running[static_cast<size_t>(w)].reset();
    for (int w = 1; w < workers; ++w) start(w);
    joinStarts();
  }

  int workers;
  std::mutex mutex;
  std::vector<std::thread> threads;
  std::vector<std::optional<Worker>> running;

 protected:
  virtual Worker launch(int w) = 0;
};

}  // namespace gale::testing
