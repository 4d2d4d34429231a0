// For the crash tests (tests/*fault_test.cpp): a child process that is killed with SIGKILL
// at a chosen point of a job (a commit point, a checkpoint point, the sink) or after a delay, the
// last committed txid (checkpoint) of a state directory, and for micro-batch jobs a sink
// that writes each batch's rows to <dir>/part-<txid>-<task> through a temporary file and a
// rename, so a replayed txid replaces its file and a crash never leaves a half-written part.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "gale/core/operator.h"
#include "gale/state/state_store.h"

namespace gale::testing {

enum class KillAt { Nowhere, BeforeStateWrite, AfterStateWrite, AfterCommit, SinkBeforeRename,
                    SinkAfterRename };

class TxidFileSink final : public Operator {
 public:
  // How a row is written: one line, '\n' included.
  using Format = std::string (*)(const Tuple&);
  TxidFileSink(std::string dir, Format format, KillAt kill, uint64_t killTxid)
      : dir_(std::move(dir)), format_(format), kill_(kill), killTxid_(killTxid) {}
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<TxidFileSink>(dir_, format_, kill_, killTxid_);
  }
  void open(const OperatorContext& c) override { task_ = c.taskIndex; }
  void onBatchBegin(uint64_t) override { rows_.clear(); }
  void onTuple(const Tuple& t, Emitter&) override { rows_ += format_(t); }
  void onBatchEnd(uint64_t txid, Emitter&) override {
    std::string part = dir_ + "/part-" + std::to_string(txid) + "-" + std::to_string(task_);
    {
      std::ofstream out(part + ".tmp", std::ios::trunc);
      out << rows_;
    }
    if (kill_ == KillAt::SinkBeforeRename && txid == killTxid_) ::raise(SIGKILL);
    std::filesystem::rename(part + ".tmp", part);
    if (kill_ == KillAt::SinkAfterRename && txid == killTxid_) ::raise(SIGKILL);
  }

 private:
  std::string dir_;
  Format format_;
  KillAt kill_;
  uint64_t killTxid_;
  int task_ = 0;
  std::string rows_;
};

// The last committed txid of checkpoint `chk` (0: none, or killed before it was initialized).
inline uint64_t committedTxid(const std::string& chk) {
  if (!std::filesystem::exists(chk)) return 0;
  try {
    return StateStore::inspect(chk)->lastCommittedTxid();
  } catch (const std::exception&) {
    return 0;
  }
}

// The MicroBatch::onCommitPoint of a child that is to die at `kill` of batch `killTxid`.
inline std::function<void(CommitPoint, uint64_t)> killAtCommitPoint(KillAt kill,
                                                                    uint64_t killTxid) {
  return [kill, killTxid](CommitPoint p, uint64_t txid) {
    if (txid != killTxid) return;
    if ((p == CommitPoint::BeforeStateWrite && kill == KillAt::BeforeStateWrite) ||
        (p == CommitPoint::AfterStateWrite && kill == KillAt::AfterStateWrite) ||
        (p == CommitPoint::AfterCommit && kill == KillAt::AfterCommit)) {
      ::raise(SIGKILL);
    }
  };
}

enum class ChildEnd { Killed, Exited, Failed };

// Forks; the child runs `child`, which ends the process (_exit). With delayMs >= 0 the parent
// kills it with SIGKILL after that long. Killed: SIGKILL ended it; Exited: it exited with 0;
// Failed (a test failure is recorded): anything else.
inline ChildEnd runChild(const std::function<void()>& child, int delayMs) {
  pid_t pid = ::fork();
  if (pid < 0) {
    ADD_FAILURE() << "fork failed";
    return ChildEnd::Failed;
  }
  if (pid == 0) {
    child();
    ::_exit(4);  // child() must not return
  }
  if (delayMs >= 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(delayMs));
    ::kill(pid, SIGKILL);
  }
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) {
    ADD_FAILURE() << "waitpid failed";
    return ChildEnd::Failed;
  }
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return ChildEnd::Killed;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return ChildEnd::Exited;
  ADD_FAILURE() << "the child failed (status " << status << ", see its stderr)";
  return ChildEnd::Failed;
}

}  // namespace gale::testing
