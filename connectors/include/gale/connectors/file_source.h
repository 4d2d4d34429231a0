// Records from the files of a directory: text lines, JSON lines or CSV with a header (Spark's
// file source). One partition; files are read in name order and files that appear later are
// picked up (in name order among themselves) when available() rescans the directory.
//
// Offsets number the records over all files: a text file gives one record per line, a JSON
// lines file one per non-blank line, a CSV file one per non-blank line after its header line.
// A file must be complete when it appears (write it elsewhere, or under a name starting with
// '.' or '_' or ending in ".tmp", which are ignored, then rename it in); bytes appended to a file
// after it was indexed are not read.
//
// Malformed records (bad JSON, a wrong CSV column count, a value that does not parse to the
// declared type, an overlong line) are never dropped and never stop the source: each one is
// still one record at its offset, on the stream "errors" (SourceRecord::stream) with the fields
// file, line, reason, raw, and it is counted in stats().errors. So a replay gives the same
// errors at the same offsets, and a runtime that emits each record on its stream needs nothing
// else. The source declares both streams.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "gale/connectors/file_format.h"
#include "gale/connectors/json_line.h"
#include "gale/core/source.h"

namespace gale {

class FileSource : public Source {
 public:
  static constexpr const char* kErrorStream = "errors";
  // The fields of the "errors" stream.
  static Fields errorFields();

  struct Options {
    // JSON lines and CSV: the record fields with their types (required). CSV maps columns to
    // fields by the header's names; columns not in the schema are ignored.
    Fields schema;
    JsonLineParser::MissingField missing = JsonLineParser::MissingField::Null;
    size_t maxLineLength = 1 << 20;
    // available() rescans the directory at most this often (on the source's clock).
    std::chrono::milliseconds rescanInterval{100};
    // Read the files present at open() and no others; finished() once they were indexed (a
    // bounded job over a directory, Spark's "available now").
    bool once = false;
  };

  // Throws std::invalid_argument on an empty directory name, or an empty schema or duplicate
  // field names for JSON lines / CSV.
  FileSource(std::string directory, FileFormat format, Options options);
  FileSource(std::string directory, FileFormat format)
      : FileSource(std::move(directory), format, Options{}) {}
  ~FileSource() override;

  std::string name() const override;
  void declareOutputFields(OutputFieldsDeclarer& declarer) const override;
  int partitions() const override { return 1; }

  // Throws SourceError when the directory does not exist or can not be read.
  void open(const Clock& clock) override;
  int64_t available(int partition) override;
  // Throws SourceError when a file vanished or shrank after it was indexed.
  size_t read(int partition, int64_t from, int64_t to, std::vector<SourceRecord>& out) override;
  // Forgets the index of files whose records are all before `offset`.
  void commit(int partition, int64_t offset) override;
  bool replayable() const override { return true; }
  bool finished() const override;

  struct Stats {
    uint64_t files = 0;    // files indexed
    int64_t records = 0;   // records indexed (good and malformed)
    uint64_t errors = 0;   // malformed records read (each offset counted once)
  };
  Stats stats() const;

 private:
  struct File;
  void rescanLocked();
  void indexFile(const std::string& fileName);
  void parseInto(const File& f, size_t entry, std::string_view line, SourceRecord& rec);
  void checkPartition(int partition) const;

  const std::string directory_;
  const FileFormat format_;
  const Options options_;
  const Clock* clock_ = nullptr;

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<File>> files_;  // in offset order, committed ones dropped
  std::set<std::string> seen_;                // every file name ever indexed
  int64_t end_ = 0;                           // offsets indexed so far
  int64_t lastScanNanos_ = 0;
  bool scanned_ = false;
  int64_t errorsCountedUpTo_ = 0;  // offsets below were counted in stats_.errors already
  Stats stats_;
  std::unique_ptr<JsonLineParser> json_;
  std::vector<std::string> csvFields_;
  std::string scratch_;
};

}  // namespace gale
