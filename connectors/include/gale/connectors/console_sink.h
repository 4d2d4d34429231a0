// Prints tuples to stdout or a given stream, as Spark's console sink does (and the printer bolt of
// Storm examples). Values print as text, timestamps as readable UTC times
// ("2024-05-01 10:05:00", fractions of a second when there are any; see consoleText).
//
// Micro-batch mode collects the batch and prints it at onBatchEnd as Spark does: a "Batch: <txid>"
// header (after the prefix), then a table with the fields as column headers and one row per
// tuple, cells right-aligned and cut to `truncate` characters, at most `numRows` rows ("only
// showing top N rows" below when there were more); a batch without rows prints its header and
// "(no rows)". Tuples of different streams get a table each. A failed attempt prints nothing and
// a replay prints again: the console is for people, not an exactly-once sink.
//
// Continuous mode has no batches: each tuple prints as it arrives, "<prefix>(v1, v2, ...)".
#pragma once

#include <iosfwd>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gale/core/operator.h"

namespace gale {

// A value as the console sink prints it: a timestamp as "YYYY-MM-DD HH:MM:SS[.ffffff]" in UTC
// (fraction without trailing zeros; the end of time as "end of time"), anything else as
// gale::toString.
std::string consoleText(const Value& v);

class ConsoleSink : public Operator {
 public:
  struct Options {
    std::string prefix;
    size_t numRows = 20;   // Spark's numRows: rows shown per table
    size_t truncate = 20;  // Spark's truncate: longer cells are cut ("..."); 0 = never
  };
  // Prints to std::cout.
  explicit ConsoleSink(std::string prefix = "");
  explicit ConsoleSink(Options options);
  // Prints to `out`, which must outlive the sink and every clone. Clones share one lock, so
  // the lines (and tables) of parallel tasks never interleave.
  ConsoleSink(std::ostream& out, std::string prefix = "");
  ConsoleSink(std::ostream& out, Options options);

  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& tuple, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

 private:
  ConsoleSink(std::ostream* out, Options options, std::shared_ptr<std::mutex> lock);
  std::string table(size_t from, size_t to) const;

  std::ostream* out_;
  Options o_;
  std::shared_ptr<std::mutex> lock_;
  bool inBatch_ = false;
  struct Row {
    std::shared_ptr<const std::vector<std::string>> header;
    std::vector<std::string> cells;
  };
  std::vector<Row> pending_;
};

}  // namespace gale
