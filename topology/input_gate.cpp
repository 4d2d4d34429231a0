// A bolt task's input alignment; see private/input_gate.h and docs/runtime.md.
#include "private/input_gate.h"

#include <algorithm>

#include "gale/core/log.h"
#include "private/runtime_shared.h"

namespace gale {

void InputGate::addInput(TaskId upstream) {
  if (upstream < 0) return;
  if (static_cast<size_t>(upstream) >= slotOf_.size())
    slotOf_.resize(static_cast<size_t>(upstream) + 1, -1);
  slotOf_[static_cast<size_t>(upstream)] = static_cast<int>(slots_.size());
  slots_.emplace_back().task = upstream;
  soleInput_ = slots_.size() == 1 ? upstream : kNoSoleInput;
  tracker_.addInput(upstream);
}

void InputGate::tuple(TaskId src, Tuple&& t) {
  Slot* sl = slotOf(src);
  if (sl && sl->blocked) {
    sl->buffer.emplace_back();
    sl->buffer.back().isTuple = true;
    sl->buffer.back().tuple = std::move(t);
    ++buffered_;
    return;
  }
  if (unalignedId_ != 0 && sl && !sl->barrierSeen) inFlight_.push_back(t);
  l_.deliver(t);
}

bool InputGate::control(TaskId src, Control&& c) {
  Slot* sl = slotOf(src);
  if (!sl) return false;
  if (sl->blocked) {
    sl->buffer.emplace_back();
    sl->buffer.back().isTuple = false;
    sl->buffer.back().control = std::move(c);
    ++buffered_;
    return true;
  }
  marker(*sl, c);
  return true;
}

uint64_t InputGate::idleInputs() const {
  uint64_t n = 0;
  for (const Slot& s : slots_) n += s.idle && !s.eos;
  return n;
}

void InputGate::marker(Slot& sl, const Control& c) {
  switch (c.kind) {
    case ControlKind::Watermark: {
      bool idle = c.value == kIdleWatermark;
      auto moved = tracker_.update(sl.task, Timestamp{c.time});  // also marks it active
      if (idle) moved = tracker_.setIdle(sl.task, true);
      sl.idle = idle;
      if (c.time >= kEndOfInputWatermark.micros) sl.dataEnded = true;
      advanceWatermark(moved);
      break;
    }
    case ControlKind::BatchBegin:
      if (!begunAny_ || c.value > lastBegun_) {
        begunAny_ = true;
        lastBegun_ = c.value;
        l_.batchBegun(c.value);
        l_.forward(c);
      }
      break;
    case ControlKind::Barrier:
      if (unaligned_ && (unalignedId_ != 0 || (!sl.dataEnded && !aligningBarrier()))) {
        unalignedBarrier(sl, c.value);
        break;
      }
      [[fallthrough]];
    case ControlKind::BatchEnd:
      sl.blocked = true;
      holding_ = true;
      sl.blockKind = c.kind;
      sl.blockTxid = c.value;
      align();
      break;
    case ControlKind::EndOfStream:
      sl.eos = true;
      // An ended input holds nothing back: its watermark is the end of time.
      advanceWatermark(tracker_.update(sl.task, kEndOfTime));
      align();
      completeUnaligned();
      if (std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.eos; }))
        endOfStream();
      break;
    default:
      logWarn(who_ + " ignored a " + controlKindName(c.kind) + " marker");
  }
}

// Input watermark = min over the upstream tasks that are not idle (core's WatermarkTracker;
// an ended task counts as at the end of time). When it advances, the bolt's hook runs and the
// watermark goes downstream; when every remaining upstream task is idle, this task's output
// is marked idle as well (same value), so consumers further down exclude it too.
void InputGate::advanceWatermark(std::optional<Timestamp> moved) {
  bool anyActive = false;
  for (const Slot& s : slots_)
    if (!s.eos && !s.idle) anyActive = true;
  bool idle = !anyActive &&
              !std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.eos; });
  int64_t wm = tracker_.current().micros;
  if (moved && wm != kEndOfTime.micros) {  // the end of time is handled by endOfStream()
    inputWatermark_ = wm;
    l_.watermarkAdvanced(Timestamp{wm});
  } else if (idle == outputIdle_) {
    return;
  }
  if (wm == kEndOfTime.micros) return;
  outputIdle_ = idle;
  Control c;
  c.kind = ControlKind::Watermark;
  c.time = wm;
  c.value = idle ? kIdleWatermark : 0;
  l_.forward(c);
}

// Barrier alignment: once every upstream task that has not ended delivered BatchEnd(txid) (or
// Barrier(id)), the bolt's onBatchEnd (onBarrier) runs, the marker goes downstream and the
// held-back items are replayed.
void InputGate::align() {
  bool anyBlocked = false;
  uint64_t txid = 0;
  ControlKind kind = ControlKind::BatchEnd;
  for (const Slot& s : slots_) {
    if (s.blocked) {
      if (!anyBlocked) {
        txid = s.blockTxid;
        kind = s.blockKind;
      }
      anyBlocked = true;
    } else if (!s.eos) {
      return;
    }
  }
  if (!anyBlocked) return;
  for (const Slot& s : slots_)
    if (s.blocked && (s.blockTxid != txid || s.blockKind != kind))
      logWarn(who_ + ": upstream tasks sent " + controlKindName(kind) + " " +
              std::to_string(txid) + " and " + controlKindName(s.blockKind) + " " +
              std::to_string(s.blockTxid) + " at the same time; aligned them as one");
  if (kind == ControlKind::Barrier) {
    l_.barrierAligned(txid);
    if (unaligned_) l_.barrierCompleted(txid, {});
  } else {
    l_.batchAligned(txid);
  }
  l_.forward(Control{kind, 0, txid});
  for (Slot& s : slots_) s.blocked = false;
  holding_ = holds();
  if (replaying_) return;  // the outer replay loop picks the buffers up
  replaying_ = true;
  for (bool progress = true; progress;) {
    progress = false;
    for (Slot& s : slots_) {
      while (!s.blocked && !s.buffer.empty()) {
        OutItem item = std::move(s.buffer.front());
        s.buffer.pop_front();
        --buffered_;
        progress = true;
        if (item.isTuple)
          l_.deliver(item.tuple);
        else
          marker(s, item.control);
      }
    }
  }
  replaying_ = false;
}

bool InputGate::holds() const {
  return unalignedId_ != 0 ||
         std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.blocked; });
}

// A checkpoint taken aligned (its first barrier came from an input whose data ended) stays
// aligned for its other inputs' barriers.
bool InputGate::aligningBarrier() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) {
    return s.blocked && s.blockKind == ControlKind::Barrier;
  });
}

// Unaligned: the first input's barrier is the snapshot point (the bolt's onBarrier), and the
// barrier goes downstream at once; what the other inputs send before their barriers is delivered
// and kept, and handed over once every live input delivered the barrier.
void InputGate::unalignedBarrier(Slot& sl, uint64_t id) {
  if (unalignedId_ == 0) {
    unalignedId_ = id;
    holding_ = true;
    l_.barrierAligned(id);
    l_.forward(Control{ControlKind::Barrier, 0, id});
  } else if (id != unalignedId_) {
    logWarn(who_ + ": barrier " + std::to_string(id) + " came during unaligned checkpoint " +
            std::to_string(unalignedId_) + "; taken as its barrier");
  }
  sl.barrierSeen = true;
  completeUnaligned();
}

void InputGate::completeUnaligned() {
  if (unalignedId_ == 0) return;
  for (const Slot& s : slots_)
    if (!s.barrierSeen && !s.eos) return;
  uint64_t id = unalignedId_;
  unalignedId_ = 0;
  holding_ = holds();
  for (Slot& s : slots_) s.barrierSeen = false;
  std::vector<Tuple> inFlight = std::move(inFlight_);
  inFlight_.clear();
  l_.barrierCompleted(id, std::move(inFlight));
}

void InputGate::endOfStream() {
  if (ended_) return;
  ended_ = true;
  if (inputWatermark_ < kEndOfTime.micros) {
    inputWatermark_ = kEndOfTime.micros;
    l_.watermarkAdvanced(kEndOfTime);
  }
  l_.inputsEnded();
  l_.forward(Control{ControlKind::EndOfStream});
}

}  // namespace gale
