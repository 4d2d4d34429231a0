// An acker task: feeds AckInit / Ack / Fail into its AckerTable (Storm's XOR per root) and
// tells the spout task when a tree is done. See acker.h and docs/reliability.md.
#pragma once

#include "acker.h"
#include "private/executor.h"

namespace gale {

class AckerExecutor final : public Executor {
 public:
  AckerExecutor(RuntimeShared& sh, TaskId id) : Executor(sh, id) {}

  void onControl(TaskId src, Control&& c) override;

 private:
  void extraTargets(std::vector<TaskId>& targets) override;
  void open(const TopologyContext&) override {}
  const char* openVerb() const override { return "open"; }
  void beforeLoop(int64_t now) override;
  void timers(int64_t now) override;
  bool finishedStream() const override { return false; }  // ackers run until shutdown
  KindMetrics kindMetrics() const override;

  AckerTable table_;
  int64_t rotateEvery_ = 0, nextRotate_ = 0;
};

}  // namespace gale
