// Jobs for the UI's tests: a spout the test releases in two parts (so windows and "values equal
// the runtime's" can be checked on numbers that do not move), a paced endless spout (so a
// browser sees counters move), and a bolt that forwards and acks.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "gale/topology/component.h"
#include "gale/topology/runtime.h"
#include "gale/topology/topology.h"

namespace gale::ui::testing {

// Emits `first` numbers, waits until *gate is true, emits `second` more, then ends its stream.
class GatedSpout : public Spout {
 public:
  GatedSpout(int64_t first, int64_t second, std::shared_ptr<std::atomic<bool>> gate)
      : first_(first), second_(second), gate_(std::move(gate)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Spout> clone() const override {
    return std::make_unique<GatedSpout>(first_, second_, gate_);
  }
  bool nextTuple(SpoutOutputCollector& out) override {
    if (next_ == first_ && !gate_->load()) return false;
    if (next_ == first_ + second_) {
      if (!ended_ && outstanding_ == 0) {
        out.emitEndOfStream();
        ended_ = true;
      }
      return false;
    }
    ++outstanding_;
    out.emit(Values{next_}, static_cast<MessageId>(next_ + 1));
    ++next_;
    return true;
  }
  void ack(MessageId) override { --outstanding_; }
  void fail(MessageId) override { --outstanding_; }

 private:
  int64_t first_, second_;
  std::shared_ptr<std::atomic<bool>> gate_;
  int64_t next_ = 0;
  int64_t outstanding_ = 0;
  bool ended_ = false;
};

// Emits a number every `every` until the topology stops (then it ends its stream).
class PacedSpout : public Spout {
 public:
  explicit PacedSpout(std::chrono::microseconds every) : every_(every) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Spout> clone() const override { return std::make_unique<PacedSpout>(every_); }
  bool nextTuple(SpoutOutputCollector& out) override {
    auto now = std::chrono::steady_clock::now();
    if (now < due_) return false;
    due_ = now + every_;
    out.emit(Values{n_}, static_cast<MessageId>(n_ + 1));
    ++n_;
    return true;
  }

 private:
  std::chrono::microseconds every_;
  std::chrono::steady_clock::time_point due_{};
  int64_t n_ = 0;
};

// Forwards ("n") anchored to its input, and acks.
class ForwardBolt : public Bolt {
 public:
  explicit ForwardBolt(bool emit = true) : emit_(emit) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    if (emit_) d.declare(Fields{{"n", Type::Int64}});
  }
  std::unique_ptr<Bolt> clone() const override { return std::make_unique<ForwardBolt>(emit_); }
  void execute(const Tuple& t, OutputCollector& out) override {
    if (emit_) out.emit(t, Values{t.values()[0]});
    out.ack(t);
  }

 private:
  bool emit_;
};

// numbers -> double (fields on n) -> <sink name> (global).
inline Topology pipeline(const Spout& spout, const std::string& sinkName = "sink") {
  TopologyBuilder b;
  b.setSpout("numbers", spout, 2);
  b.setBolt("double", ForwardBolt(true), 2).fieldsGrouping("numbers", Fields{"n"});
  b.setBolt(sinkName, ForwardBolt(false), 1).globalGrouping("double");
  return b.build();
}

// numbers (2) -> double (2, fields) -> sink (2, shuffle): the sink is fused into double's tasks.
inline Topology fusedPipeline(const Spout& spout) {
  TopologyBuilder b;
  b.setSpout("numbers", spout, 2);
  b.setBolt("double", ForwardBolt(true), 2).fieldsGrouping("numbers", Fields{"n"});
  b.setBolt("sink", ForwardBolt(false), 2).shuffleGrouping("double");
  return b.build();
}

// Polls `cond` for up to `limit` (real time: the job's threads do the work).
template <class F>
bool eventually(F cond, std::chrono::milliseconds limit = std::chrono::milliseconds(30000)) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace gale::ui::testing
