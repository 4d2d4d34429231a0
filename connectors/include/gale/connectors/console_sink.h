// Prints tuples, one per line, to stdout or a given stream (the "console" sink of Spark and the
// printer bolt of Storm examples).
//
// Continuous mode prints each tuple as it arrives: "<prefix>(v1, v2, ...)". Micro-batch mode
// collects the batch and prints it at onBatchEnd under a "<prefix>batch <txid>" header, so a
// failed attempt prints nothing and a replay is visibly a replay (the console is for people; it
// is not an exactly-once sink).
#pragma once

#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

class ConsoleSink : public Operator {
 public:
  // Prints to std::cout.
  explicit ConsoleSink(std::string prefix = "");
  // Prints to `out`, which must outlive the sink and every clone. Clones share one lock, so
  // lines of parallel tasks never interleave.
  ConsoleSink(std::ostream& out, std::string prefix = "");

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

 private:
  ConsoleSink(std::ostream* out, std::string prefix, std::shared_ptr<std::mutex> lock);

  std::ostream* out_;
  std::string prefix_;
  std::shared_ptr<std::mutex> lock_;
  bool inBatch_ = false;
  std::vector<std::string> pending_;
};

}  // namespace gale
