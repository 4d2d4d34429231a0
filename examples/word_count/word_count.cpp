#include "word_count.h"

#define XXH_INLINE_ALL  // the short-input paths inlined here, no call into libxxhash
#include <xxhash.h>

#include "gale/core/clock.h"
#include "gale/core/state_codec.h"

namespace gale::examples {

size_t WordHash::operator()(std::string_view w) const { return XXH3_64bits(w.data(), w.size()); }

int64_t& WordTable::add(std::string_view w, uint64_t hash) {
  if ((entries_.size() + 1) * 2 > slots_.size()) grow();  // at most half full
  size_t i = hash & mask_;
  while (slots_[i].entry != 0) i = (i + 1) & mask_;
  entries_.emplace_back(std::string(w), 0);
  slots_[i] = Slot{hash, static_cast<uint32_t>(entries_.size())};
  return entries_.back().second;
}

void WordTable::grow() {
  size_t n = slots_.size() * 2;
  std::vector<Slot> slots(n);
  for (const Slot& s : slots_) {
    if (s.entry == 0) continue;
    size_t i = s.hash & (n - 1);
    while (slots[i].entry != 0) i = (i + 1) & (n - 1);
    slots[i] = s;
  }
  slots_ = std::move(slots);
  mask_ = n - 1;
}

void SplitWords::onTuple(const Tuple& t, Emitter& out) {
  forEachWord(t.getString(0), [&](std::string_view w) {
    // Empty at first, and whenever the emitter kept the list (anchored with acking on, not
    // fused, or the next task kept its input behind a barrier).
    if (word_.empty()) {
      word_.emplace_back(std::in_place_type<std::string>, w);
    } else {  // clear + append: assign() goes through _M_replace, ~37 instructions a word dearer
      std::string& s = std::get<std::string>(word_[0]);
      s.clear();
      s.append(w);
    }
    out.emitBorrowed(kDefaultStream, word_);
  });
}

void CountReport::merge(const WordTable& c, const Histogram& h) {
  std::lock_guard lock(mutex);
  for (const auto& [w, n] : c.entries()) counts[w] += n;
  latencyNanos.merge(h);
}

void CountWords::onTuple(const Tuple& t, Emitter& out) {
  const std::string& w = t.getString(0);
  int64_t n = ++counts_[w];
  if (t.originNanos()) latency_.record(SystemClock::steadyNanos() - t.originNanos());
  if (emitUpdates_) out.emit(Values{w, n});
}

void CountWords::onEndOfInput(Emitter&) {
  report_->merge(counts_, latency_);
}

std::string CountWords::snapshot() const {
  StateWriter w;
  w.header("WCNT", 1);
  w.varint(counts_.size());
  for (const auto& [word, n] : counts_.entries()) {
    w.str(word);
    w.svarint(n);
  }
  return w.take();
}

void CountWords::restore(std::string_view snapshot) {
  StateReader r(snapshot, "word count snapshot");
  r.header("WCNT", 1);
  WordTable counts;
  for (uint64_t i = r.count("words", 2); i > 0; --i) {
    std::string word = r.str("word");
    counts[word] = r.svarint("count");
  }
  r.expectEnd();
  counts_ = std::move(counts);
}

}  // namespace gale::examples
