#include "word_count.h"

#include "gale/core/clock.h"

namespace gale::examples {

void SplitWords::onTuple(const Tuple& t, Emitter& out) {
  forEachWord(t.getString(0), [&](const std::string& w) {
    Values v = recycledValues();  // no allocation per word (the count's input gives it back)
    v.emplace_back(w);
    out.emit(std::move(v));
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

}  // namespace gale::examples
