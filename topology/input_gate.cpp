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
  tracker_.addInput(upstream);
}

InputGate::Slot* InputGate::slotOf(TaskId src) {
  if (src < 0 || static_cast<size_t>(src) >= slotOf_.size()) return nullptr;
  int s = slotOf_[static_cast<size_t>(src)];
  return s < 0 ? nullptr : &slots_[static_cast<size_t>(s)];
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
    case ControlKind::BatchEnd:
      sl.blocked = true;
      sl.blockTxid = c.value;
      align();
      break;
    case ControlKind::EndOfStream:
      sl.eos = true;
      // An ended input holds nothing back: its watermark is the end of time.
      advanceWatermark(tracker_.update(sl.task, kEndOfTime));
      align();
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

// Barrier alignment: once every upstream task that has not ended delivered BatchEnd(txid),
// the bolt's onBatchEnd runs, the marker goes downstream and the held-back items are replayed.
void InputGate::align() {
  bool anyBlocked = false;
  uint64_t txid = 0;
  for (const Slot& s : slots_) {
    if (s.blocked) {
      if (!anyBlocked) txid = s.blockTxid;
      anyBlocked = true;
    } else if (!s.eos) {
      return;
    }
  }
  if (!anyBlocked) return;
  for (const Slot& s : slots_)
    if (s.blocked && s.blockTxid != txid)
      logWarn(who_ + ": upstream tasks ended batches " + std::to_string(txid) + " and " +
              std::to_string(s.blockTxid) + " at the same time; aligned them as one");
  l_.batchAligned(txid);
  l_.forward(Control{ControlKind::BatchEnd, 0, txid});
  for (Slot& s : slots_) s.blocked = false;
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
