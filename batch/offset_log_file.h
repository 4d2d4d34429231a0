// The micro-batch job's offset log as a file of its own in the checkpoint directory
// (offsets.log), so that logging a batch before it runs costs a write(), not two LMDB fsyncs on
// the job's thread. A flusher thread fdatasyncs what was appended and publishes "durable through
// txid"; sinks that commit a batch externally wait for that (docs/batch.md, "The offset log").
//
// Format: records one after another, each
//   u32 payload length | u64 txid | u64 XXH3-64 of (txid, payload) | payload
// little-endian, the payload being encodeOffsets() of the batch (offset_log.h). On open a short
// or torn last record (a write the machine crash cut, never published as durable) is dropped and
// cut off the file; a bad record followed by more data is damage (CheckpointDamaged).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "gale/batch/microbatch.h"

namespace gale {

inline constexpr const char* kOffsetLogFile = "offsets.log";

class OffsetLogFile {
 public:
  struct Options {
    // false (MicroBatch::syncCommits off): nothing is fdatasync'ed and an append is "durable" at
    // once (a process kill loses nothing: the page cache has it).
    bool sync = true;
    // Fault injection and tracing (MicroBatch::onOffsetLog).
    std::function<void(OffsetLogPoint, uint64_t txid)> onPoint;
    // On the flusher thread after each flush: the txid now durable and the flush's duration.
    std::function<void(uint64_t txid, int64_t flushNanos)> durable;
    // On the flusher thread when a flush or a compaction fails; the log stops there (nothing
    // more becomes durable).
    std::function<void(std::exception_ptr)> failed;
    // Compact (truncate) the file once it is this large and every entry is obsolete.
    uint64_t compactBytes = 64 * 1024;
  };

  // Opens (creates) <directory>/offsets.log and reads its entries. Throws CheckpointDamaged for a
  // bad record in the middle, StateError for an I/O error. What was read is made durable before
  // this returns (a process kill may have left it in the page cache only).
  OffsetLogFile(std::string directory, Options options);
  ~OffsetLogFile();
  OffsetLogFile(const OffsetLogFile&) = delete;
  OffsetLogFile& operator=(const OffsetLogFile&) = delete;

  // The entries found on open: txid -> payload (a txid written twice: the last).
  const std::map<uint64_t, std::string>& recovered() const { return recovered_; }
  // Starts the flusher; `durable` first reports what open() read (or `through`, if larger).
  void start(uint64_t durableThrough);
  // Appends txid's entry with one write() (job's thread). Throws StateError if it fails.
  void append(uint64_t txid, std::string_view payload);
  // The state store committed (durably) through txid: entries up to it are obsolete.
  void committed(uint64_t txid);
  uint64_t durableThrough() const;
  uint64_t fileBytes() const;
  const std::string& path() const { return path_; }

 private:
  void flusherLoop();
  void compactLocked();

  std::string directory_, path_;
  Options options_;
  int fd_ = -1;
  std::map<uint64_t, std::string> recovered_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  uint64_t appended_ = 0;   // the highest txid appended
  uint64_t durable_ = 0;    // published as durable
  uint64_t committed_ = 0;  // obsolete through (the store's commit)
  uint64_t bytes_ = 0;      // the file's length
  uint64_t rewrittenBytes_ = 0;  // its length after the last rewrite (compactLocked)
  std::map<uint64_t, std::string> live_;  // appended records above committed_ (for a rewrite)
  bool stop_ = false;
  bool broken_ = false;
  std::thread flusher_;
};

}  // namespace gale
