// WindowOperator's asynchronous snapshot (gale/core/async_snapshot.h). At the barrier, on the
// task's thread, the state is copied into an operator of its own (the panes' flat arrays of
// slots and partials, the interned keys, sessions and counts: copies, no encoding), and the
// checkpoint writer's thread encodes that copy with snapshot(), so the bytes are the ones
// snapshot() returned at the barrier and restore() reads them as before. Only when the encoding
// happens changes: the format is window_store.cpp's. The copy is O(state) on the task's thread
// (no copy-on-write of panes yet): cheaper than encoding it, by how much depends on the keys
// (docs/benchmarks.md).
//
// The encoded copy goes back to the task, which frees it at its next barrier: memory the task
// allocated is freed on the task's thread, not on the writer's, whose frees into the task's
// malloc arena held the arena's lock while the task waited (docs/benchmarks.md, "Where a
// checkpoint's stall came from").
#include <mutex>

#include "gale/core/window.h"
#include "gale/core/window_state.h"

namespace gale {

struct WindowOperator::Encoded {
  std::mutex mutex;
  std::unique_ptr<State> state;  // encoded, to be freed by the task
};

AsyncSnapshot::Write WindowOperator::snapshotAsync(uint64_t) {
  if (!encoded_) encoded_ = std::make_shared<Encoded>();
  std::unique_ptr<State> previous;
  {
    std::lock_guard lk(encoded_->mutex);
    previous = std::move(encoded_->state);
  }
  previous.reset();
  auto frozen = std::make_shared<WindowOperator>(config_);
  frozen->state_ = std::make_unique<State>(*state_);
  State& s = *frozen->state_;
  // The copy reads its own configuration: this operator may be gone before the write (a killed
  // run whose checkpoint is still being written). Its pane cache points into this operator's.
  s.cfg = &frozen->config_;
  s.cachePane[0] = s.cachePane[1] = nullptr;
  s.schema = nullptr;
  return [frozen = std::move(frozen), encoded = encoded_] {
    std::string bytes = frozen->snapshot();
    std::lock_guard lk(encoded->mutex);
    encoded->state = std::move(frozen->state_);
    return bytes;
  };
}

}  // namespace gale
