// Word count, the examples' logic: split sentences into words, count words by key. Written as
// gale::Operators, so the same objects run as bolts in continuous mode (OperatorBolt) and in a
// micro-batch job; `countDirectly` is the same logic in a bare single-threaded loop, the oracle
// for tests and the baseline for the benchmark.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gale/core/histogram.h"
#include "gale/core/operator.h"

namespace gale::examples {

// Hashes std::string and std::string_view alike, so a count is found by a view of the word
// (C++20 heterogeneous lookup) without building a std::string for it first. XXH3, whose
// short-input paths cost about half of std::hash's (libstdc++'s _Hash_bytes) on words.
// Not noexcept on purpose: the map then keeps each node's hash, as it does for std::hash.
struct WordHash {
  using is_transparent = void;
  size_t operator()(std::string_view w) const;
};
using WordCounts = std::unordered_map<std::string, int64_t, WordHash, std::equal_to<>>;

// a == b for words, without a call to memcmp for the usual 2 to 16 bytes: two overlapping loads
// of 8 (or 4) bytes from each end compare every byte. In the table's probe: ~17 instructions a
// word where std::string's == with its memcmp call took ~44 (docs/benchmarks.md).
inline bool sameWord(std::string_view a, std::string_view b) {
  size_t n = a.size();
  if (n != b.size()) return false;
  auto load = [](const char* p, auto word) {
    std::memcpy(&word, p, sizeof word);
    return word;
  };
  if (n >= 8 && n <= 16)
    return load(a.data(), uint64_t{}) == load(b.data(), uint64_t{}) &&
           load(a.data() + n - 8, uint64_t{}) == load(b.data() + n - 8, uint64_t{});
  if (n >= 4 && n < 8)
    return load(a.data(), uint32_t{}) == load(b.data(), uint32_t{}) &&
           load(a.data() + n - 4, uint32_t{}) == load(b.data() + n - 4, uint32_t{});
  if (n > 16) return std::memcmp(a.data(), b.data(), n) == 0;
  for (size_t i = 0; i < n; ++i)  // 0 to 3 bytes
    if (a[i] != b[i]) return false;
  return true;
}

// The count operator's map: the same per-word work as WordCounts (hash the word, find it or add
// it, add one) in a flat table. Slots hold the hash and the entry's index (+1, 32 bits) in a
// vector, probed linearly, at most half full: a lookup is the hash, a masked index and usually
// one slot, where std::unordered_map divides by a prime bucket count and follows a node (the
// count operator 213 -> 175 instructions a word with sameWord, docs/benchmarks.md).
class WordTable {
 public:
  // The word's count, 0 if it was not there (then added). Always inline (GCC's own choice kept
  // the call: 9 + 8 instructions of prologue and epilogue a word), so the count operator has
  // the probe in its own body; adding a word (once per distinct word) is out of line.
  [[gnu::always_inline]] int64_t& operator[](std::string_view w) {
    uint64_t h = WordHash{}(w);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.entry == 0) return add(w, h);
      if (s.hash == h) {
        auto& e = entries_[s.entry - 1];
        if (sameWord(e.first, w)) return e.second;
      }
    }
  }
  size_t size() const { return entries_.size(); }
  // Word and count, in the order the words were first seen.
  const std::vector<std::pair<std::string, int64_t>>& entries() const { return entries_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t entry = 0;  // index in entries_ + 1; 0: empty
  };
  int64_t& add(std::string_view w, uint64_t hash);
  void grow();

  std::vector<Slot> slots_ = std::vector<Slot>(64);  // a power of two
  size_t mask_ = 63;
  std::vector<std::pair<std::string, int64_t>> entries_;
};

// What a byte is to forEachWord: 0 ends a word, 1 is part of one, 2 is an upper-case letter.
// A table, so the scan costs a load and a test per byte.
inline constexpr struct WordByteClasses {
  unsigned char of[256] = {};
  constexpr WordByteClasses() {
    for (int c = 'a'; c <= 'z'; ++c) of[c] = 1;
    for (int c = '0'; c <= '9'; ++c) of[c] = 1;
    of[static_cast<unsigned char>('\'')] = 1;
    for (int c = 'A'; c <= 'Z'; ++c) of[c] = 2;
  }
} kWordBytes;

// Calls f(word) (a std::string_view) for every maximal run of letters/digits/apostrophes,
// lower-cased. A run with no upper-case letter is passed as a view into `text` itself (no copy,
// the common case); one with upper-case letters is lower-cased into a buffer reused for the
// whole text. The view is valid during the call only.
template <class F>
void forEachWord(std::string_view text, F&& f) {
  std::string lowered;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    const char* start = p;
    unsigned upper = 0;
    for (unsigned k; p < end && (k = kWordBytes.of[static_cast<unsigned char>(*p)]) != 0; ++p)
      upper |= k;  // bit 1: an upper-case letter (k & 2 here: one more instruction a byte)
    if (p > start) {
      std::string_view word(start, static_cast<size_t>(p - start));
      if (upper & 2) {
        lowered.assign(word);
        for (char& c : lowered)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        word = lowered;
      }
      f(word);
    }
    ++p;  // *p ends the run (or p == end)
  }
}

// The bare loop. A word already counted is found by its view; only a new one becomes a key.
inline void countDirectly(std::string_view text, WordCounts& counts) {
  forEachWord(text, [&](std::string_view w) {
    auto it = counts.find(w);
    if (it != counts.end())
      ++it->second;
    else
      counts.emplace(w, 1);
  });
}

// Input: any stream whose first field is a string (a sentence or a line). Output: "word".
class SplitWords final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"word", Type::String}});
  }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<SplitWords>(); }
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  // The word emitted, lent to the next operator (Emitter::emitBorrowed): its string keeps its
  // capacity from word to word, so a word is one copy of its characters and nothing else.
  Values word_;
};

// What the counters report: final counts (at end of input) and count-update latency.
struct CountReport {
  std::mutex mutex;
  WordCounts counts;
  Histogram latencyNanos;  // origin of the sentence -> count updated
  void merge(const WordTable& c, const Histogram& h);
};

// Input: "word" (fields grouping on it). Output: "word", "count" after every update (when
// `emitUpdates`); at the end of input it adds its counts to the report. Latency from the tuple's originNanos to the update, by the system clock.
class CountWords final : public Operator {
 public:
  explicit CountWords(std::shared_ptr<CountReport> report, bool emitUpdates = true)
      : report_(std::move(report)), emitUpdates_(emitUpdates) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"word", Type::String}, {"count", Type::Int64}});
  }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<CountWords>(report_, emitUpdates_);
  }
  void onTuple(const Tuple& t, Emitter& out) override;
  void onEndOfInput(Emitter& out) override;
  // The counts (exactly-once continuous mode checkpoints them; a restored run reports the sum).
  bool stateful() const override { return true; }
  std::string snapshot() const override;
  void restore(std::string_view snapshot) override;
  size_t stateSize() const override { return counts_.size(); }

 private:
  std::shared_ptr<CountReport> report_;
  bool emitUpdates_;
  WordTable counts_;
  Histogram latency_;
};

}  // namespace gale::examples
