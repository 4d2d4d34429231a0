// A source a test feeds by hand (Spark's MemoryStream): rows added with addData() become
// readable at once, at the next offsets of their partition; both modes read it like any other
// replayable source. With a micro-batch job, `job.processAllAvailable()` then runs what was added
// through one batch (or several, under maxRecordsPerBatch) and returns once it is committed;
// several MemoryStreams fed before that call land in the same batch.
//
//   auto clicks = std::make_shared<gale::MemoryStream>("clicks", Fields{"user", "ts"});
//   builder.setSpout("clicks", clicks).withWatermark("ts", 5s);
//   auto job = gale::runMicroBatch(builder.build(), cfg);
//   clicks->addData({{"ann", Timestamp{...}}});
//   job.processAllAvailable();
//
// Thread-safety: addData() and finish() may be called from any thread while the job reads.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "gale/core/source.h"

namespace gale {

class MemoryStream : public Source {
 public:
  MemoryStream(std::string name, Fields fields, int partitions = 1);

  // Appends rows to `partition` (each must fit the fields: std::invalid_argument otherwise,
  // naming the field, and nothing of the call is added). Returns the offset after the last row.
  int64_t addData(std::vector<Values> rows, int partition = 0);
  // No more data will come: a job over finished sources ends once it has read them.
  void finish();

  std::string name() const override { return name_; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(fields_); }
  int partitions() const override { return static_cast<int>(parts_.size()); }
  int64_t available(int partition) override;
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override;
  bool finished() const override;

 private:
  struct Stored {
    Values values;
    int64_t originNanos;
  };
  std::string name_;
  Fields fields_;
  mutable std::mutex mutex_;
  std::vector<std::vector<Stored>> parts_;
  bool finished_ = false;
};

}  // namespace gale
