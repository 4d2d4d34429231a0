#include "gale/core/dstream.h"

#include <map>
#include <stdexcept>

#include "gale/core/dstream_slices.h"
#include "gale/core/keyed.h"
#include "gale/core/state_codec.h"

namespace gale {

using namespace keyed;
using dstream::floorDiv;
using dstream::readySlice;

namespace {
[[noreturn]] void notNumbers(const char* op, const Value& a, const Value& b) {
  throw std::invalid_argument(std::string("gale::") + op + " needs int64 or double values, got " +
                              typeName(typeOf(a)) + " and " + typeName(typeOf(b)));
}
double num(const Value& v) {
  return typeOf(v) == Type::Int64 ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
}
bool numeric(const Value& v) { return typeOf(v) == Type::Int64 || typeOf(v) == Type::Double; }
}  // namespace

Value plus(const Value& a, const Value& b) {
  if (typeOf(a) == Type::Int64 && typeOf(b) == Type::Int64)
    return std::get<int64_t>(a) + std::get<int64_t>(b);
  if (!numeric(a) || !numeric(b)) notNumbers("plus", a, b);
  return num(a) + num(b);
}
Value minus(const Value& a, const Value& b) {
  if (typeOf(a) == Type::Int64 && typeOf(b) == Type::Int64)
    return std::get<int64_t>(a) - std::get<int64_t>(b);
  if (!numeric(a) || !numeric(b)) notNumbers("minus", a, b);
  return num(a) - num(b);
}

// ---- ReduceByKeyAndWindow -------------------------------------------------------------------

struct ReduceByKeyAndWindow::State {
  explicit State(const ReduceByKeyAndWindowConfig& c) : keys(c.keys, "reduceByKeyAndWindow") {}
  FieldIndex keys;
  Timestamp wm = kNoWatermark;
  bool started = false;
  int64_t lastSlice = 0;  // the newest slice folded into an emitted window
  uint64_t late = 0;
  std::map<int64_t, KeyMap<Value>> slices;  // slice index -> key -> reduced value
  struct Win {
    Value value;
    int64_t slices = 0;  // how many slices in the window hold this key
  };
  KeyMap<Win> window;
};

ReduceByKeyAndWindow::ReduceByKeyAndWindow(ReduceByKeyAndWindowConfig c) : config_(std::move(c)) {
  const auto& c2 = config_;
  if (!c2.reduce) throw std::invalid_argument("reduceByKeyAndWindow needs a reduce function");
  if (c2.slide <= 0 || c2.length <= 0 || c2.length % c2.slide != 0) {
    throw std::invalid_argument("reduceByKeyAndWindow: length (" + std::to_string(c2.length) +
                                "us) must be a positive multiple of slide (" +
                                std::to_string(c2.slide) + "us)");
  }
  if (!c2.eventTime.configured())
    throw std::invalid_argument("reduceByKeyAndWindow needs an event time field or extractor");
  if (c2.lateStream.empty() || c2.lateStream == kDefaultStream)
    throw std::invalid_argument("reduceByKeyAndWindow: the late stream needs its own name");
  state_ = std::make_unique<State>(config_);
}
ReduceByKeyAndWindow::~ReduceByKeyAndWindow() = default;

void ReduceByKeyAndWindow::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> f;
  for (const auto& k : config_.keys) f.push_back({k, Type::Any});
  f.push_back({"window_start", Type::Timestamp});
  f.push_back({"window_end", Type::Timestamp});
  f.push_back({config_.valueName, Type::Any});
  d.declare(Fields(std::move(f)));
  d.declareStream(config_.lateStream, dstream::lateFields());
}

std::unique_ptr<Operator> ReduceByKeyAndWindow::clone() const {
  return std::make_unique<ReduceByKeyAndWindow>(config_);
}

void ReduceByKeyAndWindow::onTuple(const Tuple& t, Emitter& out) {
  State& s = *state_;
  int64_t ts = config_.eventTime.of(t).micros;
  int64_t slice = floorDiv(ts, config_.slide);
  if (s.wm != kNoWatermark && slice <= readySlice(s.wm, config_.slide)) {
    ++s.late;
    out.emit(config_.lateStream,
             Values{"event time " + std::to_string(ts) + "us falls in a slice whose window was "
                    "already emitted (watermark " + std::to_string(s.wm.micros) +
                    "us; DStream windows have no allowed lateness)",
                    Timestamp{ts}, s.wm, Bytes{encodeValues(t.values())}});
    return;
  }
  KeyView kv = s.keys.view(t);
  Value v = config_.valueField.empty() ? Value{int64_t{1}} : t.get(config_.valueField);
  auto& m = s.slices[slice];
  auto it = m.find(kv);
  if (it == m.end()) m.emplace(ownKey(kv), std::move(v));
  else it->second = config_.reduce(it->second, v);
}

void ReduceByKeyAndWindow::onWatermark(Timestamp w, Emitter& out) {
  State& s = *state_;
  if (w <= s.wm) return;
  s.wm = w;
  const int64_t n = config_.length / config_.slide;
  const int64_t ready = readySlice(w, config_.slide);
  int64_t k = s.started ? s.lastSlice + 1
                        : (s.slices.empty() ? ready : s.slices.begin()->first);
  auto emitWindow = [&](int64_t k, const auto& window) {
    Timestamp start{(k - n + 1) * config_.slide}, end{(k + 1) * config_.slide};
    for (const auto& [key, win] : window) {
      Values row;
      row.reserve(key.values.size() + 3);
      row.insert(row.end(), key.values.begin(), key.values.end());
      row.emplace_back(std::in_place_type<Timestamp>, start);
      row.emplace_back(std::in_place_type<Timestamp>, end);
      if constexpr (std::is_same_v<std::decay_t<decltype(win)>, Value>) row.push_back(win);
      else row.push_back(win.value);
      out.emit(std::move(row));
    }
  };
  while (!config_.inverse && k <= ready) {
    // No inverse function: each window is reduced afresh from its n slices (Spark's
    // reduceByKeyAndWindow without invReduceFunc). Slices that left every future window go.
    while (!s.slices.empty() && s.slices.begin()->first <= k - n) s.slices.erase(s.slices.begin());
    if (s.slices.empty() || s.slices.begin()->first > ready) break;
    k = std::max(k, s.slices.begin()->first);  // skip windows without data
    KeyMap<Value> window;
    for (auto it = s.slices.begin(); it != s.slices.end() && it->first <= k; ++it) {
      for (const auto& [key, v] : it->second) {
        auto w2 = window.find(key);
        if (w2 == window.end()) window.emplace(key, v);
        else w2->second = config_.reduce(w2->second, v);
      }
    }
    emitWindow(k, window);
    if (k == ready) break;
    ++k;
  }
  while (config_.inverse && k <= ready) {
    if (s.window.empty()) {
      // Nothing in the window: jump to the next slice with data (no empty rows, no loop over
      // empty time).
      auto it = s.slices.lower_bound(k);
      if (it == s.slices.end() || it->first > ready) break;
      k = it->first;
    }
    // Add the newest slice, subtract the one that left.
    if (auto add = s.slices.find(k); add != s.slices.end()) {
      for (auto& [key, v] : add->second) {
        auto it = s.window.find(key);
        if (it == s.window.end()) {
          it = s.window.emplace(key, State::Win{}).first;
          it->second.value = v;
        } else {
          it->second.value = config_.reduce(it->second.value, v);
        }
        ++it->second.slices;
      }
    }
    if (auto sub = s.slices.find(k - n); sub != s.slices.end()) {
      for (auto& [key, v] : sub->second) {
        auto it = s.window.find(key);
        if (it == s.window.end()) continue;
        if (--it->second.slices == 0) s.window.erase(it);
        else it->second.value = config_.inverse(it->second.value, v);
      }
      s.slices.erase(sub);
    }
    emitWindow(k, s.window);
    if (k == ready) break;
    ++k;
  }
  s.lastSlice = s.started ? std::max(s.lastSlice, ready) : ready;
  s.started = true;
}

uint64_t ReduceByKeyAndWindow::lateCount() const { return state_->late; }

size_t ReduceByKeyAndWindow::stateSize() const {
  size_t n = state_->window.size();
  for (const auto& [k, m] : state_->slices) n += m.size();
  return n;
}

std::string ReduceByKeyAndWindow::snapshot() const {
  const State& s = *state_;
  StateWriter w;
  w.header("GRKW", 1);
  w.svarint(s.wm.micros);
  w.u8(s.started);
  w.svarint(s.lastSlice);
  w.varint(s.late);
  w.varint(s.slices.size());
  for (const auto& [k, m] : s.slices) {
    w.svarint(k);
    w.varint(m.size());
    for (const auto& [key, v] : m) {
      w.values(key.values);
      w.value(v);
    }
  }
  w.varint(s.window.size());
  for (const auto& [key, win] : s.window) {
    w.values(key.values);
    w.value(win.value);
    w.varint(win.slices);
  }
  return w.take();
}

void ReduceByKeyAndWindow::restore(std::string_view bytes) {
  auto fresh = std::make_unique<State>(config_);
  State& s = *fresh;
  StateReader r(bytes, "reduceByKeyAndWindow snapshot");
  r.header("GRKW", 1);
  s.wm = Timestamp{r.svarint("watermark")};
  s.started = r.u8("started") != 0;
  s.lastSlice = r.svarint("last slice");
  s.late = r.varint("late count");
  auto key = [&] {
    Values v = r.values("key");
    if (v.size() != config_.keys.size()) r.fail("a key has the wrong number of values");
    return keyFromValues(std::move(v));
  };
  for (uint64_t n = r.count("slices", 2); n > 0; --n) {
    int64_t k = r.svarint("slice index");
    auto& m = s.slices[k];
    for (uint64_t j = r.count("slice keys", 2); j > 0; --j) {
      Key kk = key();
      m.emplace(std::move(kk), r.value("slice value"));
    }
  }
  for (uint64_t n = r.count("window keys", 3); n > 0; --n) {
    Key kk = key();
    Value v = r.value("window value");
    int64_t c = static_cast<int64_t>(r.varint("window slice count"));
    if (c <= 0) r.fail("a window key with no slices");
    s.window.emplace(std::move(kk), State::Win{std::move(v), c});
  }
  r.expectEnd();
  state_ = std::move(fresh);
}

std::unique_ptr<ReduceByKeyAndWindow> reduceByKeyAndWindow(std::vector<std::string> keys,
                                                           std::string valueField, ReduceFn reduce,
                                                           ReduceFn inverse, Duration length,
                                                           Duration slide, EventTime eventTime) {
  ReduceByKeyAndWindowConfig c;
  c.keys = std::move(keys);
  c.valueField = std::move(valueField);
  c.reduce = std::move(reduce);
  c.inverse = std::move(inverse);
  c.length = length.count();
  c.slide = slide.count();
  c.eventTime = std::move(eventTime);
  return std::make_unique<ReduceByKeyAndWindow>(std::move(c));
}

std::unique_ptr<ReduceByKeyAndWindow> reduceByWindow(std::string valueField, ReduceFn reduce,
                                                     ReduceFn inverse, Duration length,
                                                     Duration slide, EventTime eventTime) {
  if (valueField.empty()) throw std::invalid_argument("reduceByWindow needs a value field");
  return reduceByKeyAndWindow({}, std::move(valueField), std::move(reduce), std::move(inverse),
                              length, slide, std::move(eventTime));
}

std::unique_ptr<ReduceByKeyAndWindow> countByWindow(Duration length, Duration slide,
                                                    EventTime eventTime) {
  return countByValueAndWindow({}, length, slide, std::move(eventTime));
}

std::unique_ptr<ReduceByKeyAndWindow> countByValueAndWindow(std::vector<std::string> fields,
                                                            Duration length, Duration slide,
                                                            EventTime eventTime) {
  ReduceByKeyAndWindowConfig c;
  c.keys = std::move(fields);
  c.valueName = "count";
  c.reduce = plus;
  c.inverse = minus;
  c.length = length.count();
  c.slide = slide.count();
  c.eventTime = std::move(eventTime);
  return std::make_unique<ReduceByKeyAndWindow>(std::move(c));
}

// ---- UpdateStateByKey -----------------------------------------------------------------------

struct UpdateStateByKey::State {
  explicit State(const std::vector<std::string>& keys) : index(keys, "updateStateByKey") {}
  FieldIndex index;
  struct Entry {
    std::optional<Value> state;
    std::vector<Value> fresh;
  };
  KeyMap<Entry> entries;
};

UpdateStateByKey::UpdateStateByKey(std::vector<std::string> keys, std::string valueField,
                                   UpdateFn update, std::string stateName)
    : keys_(std::move(keys)),
      valueField_(std::move(valueField)),
      stateName_(std::move(stateName)),
      update_(std::move(update)),
      state_(std::make_unique<State>(keys_)) {
  if (!update_) throw std::invalid_argument("updateStateByKey needs an update function");
  if (valueField_.empty()) throw std::invalid_argument("updateStateByKey needs a value field");
  for (const auto& k : keys_)
    if (k == stateName_)
      throw std::invalid_argument("updateStateByKey: key field '" + k +
                                  "' clashes with the state field name; pick another stateName");
}
UpdateStateByKey::~UpdateStateByKey() = default;

void UpdateStateByKey::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<std::string> f = keys_;
  f.push_back(stateName_);
  d.declare(Fields(f));
}

std::unique_ptr<Operator> UpdateStateByKey::clone() const {
  return std::make_unique<UpdateStateByKey>(keys_, valueField_, update_, stateName_);
}

void UpdateStateByKey::onTuple(const Tuple& t, Emitter&) {
  KeyView kv = state_->index.view(t);
  const Value& v = t.get(valueField_);
  auto it = state_->entries.find(kv);
  if (it == state_->entries.end()) it = state_->entries.emplace(ownKey(kv), State::Entry{}).first;
  it->second.fresh.push_back(v);
}

void UpdateStateByKey::onProcessingTime(Timestamp, Emitter& out) {
  auto& entries = state_->entries;
  for (auto it = entries.begin(); it != entries.end();) {
    std::optional<Value> next = update_(it->second.fresh, it->second.state);
    it->second.fresh.clear();
    if (!next) {
      it = entries.erase(it);
      continue;
    }
    it->second.state = std::move(next);
    Values row = it->first.values;
    row.push_back(*it->second.state);
    out.emit(std::move(row));
    ++it;
  }
}

void UpdateStateByKey::onEndOfInput(Emitter& out) { onProcessingTime(kEndOfTime, out); }

size_t UpdateStateByKey::stateSize() const { return state_->entries.size(); }

std::string UpdateStateByKey::snapshot() const {
  StateWriter w;
  w.header("GUSK", 1);
  w.varint(state_->entries.size());
  for (const auto& [key, e] : state_->entries) {
    w.values(key.values);
    w.u8(e.state ? 1 : 0);
    if (e.state) w.value(*e.state);
    w.values(e.fresh);
  }
  return w.take();
}

void UpdateStateByKey::restore(std::string_view bytes) {
  auto fresh = std::make_unique<State>(keys_);
  StateReader r(bytes, "updateStateByKey snapshot");
  r.header("GUSK", 1);
  for (uint64_t n = r.count("keys", 3); n > 0; --n) {
    Values kv = r.values("key");
    if (kv.size() != keys_.size()) r.fail("a key has the wrong number of values");
    State::Entry e;
    uint8_t has = r.u8("has state");
    if (has > 1) r.fail("bad state flag");
    if (has) e.state = r.value("state");
    e.fresh = r.values("new values");
    fresh->entries.emplace(keyFromValues(std::move(kv)), std::move(e));
  }
  r.expectEnd();
  state_ = std::move(fresh);
}

}  // namespace gale
