// A bolt task's inputs: one slot per upstream task, and what arrives on them in order. It
// aligns what needs all inputs: the input watermark (min over the inputs that are not idle),
// batch barriers (after BatchEnd(txid) an input's later items wait until every live input
// delivered it) and end of stream. It decides; its Listener runs the bolt's hooks, and every
// marker it forwards goes out through Listener::forward. No threads, no I/O: tested on its own
// (input_gate_test.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/frame.h"
#include "gale/core/watermark.h"

namespace gale {

class InputGate {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    virtual void deliver(Tuple& t) = 0;
    // The input watermark moved (the end of time included, once, before inputsEnded()).
    virtual void watermarkAdvanced(Timestamp wm) = 0;
    virtual void batchBegun(uint64_t txid) = 0;   // a BatchBegin newer than any before
    virtual void batchAligned(uint64_t txid) = 0;  // every live input ended batch `txid`
    virtual void inputsEnded() = 0;                 // every input ended its stream
    virtual void forward(const Control& c) = 0;     // a marker for the downstream tasks
  };

  // `who`: "<component> task <id>", for log lines.
  InputGate(Listener& listener, std::string who) : l_(listener), who_(std::move(who)) {}

  void addInput(TaskId upstream);
  // A tuple from `src`: delivered now, or held while src's batch waits for alignment. A tuple
  // from a task that is not an input is delivered (the sender's frames were checked already).
  void tuple(TaskId src, Tuple&& t);
  // A marker from `src`. Returns false (and does nothing) when src is not an input.
  bool control(TaskId src, Control&& c);

  int64_t inputWatermark() const { return inputWatermark_; }  // INT64_MIN: none yet
  bool outputIdle() const { return outputIdle_; }
  bool ended() const { return ended_; }
  uint64_t buffered() const { return buffered_; }  // items held back by batch alignment
  uint64_t idleInputs() const;

 private:
  // One upstream task, for watermarks, batch alignment and end of stream.
  struct Slot {
    TaskId task = -1;
    bool idle = false;
    bool eos = false;
    bool blocked = false;  // delivered BatchEnd(blockTxid); later items wait in `buffer`
    uint64_t blockTxid = 0;
    std::deque<OutItem> buffer;
  };

  Slot* slotOf(TaskId src);
  void marker(Slot& sl, const Control& c);
  void advanceWatermark(std::optional<Timestamp> moved);
  void align();
  void endOfStream();

  Listener& l_;
  std::string who_;
  std::vector<int> slotOf_;  // by task id, -1: not an input
  std::vector<Slot> slots_;
  WatermarkTracker tracker_;
  int64_t inputWatermark_ = INT64_MIN;
  bool outputIdle_ = false;
  bool begunAny_ = false;
  uint64_t lastBegun_ = 0;
  bool replaying_ = false;
  bool ended_ = false;
  uint64_t buffered_ = 0;
};

}  // namespace gale
