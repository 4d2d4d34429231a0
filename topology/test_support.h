// Spouts and bolts for the topology tests: deterministic inputs, shared observation state (the
// runtime clones components per task, so what a test inspects lives behind a shared_ptr).
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gale/topology/component.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale::testing {

// Emits ints 0..n-1 (field "n", and "key" = n % keys) on the default stream with msgId = n. Task
// i of p emits the numbers with n % p == i. Failed ids are emitted again. Records acks/fails.
struct CountingState {
  std::mutex mutex;
  std::map<int64_t, int> acked;   // msgId -> times acked
  std::map<int64_t, int> failed;  // msgId -> times failed
  std::atomic<int64_t> emitted{0};
  std::atomic<int64_t> completed{0};
  int ackedOnce(int64_t n) {
    std::lock_guard l(mutex);
    auto it = acked.find(n);
    return it == acked.end() ? 0 : it->second;
  }
  size_t distinctAcked() {
    std::lock_guard l(mutex);
    return acked.size();
  }
};

class CountingSpout : public Spout {
 public:
  CountingSpout(int64_t n, int keys, std::shared_ptr<CountingState> state, bool reliable = true,
                bool endStream = true)
      : n_(n), keys_(keys), state_(std::move(state)), reliable_(reliable), end_(endStream) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}, {"key", Type::Int64}});
  }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<CountingSpout>(n_, keys_, state_, reliable_, end_);
  }
  void open(const TopologyContext& ctx, SpoutOutputCollector&) override {
    next_ = ctx.taskIndex;
    step_ = ctx.parallelism;
  }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (!replay_.empty()) {
      int64_t n = *replay_.begin();
      replay_.erase(replay_.begin());
      emit(out, n);
      return true;
    }
    if (next_ < n_) {
      emit(out, next_);
      next_ += step_;
      return true;
    }
    if (end_ && (outstanding_.empty() || !reliable_)) {
      if (!ended_) out.emitEndOfStream();
      ended_ = true;
    }
    return false;
  }
  void ack(MessageId id) override {
    outstanding_.erase(static_cast<int64_t>(id));
    std::lock_guard l(state_->mutex);
    ++state_->acked[static_cast<int64_t>(id)];
    ++state_->completed;
  }
  void fail(MessageId id) override {
    {
      std::lock_guard l(state_->mutex);
      ++state_->failed[static_cast<int64_t>(id)];
    }
    replay_.insert(static_cast<int64_t>(id));
  }

 private:
  void emit(SpoutOutputCollector& out, int64_t n) {
    ++state_->emitted;
    if (reliable_) {
      outstanding_.insert(n);
      out.emit(Values{n, n % keys_}, static_cast<MessageId>(n));
    } else {
      out.emit(Values{n, n % keys_});
    }
  }
  int64_t n_;
  int keys_;
  std::shared_ptr<CountingState> state_;
  bool reliable_, end_;
  int64_t next_ = 0, step_ = 1;
  std::set<int64_t> replay_, outstanding_;
  bool ended_ = false;
};

// Records (task, tuple values) of everything it executes, then acks (or calls `decide`).
struct Seen {
  std::mutex mutex;
  std::vector<std::pair<TaskId, Values>> tuples;
  std::vector<std::pair<TaskId, std::string>> events;  // markers and hooks, in order per task
  std::atomic<int64_t> count{0};
  void add(TaskId t, const Values& v) {
    std::lock_guard l(mutex);
    tuples.emplace_back(t, v);
    ++count;
  }
  void event(TaskId t, std::string e) {
    std::lock_guard l(mutex);
    events.emplace_back(t, std::move(e));
  }
  std::vector<std::string> eventsOf(TaskId t) {
    std::lock_guard l(mutex);
    std::vector<std::string> out;
    for (auto& [task, e] : events)
      if (task == t) out.push_back(e);
    return out;
  }
};

class RecordingBolt : public Bolt {
 public:
  explicit RecordingBolt(std::shared_ptr<Seen> seen, Fields out = Fields{})
      : seen_(std::move(seen)), out_(std::move(out)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    if (out_.size()) d.declare(out_);
  }
  std::unique_ptr<Bolt> clone() const override {
    return std::make_unique<RecordingBolt>(seen_, out_);
  }
  void prepare(const TopologyContext& ctx, OutputCollector&) override { task_ = ctx.task; }
  void execute(const Tuple& t, OutputCollector& out) override {
    seen_->add(task_, t.values());
    seen_->event(task_, "t" + toString(t.values()[0]));
    out.ack(t);
  }
  void onWatermark(Timestamp wm, OutputCollector&) override {
    seen_->event(task_, "wm" + std::to_string(wm.micros));
  }
  void onBatchBegin(uint64_t txid, OutputCollector&) override {
    seen_->event(task_, "begin" + std::to_string(txid));
  }
  void onBatchEnd(uint64_t txid, OutputCollector&) override {
    seen_->event(task_, "end" + std::to_string(txid));
  }
  void onEndOfStream(OutputCollector&) override { seen_->event(task_, "eos"); }

 protected:
  std::shared_ptr<Seen> seen_;
  Fields out_;
  TaskId task_ = -1;
};

inline Continuous fastConfig() {
  Continuous c;
  c.messageTimeout = std::chrono::seconds(5);
  c.metricsInterval = std::chrono::milliseconds(20);
  return c;
}

// Polls `cond` for up to `limit` (real time: the runtime's threads do the work).
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(10000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

}  // namespace gale::testing
