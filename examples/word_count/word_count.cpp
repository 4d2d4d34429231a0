#include "word_count.h"

#define XXH_INLINE_ALL  // the short-input paths inlined here, no call into libxxhash
#include <xxhash.h>

#include "gale/core/clock.h"
#include "gale/core/state_codec.h"

namespace gale::examples {

size_t WordHash::operator()(std::string_view w) const { return XXH3_64bits(w.data(), w.size()); }

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

void CountReport::merge(const WordCounts& c, const Histogram& h) {
  std::lock_guard lock(mutex);
  for (const auto& [w, n] : c) counts[w] += n;
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
  for (const auto& [word, n] : counts_) {
    w.str(word);
    w.svarint(n);
  }
  return w.take();
}

void CountWords::restore(std::string_view snapshot) {
  StateReader r(snapshot, "word count snapshot");
  r.header("WCNT", 1);
  WordCounts counts;
  for (uint64_t i = r.count("words", 2); i > 0; --i) {
    std::string word = r.str("word");
    counts[std::move(word)] = r.svarint("count");
  }
  r.expectEnd();
  counts_ = std::move(counts);
}

}  // namespace gale::examples
