// Exactly-once state for micro-batch jobs: one LMDB environment per job in a checkpoint directory
// (Spark's checkpointLocation). The end of batch `txid` is ONE LMDB write transaction holding the
// state changes of every stateful task, the operator snapshots, the source end offsets that
// produced the batch, the watermark and a commit record; after a crash the job resumes after the
// last committed txid and replays the uncommitted batch from the recorded offsets.
//
//   gale::StateStore store("chk/", {.jobId = topologyFingerprint});
//   gale::KeyedState& counts = store.keyedState("counts", gale::StateKind::Opaque);
//   gale::BatchCommit c = store.beginCommit(store.lastCommittedTxid() + 1);
//   c.update(counts, "word", gale::addInt64(3));
//   c.setOffset("lines", /*partition=*/0, /*end offset=*/1200);
//   c.setWatermark(wm);
//   c.commit();
//
// Thread-safety: reads (get, multiGet, lastCommit, snapshot, commitLog, ...) may run on any
// thread, concurrently with a commit. BatchCommit objects may be filled on any thread; commits
// are serialized inside the store. A StateStore must not be used in a child after fork().
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/clock.h"
#include "gale/core/value.h"

namespace gale {

namespace lmdb_check {
struct Meta;
}

// Every failure of the state module: a bad directory, a lock held by another job, a metadata
// mismatch, an LMDB error (the message names the operation, the path and mdb_strerror), a full
// map at its configured maximum, a txid out of order, a malformed stored record.
class StateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A checkpoint whose data file is damaged: empty (0 bytes), truncated, a bad LMDB page, or a
// record whose checksum does not match. gale never starts such a checkpoint over by itself (that
// would silently reprocess or drop the job's history): the message names the file and the ways out
// — restore the directory from a backup, or start over explicitly
// (StateStoreOptions::startOverIfDamaged, MicroBatch::startOverIfDamaged), which moves the damaged
// directory aside and keeps it.
class CheckpointDamaged : public StateError {
 public:
  CheckpointDamaged(const std::string& directory, const std::string& file,
                    const std::string& detail);
  // The same damage, its message prefixed with where it was met (e.g. the job's name).
  CheckpointDamaged(const CheckpointDamaged& cause, const std::string& context);
  const std::string& directory() const { return directory_; }
  const std::string& file() const { return file_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string directory_, file_, detail_;
};

// The on-disk format this build writes and reads. A directory with another version is refused.
// Version 2 seals every record with an XXH3-64 checksum; version 1 (no checksums) is refused with
// a message saying how to move on (docs/state.md).
inline constexpr uint32_t kStateFormatVersion = 2;

// Points inside a commit, reported to StateStoreOptions::onCommitPoint (fault injection, tracing).
enum class CommitPoint : uint8_t {
  BeforeStateWrite,        // the write transaction is open, nothing written yet
  AfterStateWrite,         // everything is written, mdb_txn_commit not yet called
  AfterCommit,             // mdb_txn_commit returned: the batch is durable
};
const char* commitPointName(CommitPoint p);

struct StateStoreOptions {
  // Identifies the job/topology (a fingerprint). A directory written by another job is refused,
  // so two topologies never mix their state. Required (non-empty).
  std::string jobId;
  // The LMDB map starts at this size and doubles whenever a commit finds it full, up to
  // maxMapSize; a commit that does not fit even then fails (nothing is written) with a message
  // naming this option.
  size_t initialMapSize = size_t{64} << 20;
  size_t maxMapSize = size_t{64} << 30;
  // true: every commit is fsync'ed (survives a machine crash). false: MDB_NOSYNC — a process
  // crash (even SIGKILL) loses nothing, but an OS crash or power loss may lose the last commits
  // (never corrupts: the job then replays them from the recorded offsets, which is exactly-once
  // only for replayable sources and idempotent sinks).
  bool sync = true;
  // Commit records kept for the commit log (older ones are trimmed in the commit transaction).
  size_t commitLogRetention = 1000;
  // The most named states (keyed states) this directory may hold.
  unsigned maxStates = 256;
  const Clock* clock = &SystemClock::instance();
  // Called at each CommitPoint with the txid being committed (tests kill the process here).
  std::function<void(CommitPoint, uint64_t txid)> onCommitPoint;
  // Before LMDB maps the file, walk every page and check every record's checksum (reads the whole
  // used part of data.mdb once; docs/state.md gives the cost). Without it only the meta pages and
  // the file size are checked up front, and a damaged B-tree page can crash LMDB.
  bool verifyOnOpen = true;
  // The explicit way out of a damaged checkpoint (CheckpointDamaged): move the directory aside to
  // "<dir>.damaged-<UTC time>" (kept, never deleted) and start from nothing. The job then reads
  // its sources from the beginning. Other errors (another job, another format) are not affected.
  bool startOverIfDamaged = false;
};

// What a verification of a checkpoint found (StateStore::verify, `gale-state verify`).
struct CheckpointReport {
  std::string directory;
  std::string dataFile;
  uint64_t fileBytes = 0;
  uint32_t pageSize = 0;
  uint64_t lastPage = 0;        // the last page LMDB's newest meta page uses
  uint64_t lmdbTxnid = 0;
  uint64_t livePages = 0;       // pages reached from the trees
  uint64_t freePages = 0;       // pages on LMDB's free list
  std::map<std::string, uint64_t> records;  // database -> records whose checksum was verified
  uint64_t lastCommittedTxid = 0;
};

// source name -> partition -> end offset (one past the last record consumed).
using PartitionOffsets = std::map<int, int64_t>;
using SourceOffsets = std::map<std::string, PartitionOffsets>;

// What the commit of one batch recorded.
struct CommitRecord {
  uint64_t txid = 0;
  Timestamp time;                       // processing time of the commit
  SourceOffsets offsets;                // ALL sources' offsets after this batch (merged)
  std::optional<Timestamp> watermark;   // the watermark after this batch, if any was ever set
  uint64_t stateUpdates = 0;            // keys written in keyed states
  uint64_t stateSkips = 0;              // keys skipped as already applied (transactional replay)
  uint64_t snapshots = 0;               // operator snapshots written
  uint64_t bytes = 0;                   // bytes of keys, values and snapshots written
  friend bool operator==(const CommitRecord&, const CommitRecord&) = default;
};

// Trident's three kinds of keyed map state.
enum class StateKind : uint8_t {
  // value only: a replayed batch is applied again (counts twice). For comparison and for
  // idempotent updates.
  Plain = 1,
  // value + txid: a batch whose txid equals the key's stored txid is skipped (already applied).
  // Exact when a replayed batch has the same contents (a transactional source).
  Transactional = 2,
  // value + previous value + txid: a batch whose txid equals the key's stored txid is recomputed
  // from the previous value, so a replay with different contents (an opaque source) still ends
  // correct for every key the replay updates.
  Opaque = 3,
};
const char* stateKindName(StateKind k);

// An update of one key: the new value from the old one (nullopt = absent). Returning nullopt
// deletes the key. It may run more than once for one commit (a commit retried after the map
// grew), so it must be a pure function of its argument.
using Update = std::function<std::optional<std::string>(std::optional<std::string_view> old)>;

class StateStore;
class BatchCommit;

// A named keyed state inside a StateStore (one LMDB named database). Obtained from
// StateStore::keyedState(); lives as long as the store. Reads see the last committed batch.
class KeyedState {
 public:
  const std::string& name() const { return name_; }
  StateKind kind() const { return kind_; }

  std::optional<std::string> get(std::string_view key) const;
  // One read transaction for all keys (a consistent view); results in the order of `keys`.
  std::vector<std::optional<std::string>> multiGet(const std::vector<std::string>& keys) const;
  // Stored entries, O(1). Includes the tombstones applyBeforeCommit leaves for deleted keys.
  size_t entries() const;
  // The txid of the batch that last wrote `key` (0 for Plain state or an absent key).
  uint64_t txidOf(std::string_view key) const;
  // Visits every live (key, value) in key order; stop by returning false.
  void forEach(const std::function<bool(std::string_view key, std::string_view value)>& f) const;

  KeyedState(const KeyedState&) = delete;
  KeyedState& operator=(const KeyedState&) = delete;

 private:
  friend class StateStore;
  friend class BatchCommit;
  KeyedState(StateStore& store, std::string name, StateKind kind, unsigned dbi)
      : store_(store), name_(std::move(name)), kind_(kind), dbi_(dbi) {}
  StateStore& store_;
  std::string name_;
  StateKind kind_;
  unsigned dbi_;
};

// Everything batch `txid` commits, collected in memory and written by commit() in one LMDB
// transaction. Obtained from StateStore::beginCommit(txid). Move-only; one commit() per object.
class BatchCommit {
 public:
  BatchCommit(BatchCommit&&) noexcept;
  BatchCommit& operator=(BatchCommit&&) = delete;
  ~BatchCommit();

  uint64_t txid() const { return txid_; }

  // Keyed state changes, applied with the state's kind semantics. Several updates of one key in
  // one batch compose in call order.
  BatchCommit& update(KeyedState& state, std::string key, Update update);
  BatchCommit& apply(KeyedState& state, std::map<std::string, Update> updates);
  BatchCommit& put(KeyedState& state, std::string key, std::string value);
  BatchCommit& erase(KeyedState& state, std::string key);

  // An operator's snapshot (Operator::snapshot()) under its task key, e.g. "count#3".
  BatchCommit& putSnapshot(std::string operatorKey, std::string blob);
  // The end offset of one source partition after this batch. Partitions not mentioned keep their
  // last committed offset. An offset may not move backwards.
  BatchCommit& setOffset(const std::string& source, int partition, int64_t endOffset);
  BatchCommit& setOffsets(const SourceOffsets& offsets);
  // The watermark after this batch; may not move backwards. Unset: the last one is kept.
  BatchCommit& setWatermark(Timestamp watermark);
  // Records that `sink` wrote this batch's output (StateStore::sinkCommittedTxid).
  BatchCommit& markSinkCommitted(std::string sink);

  // Writes everything in one LMDB transaction; returns the commit record. Throws StateError (and
  // writes nothing) if the txid is not above the last committed one, an offset or the watermark
  // moves backwards, an update throws, or the map is full at maxMapSize.
  CommitRecord commit();
  bool committed() const { return committed_; }

  // After commit(): the value each updated key of `state` now has (nullopt = absent), for
  // Trident's newValuesStream. Skipped (already applied) keys report their stored value.
  std::map<std::string, std::optional<std::string>> newValues(const KeyedState& state) const;

 private:
  friend class StateStore;
  BatchCommit(StateStore& store, uint64_t txid) : store_(&store), txid_(txid) {}

  struct KeyChanges {
    std::vector<Update> updates;
    std::optional<std::string> newValue;  // set by commit()
  };
  struct StateChanges {
    KeyedState* state = nullptr;
    std::map<std::string, KeyChanges> keys;
  };
  StateChanges& changesFor(KeyedState& state);

  StateStore* store_;
  uint64_t txid_;
  bool committed_ = false;
  std::map<std::string, StateChanges> states_;
  std::map<std::string, std::string> snapshots_;
  SourceOffsets offsets_;
  std::optional<Timestamp> watermark_;
  std::vector<std::string> sinks_;
};

// Name, kind and size of one keyed state (for the CLI and metrics).
struct StateInfo {
  std::string name;
  StateKind kind = StateKind::Plain;
  uint64_t entries = 0;  // LMDB entries, including tombstones left by applyBeforeCommit
  uint64_t bytes = 0;    // pages in use * page size
};

class StateStore {
 public:
  // Opens (creating if needed) the checkpoint directory `dir` for a job. Throws StateError when
  // the directory cannot be created or written, another job holds it (same or another process),
  // or it was written by another job or an incompatible format version.
  StateStore(std::string dir, StateStoreOptions options);
  // A read-only view of an existing checkpoint directory, for inspection (the gale-state CLI): no
  // lock is taken (a running job may hold it), nothing is created, any job id is accepted.
  static std::unique_ptr<StateStore> inspect(std::string dir);
  // Checks a checkpoint offline, read-only and without a lock (like inspect): the data file's size,
  // both meta pages, every B-tree page and every record's checksum. Throws CheckpointDamaged with
  // the first problem found, StateError when it is not a (readable) gale checkpoint.
  static CheckpointReport verify(std::string dir);
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& directory() const { return dir_; }
  const std::string& jobId() const { return jobId_; }
  uint32_t formatVersion() const { return formatVersion_; }
  Timestamp createdAt() const { return createdAt_; }
  // Where a damaged checkpoint was moved (StateStoreOptions::startOverIfDamaged); empty if not.
  const std::string& movedAsideTo() const { return movedAsideTo_; }
  size_t mapSize() const;

  // The keyed state `name`, created on first use. Its kind is stored: reopening a state with
  // another kind is refused. Throws in an inspection store if the state does not exist.
  KeyedState& keyedState(const std::string& name, StateKind kind);
  // The states in the directory (opened or not).
  std::vector<StateInfo> states() const;

  // Starts collecting batch `txid`. Throws unless txid > lastCommittedTxid().
  BatchCommit beginCommit(uint64_t txid);

  // Trident's per-partition state commit: writes one state's updates for batch `txid` in its own
  // transaction, AHEAD of the batch's commit record (written later by beginCommit(txid)). A crash
  // in between replays `txid`: transactional and opaque states make that replay exact, plain
  // state counts it twice. Deletes leave a tombstone (so a replay stays exact) until the key is
  // next written. Returns the new values, as BatchCommit::newValues.
  std::map<std::string, std::optional<std::string>> applyBeforeCommit(
      uint64_t txid, KeyedState& state, std::map<std::string, Update> updates);

  // --- Recovery ---
  // 0 when nothing was committed yet (txids start at 1).
  uint64_t lastCommittedTxid() const;
  std::optional<CommitRecord> lastCommit() const;
  // The offsets and watermark to resume from (empty / nullopt for a fresh directory).
  SourceOffsets committedOffsets() const;
  std::optional<Timestamp> committedWatermark() const;
  // Operator snapshots as of the last commit.
  std::optional<std::string> snapshot(std::string_view operatorKey) const;
  std::map<std::string, std::string> snapshots() const;
  // Commit records with txid >= fromTxid, oldest first, at most `limit` (the log keeps the last
  // StateStoreOptions::commitLogRetention records).
  std::vector<CommitRecord> commitLog(uint64_t fromTxid = 0, size_t limit = SIZE_MAX) const;

  // --- Sinks ---
  // The last txid `sink` recorded as written (0: none). An idempotent sink skips txids <= this.
  uint64_t sinkCommittedTxid(std::string_view sink) const;
  // Records it outside a batch commit (a sink that writes elsewhere, then records).
  void markSinkCommitted(const std::string& sink, uint64_t txid);
  std::map<std::string, uint64_t> sinks() const;

  struct Env;  // the LMDB environment and its databases (state_store.cpp)

 private:
  friend class KeyedState;
  friend class BatchCommit;
  StateStore(std::string dir, StateStoreOptions options, bool inspectOnly);
  void open(bool inspectOnly);
  void openEnvironment(bool fresh);
  void createDataFile();
  void verifyOpenSnapshot();
  void verifySnapshot(const lmdb_check::Meta& meta);
  void moveDamagedAside(const CheckpointDamaged& damage);
  CommitRecord commitBatch(BatchCommit& batch);

  std::string dir_;
  StateStoreOptions options_;
  bool readOnly_ = false;
  std::string jobId_;
  uint32_t formatVersion_ = 0;
  Timestamp createdAt_;
  int lockFd_ = -1;
  std::unique_ptr<Env> env_;
  CheckpointReport report_;  // what the verification on open found
  std::string movedAsideTo_;
  mutable std::mutex statesMutex_;
  std::map<std::string, std::unique_ptr<KeyedState>> states_;
};

}  // namespace gale
