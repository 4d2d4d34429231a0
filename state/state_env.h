// The LMDB environment of a StateStore and the helpers its two halves share (state_store.cpp:
// keyed states, commits and reads; state_open.cpp: directory, lock, verification and opening).
// Private to the state module.
#pragma once

#include <lmdb.h>

#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "gale/state/state_store.h"
#include "record_codec.h"

namespace gale {
namespace state_detail {

inline constexpr const char* kLockFile = "gale.lock";
inline constexpr const char* kStatePrefix = "state:";

// Thrown by check() for MDB_MAP_FULL so that a write transaction can grow the map and retry.
class MapFull : public StateError {
 public:
  using StateError::StateError;
};

inline void check(int rc, const char* op, const std::string& path) {
  if (rc == MDB_SUCCESS) return;
  std::string msg = std::string("LMDB ") + op + " failed for checkpoint directory " + path + ": " +
                    mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) throw MapFull(msg);
  // LMDB noticed damage itself (the walk on open should have found it first).
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND) {
    throw CheckpointDamaged(path, path + "/data.mdb", std::string("LMDB ") + op + ": " +
                                                          mdb_strerror(rc));
  }
  throw StateError(msg);
}

inline MDB_val val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
inline std::string_view view(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

inline std::string txidKey(uint64_t txid) {  // big-endian: LMDB's byte order is numeric order
  std::string k(8, '\0');
  for (int i = 0; i < 8; ++i) k[i] = static_cast<char>(txid >> (8 * (7 - i)));
  return k;
}
inline uint64_t txidFromKey(std::string_view k) {
  if (k.size() != 8) throw StateError("malformed commit log key of " + std::to_string(k.size()) + " bytes");
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | static_cast<uint8_t>(k[i]);
  return t;
}

std::string encodeCommit(const CommitRecord& r);
CommitRecord decodeCommit(std::string_view bytes);

}  // namespace state_detail

using namespace state_detail;

struct StateStore::Env {
  MDB_env* env = nullptr;
  std::string path;
  std::string dataFile;  // path/data.mdb, for damage messages
  size_t maxMapSize = 0;
  bool readOnly = false;
  MDB_dbi meta = 0, commits = 0, snapshots = 0, sinks = 0, registry = 0;
  std::map<std::string, MDB_dbi> stateDbis;  // under writeMutex
  // Shared by every transaction; exclusive to change the map size (LMDB requires that no
  // transaction of this process is active during mdb_env_set_mapsize).
  std::shared_mutex resizeMutex;
  // One writer at a time (LMDB allows one anyway); also guards mdb_dbi_open.
  std::mutex writeMutex;
  // Database names by handle, for damage messages (read from any thread).
  mutable std::mutex namesMutex;
  std::map<MDB_dbi, std::string> names;

  void nameDb(MDB_dbi dbi, std::string name) {
    std::lock_guard lock(namesMutex);
    names[dbi] = std::move(name);
  }

  [[noreturn]] void damagedRecord(MDB_dbi dbi, std::string_view key) const {
    std::string name;
    {
      std::lock_guard lock(namesMutex);
      auto it = names.find(dbi);
      name = it != names.end() ? it->second : "?";
    }
    throw CheckpointDamaged(path, dataFile, "the record under key '" + printableKey(key) +
                                                "' in database '" + name +
                                                "' fails its checksum");
  }

  // The payload of a record gale stored (checksum verified).
  std::string_view unseal(MDB_dbi dbi, std::string_view key, std::string_view stored) const {
    auto payload = unsealOrNull(key, stored);
    if (!payload) damagedRecord(dbi, key);
    return *payload;
  }

  ~Env() {
    if (env) mdb_env_close(env);
  }

  size_t mapSize() const {
    MDB_envinfo info;
    mdb_env_info(env, &info);
    return info.me_mapsize;
  }

  // Another process (a job, while the CLI reads) grew the map: adopt its size.
  void adoptResizedMap() {
    std::unique_lock lock(resizeMutex);
    check(mdb_env_set_mapsize(env, 0), "mdb_env_set_mapsize", path);
  }

  // A read transaction for the duration of f(txn). keepHandles: commit it instead of aborting,
  // so database handles it opened stay open (LMDB closes them with an aborted transaction).
  template <class F>
  auto read(F&& f, bool keepHandles = false) const {
    auto* self = const_cast<Env*>(this);
    for (;;) {
      std::shared_lock lock(self->resizeMutex);
      MDB_txn* txn = nullptr;
      int rc = mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn);
      if (rc == MDB_MAP_RESIZED) {
        lock.unlock();
        self->adoptResizedMap();
        continue;
      }
      check(rc, "mdb_txn_begin(read)", path);
      struct End {
        MDB_txn* t;
        bool commit;
        ~End() {
          if (commit) mdb_txn_commit(t);
          else mdb_txn_abort(t);
        }
      } end{txn, false};
      auto result = f(txn);
      end.commit = keepHandles;
      return result;
    }
  }

  // A write transaction: f(txn) then commit. When the map is full, the transaction is aborted,
  // the map doubled (up to maxMapSize) and f run again from scratch. Caller holds writeMutex.
  template <class F>
  void write(F&& f, const std::string& what) {
    for (;;) {
      try {
        std::shared_lock lock(resizeMutex);
        MDB_txn* txn = nullptr;
        check(mdb_txn_begin(env, nullptr, 0, &txn), "mdb_txn_begin(write)", path);
        try {
          f(txn);
          int rc = mdb_txn_commit(txn);
          txn = nullptr;  // mdb_txn_commit frees the transaction even when it fails
          check(rc, "mdb_txn_commit", path);
        } catch (...) {
          if (txn) mdb_txn_abort(txn);
          throw;
        }
        return;
      } catch (const MapFull&) {
        grow(what);
      }
    }
  }

  void grow(const std::string& what) {
    std::unique_lock lock(resizeMutex);
    size_t current = mapSize();
    if (current >= maxMapSize) {
      throw StateError("checkpoint directory " + path + ": the LMDB map is full at " +
                       std::to_string(current >> 20) + " MiB, the configured maximum "
                       "(StateStoreOptions::maxMapSize = " + std::to_string(maxMapSize) +
                       " bytes); nothing of " + what + " was written. Raise maxMapSize (it "
                       "reserves address space only; the file grows with the data) or commit "
                       "smaller batches.");
    }
    size_t next = std::min(maxMapSize, current * 2);
    check(mdb_env_set_mapsize(env, next), "mdb_env_set_mapsize", path);
  }

  // Every value gale stores is sealed (record_codec.h): get verifies and strips the checksum.
  std::optional<std::string_view> get(MDB_txn* txn, MDB_dbi dbi, std::string_view key) const {
    MDB_val k = val(key), v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "mdb_get", path);
    return unseal(dbi, key, view(v));
  }
  void put(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string_view value) {
    std::string sealed = seal(key, value);
    MDB_val k = val(key), v = val(sealed);
    check(mdb_put(txn, dbi, &k, &v, 0), "mdb_put", path);
  }
  void del(MDB_txn* txn, MDB_dbi dbi, std::string_view key) {
    MDB_val k = val(key);
    int rc = mdb_del(txn, dbi, &k, nullptr);
    if (rc != MDB_NOTFOUND) check(rc, "mdb_del", path);
  }

  // The last commit record, read inside `txn`.
  std::optional<CommitRecord> lastCommit(MDB_txn* txn) const {
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(txn, commits, &cur), "mdb_cursor_open", path);
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
    mdb_cursor_close(cur);
    if (rc == MDB_NOTFOUND) return std::nullopt;
    check(rc, "mdb_cursor_get(commit log)", path);
    return decodeCommit(unseal(commits, view(k), view(v)));
  }
};

}  // namespace gale
