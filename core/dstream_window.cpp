// DStream.window(length, slide): the tuples of each sliding window, re-emitted when it closes.
#include <stdexcept>

#include "gale/core/dstream.h"
#include "gale/core/dstream_slices.h"
#include "gale/core/state_codec.h"

namespace gale {

using dstream::floorDiv;
using dstream::readySlice;

WindowRows::WindowRows(Fields input, Duration length, Duration slide, EventTime eventTime)
    : input_(std::move(input)), length_(length.count()), slide_(slide.count()),
      eventTime_(std::move(eventTime)) {
  if (slide_ <= 0 || length_ <= 0 || length_ % slide_ != 0) {
    throw std::invalid_argument("window: length (" + std::to_string(length_) +
                                "us) must be a positive multiple of slide (" +
                                std::to_string(slide_) + "us)");
  }
  if (!eventTime_.configured()) throw std::invalid_argument("window needs an event time field or extractor");
  for (const char* f : {"window_start", "window_end"})
    if (input_.contains(f))
      throw std::invalid_argument(std::string("window: the input already has a field '") + f +
                                  "' (rename it first)");
}
WindowRows::~WindowRows() = default;

void WindowRows::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> f = input_.specs();
  f.push_back({"window_start", Type::Timestamp});
  f.push_back({"window_end", Type::Timestamp});
  d.declare(Fields(std::move(f)));
  d.declareStream("late", dstream::lateFields());
}

std::unique_ptr<Operator> WindowRows::clone() const {
  return std::make_unique<WindowRows>(input_, Duration(length_), Duration(slide_), eventTime_);
}

void WindowRows::onTuple(const Tuple& t, Emitter& out) {
  int64_t ts = eventTime_.of(t).micros;
  int64_t slice = floorDiv(ts, slide_);
  if (wm_ != kNoWatermark && slice <= readySlice(wm_, slide_)) {
    ++late_;
    out.emit("late", Values{"event time " + std::to_string(ts) + "us falls in a slice whose window "
                            "was already emitted (watermark " + std::to_string(wm_.micros) +
                            "us; DStream windows have no allowed lateness)",
                            Timestamp{ts}, wm_, Bytes{encodeValues(t.values())}});
    return;
  }
  slices_[slice].push_back(t.values());
}

void WindowRows::onWatermark(Timestamp w, Emitter& out) {
  if (wm_ != kNoWatermark && w <= wm_) return;
  wm_ = w;
  const int64_t n = length_ / slide_;
  const int64_t ready = readySlice(w, slide_);
  int64_t k = started_ ? lastSlice_ + 1 : (slices_.empty() ? ready : slices_.begin()->first);
  while (k <= ready) {
    // Slices that left every future window go; windows without tuples are skipped.
    while (!slices_.empty() && slices_.begin()->first <= k - n) slices_.erase(slices_.begin());
    if (slices_.empty() || slices_.begin()->first > ready) break;
    k = std::max(k, slices_.begin()->first);
    Timestamp start{(k - n + 1) * slide_}, end{(k + 1) * slide_};
    for (auto it = slices_.begin(); it != slices_.end() && it->first <= k; ++it) {
      for (const Values& v : it->second) {
        Values row;
        row.reserve(v.size() + 2);
        row.insert(row.end(), v.begin(), v.end());
        row.emplace_back(std::in_place_type<Timestamp>, start);
        row.emplace_back(std::in_place_type<Timestamp>, end);
        out.emit(std::move(row));
      }
    }
    if (k == ready) break;
    ++k;
  }
  lastSlice_ = started_ ? std::max(lastSlice_, ready) : ready;
  started_ = true;
}

size_t WindowRows::stateSize() const {
  size_t n = 0;
  for (const auto& [k, rows] : slices_) n += rows.size();
  return n;
}

std::string WindowRows::snapshot() const {
  StateWriter w;
  w.header("GWRS", 1);
  w.svarint(wm_.micros);
  w.u8(started_);
  w.svarint(lastSlice_);
  w.varint(late_);
  w.varint(slices_.size());
  for (const auto& [k, rows] : slices_) {
    w.svarint(k);
    w.varint(rows.size());
    for (const auto& r : rows) w.values(r);
  }
  return w.take();
}

void WindowRows::restore(std::string_view bytes) {
  StateReader r(bytes, "window snapshot");
  r.header("GWRS", 1);
  Timestamp wm{r.svarint("watermark")};
  uint8_t started = r.u8("started");
  if (started > 1) r.fail("bad started flag");
  int64_t last = r.svarint("last slice");
  uint64_t late = r.varint("late count");
  std::map<int64_t, std::vector<Values>> slices;
  for (uint64_t n = r.count("slices", 2); n > 0; --n) {
    auto& rows = slices[r.svarint("slice index")];
    for (uint64_t j = r.count("slice rows"); j > 0; --j) {
      rows.push_back(r.values("row"));
      if (rows.back().size() != input_.size()) r.fail("a row has the wrong number of values");
    }
  }
  r.expectEnd();
  wm_ = wm;
  started_ = started != 0;
  lastSlice_ = last;
  late_ = late;
  slices_ = std::move(slices);
}

}  // namespace gale
