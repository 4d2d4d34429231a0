// A harness for testing one operator by hand (Flink's OneInputStreamOperatorTestHarness and
// KeyedTwoInputStreamOperatorTestHarness): feed it rows per input, watermarks, processing time,
// batch boundaries; read what it emitted per stream; snapshot and restore it in between. No
// threads, no runtime: every call runs the operator at once on the caller's thread.
//
//   gale::OperatorHarness h(*windowed(Tumbling(10s), Count{}).keyBy({"w"}).eventTime("ts").build());
//   h.input("words", Fields{"w", "ts"});
//   h.process({"a", Timestamp{1'000'000}});
//   h.watermark(Timestamp{10'000'000});
//   EXPECT_EQ(h.output(), (std::vector<Values>{{"a", Timestamp{0}, Timestamp{10'000'000}, 1}}));
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gale/core/operator.h"
#include "gale/core/tuple.h"

namespace gale {

class OperatorHarness {
 public:
  // The harness runs its own copy (operator.clone()), opened as task `taskIndex` of `parallelism`
  // with `clock` (e.g. a ManualClock, for processing-time windows; default: the system clock).
  explicit OperatorHarness(const Operator& op, int taskIndex = 0, int parallelism = 1,
                           const Clock* clock = nullptr);

  // Declares an input: the upstream component (the name a join or union keys its sides by), its
  // fields and stream. The first declared input is the default one of process(values).
  OperatorHarness& input(std::string component, Fields fields,
                         std::string stream = kDefaultStream);

  // One row from the default input, or from `component` (checked against its fields:
  // std::invalid_argument naming the field on a mismatch, as the runtime would refuse it).
  void process(Values values);
  void process(const std::string& component, Values values);
  void watermark(Timestamp watermark);
  void processingTime(Timestamp now);
  void endOfInput();
  // A micro-batch boundary, as micro-batch mode calls it.
  void batchBegin(uint64_t txid);
  void batchEnd(uint64_t txid);

  // Rows emitted on `stream` since the last take or clear, in emission order.
  std::vector<Values> output(const std::string& stream = kDefaultStream) const;
  // The same, sorted (order within one firing is unspecified in gale, as in Spark and Flink).
  std::vector<Values> sortedOutput(const std::string& stream = kDefaultStream) const;
  // Returns output(stream) and forgets it.
  std::vector<Values> take(const std::string& stream = kDefaultStream);
  void clear();

  // The operator's snapshot, and a fresh copy of the operator restored from one (as a restarted
  // task is): output recorded so far is kept.
  std::string snapshot() const;
  void restore(const std::string& snapshot);

  Operator& op() { return *op_; }
  size_t stateSize() const { return op_->stateSize(); }

 private:
  struct Recorder;
  OperatorContext context_;
  std::unique_ptr<Operator> proto_;
  std::unique_ptr<Operator> op_;
  std::shared_ptr<Recorder> out_;
  std::map<std::string, SchemaPtr> inputs_;
  std::string defaultInput_;
};

}  // namespace gale
