// An exactly-once job spread over several workers (runWorker with Guarantee::ExactlyOnce): the
// link between the worker that holds the checkpoint coordinator and the others, which run a
// follower coordinator (checkpoint_coordinator.h). Barriers, data and the end of input cross
// workers in-band over the tasks' own channels, as between tasks of one process; only what tasks
// told the in-process coordinator by a function call travels here: reports (snapshots, source
// offsets) and ended inputs to the coordinator, its progress (triggered, completed, final) back.
//
// The coordinator is "task" T = taskCount() of a round-robin assignment (worker_link.h: who
// belongs to the run, START, ABORT, heartbeats and CURVE); a lost worker restarts every worker
// from the last completed checkpoint (Flink's failover region is the whole job here).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/channel.h"
#include "gale/core/state_codec.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"
#include "private/checkpoint_coordinator.h"
#include "private/worker_link.h"

namespace gale {

class CheckpointLink {
 public:
  static constexpr std::chrono::seconds kSilence = WorkerLink::kSilence;

  // Where the coordinator of `topology` runs under `assignment`: its worker and endpoint.
  static int coordinatorWorker(const Topology& topology, const WorkerAssignment& assignment);
  static std::string endpoint(const Topology& topology, const WorkerAssignment& assignment);

  // The coordinator's side: binds its endpoint; waitStarted() returns once every other worker
  // joined and was sent START.
  CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                 const std::optional<CurveConfig>& curve,
                 std::shared_ptr<CheckpointCoordinator> coordinator);
  // A follower's side: joins the coordinator; waitStarted() returns what START brought; then
  // follow() hands the link the follower coordinator built from it.
  CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                 const std::optional<CurveConfig>& curve);
  ~CheckpointLink();
  CheckpointLink(const CheckpointLink&) = delete;
  CheckpointLink& operator=(const CheckpointLink&) = delete;

  // Blocks until the job starts (above); throws std::runtime_error when it was aborted first.
  CheckpointCoordinator::Restored waitStarted();
  void follow(std::shared_ptr<CheckpointCoordinator> follower);
  // Called once (at once if it already happened) when the job is aborted: the worker must stop.
  void onAbort(std::function<void(const std::string&)> handler);
  // This worker's topology failed (RuntimeShared::fail, any thread): the link stops the job,
  // telling the coordinator (a follower) or every worker (the coordinator's), so the job restarts
  // from its last checkpoint at once instead of after kSilence or a checkpoint timeout.
  void workerFailed(const std::string& why);
  // Tests: a follower's next `n` REPORT and ENDED sends are lost, as on a full or broken pipe.
  void loseNextReports(int n) { lose_ = n; }

 private:
  void lead(WorkerLink::Outbox& out);    // the coordinator's progress out
  void member(WorkerLink::Outbox& out);  // a follower's reports and ended inputs out
  void sendReports(CheckpointCoordinator& coord, int64_t now, WorkerLink::Outbox& out);
  // The number of spout tasks worker w runs: the most inputs it can report ended.
  uint64_t spoutTasksOf(int w) const;
  void handleAtCoordinator(int worker, std::string_view body);
  void handleAtMember(std::string_view body);
  std::string startPayload(int worker);
  // The worker whose task a snapshot key ("component#index[/...]") belongs to; -1: unknown.
  int workerOfSnapshot(const std::string& key) const;
  std::shared_ptr<CheckpointCoordinator> coord();
  WorkerLink::Hooks hooks();

  Topology topology_;
  WorkerAssignment assignment_;
  std::mutex mutex_;
  std::shared_ptr<CheckpointCoordinator> coord_;  // guarded by mutex_ (a follower's comes later)

  // The link thread's own state.
  std::optional<CheckpointCoordinator::Restored> start_;  // the coordinator: what START sends
  int64_t lastSent_ = 0;                                  // the coordinator: its last STATE (ns)
  uint64_t sentTriggered_ = 0, sentCompleted_ = 0, sentFinal_ = 0;
  std::vector<uint64_t> endedBy_;  // the coordinator: each worker's ENDED total so far
  // A follower: its reports (checkpoint id, message) not yet confirmed by the coordinator's
  // word, when they were last sent again, and how many of its inputs ended.
  std::vector<std::pair<uint64_t, std::string>> unconfirmed_;
  int64_t lastResent_ = 0;
  uint64_t inputsEnded_ = 0;
  std::atomic<int> lose_{0};
  std::unique_ptr<WorkerLink> link_;  // last: its thread uses the members above
};

}  // namespace gale
