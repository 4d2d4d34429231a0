// A bolt task's inputs: one slot per upstream task, and what arrives on them in order. It
// aligns what needs all inputs: the input watermark (min over the inputs that are not idle),
// barriers — a micro-batch's BatchEnd(txid) and exactly-once continuous mode's checkpoint
// Barrier(id): after one, an input's later items wait until every live input delivered it
// (unless checkpoint barriers are unaligned: then nothing waits, and what comes from the other
// inputs before their barriers is handed over as in-flight data) — and end of stream. It
// decides; its Listener runs the bolt's hooks, and every marker it forwards goes out through
// Listener::forward. No threads, no I/O: tested on its own (input_gate_test.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "gale/core/frame.h"
#include "gale/core/watermark.h"

namespace gale {

// The last watermark an exactly-once spout task sends once its input ended, ahead of the final
// checkpoint's barrier (one below kEndOfTime, which the runtime keeps for EndOfStream).
inline constexpr Timestamp kEndOfInputWatermark{kEndOfTime.micros - 1};

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
    virtual void barrierAligned(uint64_t id) = 0;  // every live input delivered barrier `id`
    // Unaligned barriers (setUnalignedBarriers): barrierAligned(id) came at the first input's
    // barrier; this once every live input delivered it, with the tuples delivered in between
    // from the inputs that had not yet (the checkpoint's in-flight data).
    virtual void barrierCompleted(uint64_t id, std::vector<Tuple>&& inFlight) {}
    virtual void inputsEnded() = 0;                 // every input ended its stream
    virtual void forward(const Control& c) = 0;     // a marker for the downstream tasks
  };

  // `who`: "<component> task <id>", for log lines.
  InputGate(Listener& listener, std::string who) : l_(listener), who_(std::move(who)) {}

  void addInput(TaskId upstream);
  // Checkpoint barriers unaligned (Continuous::unalignedCheckpoints): nothing is held back. A
  // barrier that comes first from an input whose data ended is aligned (then barrierAligned and
  // barrierCompleted come together): so is the final checkpoint, after which nothing may be
  // processed, since every input's data ended before it.
  void setUnalignedBarriers(bool on) { unaligned_ = on; }
  // A tuple from `src`: delivered now, or held while src's batch waits for alignment. A tuple
  // from a task that is not an input is delivered (the sender's frames were checked already).
  void tuple(TaskId src, Tuple&& t);
  // Whether tuple(src, t) would deliver t now without keeping it (the common case): a caller that
  // lends its tuple can then deliver it itself, by reference.
  bool deliversAtOnce(TaskId src) {
    if (src == soleInput_ && !holding_) return true;  // a fused task's input: two compares
    const Slot* sl = slotOf(src);
    return sl && !sl->blocked && unalignedId_ == 0;
  }
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
    bool blocked = false;  // delivered a BatchEnd or Barrier; later items wait in `buffer`
    ControlKind blockKind = ControlKind::BatchEnd;
    uint64_t blockTxid = 0;
    std::deque<OutItem> buffer;
    bool barrierSeen = false;  // unaligned: delivered the barrier of unalignedId_
    bool dataEnded = false;    // delivered kEndOfInputWatermark
  };

  Slot* slotOf(TaskId src) {
    if (src < 0 || static_cast<size_t>(src) >= slotOf_.size()) return nullptr;
    int s = slotOf_[static_cast<size_t>(src)];
    return s < 0 ? nullptr : &slots_[static_cast<size_t>(s)];
  }
  void marker(Slot& sl, const Control& c);
  bool holds() const;
  void advanceWatermark(std::optional<Timestamp> moved);
  void align();
  bool aligningBarrier() const;
  void unalignedBarrier(Slot& sl, uint64_t id);
  void completeUnaligned();
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
  bool unaligned_ = false;
  uint64_t unalignedId_ = 0;      // the unaligned checkpoint in progress (0: none)
  std::vector<Tuple> inFlight_;   // its in-flight tuples so far
  // For deliversAtOnce's first test: the input when there is exactly one (a fused task's), else
  // a value no task id has; and whether any input is blocked or an unaligned checkpoint is in
  // progress (holds(), set wherever either changes). It may only err towards true: the exact
  // test after it then answers.
  static constexpr TaskId kNoSoleInput = std::numeric_limits<TaskId>::min();
  TaskId soleInput_ = kNoSoleInput;
  bool holding_ = false;
};

}  // namespace gale
