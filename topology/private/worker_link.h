// The membership half of a link between the workers of one job (runWorker): the worker that holds
// the job's coordinator (checkpoint coordinator, batch coordinator) and the others, its followers.
// What the coordinator and its followers say to each other (reports, plans, results) is the
// owner's (checkpoint_link.h, batch/batch_link.h); this class only decides who belongs to the run,
// when it starts and when it is over.
//
// The coordinator is "task" rendezvousTask of a round-robin assignment: it runs in worker
// rendezvousTask % workers and binds that worker's endpoint + rendezvousTask (a ROUTER; each other
// worker connects a DEALER), with CURVE when the job's channels have it.
//
// Flink's failover region is the whole job here: a worker that restarts would start from the last
// commit while the others run on past it, so a lost worker restarts every worker. Each process
// has a random incarnation number. A worker joins (HELLO every 100 ms) until the coordinator, once
// every worker has joined, sends START with the owner's payload for it (again to a worker still
// joining a second later: its START was lost); only then does any worker launch its tasks, so no
// task of a new run receives a tuple from a process of an older one that was gone before its
// replacement joined. From then on the coordinator aborts the job (ABORT to every worker, each of
// which stops with an error and is restarted by its supervisor) when a worker joins again with
// another incarnation (it was restarted), or is silent for kSilence; a worker stops on ABORT, on a
// message from another coordinator incarnation (the coordinator was restarted), or when the
// coordinator is silent for kSilence; a worker that stops on an error of its own (abort(), which
// names the worker) tells the coordinator, which aborts the job at once with that reason. A worker still bound to an older coordinator
// gets ABORT in reply to its HELLO. The owner's messages of a worker that is not (or no longer) a member of the
// running incarnation are dropped, so nothing of an older run counts in a newer one.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gale/core/channel.h"
#include "gale/topology/runtime.h"

namespace gale {

class WorkerLink {
 public:
  static constexpr std::chrono::seconds kSilence{10};
  static constexpr std::chrono::milliseconds kHeartbeat{100};

  // Where the coordinator runs: rendezvousTask % workers, and its endpoint.
  static int coordinatorWorker(int rendezvousTask, const WorkerAssignment& assignment);
  static std::string endpoint(int rendezvousTask, const WorkerAssignment& assignment);

  // Sends of the link thread (dontwait: a worker that stopped reading loses its messages instead
  // of stalling the link; owners re-send what must arrive).
  class Outbox {
   public:
    void to(int worker, std::string_view body);  // the coordinator's side
    void toAll(std::string_view body);           // the coordinator's side: every follower
    void toCoordinator(std::string_view body);   // a follower's side
   private:
    friend class WorkerLink;
    explicit Outbox(WorkerLink& link) : link_(link) {}
    WorkerLink& link_;
  };

  struct Hooks {
    // The coordinator: what START carries to `worker` (called on the link thread).
    std::function<std::string(int worker)> startPayload;
    // An owner's message from a member of this run (the coordinator: worker = the sender; a
    // follower: the coordinator's worker). Link thread; a SnapshotError drops the message.
    std::function<void(int worker, std::string_view body)> onMessage;
    // Link thread, every step (about every 5 ms) once the run started: queue the owner's sends.
    std::function<void(Outbox&)> onTick;
    // Once, on the thread that aborts, before the handler of onAbort().
    std::function<void(const std::string& why)> onAborted;
    // Where a restarted job resumes, for messages ("checkpoint 7"); empty: "its last commit".
    std::function<std::string()> resumePoint;
  };

  // `job` names the job in errors ("exactly-once job"), `coordinatorName` its coordinator ("the
  // checkpoint coordinator"). The coordinator's side binds its endpoint; a follower's connects.
  // Nothing moves before start(), so that the hooks may use the owner's pointer to the link.
  WorkerLink(std::string_view magic, std::string job, std::string coordinatorName,
             int rendezvousTask, const WorkerAssignment& assignment,
             const std::optional<CurveConfig>& curve, bool coordinator, Hooks hooks);
  ~WorkerLink();
  void start();  // once
  void stop();   // joins the link thread (the destructor does too): no hook runs after it
  // After stop(), on the caller's thread, unless aborted: `send` queues the owner's last
  // messages, and the socket keeps trying to deliver them for `linger` when destroyed.
  void flush(const std::function<void(Outbox&)>& send, std::chrono::milliseconds linger);
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  // Blocks until the job starts: a follower gets START's payload, the coordinator "" once every
  // worker joined and was sent START. Throws std::runtime_error when it was aborted first.
  std::string waitStarted();
  // Called once (at once if it already happened) when the job is aborted: the worker must stop.
  void onAbort(std::function<void(const std::string&)> handler);
  void abort(const std::string& why);  // any thread; ABORT leaves from the link thread
  std::string aborted();  // why; empty: it was not
  bool isCoordinator() const { return isCoordinator_; }
  int self() const { return self_; }
  int coordinatorWorker() const { return coordinatorWorker_; }
  int workers() const { return static_cast<int>(assignment_.endpoints.size()); }

 private:
  struct Member;
  void run();
  void step();  // one poll: messages in, then heartbeats and the owner's sends out
  void lead(int64_t now);
  void member(int64_t now);
  void handleAtCoordinator(const std::string& identity, const std::string& body, int64_t now);
  void handleAtMember(const std::string& body, int64_t now);
  void sendTo(const std::string& identity, std::string_view body);
  void sendToMember(size_t worker, std::string_view body, int64_t now);
  void sendRaw(size_t worker, std::string_view bytes, int64_t now);  // a message of the link's
  void sendStart(size_t worker, int64_t now);
  std::string abortMessage(const std::string& why) const;
  void sendAbortOnce();  // on the link thread (or after it ended)
  bool started();

  std::string magic_;
  std::string job_;
  std::string coordinatorName_;
  WorkerAssignment assignment_;
  int self_;
  int coordinatorWorker_;
  bool isCoordinator_;
  uint64_t incarnation_;
  Hooks hooks_;
  Transport transport_{1};
  zmq::socket_t socket_;

  std::mutex mutex_;
  std::condition_variable cv_;
  bool started_ = false;
  std::string aborted_;  // non-empty: why
  std::function<void(const std::string&)> onAbort_;
  std::string startPayload_;  // a follower's START

  // The link thread's own state.
  std::vector<Member> members_;  // the coordinator: one per worker (its own entry unused)
  uint64_t boundTo_ = 0;         // a follower: the coordinator incarnation that started it
  int64_t lastHeard_ = 0;        // a follower: when the coordinator was last heard (ns)
  int64_t lastSent_ = 0;         // a follower: its last HELLO (ns)
  bool abortSent_ = false;       // ABORT went to every member (coordinator) or to it (follower)
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace gale
