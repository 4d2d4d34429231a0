// An exactly-once job spread over several workers (runWorker with Guarantee::ExactlyOnce): the
// link between the worker that holds the checkpoint coordinator and the others, which run a
// follower coordinator (checkpoint_coordinator.h). Barriers, data and the end of input cross
// workers in-band over the tasks' own channels, as between tasks of one process; only what tasks
// told the in-process coordinator by a function call travels here: reports (snapshots, source
// offsets) and ended inputs to the coordinator, its progress (triggered, completed, final) back.
//
// The coordinator is "task" T = taskCount() of a round-robin assignment: it runs in worker
// T % workers and binds that worker's endpoint + T (a ROUTER; each other worker connects a
// DEALER), with CURVE when the job's channels have it.
//
// Flink's failover region is the whole job here: a worker that restarts would start from the last
// completed checkpoint while the others run on past it, so a lost worker restarts every worker.
// Each process has a random incarnation number. A worker joins (HELLO every 100 ms) until the
// coordinator, once every worker has joined, sends START with the last completed checkpoint's
// data for its tasks (again to a worker still joining a second later: its START was lost); only
// then does any worker launch its tasks, so no task of a new run receives a tuple from a process
// of an older one that was gone before its replacement joined. From then on the coordinator aborts the job
// (ABORT to every worker, each of which stops with an error and is restarted by its supervisor)
// when a worker joins again with another incarnation (it was restarted), or is silent for
// kSilence; a worker stops on ABORT, on a message from another coordinator incarnation (the
// coordinator was restarted), or when the coordinator is silent for kSilence. A worker still
// bound to an older coordinator gets ABORT in reply to its HELLO.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gale/core/channel.h"
#include "gale/core/state_codec.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"
#include "private/checkpoint_coordinator.h"

namespace gale {

class CheckpointLink {
 public:
  static constexpr std::chrono::seconds kSilence{10};

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
  struct Member;
  void run();
  void step();  // one poll: messages in, then heartbeats, reports or the coordinator's word out
  void lead(int64_t now);
  void member(int64_t now);
  void sendReports(CheckpointCoordinator& coord, int64_t now);  // a follower's, until confirmed
  StateWriter fromWorker(uint8_t kind) const;  // a follower's message: kind, self, incarnation
  void handleAtCoordinator(const std::string& identity, const std::string& body, int64_t now);
  void handleAtMember(const std::string& body, int64_t now);
  void sendTo(const std::string& identity, const std::string& body);
  void sendStart(size_t worker, const CheckpointCoordinator::Restored& all, int64_t now);
  // The worker whose task a snapshot key ("component#index[/...]") belongs to; -1: unknown.
  int workerOfSnapshot(const std::string& key) const;
  void abort(const std::string& why);
  // What the link thread reads of the state shared with other threads.
  struct Shared {
    std::string aborted;  // why the job was aborted; empty: it was not
    std::string failed;   // why this worker failed, not yet acted on
    bool started = false;
    std::shared_ptr<CheckpointCoordinator> coord;
  };
  Shared shared();

  Topology topology_;
  WorkerAssignment assignment_;
  int self_;
  int coordinatorWorker_;
  bool isCoordinator_;
  uint64_t incarnation_;
  Transport transport_{1};
  zmq::socket_t socket_;
  std::shared_ptr<CheckpointCoordinator> coord_;  // guarded by mutex_ until started (follower)

  std::mutex mutex_;
  std::condition_variable cv_;
  bool started_ = false;
  std::string aborted_;  // non-empty: why
  std::string failed_;   // non-empty: why this worker's topology failed (workerFailed)
  std::function<void(const std::string&)> onAbort_;
  CheckpointCoordinator::Restored restored_;  // a follower's START

  // The link thread's own state.
  std::vector<Member> members_;  // the coordinator: one per worker (its own entry unused)
  uint64_t boundTo_ = 0;         // a follower: the coordinator incarnation that started it
  int64_t lastHeard_ = 0;        // a follower: when the coordinator was last heard (ns)
  int64_t lastSent_ = 0;         // HELLO / STATE heartbeats (ns)
  uint64_t sentTriggered_ = 0, sentCompleted_ = 0, sentFinal_ = 0;
  // A follower: its reports (checkpoint id, message) not yet confirmed by the coordinator's
  // word, when they were last sent again, and how many of its inputs ended.
  std::vector<std::pair<uint64_t, std::string>> unconfirmed_;
  int64_t lastResent_ = 0;
  uint64_t inputsEnded_ = 0;
  std::atomic<int> lose_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gale
