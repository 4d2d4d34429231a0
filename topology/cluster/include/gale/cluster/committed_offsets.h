// A source whose committed offsets survive its process: in continuous mode a spout commits an
// offset once every record before it is acked, and a worker restarted by its supervisor (on this
// host or another) must resume there instead of at the source's initial offset, or it would
// replay everything from the start. The offsets live in a directory every host reaches (a shared
// filesystem in production; see docs/cluster.md), one file per partition, replaced by rename, so
// a reader sees the old offset or the new one, never a torn one. A source that names its
// partitions (Source::partitionIds, Kafka's "topic/partition") has its files named after them,
// so a restart that numbers the partitions otherwise still resumes each where it was.
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "gale/core/source.h"

namespace gale::cluster {

class CommittedOffsetsSource : public Source {
 public:
  // Throws std::invalid_argument for a null source or an empty directory (created if missing).
  CommittedOffsetsSource(SourcePtr inner, std::string directory);

  std::string name() const override { return inner_->name(); }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    inner_->declareOutputFields(d);
  }
  int partitions() const override { return inner_->partitions(); }
  void open(const Clock& clock) override {
    forgetIds();  // a source opened again may number its partitions anew
    inner_->open(clock);
  }
  void close() override { inner_->close(); }
  // The offset in the partition's file, else the inner source's. Throws SourceError when the
  // file exists but does not hold an offset (a damaged file is not silently read from 0).
  int64_t initialOffset(int partition) override;
  int64_t available(int partition) override { return inner_->available(partition); }
  int64_t ready(int partition) override { return inner_->ready(partition); }
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    return inner_->read(partition, from, to, out);
  }
  // Writes the offset to the partition's file, then commits it to the inner source. Throws
  // SourceError when the file cannot be written.
  void commit(int partition, int64_t offset) override;
  std::vector<std::string> partitionIds() const override { return inner_->partitionIds(); }
  void resumePartitionOrder(const std::vector<std::string>& ids) override {
    forgetIds();
    inner_->resumePartitionOrder(ids);
  }
  bool replayable() const override { return inner_->replayable(); }
  bool finished() const override { return inner_->finished(); }

 private:
  std::string file(int partition) const;
  void forgetIds() {
    std::lock_guard lock(idsMutex_);
    ids_.clear();
  }
  SourcePtr inner_;
  std::string directory_;
  // The inner source's partition ids, looked up again when a partition past them is asked for
  // (partitions are only ever numbered on while the source runs).
  mutable std::mutex idsMutex_;
  mutable std::vector<std::string> ids_;
};

}  // namespace gale::cluster
