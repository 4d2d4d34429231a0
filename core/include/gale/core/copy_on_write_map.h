// A keyed state whose snapshot is a frozen copy-on-write view (Flink's CopyOnWriteStateMap), for
// operators with asynchronous snapshots (gale/core/async_snapshot.h): freeze() at the barrier
// copies the shard pointers (a memcpy into an array the last view handed back), the view is then
// serialized on another thread while the task goes on writing the map, and the view keeps seeing
// the state as it was at freeze().
//
// The entries live in shards (small hash maps, about 16-32 entries each; the shard count doubles
// as the map grows). A shard a live view may hold is never written: the first write into it after
// a freeze() copies the shard (only its 16-32 entries), and the view keeps the old one. Once every
// view is gone, writes go in place again, so a map that is not being snapshotted costs nothing.
//
// Memory is allocated and freed on the map's thread only. A replaced shard is "retired" and freed
// by later writes, a few per write, once no live view can hold it; a view's end frees nothing
// (the next freeze() reuses its pointer array). Why: the view ends on the checkpoint writer's
// thread, which runs at low priority; freeing the task's memory there took the task's malloc
// arena lock for tens of milliseconds (glibc consolidates its free lists under that lock), and
// the task, blocked on the lock, stalled its records (docs/benchmarks.md, "Where a checkpoint's
// stall came from").
//
// Threads: the map belongs to one thread (the task's). Views may be read and destroyed on any
// thread, concurrently with the map's writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace gale {

template <class K, class V, class Hash = std::hash<K>>
class CopyOnWriteMap {
  // A key with its hash, computed once per call: the shard and the lookup inside it both use it
  // (the shards' maps look it up heterogeneously).
  struct Lookup {
    const K& key;
    size_t hash;
  };
  struct ShardHash {
    using is_transparent = void;
    size_t operator()(const K& k) const { return Hash{}(k); }
    size_t operator()(const Lookup& l) const { return l.hash; }
  };
  struct ShardEqual {
    using is_transparent = void;
    bool operator()(const K& a, const K& b) const { return a == b; }
    bool operator()(const Lookup& a, const K& b) const { return a.key == b; }
    bool operator()(const K& a, const Lookup& b) const { return a == b.key; }
  };
  struct Shard {
    std::unordered_map<K, V, ShardHash, ShardEqual> entries;
    uint64_t epoch = 0;  // the map's epoch when the shard was made
  };

  // What the map and its views share: which views are alive (by the epoch of their freeze), the
  // pointer array of a view that ended (for the next freeze), and the map's shards when the map
  // is destroyed before its views (the last view frees them).
  struct Shared {
    std::atomic<int> liveViews{0};
    // The oldest live view's epoch (max when none): a shard retired later than it is held by
    // no view.
    std::atomic<uint64_t> oldestLive{std::numeric_limits<uint64_t>::max()};
    std::mutex mutex;  // the fields below
    std::map<uint64_t, int> live;  // epoch of a freeze -> its live views
    std::vector<Shard*> spareArray;
    bool mapGone = false;
    std::vector<Shard*> orphans;

    void viewBegins(uint64_t epoch) {  // under mutex
      ++live[epoch];
      liveViews.fetch_add(1, std::memory_order_relaxed);
      oldestLive.store(live.begin()->first, std::memory_order_release);
    }
    // Under mutex. Release order: the view's reads happen before the map reuses what it held.
    void viewEnds(uint64_t epoch) {
      if (--live[epoch] == 0) live.erase(epoch);
      oldestLive.store(live.empty() ? std::numeric_limits<uint64_t>::max() : live.begin()->first,
                       std::memory_order_release);
      liveViews.fetch_sub(1, std::memory_order_release);
    }
  };

  // What a view holds: the shards as they were at freeze().
  struct Frozen {
    std::shared_ptr<Shared> shared;
    uint64_t epoch = 0;
    std::vector<Shard*> shards;
    size_t size = 0;
    ~Frozen() {
      std::vector<Shard*> orphans;
      {
        std::lock_guard lk(shared->mutex);
        shards.clear();
        if (shared->spareArray.capacity() < shards.capacity()) shared->spareArray.swap(shards);
        shared->viewEnds(epoch);
        if (shared->mapGone && shared->live.empty()) orphans.swap(shared->orphans);
      }
      for (Shard* s : orphans) delete s;
    }
  };

 public:
  // The state at one freeze(): cheap to copy, readable from any thread.
  class View {
   public:
    size_t size() const { return frozen_->size; }
    // f(const K&, const V&) for every entry, in no particular order.
    template <class F>
    void forEach(F&& f) const {
      for (const Shard* s : frozen_->shards)
        if (s)
          for (const auto& [k, v] : s->entries) f(k, v);
    }

   private:
    friend class CopyOnWriteMap;
    explicit View(std::shared_ptr<const Frozen> f) : frozen_(std::move(f)) {}
    std::shared_ptr<const Frozen> frozen_;
  };

  CopyOnWriteMap() : shards_(kMinShards) {}
  ~CopyOnWriteMap() {
    std::vector<Shard*> all;
    for (Shard* s : shards_)
      if (s) all.push_back(s);
    for (const Retired& r : retired_) all.push_back(r.shard);
    {
      std::lock_guard lk(shared_->mutex);
      if (!shared_->live.empty()) {  // views still read them: the last one frees them
        shared_->mapGone = true;
        shared_->orphans = std::move(all);
        return;
      }
    }
    for (Shard* s : all) delete s;
  }
  // A copy has its entries and none of the views (an operator copied as a prototype). There is
  // no move: a moved-from map would have no shards.
  CopyOnWriteMap(const CopyOnWriteMap& other) : CopyOnWriteMap() { *this = other; }
  CopyOnWriteMap& operator=(const CopyOnWriteMap& other) {
    if (this == &other) return *this;
    clear();
    reserve(other.size());
    other.forEach([&](const K& k, const V& v) { (*this)[k] = v; });
    return *this;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  const V* find(const K& key) const {
    Lookup l{key, Hash{}(key)};
    const auto& s = shards_[shardOf(l.hash)];
    if (!s) return nullptr;
    auto it = s->entries.find(l);
    return it == s->entries.end() ? nullptr : &it->second;
  }

  // The value of `key` to write, and whether it was inserted (default-constructed) just now.
  // Valid until the next call of a non-const member.
  std::pair<V*, bool> tryEmplace(const K& key) {
    if (!retired_.empty()) reclaim();
    if (size_ >= kMaxPerShard * shards_.size()) grow();
    Lookup l{key, Hash{}(key)};
    size_t i = shardOf(l.hash);
    if (shards_[i]) {
      auto it = shards_[i]->entries.find(l);
      if (it != shards_[i]->entries.end()) {
        if (!mayBeHeld(*shards_[i])) return {&it->second, false};
        return {&writable(i).entries.find(l)->second, false};
      }
    }
    ++size_;
    return {&writable(i).entries.emplace(key, V{}).first->second, true};
  }
  V& operator[](const K& key) { return *tryEmplace(key).first; }

  // Inserts `value` unless `key` is there (false: nothing is written, nor a shard copied).
  bool insert(const K& key, V value) {
    if (!retired_.empty()) reclaim();
    if (size_ >= kMaxPerShard * shards_.size()) grow();
    Lookup l{key, Hash{}(key)};
    size_t i = shardOf(l.hash);
    if (shards_[i] && shards_[i]->entries.find(l) != shards_[i]->entries.end()) return false;
    writable(i).entries.emplace(key, std::move(value));
    ++size_;
    return true;
  }

  bool erase(const K& key) {
    if (!retired_.empty()) reclaim();
    Lookup l{key, Hash{}(key)};
    size_t i = shardOf(l.hash);
    if (!shards_[i]) return false;
    auto it = shards_[i]->entries.find(l);
    if (it == shards_[i]->entries.end()) return false;
    if (mayBeHeld(*shards_[i])) writable(i).entries.erase(key);
    else shards_[i]->entries.erase(it);
    --size_;
    return true;
  }

  // Room for n entries without growing (a restore knows its size).
  void reserve(size_t n) {
    while (n > kMaxPerShard * shards_.size()) grow();
  }

  void clear() {
    for (Shard*& s : shards_) retire(s);
    shards_.assign(kMinShards, nullptr);
    shardBits_ = kMinShardBits;
    size_ = 0;
  }

  // f(const K&, const V&) for every entry, in no particular order.
  template <class F>
  void forEach(F&& f) const {
    for (const auto& s : shards_)
      if (s)
        for (const auto& [k, v] : s->entries) f(k, v);
  }

  // The state now, unchanged by any later write. O(shards).
  View freeze() {
    auto f = std::make_shared<Frozen>();
    f->shared = shared_;
    f->epoch = epoch_;
    {
      std::lock_guard lk(shared_->mutex);
      f->shards.swap(shared_->spareArray);
      shared_->viewBegins(epoch_);
    }
    f->shards.assign(shards_.begin(), shards_.end());
    f->size = size_;
    ++epoch_;  // every shard now is older than the epoch: a view may hold it
    return View(std::move(f));
  }

  // Shards replaced while a view held them and not freed yet (for tests).
  size_t retiredShards() const { return retired_.size(); }

  // Shards copied because a live view held them (for tests and the benchmark's figures).
  uint64_t shardCopies() const { return shardCopies_; }
  size_t shardCount() const { return shards_.size(); }

 private:
  static constexpr unsigned kMinShardBits = 4;
  static constexpr size_t kMinShards = size_t{1} << kMinShardBits;
  static constexpr size_t kMaxPerShard = 32;
  // Retired shards freed per write: a few microseconds, and more than a write can retire (one).
  static constexpr int kReclaimPerWrite = 4;

  struct Retired {
    Shard* shard;
    uint64_t epoch;  // the map's epoch when it was replaced: views frozen since do not hold it
  };

  // The hash's high bits after a multiplicative mix (Fibonacci hashing): std::hash of an integer
  // is the integer itself, and keys that share their low bits must not share a shard.
  size_t shardOf(size_t hash) const {
    return static_cast<size_t>((static_cast<uint64_t>(hash) * 0x9E3779B97F4A7C15ull) >>
                               (64 - shardBits_));
  }

  // Made before the last freeze(), while a view is alive: a view may hold it.
  bool mayBeHeld(const Shard& s) const {
    return s.epoch != epoch_ && shared_->liveViews.load(std::memory_order_acquire) != 0;
  }

  // `s` leaves the map: freed now if no view may hold it, else retired (and s set to null).
  void retire(Shard*& s) {
    if (!s) return;
    if (mayBeHeld(*s)) retired_.push_back({s, epoch_});
    else delete s;
    s = nullptr;
  }

  // Frees a few retired shards that no live view can hold (retired since the oldest one froze).
  void reclaim() {
    uint64_t oldest = shared_->oldestLive.load(std::memory_order_acquire);
    for (int n = 0; n < kReclaimPerWrite && !retired_.empty(); ++n) {
      if (retired_.front().epoch > oldest) return;  // a view frozen before it was retired lives
      delete retired_.front().shard;
      retired_.pop_front();
    }
  }

  // Shard i, which no view holds (a copy if one may).
  Shard& writable(size_t i) {
    Shard*& s = shards_[i];
    if (!s) {
      s = new Shard();
      s->epoch = epoch_;
    } else if (mayBeHeld(*s)) {
      auto* copy = new Shard(*s);
      copy->epoch = epoch_;
      retired_.push_back({s, epoch_});
      s = copy;
      ++shardCopies_;
    }
    return *s;
  }

  // Twice the shards; the entries move to new shards (copied out of those a view may hold).
  void grow() {
    std::vector<Shard*> old = std::move(shards_);
    shards_.assign(old.size() * 2, nullptr);
    ++shardBits_;
    for (Shard*& s : old) {
      if (!s) continue;
      bool held = mayBeHeld(*s);
      for (auto& [k, v] : s->entries) {
        Shard& to = writable(shardOf(Hash{}(k)));
        if (held) to.entries.emplace(k, v);
        else to.entries.emplace(k, std::move(v));
      }
      retire(s);
    }
  }

  std::vector<Shard*> shards_;  // owned: freed by retire(), reclaim() or the destructor
  unsigned shardBits_ = kMinShardBits;  // shards_.size() == 1 << shardBits_
  size_t size_ = 0;
  uint64_t epoch_ = 0;
  uint64_t shardCopies_ = 0;
  std::deque<Retired> retired_;  // in the order retired, so in epoch order
  std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
};

}  // namespace gale
