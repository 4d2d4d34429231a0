// Opening a StateStore: the directory, its lock, the creation of a new data file, the checks
// of an existing one before and after LMDB maps it (lmdb_check.h, record checksums), and the
// explicit start-over from a damaged checkpoint.
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <set>

#include "gale/core/log.h"
#include "gale/state/codec.h"
#include "gale/state/state_store.h"
#include "lmdb_check.h"
#include "state_env.h"

namespace gale {

namespace fs = std::filesystem;

CheckpointDamaged::CheckpointDamaged(const std::string& directory, const std::string& file,
                                     const std::string& detail)
    : StateError("checkpoint file " + file + " is damaged: " + detail +
                 ". gale does not start a damaged checkpoint over by itself. Ways out: restore "
                 "the checkpoint directory " + directory + " from a backup (check the copy with "
                 "`gale-state verify <dir>`), or start over explicitly with the option "
                 "startOverIfDamaged (MicroBatch or StateStoreOptions), which moves " + directory +
                 " aside to " + directory + ".damaged-<time> (kept, not deleted) and starts from "
                 "nothing: the job then reads its sources again from the beginning"),
      directory_(directory),
      file_(file),
      detail_(detail) {}

CheckpointDamaged::CheckpointDamaged(const CheckpointDamaged& cause, const std::string& context)
    : StateError(context + cause.what()),
      directory_(cause.directory_),
      file_(cause.file_),
      detail_(cause.detail_) {}

namespace {

// A new data file is built under this name and renamed to data.mdb once complete (metadata
// included), so that a data.mdb that is empty or has no metadata can only mean damage.
constexpr const char* kCreating = "data.mdb.creating";

std::string errnoText(int e) { return std::strerror(e); }

// True if `dir` holds nothing but what gale itself puts into a checkpoint directory.
bool onlyCheckpointFiles(const fs::path& dir) {
  static const std::set<std::string> ours = {kLockFile, "data.mdb", "lock.mdb", kCreating,
                                             std::string(kCreating) + "-lock"};
  std::error_code ec;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    if (!ours.count(entry.path().filename().string())) return false;
  }
  return true;
}

void prepareDirectory(const std::string& dir) {
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (fs::exists(st)) {
    if (!fs::is_directory(st)) {
      throw StateError("checkpoint directory " + dir + " exists but is not a directory (a file is "
                       "in the way): remove it or choose another checkpoint location");
    }
    return;
  }
  if (!fs::create_directories(dir, ec) && ec) {
    throw StateError("cannot create checkpoint directory " + dir + ": " + ec.message() +
                     ". Choose a writable location, or create the directory with write "
                     "permission for this user");
  }
}

// Takes the directory's lock file (flock, per open file: a second opener in the same process is
// refused too) and writes our pid into it for the message the next opener gets.
int lockDirectory(const std::string& dir) {
  std::string path = (fs::path(dir) / kLockFile).string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    throw StateError("cannot open the lock file " + path + " of checkpoint directory " + dir +
                     ": " + errnoText(e) + ". The directory must be writable by this user");
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char buf[32] = {0};
    ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    if (e == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("unknown");
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      throw StateError("checkpoint directory " + dir + " is in use by another job (pid " + pid +
                       "). Stop that job first, or give this job its own checkpoint directory");
    }
    throw StateError("cannot lock " + path + ": " + errnoText(e));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int e = errno;
    ::close(fd);
    throw StateError("cannot write the lock file " + path + ": " + errnoText(e));
  }
  return fd;
}

std::string u32Bytes(uint32_t v) {
  RecordWriter w;
  w.u32(v);
  return w.take();
}

// The format version record: version 1 stored it as 4 raw bytes (no checksums); version 2 seals
// it like every other record.
uint32_t formatVersionOf(const StateStore::Env& env, std::string_view stored) {
  std::string_view payload = stored.size() == 4 ? stored : env.unseal(env.meta, "format_version", stored);
  RecordReader r(payload, "format version");
  uint32_t v = r.u32();
  r.expectEnd();
  return v;
}

void checkFormatVersion(uint32_t version, const std::string& dir) {
  if (version == kStateFormatVersion) return;
  if (version == 1) {
    throw StateError("checkpoint directory " + dir + " was written by an earlier gale in state "
                     "format version 1, which keeps no checksums; this gale reads version " +
                     std::to_string(kStateFormatVersion) + " only. Finish the job with the gale "
                     "version that wrote it, or move " + dir + " aside and start the job from a "
                     "new checkpoint directory (it then reads its sources from the beginning)");
  }
  throw StateError("checkpoint directory " + dir + " was written in state format version " +
                   std::to_string(version) + ", but this gale reads version " +
                   std::to_string(kStateFormatVersion) + ": run the job with the gale "
                   "version that wrote it, or start from a new checkpoint directory");
}

std::string utcStamp(Timestamp t) {
  time_t secs = static_cast<time_t>(t.micros / 1'000'000);
  tm u;
  gmtime_r(&secs, &u);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &u);
  return buf;
}

void fsyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

StateStore::StateStore(std::string dir, StateStoreOptions options)
    : StateStore(std::move(dir), std::move(options), false) {}

std::unique_ptr<StateStore> StateStore::inspect(std::string dir) {
  return std::unique_ptr<StateStore>(new StateStore(std::move(dir), StateStoreOptions{}, true));
}

CheckpointReport StateStore::verify(std::string dir) {
  StateStoreOptions o;
  o.verifyOnOpen = true;
  StateStore store(std::move(dir), std::move(o), true);
  CheckpointReport r = store.report_;
  r.lastCommittedTxid = store.lastCommittedTxid();
  return r;
}

StateStore::StateStore(std::string dir, StateStoreOptions options, bool inspectOnly)
    : dir_(std::move(dir)), options_(std::move(options)), readOnly_(inspectOnly) {
  if (dir_.empty()) throw StateError("checkpoint directory: an empty path was given");
  if (!options_.clock) options_.clock = &SystemClock::instance();
  if (!readOnly_) {
    if (options_.jobId.empty()) {
      throw StateError("StateStoreOptions::jobId is empty: give the job a stable id (a topology "
                       "fingerprint) so that checkpoint directory " + dir_ +
                       " is never reused by another job");
    }
    if (options_.initialMapSize == 0 || options_.maxMapSize < options_.initialMapSize) {
      throw StateError("StateStoreOptions: maxMapSize (" + std::to_string(options_.maxMapSize) +
                       ") must be >= initialMapSize (" + std::to_string(options_.initialMapSize) +
                       ") > 0");
    }
  }
  try {
    open(readOnly_);
  } catch (const CheckpointDamaged& damage) {
    if (readOnly_ || !options_.startOverIfDamaged) {
      if (lockFd_ >= 0) ::close(lockFd_);
      throw;
    }
    moveDamagedAside(damage);  // releases the lock
    open(false);
  }
}

void StateStore::open(bool inspectOnly) {
  std::error_code ec;
  if (inspectOnly) {
    if (!fs::is_directory(dir_, ec)) {
      throw StateError("checkpoint directory " + dir_ + " does not exist or is not a directory");
    }
    if (!fs::exists(fs::path(dir_) / "data.mdb", ec)) {
      throw StateError(dir_ + " is not a gale checkpoint directory (it has no data.mdb)");
    }
  } else {
    prepareDirectory(dir_);
    if (!fs::exists(fs::path(dir_) / "data.mdb", ec) && !onlyCheckpointFiles(dir_)) {
      throw StateError(dir_ + " is not empty and is not a gale checkpoint directory: give the "
                       "job an empty or new directory");
    }
    lockFd_ = lockDirectory(dir_);
  }
  try {
    bool fresh = !readOnly_ && !fs::exists(fs::path(dir_) / "data.mdb", ec);
    if (fresh) createDataFile();
    openEnvironment(fresh);
  } catch (const CheckpointDamaged&) {
    env_.reset();
    throw;  // the constructor decides about the lock (start over keeps it while moving aside)
  } catch (...) {
    env_.reset();
    if (lockFd_ >= 0) ::close(lockFd_);
    lockFd_ = -1;
    throw;
  }
}

// Builds a complete data file (all of gale's databases and the metadata, synced) under a
// temporary name and renames it into place: a job killed while creating its checkpoint leaves no
// data.mdb (the next open creates it again), never an empty or half-initialized one.
void StateStore::createDataFile() {
  std::string tmp = (fs::path(dir_) / kCreating).string();
  std::error_code ec;
  fs::remove(tmp, ec);  // left by a creation that was killed
  fs::remove(tmp + "-lock", ec);
  {
    Env env;
    env.path = dir_;
    env.dataFile = tmp;
    env.maxMapSize = options_.initialMapSize;
    check(mdb_env_create(&env.env), "mdb_env_create", dir_);
    check(mdb_env_set_maxdbs(env.env, options_.maxStates + 8), "mdb_env_set_maxdbs", dir_);
    check(mdb_env_set_mapsize(env.env, options_.initialMapSize), "mdb_env_set_mapsize", dir_);
    int rc = mdb_env_open(env.env, tmp.c_str(), MDB_NOSUBDIR | MDB_NOTLS, 0644);
    if (rc != MDB_SUCCESS) {
      mdb_env_close(env.env);
      env.env = nullptr;
      check(rc, "mdb_env_open(new data file)", dir_);
    }
    std::lock_guard lock(env.writeMutex);
    env.write(
        [&](MDB_txn* txn) {
          for (const char* name : {"meta", "commits", "snapshots", "sinks", "states"}) {
            MDB_dbi dbi = 0;
            check(mdb_dbi_open(txn, name, MDB_CREATE, &dbi), "mdb_dbi_open", dir_);
            if (std::string(name) == "meta") env.meta = dbi;
          }
          Timestamp now = options_.clock->now();
          env.put(txn, env.meta, "format_version", u32Bytes(kStateFormatVersion));
          env.put(txn, env.meta, "job_id", options_.jobId);
          env.put(txn, env.meta, "created_at", Codec<int64_t>::encode(now.micros));
        },
        "the metadata record");
    check(mdb_env_sync(env.env, 1), "mdb_env_sync", dir_);
  }
  std::string final = (fs::path(dir_) / "data.mdb").string();
  if (::rename(tmp.c_str(), final.c_str()) != 0) {
    int e = errno;
    throw StateError("cannot rename " + tmp + " to " + final + ": " + errnoText(e));
  }
  fs::remove(tmp + "-lock", ec);
  fsyncPath(dir_);  // the rename itself must survive a machine crash
}

void StateStore::openEnvironment(bool fresh) {
  const std::string dataFile = (fs::path(dir_) / "data.mdb").string();
  // Before LMDB maps the file: a file shorter than its meta pages say would fault (SIGBUS).
  try {
    lmdb_check::checkFile(dataFile);
  } catch (const lmdb_check::DamageFound& e) {
    throw CheckpointDamaged(dir_, dataFile, e.what());
  } catch (const std::exception& e) {
    throw StateError("checkpoint directory " + dir_ + ": " + e.what());
  }
  env_ = std::make_unique<Env>();
  env_->path = dir_;
  env_->dataFile = dataFile;
  env_->readOnly = readOnly_;
  env_->maxMapSize = options_.maxMapSize;
  check(mdb_env_create(&env_->env), "mdb_env_create", dir_);
  check(mdb_env_set_maxdbs(env_->env, options_.maxStates + 8), "mdb_env_set_maxdbs", dir_);
  if (!readOnly_) {
    check(mdb_env_set_mapsize(env_->env, options_.initialMapSize), "mdb_env_set_mapsize", dir_);
  }
  unsigned flags = MDB_NOTLS;
  if (readOnly_) flags |= MDB_RDONLY;
  if (!options_.sync) flags |= MDB_NOSYNC;
  int rc = mdb_env_open(env_->env, dir_.c_str(), flags, 0644);
  if (rc != MDB_SUCCESS) {
    mdb_env_close(env_->env);
    env_->env = nullptr;
    if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
      throw CheckpointDamaged(dir_, dataFile, std::string("LMDB refuses it: ") + mdb_strerror(rc));
    }
    check(rc, "mdb_env_open", dir_);
  }
  // The file may already be larger than initialMapSize (a map grown in an earlier run).
  if (options_.maxMapSize < env_->mapSize()) env_->maxMapSize = env_->mapSize();

  // A fresh file was just built by this process: nothing to verify.
  if (options_.verifyOnOpen && !fresh) verifyOpenSnapshot();

  auto openDbs = [&](MDB_txn* txn) {
    auto openDb = [&](const char* name, MDB_dbi& dbi) {
      int r = mdb_dbi_open(txn, name, 0, &dbi);
      if (r == MDB_NOTFOUND) {
        throw StateError(dir_ + " is not a gale checkpoint directory (no '" + name +
                         "' database)");
      }
      check(r, "mdb_dbi_open", dir_);
      env_->nameDb(dbi, name);
    };
    openDb("meta", env_->meta);
    openDb("commits", env_->commits);
    openDb("snapshots", env_->snapshots);
    openDb("sinks", env_->sinks);
    openDb("states", env_->registry);

    MDB_val k = val("format_version"), v;
    int r = mdb_get(txn, env_->meta, &k, &v);
    if (r == MDB_NOTFOUND) {
      throw StateError(dir_ + " is not a gale checkpoint directory (its metadata record is "
                       "missing): give the job an empty or new directory");
    }
    check(r, "mdb_get(format version)", dir_);
    formatVersion_ = formatVersionOf(*env_, view(v));
    checkFormatVersion(formatVersion_, dir_);
    auto job = env_->get(txn, env_->meta, "job_id");
    auto created = env_->get(txn, env_->meta, "created_at");
    if (!job) {
      throw StateError(dir_ + " is not a gale checkpoint directory (its job id is missing)");
    }
    jobId_ = std::string(*job);
    if (created) createdAt_.micros = Codec<int64_t>::decode(*created);
    if (!readOnly_ && jobId_ != options_.jobId) {
      throw StateError("checkpoint directory " + dir_ + " belongs to job '" + jobId_ +
                       "', not to job '" + options_.jobId + "': give this job its own "
                       "checkpoint directory, or delete " + dir_ + " to restart '" +
                       options_.jobId + "' from scratch (its committed state and offsets are "
                       "then lost)");
    }
    return 0;
  };
  // Committed (not aborted) so that the database handles stay open.
  env_->read(openDbs, true);
}

// Walks the snapshot LMDB opened (lmdb_check.h) and checks every record's checksum, before any
// LMDB call touches a B-tree page. A read transaction pins the snapshot, so a job writing to the
// directory meanwhile (gale-state on a running job) cannot reuse its pages under the walk.
void StateStore::verifyOpenSnapshot() {
  const std::string& dataFile = env_->dataFile;
  for (int attempt = 0; attempt < 5; ++attempt) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_->env, nullptr, MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
      env_->adoptResizedMap();
      continue;
    }
    check(rc, "mdb_txn_begin(verify)", dir_);
    struct Abort {
      MDB_txn* t;
      ~Abort() { mdb_txn_abort(t); }
    } abort{txn};
    try {
      // The writer may have committed twice since the transaction began (its meta page was
      // overwritten): begin again.
      auto meta = lmdb_check::metaOfTxn(dataFile, mdb_txn_id(txn));
      if (!meta) continue;
      verifySnapshot(*meta);
      return;
    } catch (const lmdb_check::DamageFound& e) {
      throw CheckpointDamaged(dir_, dataFile, e.what());
    } catch (const StateError&) {
      throw;
    } catch (const std::exception& e) {
      throw StateError("checkpoint directory " + dir_ + ": " + e.what());
    }
  }
  throw StateError("checkpoint directory " + dir_ + ": could not verify a stable snapshot (the "
                   "job writing it commits too fast); try again");
}

void StateStore::verifySnapshot(const lmdb_check::Meta& meta) {
  using lmdb_check::DamageFound;
  const Env& env = *env_;
  lmdb_check::Walker walker(env.dataFile, meta);
  auto dbs = walker.namedDbs();
  static const std::vector<std::string> core = {"meta", "commits", "snapshots", "sinks", "states"};
  size_t present = 0;
  for (auto& name : core) present += dbs.count(name);
  if (present == 0) {
    throw StateError(dir_ + " is not a gale checkpoint directory (it has none of gale's "
                     "databases)");
  }
  for (auto& name : core) {
    if (!dbs.count(name)) throw DamageFound("gale's database '" + name + "' is missing");
  }
  report_ = CheckpointReport{};
  report_.directory = dir_;
  report_.dataFile = env.dataFile;
  report_.fileBytes = meta.fileBytes;
  report_.pageSize = meta.pageSize;
  report_.lastPage = meta.lastPage;
  report_.lmdbTxnid = meta.txnid;
  // The format version first: a version 1 directory has no checksums to check.
  bool sawVersion = false;
  walker.walk("meta", dbs.at("meta"), [&](std::string_view key, std::string_view stored) {
    if (key != "format_version") return;
    sawVersion = true;
    std::string_view payload = stored;
    if (stored.size() != 4) {
      auto p = unsealOrNull(key, stored);
      if (!p) throw DamageFound("the format version record fails its checksum");
      payload = *p;
    }
    RecordReader r(payload, "format version");
    checkFormatVersion(r.u32(), dir_);
  });
  if (!sawVersion) throw DamageFound("the format version record is missing");
  // The walker refuses to visit a page twice: walk each database once, on a fresh walker.
  lmdb_check::Walker full(env.dataFile, meta);
  dbs = full.namedDbs();
  // Sealed records: unsealOrNull checks the checksum; `check` looks at the payload.
  auto walkSealed = [&](const std::string& name,
                        const std::function<void(std::string_view, std::string_view)>& check) {
    uint64_t& n = report_.records[name];
    full.walk(name, dbs.at(name), [&](std::string_view key, std::string_view stored) {
      auto payload = unsealOrNull(key, stored);
      if (!payload) {
        throw DamageFound("the record under key '" + printableKey(key) + "' in database '" +
                          name + "' fails its checksum");
      }
      if (check) check(key, *payload);
      ++n;
    });
  };
  walkSealed("meta", nullptr);
  std::set<std::string> expected(core.begin(), core.end());
  walkSealed("states", [&](std::string_view key, std::string_view payload) {
    if (payload.size() != 1 || payload[0] < 1 || payload[0] > 3) {
      throw DamageFound("state '" + printableKey(key) + "' has an unknown kind");
    }
    expected.insert(kStatePrefix + std::string(key));
  });
  walkSealed("commits", [&](std::string_view key, std::string_view payload) {
    CommitRecord c;
    try {
      c = decodeCommit(payload);
    } catch (const StateError& e) {
      throw DamageFound(std::string("a commit record is malformed: ") + e.what());
    }
    if (key.size() != 8 || txidFromKey(key) != c.txid) {
      throw DamageFound("the commit record of txid " + std::to_string(c.txid) +
                        " is stored under another txid");
    }
  });
  walkSealed("snapshots", nullptr);
  walkSealed("sinks", [&](std::string_view, std::string_view payload) {
    if (payload.size() != 8) throw DamageFound("a sink record is malformed");
  });
  for (auto& [name, record] : dbs) {
    if (!expected.count(name)) {
      throw DamageFound("the main database names a database '" + printableKey(name) +
                        "' that no state is registered for");
    }
    if (name.rfind(kStatePrefix, 0) == 0) walkSealed(name, nullptr);
  }
  for (auto& name : expected) {
    if (!dbs.count(name)) throw DamageFound("the database '" + name + "' of a registered state is missing");
  }
  full.checkFreeList();
  report_.livePages = full.livePages();
  report_.freePages = full.freePages();
}

void StateStore::moveDamagedAside(const CheckpointDamaged& damage) {
  std::string base = fs::path(dir_).lexically_normal().string();
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  std::string aside = base + ".damaged-" + utcStamp(options_.clock->now());
  std::error_code ec;
  for (int n = 2; fs::exists(aside, ec); ++n) {
    aside = base + ".damaged-" + utcStamp(options_.clock->now()) + "-" + std::to_string(n);
  }
  // The lock is still held: no other job opens the directory while it moves.
  if (::rename(base.c_str(), aside.c_str()) != 0) {
    int e = errno;
    if (lockFd_ >= 0) ::close(lockFd_);
    lockFd_ = -1;
    throw StateError(std::string(damage.what()) + ". startOverIfDamaged is set, but moving " +
                     base + " aside to " + aside + " failed: " + errnoText(e) +
                     " (the parent directory must be writable)");
  }
  fsyncPath(fs::path(base).parent_path().empty() ? "." : fs::path(base).parent_path().string());
  if (lockFd_ >= 0) ::close(lockFd_);
  lockFd_ = -1;
  logWarn("checkpoint directory " + base + " is damaged (" + damage.detail() +
          "); as asked (startOverIfDamaged) it was moved aside to " + aside +
          " and the job starts from nothing");
  movedAsideTo_ = aside;
}

StateStore::~StateStore() {
  env_.reset();  // close LMDB before releasing the directory lock
  if (lockFd_ >= 0) ::close(lockFd_);
}

size_t StateStore::mapSize() const { return env_->mapSize(); }

}  // namespace gale
