#include "private/checkpoint_link.h"

#include <stdexcept>

#include "gale/core/clock.h"
#include "gale/core/state_codec.h"

namespace gale {

namespace {

constexpr std::chrono::milliseconds kHeartbeat = WorkerLink::kHeartbeat;
// A follower sends its reports and ended inputs again this often until the coordinator's word
// says they arrived: sends do not wait (a worker must not stall on the link), so one can be lost.
constexpr std::chrono::seconds kResend{1};
// How long a follower's link, when destroyed, still tries to send what it has not sent.
constexpr std::chrono::seconds kLinger{2};
constexpr std::string_view kMagic = "GCKL";
// The link's own messages (below, and START's payload) carry a tag and version of their own
// inside WorkerLink's, whose version is the membership protocol's. 2: a report names its task and
// partitions, ENDED is a total (fx's format; 1 had neither). A message of another version is
// refused with the versions named (dropped with a warning; a START: the worker stops), never
// misread, e.g. by a worker of an older build during a rolling update.
constexpr std::string_view kBodyMagic = "GCKB";
constexpr uint8_t kVersion = 2;

// The link's own messages are WorkerLink's (HELLO, START, ABORT, heartbeats); these ride in them.
enum Kind : uint8_t {
  kReport = 'R',  // worker -> coordinator: checkpoint id, TaskReport
  kEnded = 'E',   // worker -> coordinator: its inputs ended so far (a total)
  kState = 'P',   // coordinator -> worker: triggered, completed, final
};

StateWriter message(Kind kind) {
  StateWriter w;
  w.header(kBodyMagic, kVersion);
  w.u8(kind);
  return w;
}

void writeSnapshots(StateWriter& w, const std::map<std::string, std::string>& snapshots) {
  w.varint(snapshots.size());
  for (const auto& [key, blob] : snapshots) {
    w.str(key);
    w.str(blob);
  }
}

std::map<std::string, std::string> readSnapshots(StateReader& r) {
  std::map<std::string, std::string> out;
  for (uint64_t n = r.count("snapshots", 2); n > 0; --n) {
    std::string key = r.str("key");
    out[key] = r.str("snapshot");
  }
  return out;
}

void writeOffsets(StateWriter& w, const PartitionOffsets& offsets) {
  w.varint(offsets.size());
  for (auto [p, off] : offsets) {
    w.svarint(p);
    w.svarint(off);
  }
}

PartitionOffsets readOffsets(StateReader& r) {
  PartitionOffsets out;
  for (uint64_t n = r.count("offsets", 2); n > 0; --n) {
    int p = static_cast<int>(r.svarint("partition"));
    out[p] = r.svarint("offset");
  }
  return out;
}

void writeReport(StateWriter& w, uint64_t id, const TaskReport& report) {
  w.varint(id);
  w.svarint(report.task);
  writeSnapshots(w, report.snapshots);
  w.str(report.source);
  writeOffsets(w, report.offsets);
  w.varint(report.partitionIds.size());
  for (const auto& name : report.partitionIds) w.str(name);
}

TaskReport readReport(StateReader& r) {
  TaskReport report;
  report.task = static_cast<int>(r.svarint("task"));
  report.snapshots = readSnapshots(r);
  report.source = r.str("source");
  report.offsets = readOffsets(r);
  for (uint64_t n = r.count("partition names", 1); n > 0; --n)
    report.partitionIds.push_back(r.str("partition name"));
  return report;
}

}  // namespace

int CheckpointLink::coordinatorWorker(const Topology& topology, const WorkerAssignment& a) {
  return WorkerLink::coordinatorWorker(topology.taskCount(), a);
}

std::string CheckpointLink::endpoint(const Topology& topology, const WorkerAssignment& a) {
  return WorkerLink::endpoint(topology.taskCount(), a);
}

WorkerLink::Hooks CheckpointLink::hooks() {
  return {.startPayload = [this](int w) { return startPayload(w); },
          .onMessage =
              [this](int w, std::string_view body) {
                if (link_->isCoordinator()) handleAtCoordinator(w, body);
                else handleAtMember(body);
              },
          .onTick =
              [this](WorkerLink::Outbox& out) {
                if (link_->isCoordinator()) lead(out);
                else member(out);
              },
          .onAborted =
              [this](const std::string& why) {
                if (auto c = coord()) c->fail(why);
              },
          .resumePoint =
              [this] { return "checkpoint " + std::to_string(coord()->lastCompleted()); }};
}

CheckpointLink::CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                               const std::optional<CurveConfig>& curve,
                               std::shared_ptr<CheckpointCoordinator> coordinator)
    : topology_(topology),
      assignment_(assignment),
      coord_(std::move(coordinator)),
      endedBy_(assignment.endpoints.size()) {
  link_ = std::make_unique<WorkerLink>(kMagic, "exactly-once job", "the checkpoint coordinator",
                                       topology.taskCount(), assignment, curve, true, hooks());
  link_->start();
}

CheckpointLink::CheckpointLink(const Topology& topology, const WorkerAssignment& assignment,
                               const std::optional<CurveConfig>& curve)
    : topology_(topology), assignment_(assignment) {
  link_ = std::make_unique<WorkerLink>(kMagic, "exactly-once job", "the checkpoint coordinator",
                                       topology.taskCount(), assignment, curve, false, hooks());
  link_->start();
}

CheckpointLink::~CheckpointLink() {
  link_->stop();
  std::shared_ptr<CheckpointCoordinator> c = coord();
  if (link_->isCoordinator() || !c) return;
  // A follower whose tasks ended (no sink waits for the final checkpoint) may be destroyed with
  // its last reports not yet sent: they go now, and the socket gets kLinger to deliver them.
  lastResent_ = 0;  // everything unconfirmed once more
  link_->flush([&](WorkerLink::Outbox& out) { sendReports(*c, SystemClock::steadyNanos(), out); },
               kLinger);
}

void CheckpointLink::workerFailed(const std::string& why) {
  // The link tells the coordinator (a follower) or every worker (the coordinator's).
  link_->abort("worker " + std::to_string(assignment_.self) + " failed: " + why);
}

CheckpointCoordinator::Restored CheckpointLink::waitStarted() {
  std::string start = link_->waitStarted();
  if (link_->isCoordinator()) return {};
  StateReader r(start, "checkpoint link START");
  r.header(kBodyMagic, kVersion);
  CheckpointCoordinator::Restored restored;
  restored.completed = r.varint("completed");
  restored.snapshots = readSnapshots(r);
  for (uint64_t n = r.count("sources", 2); n > 0; --n) {
    std::string source = r.str("source");
    restored.offsets[source] = readOffsets(r);
  }
  r.expectEnd();
  return restored;
}

void CheckpointLink::follow(std::shared_ptr<CheckpointCoordinator> follower) {
  {
    std::lock_guard lk(mutex_);
    coord_ = follower;
  }
  if (std::string why = link_->aborted(); !why.empty()) follower->fail(why);
}

std::shared_ptr<CheckpointCoordinator> CheckpointLink::coord() {
  std::lock_guard lk(mutex_);
  return coord_;
}

void CheckpointLink::onAbort(std::function<void(const std::string&)> handler) {
  link_->onAbort(std::move(handler));
}

// --------------------------------------------------------------- the coordinator's side

uint64_t CheckpointLink::spoutTasksOf(int w) const {
  uint64_t n = 0;
  for (const ComponentSpec& c : topology_.components())
    if (c.isSpout())
      for (int i = 0; i < c.parallelism; ++i)
        if (assignment_.workerOfTask.at(static_cast<size_t>(c.firstTask + i)) == w) ++n;
  return n;
}

void CheckpointLink::handleAtCoordinator(int w, std::string_view body) {
  StateReader r(body, "checkpoint link message");
  r.header(kBodyMagic, kVersion);
  uint8_t kind = r.u8("kind");
  std::shared_ptr<CheckpointCoordinator> coord = this->coord();
  switch (kind) {
    case kReport: {
      uint64_t id = r.varint("checkpoint");
      TaskReport report = readReport(r);
      r.expectEnd();
      // A report counts for its task: it must be one of the sender's, or a damaged or stray
      // message could stand in for a task that never reported.
      if (report.task < 0 || static_cast<size_t>(report.task) >= assignment_.workerOfTask.size() ||
          assignment_.workerOfTask[static_cast<size_t>(report.task)] != w)
        r.fail("a report of task " + std::to_string(report.task) + ", not one of worker " +
               std::to_string(w) + "'s");
      try {
        coord->report(id, std::move(report));
      } catch (const std::logic_error& e) {
        link_->abort(e.what());
      }
      return;
    }
    case kEnded: {
      // A total, sent again until the final checkpoint is triggered: count what is new.
      uint64_t n = r.varint("inputs ended");
      r.expectEnd();
      if (n > spoutTasksOf(w))
        r.fail(std::to_string(n) + " inputs ended, but worker " + std::to_string(w) + " has " +
               std::to_string(spoutTasksOf(w)) + " spout tasks");
      for (uint64_t& ended = endedBy_.at(static_cast<size_t>(w)); ended < n; ++ended)
        coord->inputEnded();
      return;
    }
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

// Every worker gets its tasks' snapshots and every source's offsets. Read once: no checkpoint
// completes without every worker, so a START sent again carries the same data.
std::string CheckpointLink::startPayload(int w) {
  if (!start_) start_ = coord()->restored();
  const CheckpointCoordinator::Restored& all = *start_;
  StateWriter s;
  s.header(kBodyMagic, kVersion);
  s.varint(all.completed);
  std::map<std::string, std::string> theirs;
  for (const auto& [key, blob] : all.snapshots) {
    int owner = workerOfSnapshot(key);
    if (owner < 0 || owner == w) theirs[key] = blob;
  }
  writeSnapshots(s, theirs);
  s.varint(all.offsets.size());
  for (const auto& [source, offsets] : all.offsets) {
    s.str(source);
    writeOffsets(s, offsets);
  }
  return s.take();
}

int CheckpointLink::workerOfSnapshot(const std::string& key) const {
  std::string task = key.substr(0, key.find('/'));  // "component#index[/in-flight]"
  auto hash = task.rfind('#');
  if (hash == std::string::npos) return -1;
  std::string name = task.substr(0, hash);
  int index = -1;
  try {
    index = std::stoi(task.substr(hash + 1));
  } catch (const std::exception&) {
    return -1;
  }
  for (const ComponentSpec& c : topology_.components()) {
    // A key-grouped task may need the blob of any old task, wherever that one ran.
    if (c.name == name && c.maxParallelism > 0) return -1;
    if (c.name == name && index >= 0 && index < c.parallelism)
      return assignment_.workerOfTask.at(static_cast<size_t>(c.firstTask + index));
  }
  return -1;
}

void CheckpointLink::lead(WorkerLink::Outbox& out) {
  int64_t now = SystemClock::steadyNanos();
  uint64_t triggered;
  try {
    triggered = coord_->due();  // the interval is the coordinator's, whoever holds the spouts
  } catch (const std::exception& e) {
    link_->abort(e.what());
    return;
  }
  uint64_t completed = coord_->lastCompleted(), final = coord_->finalCheckpoint();
  if (triggered == sentTriggered_ && completed == sentCompleted_ && final == sentFinal_ &&
      now - lastSent_ < std::chrono::nanoseconds(kHeartbeat).count())
    return;
  sentTriggered_ = triggered;
  sentCompleted_ = completed;
  sentFinal_ = final;
  lastSent_ = now;
  StateWriter s = message(kState);
  s.varint(triggered);
  s.varint(completed);
  s.varint(final);
  out.toAll(s.take());
}

// --------------------------------------------------------------- a follower's side

void CheckpointLink::handleAtMember(std::string_view body) {
  StateReader r(body, "checkpoint link message");
  r.header(kBodyMagic, kVersion);
  uint8_t kind = r.u8("kind");
  std::shared_ptr<CheckpointCoordinator> coord = this->coord();
  switch (kind) {
    case kState: {
      uint64_t triggered = r.varint("triggered"), completed = r.varint("completed"),
               final = r.varint("final");
      if (coord) coord->follow(triggered, completed, final);
      return;
    }
    default: r.fail("unknown kind " + std::to_string(kind));
  }
}

void CheckpointLink::member(WorkerLink::Outbox& out) {
  if (std::shared_ptr<CheckpointCoordinator> c = coord())
    sendReports(*c, SystemClock::steadyNanos(), out);
}

// Reports and ended inputs go again every kResend until the coordinator's word shows they
// arrived: a checkpoint it completed or moved past (aborted), the final one triggered (every
// input ended). The coordinator counts each task's report once and ENDED as a total.
void CheckpointLink::sendReports(CheckpointCoordinator& coord, int64_t now,
                                 WorkerLink::Outbox& link) {
  auto send = [&](const std::string& bytes) {
    if (lose_ > 0 && lose_.fetch_sub(1) > 0) return;
    link.toCoordinator(bytes);
  };
  const uint64_t completed = coord.lastCompleted(), triggered = coord.triggered();
  std::erase_if(unconfirmed_,
                [&](const auto& r) { return r.first <= completed || r.first < triggered; });
  const bool resend = now - lastResent_ >= std::chrono::nanoseconds(kResend).count();
  if (resend) {
    lastResent_ = now;
    for (const auto& [id, bytes] : unconfirmed_) send(bytes);
  }
  CheckpointCoordinator::Outbox out = coord.takeOutbox();
  for (auto& [id, report] : out.reports) {
    StateWriter w = message(kReport);
    writeReport(w, id, report);
    unconfirmed_.emplace_back(id, w.take());
    send(unconfirmed_.back().second);
  }
  inputsEnded_ += static_cast<uint64_t>(out.inputsEnded);
  const bool endedUnconfirmed = inputsEnded_ > 0 && coord.finalCheckpoint() == 0;
  if (out.inputsEnded > 0 || (resend && endedUnconfirmed)) {
    StateWriter w = message(kEnded);
    w.varint(inputsEnded_);
    send(w.take());
  }
}

}  // namespace gale
