// Asynchronous snapshots (Flink's): an operator whose state is large takes its checkpoint in two
// parts. At the barrier, on the task's thread, snapshotAsync() only freezes the state (e.g.
// CopyOnWriteMap::freeze(), gale/core/copy_on_write_map.h) and returns the rest as a function;
// exactly-once continuous mode runs that function on the checkpoint coordinator's thread, which
// writes its bytes into the checkpoint, while the task goes on processing the records after the
// barrier. The checkpoint completes once those bytes are written.
//
//   class Counts : public Operator, public AsyncSnapshot {
//     std::string snapshot() const override { return encode(counts_); }   // whole, as before
//     AsyncSnapshot::Write snapshotAsync(uint64_t) override {
//       return [view = counts_.freeze()] { return encode(view); };
//     }
//     CopyOnWriteMap<std::string, int64_t> counts_;
//   };
//
// The operator keeps snapshot() and restore(): micro-batch mode and other callers use the whole
// snapshot, and the bytes of the two must be alike (restore() reads both).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace gale {

class AsyncSnapshot {
 public:
  virtual ~AsyncSnapshot() = default;
  // Runs on another thread, once, concurrently with the operator's later calls; returns the
  // bytes snapshot() would have returned at the barrier. It must not touch the operator, only
  // what it captured (a frozen view). A throw fails the checkpoint (and stops the job, as a
  // failed checkpoint write does).
  using Write = std::function<std::string()>;
  // At checkpoint barrier `checkpointId`, on the task's thread: cheap.
  virtual Write snapshotAsync(uint64_t checkpointId) = 0;
};

}  // namespace gale
