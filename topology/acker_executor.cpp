// An acker task; see private/acker_executor.h.
#include "private/acker_executor.h"

namespace gale {

void AckerExecutor::extraTargets(std::vector<TaskId>& targets) {
  for (const auto& c : sh_.topology.components())
    if (c.isSpout())
      for (int i = 0; i < c.parallelism; ++i) targets.push_back(c.firstTask + i);
}

void AckerExecutor::onControl(TaskId, Control&& c) {
  AckerTable::Done d;
  switch (c.kind) {
    case ControlKind::AckInit: d = table_.init(c.root, c.value, c.task); break;
    case ControlKind::Ack: d = table_.ack(c.root, c.value); break;
    case ControlKind::Fail:
      d = table_.fail(c.root, std::string_view(c.payload).substr(0, kMaxFailReason));
      break;
    default: return;
  }
  if (!d.done) return;
  if (d.ok)
    ++acked_;
  else
    ++failed_;
  if (d.spoutTask < 0 || d.spoutTask >= sh_.numTasks ||
      !senders_[static_cast<size_t>(d.spoutTask)]) {
    logWarn("acker: tree done for unknown spout task " + std::to_string(d.spoutTask));
    return;
  }
  Control done;
  done.kind = ControlKind::TreeDone;
  done.root = c.root;
  done.ok = d.ok;
  if (!d.ok) done.payload = std::move(d.reason);
  sendControl(d.spoutTask, std::move(done));
}

void AckerExecutor::beforeLoop(int64_t now) {
  rotateEvery_ = nanos(sh_.config.messageTimeout) / (AckerTable::kBuckets - 1);
  nextRotate_ = now + rotateEvery_;
}

void AckerExecutor::timers(int64_t now) {
  if (now >= nextRotate_) {
    nextRotate_ = now + rotateEvery_;
    table_.rotate();
  }
}

Executor::KindMetrics AckerExecutor::kindMetrics() const {
  KindMetrics k;
  k.pending = table_.size();
  return k;
}

}  // namespace gale
