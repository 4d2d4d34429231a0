// A spout task; see private/spout_executor.h.
#include "private/spout_executor.h"

#include <stdexcept>

#include "gale/core/state_codec.h"
#include "private/bolt_executor.h"

namespace gale {

void SpoutExecutor::Collector::emitWatermark(Timestamp wm, bool idle) {
  Control c;
  c.kind = ControlKind::Watermark;
  c.time = wm.micros;
  c.value = idle ? kIdleWatermark : 0;
  t_.broadcast(c);
  t_.watermark_ = wm.micros;
  t_.watermarkIdle_ = idle;
}

void SpoutExecutor::extraTargets(std::vector<TaskId>& targets) {
  if (sh_.config.acking)
    for (int a = 0; a < sh_.numAckers; ++a) targets.push_back(sh_.firstAcker + a);
}

void SpoutExecutor::open(const TopologyContext& ctx) {
  spout_ = comp_->spout->clone();
  spout_->open(ctx, collector_);
}

void SpoutExecutor::onControl(TaskId, Control&& c) {
  if (c.kind == ControlKind::TreeDone)
    treeDone(c.root, c.ok, std::string_view(c.payload).substr(0, kMaxFailReason));
}

void SpoutExecutor::emit(TaskId direct, std::string_view streamName, Values&& values,
                         std::optional<MessageId> msgId, int64_t originNanos) {
  if (eosEmitted_)
    throw std::logic_error("spout '" + name() + "' emitted after its end of stream");
  OutStream& os = stream(streamName);
  checkValues(os, values);
  if (originNanos == 0) originNanos = sh_.clock->monoNanos();
  bool reliable = sh_.config.acking && msgId.has_value();
  const std::vector<TaskId>* routed = routeUnlessFused(os, direct, reliable, values, originNanos);
  if (!routed) return;
  const std::vector<TaskId>& targets = *routed;
  uint64_t root = reliable ? nonZeroRandom() : 0;
  std::unique_ptr<Values> kept;
  if (reliable && !targets.empty() &&
      (sh_.config.maxRetries == 0 || retries_.failedBefore(*msgId)))
    kept = std::make_unique<Values>(values);
  uint64_t xorEdges = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    Tuple t(os.schema, i + 1 == targets.size() ? std::move(values) : values);
    t.setOriginNanos(originNanos);
    if (reliable) {
      uint64_t edge = nextRandom();
      xorEdges ^= edge;
      t.mutableAnchors().push_back({root, edge});
    }
    send(targets[i], os.id, std::move(t));
  }
  if (!reliable) return;
  if (targets.empty()) {  // nobody to process it: the tree is complete already
    completedNow_.push_back(*msgId);
    return;
  }
  Pending& pend = pending_[root];
  pend.msgId = *msgId;
  pend.deadline = sh_.clock->monoNanos() + nanos(sh_.config.messageTimeout);
  pend.startNanos = steadyNow();
  pend.values = std::move(kept);
  pend.stream = static_cast<uint32_t>(&os - outs_.data());
  Control init;
  init.kind = ControlKind::AckInit;
  init.root = root;
  init.value = xorEdges;
  init.task = id_;
  sendControl(sh_.ackerOf(root), std::move(init));
}

void SpoutExecutor::endOfStream() {
  if (eosEmitted_) return;
  eosEmitted_ = true;
  broadcast(Control{ControlKind::EndOfStream});
}

// `reason` (failed trees): "<component>\0<why>" from the Fail, as the acker passed it on.
void SpoutExecutor::treeDone(uint64_t root, bool ok, std::string_view reason) {
  auto it = pending_.find(root);
  if (it == pending_.end()) return;  // timed out already
  Pending p = std::move(it->second);
  pending_.erase(it);
  limit_.completed(steadyNow() - p.startNanos);
  if (ok) {
    ++acked_;
    completeLat_.record(steadyNow() - p.startNanos);
    retries_.forget(p.msgId);
    return spoutCall("ack", [&] { spout_->ack(p.msgId); });
  }
  ++failed_;
  // Not replayed at once: fail(msgId) is called when its backoff ends (releaseRetries), or,
  // past the retry limit, the message goes to the dead-letter stream.
  RetrySchedule::Decision d = retries_.failed(p.msgId, sh_.clock->monoNanos());
  if (d.deadLetter) deadLetter(p, reason, d.attempts);
}

void SpoutExecutor::releaseRetries() {
  if (!retries_.waiting()) return;
  dueRetries_.clear();
  retries_.takeDue(sh_.clock->monoNanos(), dueRetries_);
  for (MessageId m : dueRetries_) {
    ++retried_;
    spoutCall("fail", [&] { spout_->fail(m); });
  }
}

void SpoutExecutor::deadLetter(const Pending& p, std::string_view reason, uint32_t attempts) {
  ++deadLettered_;
  reason = reason.substr(0, kMaxFailReason);
  size_t nul = reason.find('\0');
  std::string component(nul == std::string_view::npos ? std::string_view{} : reason.substr(0, nul));
  std::string why(nul == std::string_view::npos ? reason : reason.substr(nul + 1));
  const std::string& stream = p.values ? outs_[p.stream].name : std::string();
  logError("spout '" + name() + "': message " + std::to_string(p.msgId) + " failed " +
           std::to_string(attempts) + " times, last by '" + component + "': " + why +
           "; it goes to the dead-letter stream and is not replayed again");
  Values dl{stream, Bytes{p.values ? encodeValues(*p.values) : std::string()}, component, why,
            static_cast<int64_t>(attempts), static_cast<int64_t>(p.msgId)};
  spoutCall("the dead-letter emit",
            [&] { emit(-1, kDeadLetterStream, std::move(dl), std::nullopt, 0); });
  spoutCall("deadLettered", [&] { spout_->deadLettered(p.msgId); });
}

void SpoutExecutor::expireTrees(int64_t now) {
  std::vector<uint64_t> expired;
  for (auto& [root, p] : pending_)
    if (p.deadline <= now) expired.push_back(root);
  if (expired.empty()) return;
  timedOut_ += expired.size();
  std::string reason = failReason(
      "", "the tree timed out: not completed within messageTimeout (" +
              std::to_string(toMicros(sh_.config.messageTimeout) / 1000) + " ms)");
  for (uint64_t r : expired) treeDone(r, false, reason);
}

// Returns true when it emitted something.
bool SpoutExecutor::step() {
  if (eosEmitted_) return false;
  if (sh_.stopping.load(std::memory_order_relaxed)) {
    retries_.clearWaiting();
    if (pending_.empty()) endOfStream();
    return false;
  }
  if (sh_.deactivated.load(std::memory_order_relaxed)) return false;
  releaseRetries();
  bool any = false;
  for (int k = 0; k < 16; ++k) {
    if (sh_.config.acking && pending_.size() >= limit_.limit()) {
      atPendingLimit_ = true;
      break;
    }
    atPendingLimit_ = false;
    bool sample = (calls_++ & 15) == 0;
    int64_t t0 = steadyNow();
    bool e = false;
    try {
      e = spout_->nextTuple(collector_);
    } catch (const std::exception& ex) {
      componentError("nextTuple", ex);
    }
    int64_t t1 = steadyNow();
    busyNanos_ += t1 - t0;
    if (sample) executeLat_.record(t1 - t0);
    drainCompletedNow();
    if (!e || eosEmitted_) break;
    any = true;
  }
  return any;
}

void SpoutExecutor::drainCompletedNow() {
  while (!completedNow_.empty()) {
    MessageId m = completedNow_.front();
    completedNow_.pop_front();
    ++acked_;
    retries_.forget(m);
    spoutCall("ack", [&] { spout_->ack(m); });
  }
}

void SpoutExecutor::beforeLoop(int64_t now) {
  timeoutScanEvery_ = std::min<int64_t>(nanos(sh_.config.messageTimeout) / 4, 100'000'000);
  nextTimeoutScan_ = now + timeoutScanEvery_;
}

void SpoutExecutor::timers(int64_t now) {
  limit_.update(steadyNow());
  if (now >= nextTimeoutScan_) {
    nextTimeoutScan_ = now + timeoutScanEvery_;
    expireTrees(now);
  }
}

bool SpoutExecutor::sleepsWhenIdle() const {
  return !eosEmitted_ && !atPendingLimit_ && !sh_.stopping.load(std::memory_order_relaxed);
}

Executor::KindMetrics SpoutExecutor::kindMetrics() const {
  KindMetrics k;
  k.pending = pending_.size();
  k.pendingLimit = limit_.limit();
  k.watermark = watermark_;
  k.watermarkIdle = watermarkIdle_;
  return k;
}

}  // namespace gale
