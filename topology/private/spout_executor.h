// A spout task: calls nextTuple() while it may (pending limit, back-off, deactivation), tracks
// each reliable tuple's tree until its acker reports it done or it times out, and replays or
// dead-letters failed messages (RetrySchedule). See docs/runtime.md and docs/reliability.md.
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <unordered_map>

#include "pending_limit.h"
#include "private/executor.h"
#include "retry.h"

namespace gale {

class SpoutExecutor final : public Executor {
 public:
  SpoutExecutor(RuntimeShared& sh, TaskId id) : Executor(sh, id) {}

  void onControl(TaskId src, Control&& c) override;

 private:
  struct Pending {
    MessageId msgId = 0;
    int64_t deadline = 0;  // config clock, ns
    int64_t startNanos = 0;
    // Kept only for a message that failed before (or when maxRetries is 0): its values, for the
    // dead-letter stream should this tree fail too.
    std::unique_ptr<Values> values;
    uint32_t stream = 0;  // index in outs_
  };

  class Collector final : public SpoutOutputCollector {
   public:
    explicit Collector(SpoutExecutor& t) : t_(t) {}
    void emitWatermark(Timestamp wm, bool idle) override;
    void emitBatchBegin(uint64_t txid) override {
      t_.broadcast(Control{ControlKind::BatchBegin, 0, txid});
    }
    void emitBatchEnd(uint64_t txid) override {
      t_.broadcast(Control{ControlKind::BatchEnd, 0, txid});
    }
    void emitBarrier(uint64_t id) override { t_.broadcast(Control{ControlKind::Barrier, 0, id}); }
    void emitEndOfStream() override { t_.endOfStream(); }

   protected:
    void emitTuple(TaskId direct, std::string_view stream, Values&& values,
                   std::optional<MessageId> msgId, int64_t originNanos) override {
      t_.emit(direct, stream, std::move(values), msgId, originNanos);
    }

   private:
    SpoutExecutor& t_;
  };

  // ---- Executor
  void extraTargets(std::vector<TaskId>& targets) override;
  void open(const TopologyContext& ctx) override;
  const char* openVerb() const override { return "open"; }
  void close() override {
    if (spout_) spout_->close();
  }
  void beforeLoop(int64_t now) override;
  bool step() override;
  void timers(int64_t now) override;
  bool finishedStream() const override { return eosEmitted_ && pending_.empty(); }
  bool sleepsWhenIdle() const override;
  int wakeFd() const override { return spout_ ? spout_->wakeFd() : -1; }
  bool growsBackoff() const override { return !atPendingLimit_; }
  bool waitIsBackPressure() const override { return atPendingLimit_; }
  std::chrono::milliseconds blockTimeout() const override { return std::chrono::milliseconds(1); }
  bool servesInboxWhileBlocked() const override { return true; }
  KindMetrics kindMetrics() const override;

  void emit(TaskId direct, std::string_view streamName, Values&& values,
            std::optional<MessageId> msgId, int64_t originNanos);
  void endOfStream();
  void treeDone(uint64_t root, bool ok, std::string_view reason = {});
  template <class F>
  void spoutCall(const char* what, F&& f) {
    hook(what, std::forward<F>(f));
  }
  void releaseRetries();
  void deadLetter(const Pending& p, std::string_view reason, uint32_t attempts);
  void expireTrees(int64_t now);
  void drainCompletedNow();

  Collector collector_{*this};
  std::unique_ptr<Spout> spout_;
  std::unordered_map<uint64_t, Pending> pending_;
  PendingLimit limit_{sh_.config.maxSpoutPending, nanos(sh_.config.messageTimeout) / 10,
                      sh_.config.adaptiveMaxPending};
  RetrySchedule retries_{sh_.config.maxRetries, nanos(sh_.config.retryBackoffMin),
                         nanos(sh_.config.retryBackoffMax)};
  std::vector<MessageId> dueRetries_;  // scratch
  std::deque<MessageId> completedNow_;
  bool eosEmitted_ = false;
  bool atPendingLimit_ = false;
  uint64_t calls_ = 0;
  int64_t timeoutScanEvery_ = 0, nextTimeoutScan_ = 0;
  int64_t watermark_ = INT64_MIN;  // the one it last sent
  bool watermarkIdle_ = false;
};

}  // namespace gale
