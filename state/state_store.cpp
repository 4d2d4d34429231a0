// Keyed states, batch commits and the read side of a StateStore (opening: state_open.cpp).
#include "gale/state/state_store.h"

#include <lmdb.h>

#include "gale/state/codec.h"
#include "state_env.h"

namespace gale {

namespace state_detail {
void throwBadValue(const char* type, size_t size) {
  throw StateError("a stored value of " + std::to_string(size) + " bytes is not a valid " + type +
                   " (expected 8 bytes): the state holds values of another type");
}
}  // namespace state_detail

const char* commitPointName(CommitPoint p) {
  switch (p) {
    case CommitPoint::BeforeStateWrite: return "before-state-write";
    case CommitPoint::AfterStateWrite: return "after-state-write";
    case CommitPoint::AfterCommit: return "after-commit";
  }
  return "?";
}

const char* stateKindName(StateKind k) {
  switch (k) {
    case StateKind::Plain: return "plain";
    case StateKind::Transactional: return "transactional";
    case StateKind::Opaque: return "opaque";
  }
  return "?";
}

namespace state_detail {

std::string encodeCommit(const CommitRecord& r) {
  RecordWriter w;
  w.u8(1);
  w.u64(r.txid);
  w.i64(r.time.micros);
  w.u8(r.watermark ? 1 : 0);
  w.i64(r.watermark ? r.watermark->micros : 0);
  w.u64(r.stateUpdates);
  w.u64(r.stateSkips);
  w.u64(r.snapshots);
  w.u64(r.bytes);
  w.u32(static_cast<uint32_t>(r.offsets.size()));
  for (auto& [source, parts] : r.offsets) {
    w.str(source);
    w.u32(static_cast<uint32_t>(parts.size()));
    for (auto& [p, off] : parts) {
      w.i64(p);
      w.i64(off);
    }
  }
  return w.take();
}

CommitRecord decodeCommit(std::string_view bytes) {
  RecordReader r(bytes, "commit record");
  CommitRecord c;
  uint8_t version = r.u8();
  if (version != 1) throw StateError("commit record has unknown encoding " + std::to_string(version));
  c.txid = r.u64();
  c.time.micros = r.i64();
  bool hasWm = r.u8() != 0;
  int64_t wm = r.i64();
  if (hasWm) c.watermark = Timestamp{wm};
  c.stateUpdates = r.u64();
  c.stateSkips = r.u64();
  c.snapshots = r.u64();
  c.bytes = r.u64();
  uint32_t sources = r.u32();
  for (uint32_t i = 0; i < sources; ++i) {
    std::string name = r.str();
    auto& parts = c.offsets[name];
    uint32_t n = r.u32();
    for (uint32_t j = 0; j < n; ++j) {
      int64_t p = r.i64();
      parts[static_cast<int>(p)] = r.i64();
    }
  }
  r.expectEnd();
  return c;
}

}  // namespace state_detail

namespace {

// Stored form of a transactional / opaque value: the txid that wrote it, which of the current
// and previous values are present, and the values.
struct Versioned {
  uint64_t txid = 0;
  std::optional<std::string> value;
  std::optional<std::string> prev;  // opaque only
};

std::string encodeVersioned(StateKind kind, const Versioned& v) {
  RecordWriter w;
  w.u64(v.txid);
  w.u8((v.value ? 1 : 0) | (v.prev ? 2 : 0));
  if (kind == StateKind::Opaque) {
    w.str(v.value ? *v.value : std::string());
    if (v.prev) w.raw(*v.prev);
  } else if (v.value) {
    w.raw(*v.value);
  }
  return w.take();
}

Versioned decodeVersioned(StateKind kind, std::string_view bytes, const std::string& state) {
  RecordReader r(bytes, "value of state '" + state + "'");
  Versioned v;
  v.txid = r.u64();
  uint8_t flags = r.u8();
  if (kind == StateKind::Opaque) {
    std::string cur = r.str();
    if (flags & 1) v.value = std::move(cur);
    if (flags & 2) v.prev = std::string(r.rest());
  } else if (flags & 1) {
    v.value = std::string(r.rest());
  }
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Keyed states.

KeyedState& StateStore::keyedState(const std::string& name, StateKind kind) {
  if (name.empty()) throw StateError("keyedState: a state needs a non-empty name");
  if (kind != StateKind::Plain && kind != StateKind::Transactional && kind != StateKind::Opaque) {
    throw StateError("keyedState '" + name + "': unknown StateKind " +
                     std::to_string(static_cast<int>(kind)));
  }
  std::lock_guard statesLock(statesMutex_);
  auto it = states_.find(name);
  if (it != states_.end()) {
    if (it->second->kind() != kind) {
      throw StateError("state '" + name + "' is " + stateKindName(it->second->kind()) +
                       ", not " + stateKindName(kind));
    }
    return *it->second;
  }
  std::lock_guard writeLock(env_->writeMutex);
  MDB_dbi dbi = 0;
  std::string dbName = kStatePrefix + name;
  auto openState = [&](MDB_txn* txn) {
    auto stored = env_->get(txn, env_->registry, name);
    if (stored) {
      if (stored->size() != 1 || static_cast<StateKind>((*stored)[0]) != kind) {
        StateKind was = stored->size() == 1 ? static_cast<StateKind>((*stored)[0]) : StateKind{};
        throw StateError("state '" + name + "' in checkpoint directory " + dir_ + " is " +
                         stateKindName(was) + ", not " + stateKindName(kind) + ": its stored "
                         "values cannot be read as another kind. Use the kind it was created "
                         "with, another state name, or a new checkpoint directory");
      }
    } else if (readOnly_) {
      throw StateError("state '" + name + "' does not exist in checkpoint directory " + dir_);
    } else {
      env_->put(txn, env_->registry, name, std::string(1, static_cast<char>(kind)));
    }
    int rc = mdb_dbi_open(txn, dbName.c_str(), readOnly_ ? 0 : MDB_CREATE, &dbi);
    if (rc == MDB_DBS_FULL) {
      throw StateError("checkpoint directory " + dir_ + " cannot hold another state ('" + name +
                       "'): StateStoreOptions::maxStates = " + std::to_string(options_.maxStates) +
                       " is reached. Raise maxStates");
    }
    check(rc, "mdb_dbi_open(state)", dir_);
    return 0;
  };
  if (readOnly_) {
    env_->read(openState, true);
  } else {
    env_->write(openState, "state '" + name + "'");
  }
  env_->stateDbis[name] = dbi;
  env_->nameDb(dbi, "state '" + name + "'");
  auto state = std::unique_ptr<KeyedState>(new KeyedState(*this, name, kind, dbi));
  return *states_.emplace(name, std::move(state)).first->second;
}

std::vector<StateInfo> StateStore::states() const {
  std::vector<std::pair<std::string, StateKind>> registered = env_->read([&](MDB_txn* txn) {
    std::vector<std::pair<std::string, StateKind>> out;
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(txn, env_->registry, &cur), "mdb_cursor_open", dir_);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view payload = env_->unseal(env_->registry, view(k), view(v));
      StateKind kind = payload.size() == 1 ? static_cast<StateKind>(payload[0]) : StateKind{};
      out.emplace_back(std::string(view(k)), kind);
    }
    mdb_cursor_close(cur);
    return out;
  });
  std::vector<StateInfo> infos;
  for (auto& [name, kind] : registered) {
    KeyedState& state = const_cast<StateStore*>(this)->keyedState(name, kind);
    env_->read([&](MDB_txn* txn) {
      MDB_stat st;
      check(mdb_stat(txn, state.dbi_, &st), "mdb_stat", dir_);
      uint64_t pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
      infos.push_back(StateInfo{name, kind, st.ms_entries, pages * st.ms_psize});
      return 0;
    });
  }
  return infos;
}

std::optional<std::string> KeyedState::get(std::string_view key) const {
  return multiGet({std::string(key)})[0];
}

std::vector<std::optional<std::string>> KeyedState::multiGet(
    const std::vector<std::string>& keys) const {
  StateStore::Env& env = *store_.env_;
  return env.read([&](MDB_txn* txn) {
    std::vector<std::optional<std::string>> out;
    out.reserve(keys.size());
    for (auto& key : keys) {
      if (key.empty()) {
        out.emplace_back(std::nullopt);
        continue;
      }
      auto raw = env.get(txn, dbi_, key);
      if (!raw) {
        out.emplace_back(std::nullopt);
      } else if (kind_ == StateKind::Plain) {
        out.emplace_back(std::string(*raw));
      } else {
        out.emplace_back(decodeVersioned(kind_, *raw, name_).value);
      }
    }
    return out;
  });
}

size_t KeyedState::entries() const {
  StateStore::Env& env = *store_.env_;
  return env.read([&](MDB_txn* txn) {
    MDB_stat st;
    check(mdb_stat(txn, dbi_, &st), "mdb_stat", env.path);
    return static_cast<size_t>(st.ms_entries);
  });
}

uint64_t KeyedState::txidOf(std::string_view key) const {
  if (kind_ == StateKind::Plain || key.empty()) return 0;
  StateStore::Env& env = *store_.env_;
  return env.read([&](MDB_txn* txn) -> uint64_t {
    auto raw = env.get(txn, dbi_, key);
    return raw ? decodeVersioned(kind_, *raw, name_).txid : 0;
  });
}

void KeyedState::forEach(
    const std::function<bool(std::string_view key, std::string_view value)>& f) const {
  StateStore::Env& env = *store_.env_;
  env.read([&](MDB_txn* txn) {
    MDB_cursor* cur = nullptr;
    check(mdb_cursor_open(txn, dbi_, &cur), "mdb_cursor_open", env.path);
    struct Close {
      MDB_cursor* c;
      ~Close() { mdb_cursor_close(c); }
    } close{cur};
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::string_view value = env.unseal(dbi_, view(k), view(v));
      if (kind_ == StateKind::Plain) {
        if (!f(view(k), value)) break;
      } else {
        Versioned ver = decodeVersioned(kind_, value, name_);
        if (ver.value && !f(view(k), *ver.value)) break;
      }
    }
    return 0;
  });
}

// ---------------------------------------------------------------------------------------------
// Applying updates with Trident semantics.

namespace {

struct ApplyCounts {
  uint64_t updates = 0;
  uint64_t skips = 0;
  uint64_t bytes = 0;
};

std::optional<std::string> compose(const std::vector<Update>& updates,
                                   std::optional<std::string> value) {
  for (auto& u : updates) {
    std::optional<std::string_view> in;
    if (value) in = std::string_view(*value);
    value = u(in);
  }
  return value;
}

// Applies one key's updates for batch `txid`; returns the key's value afterwards. `tombstones`:
// keep a deleted key as a (txid, absent) record, so that a replay of the same txid stays exact
// (applyBeforeCommit); inside a batch commit a replay of a committed txid cannot happen.
std::optional<std::string> applyKey(StateStore::Env& env, MDB_txn* txn, const KeyedState& state,
                                    MDB_dbi dbi, const std::string& key,
                                    const std::vector<Update>& updates, uint64_t txid,
                                    bool tombstones, ApplyCounts& counts) {
  auto raw = env.get(txn, dbi, key);
  auto store = [&](const std::optional<std::string>& encoded) {
    if (encoded) {
      env.put(txn, dbi, key, *encoded);
      counts.bytes += key.size() + encoded->size();
    } else if (raw) {
      env.del(txn, dbi, key);
    }
    ++counts.updates;
  };
  if (state.kind() == StateKind::Plain) {
    std::optional<std::string> old;
    if (raw) old = std::string(*raw);
    auto next = compose(updates, std::move(old));
    store(next);
    return next;
  }
  Versioned stored;
  if (raw) stored = decodeVersioned(state.kind(), *raw, state.name());
  if (stored.txid > txid) {
    throw StateError("state '" + state.name() + "', key '" + key + "': it was written by batch " +
                     std::to_string(stored.txid) + ", which is newer than batch " +
                     std::to_string(txid) + ": batches must be applied in txid order");
  }
  if (state.kind() == StateKind::Transactional) {
    if (raw && stored.txid == txid) {  // batch already applied to this key: a replay
      ++counts.skips;
      return stored.value;
    }
    Versioned next{txid, compose(updates, stored.value), std::nullopt};
    store(next.value || tombstones ? std::optional(encodeVersioned(state.kind(), next))
                                   : std::nullopt);
    return next.value;
  }
  // Opaque: a replay of `txid` starts again from the value before the first attempt.
  std::optional<std::string> base =
      (raw && stored.txid == txid) ? std::move(stored.prev) : std::move(stored.value);
  Versioned next{txid, compose(updates, base), base};
  store(next.value || tombstones ? std::optional(encodeVersioned(state.kind(), next))
                                 : std::nullopt);
  return next.value;
}

// `where` names the key's place for the message ("state 'counts'", "operator snapshot").
void validateKey(const StateStore::Env& env, const std::string& where, const std::string& key) {
  int max = mdb_env_get_maxkeysize(env.env);
  if (key.empty()) {
    throw StateError(where + ": an empty key cannot be stored (LMDB keys are 1 to " +
                     std::to_string(max) + " bytes)");
  }
  if (key.size() > static_cast<size_t>(max)) {
    throw StateError(where + ": a key of " + std::to_string(key.size()) +
                     " bytes is longer than LMDB's maximum key size of " + std::to_string(max) +
                     " bytes; hash long keys or store them in the value");
  }
}

}  // namespace

std::map<std::string, std::optional<std::string>> StateStore::applyBeforeCommit(
    uint64_t txid, KeyedState& state, std::map<std::string, Update> updates) {
  if (readOnly_) throw StateError("checkpoint directory " + dir_ + " is open for inspection only");
  if (&state.store_ != this) {
    throw StateError("state '" + state.name() + "' belongs to another StateStore");
  }
  for (auto& [key, u] : updates) {
    validateKey(*env_, "state '" + state.name() + "'", key);
    if (!u) throw StateError("state '" + state.name() + "', key '" + key + "': empty Update");
  }
  std::map<std::string, std::optional<std::string>> result;
  std::lock_guard lock(env_->writeMutex);
  env_->write(
      [&](MDB_txn* txn) {
        result.clear();
        auto last = env_->lastCommit(txn);
        if (last && txid <= last->txid) {
          throw StateError("applyBeforeCommit: batch " + std::to_string(txid) + " of state '" +
                           state.name() + "' is already committed (last committed txid " +
                           std::to_string(last->txid) + ")");
        }
        ApplyCounts counts;
        std::vector<Update> one(1);
        for (auto& [key, u] : updates) {
          one[0] = u;
          result[key] = applyKey(*env_, txn, state, state.dbi_, key, one, txid, true, counts);
        }
      },
      "batch " + std::to_string(txid) + " of state '" + state.name() + "'");
  return result;
}

// ---------------------------------------------------------------------------------------------
// BatchCommit.

BatchCommit::BatchCommit(BatchCommit&&) noexcept = default;
BatchCommit::~BatchCommit() = default;

BatchCommit StateStore::beginCommit(uint64_t txid) {
  if (readOnly_) throw StateError("checkpoint directory " + dir_ + " is open for inspection only");
  if (txid == 0) throw StateError("beginCommit: txids start at 1 (0 means nothing committed)");
  uint64_t last = lastCommittedTxid();
  if (txid <= last) {
    throw StateError("beginCommit(" + std::to_string(txid) + "): txid " + std::to_string(last) +
                     " is already committed in " + dir_ + "; batches commit in strictly "
                     "increasing txid order (resume with lastCommittedTxid() + 1)");
  }
  return BatchCommit(*this, txid);
}

BatchCommit::StateChanges& BatchCommit::changesFor(KeyedState& state) {
  if (committed_) {
    throw StateError("batch " + std::to_string(txid_) + " is already committed; start the next "
                     "one with beginCommit()");
  }
  if (&state.store_ != store_) {
    throw StateError("state '" + state.name() + "' belongs to another StateStore");
  }
  auto& c = states_[state.name()];
  c.state = &state;
  return c;
}

BatchCommit& BatchCommit::update(KeyedState& state, std::string key, Update u) {
  auto& c = changesFor(state);
  validateKey(*store_->env_, "state '" + state.name() + "'", key);
  if (!u) throw StateError("state '" + state.name() + "', key '" + key + "': empty Update");
  c.keys[std::move(key)].updates.push_back(std::move(u));
  return *this;
}

BatchCommit& BatchCommit::apply(KeyedState& state, std::map<std::string, Update> updates) {
  for (auto& [key, u] : updates) update(state, key, std::move(u));
  return *this;
}

BatchCommit& BatchCommit::put(KeyedState& state, std::string key, std::string value) {
  return update(state, std::move(key), setValue(std::move(value)));
}

BatchCommit& BatchCommit::erase(KeyedState& state, std::string key) {
  return update(state, std::move(key),
                [](std::optional<std::string_view>) -> std::optional<std::string> {
                  return std::nullopt;
                });
}

BatchCommit& BatchCommit::putSnapshot(std::string operatorKey, std::string blob) {
  if (committed_) throw StateError("batch " + std::to_string(txid_) + " is already committed");
  validateKey(*store_->env_, "operator snapshot", operatorKey);
  snapshots_[std::move(operatorKey)] = std::move(blob);
  return *this;
}

BatchCommit& BatchCommit::setOffset(const std::string& source, int partition, int64_t endOffset) {
  if (committed_) throw StateError("batch " + std::to_string(txid_) + " is already committed");
  if (source.empty()) throw StateError("setOffset: the source name is empty");
  if (partition < 0 || endOffset < 0) {
    throw StateError("setOffset(" + source + ", " + std::to_string(partition) + ", " +
                     std::to_string(endOffset) + "): partition and offset must be >= 0");
  }
  offsets_[source][partition] = endOffset;
  return *this;
}

BatchCommit& BatchCommit::setOffsets(const SourceOffsets& offsets) {
  for (auto& [source, parts] : offsets) {
    for (auto& [p, off] : parts) setOffset(source, p, off);
  }
  return *this;
}

BatchCommit& BatchCommit::setWatermark(Timestamp watermark) {
  if (committed_) throw StateError("batch " + std::to_string(txid_) + " is already committed");
  watermark_ = watermark;
  return *this;
}

BatchCommit& BatchCommit::markSinkCommitted(std::string sink) {
  if (committed_) throw StateError("batch " + std::to_string(txid_) + " is already committed");
  if (sink.empty()) throw StateError("markSinkCommitted: the sink name is empty");
  sinks_.push_back(std::move(sink));
  return *this;
}

CommitRecord BatchCommit::commit() {
  if (committed_) {
    throw StateError("batch " + std::to_string(txid_) + " is already committed; start the next "
                     "one with beginCommit()");
  }
  CommitRecord r = store_->commitBatch(*this);
  committed_ = true;
  return r;
}

std::map<std::string, std::optional<std::string>> BatchCommit::newValues(
    const KeyedState& state) const {
  if (!committed_) {
    throw StateError("newValues('" + state.name() + "'): batch " + std::to_string(txid_) +
                     " is not committed yet");
  }
  std::map<std::string, std::optional<std::string>> out;
  auto it = states_.find(state.name());
  if (it != states_.end()) {
    for (auto& [key, k] : it->second.keys) out.emplace_hint(out.end(), key, k.newValue);
  }
  return out;
}

CommitRecord StateStore::commitBatch(BatchCommit& batch) {
  const uint64_t txid = batch.txid_;
  CommitRecord record;
  std::lock_guard lock(env_->writeMutex);
  env_->write(
      [&](MDB_txn* txn) {
        auto last = env_->lastCommit(txn);
        if (last && txid <= last->txid) {
          throw StateError("batch " + std::to_string(txid) + " cannot be committed: txid " +
                           std::to_string(last->txid) + " is already committed in " + dir_ +
                           " (commits must be in strictly increasing txid order)");
        }
        if (options_.onCommitPoint) options_.onCommitPoint(CommitPoint::BeforeStateWrite, txid);
        record = CommitRecord{};
        record.txid = txid;
        record.time = options_.clock->now();
        if (last) {
          record.offsets = last->offsets;
          record.watermark = last->watermark;
        }
        for (auto& [source, parts] : batch.offsets_) {
          for (auto& [p, off] : parts) {
            auto& slot = record.offsets[source];
            auto it = slot.find(p);
            if (it != slot.end() && off < it->second) {
              throw StateError("batch " + std::to_string(txid) + ": the offset of source '" +
                               source + "' partition " + std::to_string(p) + " would move back "
                               "from " + std::to_string(it->second) + " to " + std::to_string(off) +
                               " (records would be counted twice); offsets only grow");
            }
            slot[p] = off;
          }
        }
        if (batch.watermark_) {
          if (record.watermark && *batch.watermark_ < *record.watermark) {
            throw StateError("batch " + std::to_string(txid) + ": the watermark would move back "
                             "from " + std::to_string(record.watermark->micros) + " to " +
                             std::to_string(batch.watermark_->micros) + " µs; watermarks only grow");
          }
          record.watermark = batch.watermark_;
        }
        ApplyCounts counts;
        for (auto& [name, changes] : batch.states_) {
          for (auto& [key, k] : changes.keys) {
            k.newValue = applyKey(*env_, txn, *changes.state, changes.state->dbi_, key, k.updates,
                                  txid, false, counts);
          }
        }
        for (auto& [key, blob] : batch.snapshots_) {
          env_->put(txn, env_->snapshots, key, blob);
          counts.bytes += key.size() + blob.size();
        }
        for (auto& sink : batch.sinks_) {
          env_->put(txn, env_->sinks, sink, Codec<int64_t>::encode(static_cast<int64_t>(txid)));
        }
        record.stateUpdates = counts.updates;
        record.stateSkips = counts.skips;
        record.snapshots = batch.snapshots_.size();
        record.bytes = counts.bytes;
        env_->put(txn, env_->commits, txidKey(txid), encodeCommit(record));
        // Trim the commit log to the retention (oldest first).
        if (options_.commitLogRetention > 0 && txid > options_.commitLogRetention) {
          uint64_t cutoff = txid - options_.commitLogRetention;
          MDB_cursor* cur = nullptr;
          check(mdb_cursor_open(txn, env_->commits, &cur), "mdb_cursor_open", dir_);
          MDB_val k, v;
          int rc;
          while ((rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0 &&
                 txidFromKey(view(k)) <= cutoff) {
            int d = mdb_cursor_del(cur, 0);
            if (d != 0) {
              mdb_cursor_close(cur);
              check(d, "mdb_cursor_del(commit log)", dir_);
            }
          }
          mdb_cursor_close(cur);
        }
        if (options_.onCommitPoint) options_.onCommitPoint(CommitPoint::AfterStateWrite, txid);
      },
      "batch " + std::to_string(txid));
  if (options_.onCommitPoint) options_.onCommitPoint(CommitPoint::AfterCommit, txid);
  return record;
}

// ---------------------------------------------------------------------------------------------
// Recovery and sinks.

uint64_t StateStore::lastCommittedTxid() const {
  auto last = lastCommit();
  return last ? last->txid : 0;
}

std::optional<CommitRecord> StateStore::lastCommit() const {
  return env_->read([&](MDB_txn* txn) { return env_->lastCommit(txn); });
}

SourceOffsets StateStore::committedOffsets() const {
  auto last = lastCommit();
  return last ? last->offsets : SourceOffsets{};
}

std::optional<Timestamp> StateStore::committedWatermark() const {
  auto last = lastCommit();
  return last ? last->watermark : std::nullopt;
}

std::optional<std::string> StateStore::snapshot(std::string_view operatorKey) const {
  if (operatorKey.empty()) return std::nullopt;
  return env_->read([&](MDB_txn* txn) -> std::optional<std::string> {
    auto v = env_->get(txn, env_->snapshots, operatorKey);
    if (!v) return std::nullopt;
    return std::string(*v);
  });
}

namespace {
template <class F>
void scan(const StateStore::Env& env, MDB_txn* txn, MDB_dbi dbi, MDB_cursor_op first,
          MDB_val* start, F&& f) {
  MDB_cursor* cur = nullptr;
  check(mdb_cursor_open(txn, dbi, &cur), "mdb_cursor_open", env.path);
  struct Close {
    MDB_cursor* c;
    ~Close() { mdb_cursor_close(c); }
  } close{cur};
  MDB_val k = start ? *start : MDB_val{0, nullptr}, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, first); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (!f(view(k), env.unseal(dbi, view(k), view(v)))) break;
  }
}
}  // namespace

std::map<std::string, std::string> StateStore::snapshots() const {
  return env_->read([&](MDB_txn* txn) {
    std::map<std::string, std::string> out;
    scan(*env_, txn, env_->snapshots, MDB_FIRST, nullptr, [&](auto k, auto v) {
      out.emplace(std::string(k), std::string(v));
      return true;
    });
    return out;
  });
}

std::vector<CommitRecord> StateStore::commitLog(uint64_t fromTxid, size_t limit) const {
  return env_->read([&](MDB_txn* txn) {
    std::vector<CommitRecord> out;
    if (limit == 0) return out;
    std::string start = txidKey(fromTxid);
    MDB_val s = val(start);
    scan(*env_, txn, env_->commits, MDB_SET_RANGE, &s, [&](auto, auto v) {
      out.push_back(decodeCommit(v));
      return out.size() < limit;
    });
    return out;
  });
}

uint64_t StateStore::sinkCommittedTxid(std::string_view sink) const {
  if (sink.empty()) return 0;
  return env_->read([&](MDB_txn* txn) -> uint64_t {
    auto v = env_->get(txn, env_->sinks, sink);
    return v ? static_cast<uint64_t>(Codec<int64_t>::decode(*v)) : 0;
  });
}

void StateStore::markSinkCommitted(const std::string& sink, uint64_t txid) {
  if (readOnly_) throw StateError("checkpoint directory " + dir_ + " is open for inspection only");
  if (sink.empty()) throw StateError("markSinkCommitted: the sink name is empty");
  std::lock_guard lock(env_->writeMutex);
  env_->write(
      [&](MDB_txn* txn) {
        auto old = env_->get(txn, env_->sinks, sink);
        if (old && static_cast<uint64_t>(Codec<int64_t>::decode(*old)) > txid) {
          throw StateError("markSinkCommitted('" + sink + "', " + std::to_string(txid) +
                           "): the sink already recorded the later batch " +
                           std::to_string(Codec<int64_t>::decode(*old)));
        }
        env_->put(txn, env_->sinks, sink, Codec<int64_t>::encode(static_cast<int64_t>(txid)));
      },
      "the sink record of '" + sink + "'");
}

std::map<std::string, uint64_t> StateStore::sinks() const {
  return env_->read([&](MDB_txn* txn) {
    std::map<std::string, uint64_t> out;
    scan(*env_, txn, env_->sinks, MDB_FIRST, nullptr, [&](auto k, auto v) {
      out[std::string(k)] = static_cast<uint64_t>(Codec<int64_t>::decode(v));
      return true;
    });
    return out;
  });
}

}  // namespace gale
