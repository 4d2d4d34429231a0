// An operator whose state is many entries of which a batch changes few (a stream join's stored
// rows) can offer it incrementally: the micro-batch runtime then commits, per batch, a small head
// (snapshotHead) and only the entries changed since the previous batch, into the job's state
// store, instead of the whole snapshot() at every batch end. Continuous mode's checkpoints keep
// using snapshot()/restore().
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gale {

class IncrementalState {
 public:
  virtual ~IncrementalState() = default;

  // Entry key -> its bytes now, or nullopt: the entry is gone.
  using Changes = std::map<std::string, std::optional<std::string>>;

  // From now on, record changes. The state the operator holds counts as already stored (it is
  // empty, or was just restored by restoreIncremental from the stored entries).
  virtual void trackChanges() = 0;
  // The part of the state kept whole (small), committed with every batch.
  virtual std::string snapshotHead() const = 0;
  // The entries changed since the last call (or trackChanges); forgets them.
  virtual Changes takeChanges() = 0;
  // Restores from a head and every stored entry in key order, and tracks changes from there. A
  // head that is a whole snapshot() (a checkpoint written before the operator was incremental)
  // is accepted with no entries; the next takeChanges() then returns every entry.
  virtual void restoreIncremental(
      std::string_view head, const std::vector<std::pair<std::string, std::string>>& entries) = 0;
};

}  // namespace gale
