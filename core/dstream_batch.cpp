#include "gale/core/dstream_batch.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>

#include "gale/core/dstream_slices.h"
#include "gale/core/state_codec.h"

namespace gale {

namespace fs = std::filesystem;

// ---- PerBatchOperator -----------------------------------------------------------------------

void PerBatchOperator::onTuple(const Tuple& t, Emitter&) { rows_.push_back(t); }

void PerBatchOperator::onWatermark(Timestamp w, Emitter& out) {
  if (wm_ != kNoWatermark && w <= wm_) return;
  wm_ = w;
  // The end of time is followed by onEndOfInput, which closes the last batch.
  if (!micro_ && boundary_ == ContinuousBatches::Watermark && w != kEndOfTime)
    close(context_.clock->now(), out, eventTime_.configured() ? w : kEndOfTime);
}

void PerBatchOperator::onProcessingTime(Timestamp now, Emitter& out) {
  now_ = now;
  // An input without a watermark (none arrived yet) would otherwise hold every row until the end
  // of input: ticks cut its batches. Not with an event time, which promises watermarks.
  bool noWatermark = wm_ == kNoWatermark && !eventTime_.configured();
  if (!micro_ && (boundary_ == ContinuousBatches::ProcessingTime || noWatermark)) close(now, out);
}

void PerBatchOperator::onEndOfInput(Emitter& out) {
  // Micro-batch mode: the end of input arrives inside the last batch, which onBatchEnd closes.
  if (!micro_) close(context_.clock->now(), out);
}

void PerBatchOperator::onBatchBegin(uint64_t txid) {
  micro_ = true;
  inBatch_ = true;
  txid_ = txid;
  now_ = kNoWatermark;
  // Rows of an attempt that never ended (the batch failed) are not part of the new attempt.
  rows_.clear();
}

void PerBatchOperator::onBatchEnd(uint64_t txid, Emitter& out) {
  if (!inBatch_ || txid != txid_) {
    throw std::logic_error("per-batch operator: onBatchEnd(" + std::to_string(txid) +
                           ") without a matching onBatchBegin (current batch " +
                           (inBatch_ ? std::to_string(txid_) : std::string("none")) + ")");
  }
  inBatch_ = false;
  BatchInfo b{txid, now_ != kNoWatermark ? now_ : context_.clock->now(), wm_, true};
  std::vector<Tuple> rows = std::move(rows_);
  rows_.clear();
  onBatch(b, rows, out);
}

void PerBatchOperator::close(Timestamp now, Emitter& out, Timestamp upTo) {
  std::vector<Tuple> rows;
  if (upTo == kEndOfTime) {
    rows = std::move(rows_);
    rows_.clear();
  } else {
    std::vector<Tuple> later;
    for (Tuple& t : rows_) (eventTime_.of(t) <= upTo ? rows : later).push_back(std::move(t));
    rows_ = std::move(later);
  }
  if (rows.empty()) return;
  onBatch(BatchInfo{++seq_, now, wm_, false}, rows, out);
}

// ---- transform, print, foreachBatch ----------------------------------------------------------

Transform::Transform(Fields outputFields, TransformFn fn)
    : fields_(std::move(outputFields)), fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("transform needs a function");
  if (fields_.size() == 0) throw std::invalid_argument("transform needs its output fields");
}

std::unique_ptr<Operator> Transform::clone() const {
  auto t = std::make_unique<Transform>(fields_, fn_);
  t->copyConfig(*this);
  return t;
}

void Transform::onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter& out) {
  for (Values& row : fn_(batch, rows)) {
    if (row.size() != fields_.size()) {
      throw std::invalid_argument("transform: batch " + std::to_string(batch.id) +
                                  " returned a row of " + std::to_string(row.size()) +
                                  " values; the declared fields are " + fields_.toString());
    }
    out.emit(std::move(row));
  }
}

std::string rowText(const Values& values) {
  std::string s = "(";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) s += ',';
    s += toString(values[i]);
  }
  return s + ')';
}

Print::Print(size_t n, std::ostream* os) : n_(n), os_(os ? os : &std::cout) {}

std::unique_ptr<Operator> Print::clone() const {
  auto p = std::make_unique<Print>(n_, os_);
  p->copyConfig(*this);
  return p;
}

void Print::onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter&) {
  static std::mutex mutex;  // the tasks of a parallel print share the stream
  std::string s = "-------------------------------------------\nTime: " +
                  std::to_string(batch.time.micros / 1000) +
                  " ms\n-------------------------------------------\n";
  for (size_t i = 0; i < rows.size() && i < n_; ++i) s += rowText(rows[i].values()) + '\n';
  if (rows.size() > n_) s += "...\n";
  s += '\n';
  std::lock_guard lk(mutex);
  *os_ << s << std::flush;
}

ForeachBatch::ForeachBatch(ForeachBatchFn fn) : fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("foreachBatch needs a function");
}

std::unique_ptr<Operator> ForeachBatch::clone() const {
  auto f = std::make_unique<ForeachBatch>(fn_);
  f->copyConfig(*this);
  return f;
}

void ForeachBatch::onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter&) {
  fn_(batch, rows);
}

// ---- saveAsTextFiles -------------------------------------------------------------------------

namespace {
[[noreturn]] void ioFail(const std::string& what, const std::string& path) {
  throw std::runtime_error("saveAsTextFiles: " + what + " " + path + ": " + std::strerror(errno));
}

void syncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

// Writes `data` to `tmp`, fsyncs it, and returns with the file closed.
void writeFile(const std::string& tmp, const std::string& data) {
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) ioFail("cannot create", tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      ioFail("cannot write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    ioFail("cannot fsync", tmp);
  }
  ::close(fd);
}

std::string readSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) ioFail("cannot open", path);
  std::string s;
  char buf[64];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return s;
}
}  // namespace

SaveAsTextFiles::SaveAsTextFiles(std::string prefix, std::string suffix, uint64_t markerHistory)
    : prefix_(std::move(prefix)), suffix_(std::move(suffix)), markerHistory_(markerHistory) {
  if (markerHistory_ == 0) throw std::invalid_argument("saveAsTextFiles: the marker history must be positive");
  if (prefix_.empty() || fs::path(prefix_).filename().empty())
    throw std::invalid_argument("saveAsTextFiles needs a prefix ending in a name, got '" + prefix_ + "'");
}

std::unique_ptr<Operator> SaveAsTextFiles::clone() const {
  auto s = std::make_unique<SaveAsTextFiles>(prefix_, suffix_, markerHistory_);
  s->copyConfig(*this);
  return s;
}

std::string SaveAsTextFiles::directoryFor(Timestamp time) const {
  return prefix_ + "-" + std::to_string(time.micros / 1000) + (suffix_.empty() ? "" : "." + suffix_);
}

std::string SaveAsTextFiles::markerPath(uint64_t id) const {
  fs::path p(prefix_);
  fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  return (parent / ("." + p.filename().string() + "-batch-" + std::to_string(id))).string();
}

namespace {
int64_t parseMicros(const std::string& text, const std::string& path) {
  try {
    size_t used = 0;
    int64_t t = std::stoll(text, &used);
    if (used != text.size()) throw std::invalid_argument("trailing bytes");
    return t;
  } catch (const std::exception&) {
    throw std::runtime_error("saveAsTextFiles: " + path +
                             " is corrupt (expected a time in microseconds, got '" + text + "')");
  }
}

// An exclusive flock on `path` for the scope (threads and processes sharing the directory).
class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)) {
    if (fd_ < 0) ioFail("cannot open the lock file", path);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        ioFail("cannot lock", path);
      }
    }
  }
  ~FileLock() { ::close(fd_); }  // closing releases the lock
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

void replaceFile(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  writeFile(tmp, data);
  if (::rename(tmp.c_str(), path.c_str()) != 0) ioFail("cannot rename to", path);
}
}  // namespace

Timestamp SaveAsTextFiles::batchTime(const BatchInfo& batch) {
  const int64_t nowMs = batch.time.micros / 1000;
  if (!batch.microBatch) {
    // Two batches of a task closing in the same millisecond must not share a directory.
    lastMs_ = std::max(nowMs, lastMs_ + 1);
    return Timestamp{lastMs_ * 1000};
  }
  const std::string marker = markerPath(batch.id);
  if (::access(marker.c_str(), F_OK) != 0) {
    // First end of this batch id: under the directory's lock, the first task to get here picks
    // a millisecond no other batch has (after the last one handed out, so two batches ending in
    // the same millisecond get two directories) and records it; the others, and a replay,
    // read it back.
    fs::path parent = fs::path(marker).parent_path();
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) throw std::runtime_error("saveAsTextFiles: cannot create " + parent.string() + ": " + ec.message());
    const std::string base = (parent / ("." + fs::path(prefix_).filename().string())).string();
    FileLock lock(base + ".lock");
    if (::access(marker.c_str(), F_OK) != 0) {
      const std::string lastPath = base + "-last";
      int64_t last = ::access(lastPath.c_str(), F_OK) == 0
                         ? parseMicros(readSmallFile(lastPath), lastPath) / 1000
                         : std::numeric_limits<int64_t>::min() / 2;
      const std::string t = std::to_string(std::max(nowMs, last + 1) * 1000);
      replaceFile(marker, t);
      replaceFile(lastPath, t);
      syncDir(parent.string());
      // Markers of long-committed batches go, so they do not pile up: a batch markerHistory ids
      // back cannot be replayed (it is far more than the batches in flight).
      if (batch.id > markerHistory_) ::unlink(markerPath(batch.id - markerHistory_).c_str());
    }
  }
  return Timestamp{parseMicros(readSmallFile(marker), "the batch marker " + marker)};
}

void SaveAsTextFiles::onBatch(const BatchInfo& batch, const std::vector<Tuple>& rows, Emitter&) {
  const std::string dir = directoryFor(batchTime(batch));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("saveAsTextFiles: cannot create " + dir + ": " + ec.message());
  std::string data;
  for (const Tuple& t : rows) data += rowText(t.values()) + '\n';
  char name[32];
  std::snprintf(name, sizeof name, "part-%05d", context().taskIndex);
  const std::string final = (fs::path(dir) / name).string();
  const std::string tmp = (fs::path(dir) / ("." + std::string(name) + ".tmp")).string();
  writeFile(tmp, data);
  if (::rename(tmp.c_str(), final.c_str()) != 0) ioFail("cannot rename to", final);
  syncDir(dir);
}

// ---- join and cogroup per batch ---------------------------------------------------------------

namespace {
std::vector<int> keyIndexes(const JoinSide& s, const char* op, const char* sideName) {
  if (s.input.empty()) throw std::invalid_argument(std::string(op) + ": the " + sideName + " side needs its input");
  std::vector<int> idx;
  for (const auto& k : s.keys) {
    int i = s.fields.indexOf(k);
    if (i < 0) {
      throw std::invalid_argument(std::string(op) + ": the " + sideName + " side '" + s.input +
                                  "' has no key field '" + k + "' (its fields: " +
                                  s.fields.toString() + ")");
    }
    idx.push_back(i);
  }
  return idx;
}

void checkSides(const JoinSide (&side)[2], std::vector<int> (&idx)[2], const char* op) {
  idx[0] = keyIndexes(side[0], op, "left");
  idx[1] = keyIndexes(side[1], op, "right");
  if (side[0].input == side[1].input)
    throw std::invalid_argument(std::string(op) + ": both sides read '" + side[0].input + "'");
  if (idx[0].empty() || idx[0].size() != idx[1].size())
    throw std::invalid_argument(std::string(op) + " needs the same number (at least one) of keys on both sides");
}

std::string checkInputs(const JoinSide (&side)[2], const std::vector<std::string>& inputs,
                        const char* op) {
  for (const auto& s : side)
    if (std::find(inputs.begin(), inputs.end(), s.input) == inputs.end())
      return std::string(op) + " input '" + s.input + "' is not among the bolt's inputs; subscribe to it";
  for (const auto& in : inputs)
    if (in != side[0].input && in != side[1].input)
      return std::string(op) + " reads only '" + side[0].input + "' and '" + side[1].input +
             "', not '" + in + "'";
  return {};
}

Values keyOf(const Values& v, const std::vector<int>& idx) {
  Values k;
  k.reserve(idx.size());
  for (int i : idx) k.push_back(v.at(static_cast<size_t>(i)));
  return k;
}

int sideIndex(const JoinSide (&side)[2], const Tuple& t, const char* op) {
  const std::string& from = t.schema()->component;
  if (from == side[0].input) return 0;
  if (from == side[1].input) return 1;
  throw std::invalid_argument(std::string(op) + ": a tuple from '" + from + "', which is neither side");
}

Bytes encodeRows(const std::vector<Values>& rows) {
  StateWriter w;
  w.varint(rows.size());
  for (const auto& r : rows) w.values(r);
  return Bytes{w.take()};
}
}  // namespace

std::vector<Values> cogroupRows(const Value& column) {
  const Bytes* b = std::get_if<Bytes>(&column);
  if (!b) throw std::invalid_argument("cogroupRows: the column is " + std::string(typeName(typeOf(column))) + ", not Bytes");
  StateReader r(b->data, "cogroup rows");
  std::vector<Values> rows;
  for (uint64_t n = r.count("rows"); n > 0; --n) rows.push_back(r.values("row"));
  r.expectEnd();
  return rows;
}

BatchJoin::BatchJoin(JoinSide left, JoinSide right, JoinType type)
    : side_{std::move(left), std::move(right)}, type_(type) {
  checkSides(side_, keyIdx_, "batch join");
}

void BatchJoin::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> specs = side_[0].fields.specs();
  if (type_ != JoinType::LeftSemi) {
    for (FieldSpec f : side_[1].fields.specs()) {
      if (side_[0].fields.contains(f.name)) f.name = side_[1].input + "_" + f.name;
      specs.push_back(std::move(f));
    }
  }
  d.declare(Fields(std::move(specs)));
}

std::unique_ptr<Operator> BatchJoin::clone() const {
  auto j = std::make_unique<BatchJoin>(side_[0], side_[1], type_);
  j->copyConfig(*this);
  return j;
}

std::string BatchJoin::checkPlacement(const std::vector<std::string>& inputs, bool) const {
  return checkInputs(side_, inputs, "the batch join's");
}

void BatchJoin::onBatch(const BatchInfo&, const std::vector<Tuple>& rows, Emitter& out) {
  // Right rows by key, then each left row probes them.
  std::map<Values, std::vector<std::pair<const Values*, bool>>> right;
  std::vector<const Values*> left;
  for (const Tuple& t : rows) {
    if (sideIndex(side_, t, "batch join") == 0) left.push_back(&t.values());
    else right[keyOf(t.values(), keyIdx_[1])].push_back({&t.values(), false});
  }
  const bool leftOuter = type_ == JoinType::LeftOuter || type_ == JoinType::FullOuter;
  const bool rightOuter = type_ == JoinType::RightOuter || type_ == JoinType::FullOuter;
  auto emit = [&](const Values& l, const Values& r) {
    Values v;
    v.reserve(l.size() + r.size());
    v.insert(v.end(), l.begin(), l.end());
    v.insert(v.end(), r.begin(), r.end());
    out.emit(std::move(v));
  };
  for (const Values* l : left) {
    auto it = right.find(keyOf(*l, keyIdx_[0]));
    if (it == right.end()) {
      if (leftOuter) emit(*l, Values(side_[1].fields.size()));
      continue;
    }
    if (type_ == JoinType::LeftSemi) {
      out.emit(*l);
      continue;
    }
    for (auto& [r, matched] : it->second) {
      emit(*l, *r);
      matched = true;
    }
  }
  if (rightOuter)
    for (const auto& [k, rs] : right)
      for (const auto& [r, matched] : rs)
        if (!matched) emit(Values(side_[0].fields.size()), *r);
}

Cogroup::Cogroup(JoinSide left, JoinSide right, Duration window)
    : side_{std::move(left), std::move(right)}, window_(window.count()) {
  checkSides(side_, keyIdx_, "cogroup");
  if (window_ < 0) throw std::invalid_argument("cogroup: the window must not be negative");
  for (int s : {0, 1}) {
    for (const auto& k : side_[0].keys)
      if (k == side_[s].input || (window_ > 0 && (k == "window_start" || k == "window_end")))
        throw std::invalid_argument("cogroup: key field '" + k + "' clashes with an output column name");
    if (window_ == 0) continue;
    timeIdx_[s] = side_[s].fields.indexOf(side_[s].eventTime);
    if (timeIdx_[s] < 0)
      throw std::invalid_argument("windowed cogroup: the " + std::string(s ? "right" : "left") +
                                  " side '" + side_[s].input + "' needs its event-time field ('" +
                                  side_[s].eventTime + "' is not among " + side_[s].fields.toString() + ")");
  }
}

void Cogroup::declareOutputFields(OutputFieldsDeclarer& d) const {
  std::vector<FieldSpec> f;
  for (size_t i = 0; i < keyIdx_[0].size(); ++i) f.push_back(side_[0].fields[keyIdx_[0][i]]);
  if (window_ > 0) {
    f.push_back({"window_start", Type::Timestamp});
    f.push_back({"window_end", Type::Timestamp});
  }
  f.push_back({side_[0].input, Type::Bytes});
  f.push_back({side_[1].input, Type::Bytes});
  d.declare(Fields(std::move(f)));
  if (window_ > 0) {
    d.declareStream("late", dstream::lateFields());
  }
}

std::unique_ptr<Operator> Cogroup::clone() const {
  auto c = std::make_unique<Cogroup>(side_[0], side_[1], Duration(window_));
  c->copyConfig(*this);
  return c;
}

std::string Cogroup::checkPlacement(const std::vector<std::string>& inputs,
                                    bool everySpoutUpstreamHasAWatermark) const {
  std::string why = checkInputs(side_, inputs, "the cogroup's");
  if (why.empty() && window_ > 0 && !everySpoutUpstreamHasAWatermark)
    why = "a windowed cogroup fires when the watermark passes a window's end: add withWatermark(field, "
          "delay) to every spout upstream";
  return why;
}

void Cogroup::onBatch(const BatchInfo&, const std::vector<Tuple>& rows, Emitter& out) {
  std::map<Values, std::array<std::vector<Values>, 2>> groups;
  for (const Tuple& t : rows) {
    int s = sideIndex(side_, t, "cogroup");
    groups[keyOf(t.values(), keyIdx_[s])][s].push_back(t.values());
  }
  for (auto& [key, sides] : groups) {
    Values row = key;
    row.emplace_back(encodeRows(sides[0]));
    row.emplace_back(encodeRows(sides[1]));
    out.emit(std::move(row));
  }
}

void Cogroup::onTuple(const Tuple& t, Emitter& out) {
  if (window_ == 0) return PerBatchOperator::onTuple(t, out);
  int s = sideIndex(side_, t, "cogroup");
  int64_t ts = t.getTimestamp(side_[s].fields[timeIdx_[s]].name).micros;
  int64_t start = dstream::floorDiv(ts, window_) * window_;
  if (wm_ != kNoWatermark && start + window_ - 1 <= wm_.micros) {
    out.emit("late", Values{"event time " + std::to_string(ts) + "us falls in a cogroup window "
                            "already emitted (watermark " + std::to_string(wm_.micros) + "us)",
                            Timestamp{ts}, wm_, Bytes{encodeValues(t.values())}});
    return;
  }
  windows_[start][keyOf(t.values(), keyIdx_[s])][s].push_back(t.values());
}

void Cogroup::onWatermark(Timestamp w, Emitter& out) {
  if (window_ == 0) return PerBatchOperator::onWatermark(w, out);
  if (wm_ != kNoWatermark && w <= wm_) return;
  wm_ = w;
  while (!windows_.empty()) {
    auto it = windows_.begin();
    if (w != kEndOfTime && it->first + window_ - 1 > w.micros) break;
    for (auto& [key, sides] : it->second) {
      Values row = key;
      row.emplace_back(std::in_place_type<Timestamp>, Timestamp{it->first});
      row.emplace_back(std::in_place_type<Timestamp>, Timestamp{it->first + window_});
      row.emplace_back(encodeRows(sides[0]));
      row.emplace_back(encodeRows(sides[1]));
      out.emit(std::move(row));
    }
    windows_.erase(it);
  }
}

void Cogroup::onEndOfInput(Emitter& out) {
  if (window_ == 0) return PerBatchOperator::onEndOfInput(out);
  onWatermark(kEndOfTime, out);
}

size_t Cogroup::stateSize() const {
  if (window_ == 0) return PerBatchOperator::stateSize();
  size_t n = 0;
  for (const auto& [start, keys] : windows_)
    for (const auto& [k, sides] : keys) n += sides[0].size() + sides[1].size();
  return n;
}

std::string Cogroup::snapshot() const {
  StateWriter w;
  w.header("GCOG", 1);
  w.svarint(wm_.micros);
  w.varint(windows_.size());
  for (const auto& [start, keys] : windows_) {
    w.svarint(start);
    w.varint(keys.size());
    for (const auto& [k, sides] : keys) {
      w.values(k);
      for (const auto& rows : sides) {
        w.varint(rows.size());
        for (const auto& r : rows) w.values(r);
      }
    }
  }
  return w.take();
}

void Cogroup::restore(std::string_view bytes) {
  StateReader r(bytes, "cogroup snapshot");
  r.header("GCOG", 1);
  Timestamp wm{r.svarint("watermark")};
  decltype(windows_) windows;
  for (uint64_t n = r.count("windows", 2); n > 0; --n) {
    auto& keys = windows[r.svarint("window start")];
    for (uint64_t j = r.count("keys", 3); j > 0; --j) {
      Values k = r.values("key");
      if (k.size() != keyIdx_[0].size()) r.fail("a key has the wrong number of values");
      auto& sides = keys[std::move(k)];
      for (auto& rows : sides)
        for (uint64_t m = r.count("rows"); m > 0; --m) rows.push_back(r.values("row"));
    }
  }
  r.expectEnd();
  wm_ = wm;
  windows_ = std::move(windows);
}

StreamJoin windowedJoin(JoinSide left, JoinSide right, JoinType type, Duration window) {
  return StreamJoin(std::move(left), std::move(right), type, sameTumblingWindow(window));
}

// ---- union ------------------------------------------------------------------------------------

Union::Union(std::vector<Input> inputs) : inputs_(std::move(inputs)) {
  if (inputs_.empty()) throw std::invalid_argument("union needs at least one input");
  names_ = inputs_[0].fields.names();
  std::set<std::string> seen;
  for (const auto& in : inputs_) {
    if (in.component.empty()) throw std::invalid_argument("union: an input without a component name");
    if (!seen.insert(in.component).second)
      throw std::invalid_argument("union: input '" + in.component + "' is listed twice");
    if (in.fields.names() != names_) {
      throw std::invalid_argument("union: input '" + in.component + "' has fields " +
                                  in.fields.toString() + " but '" + inputs_[0].component +
                                  "' has " + inputs_[0].fields.toString() +
                                  "; union needs the same field names in the same order");
    }
  }
}

void Union::declareOutputFields(OutputFieldsDeclarer& d) const { d.declare(inputs_[0].fields); }

std::string Union::checkPlacement(const std::vector<std::string>& inputs, bool) const {
  for (const auto& in : inputs_)
    if (std::find(inputs.begin(), inputs.end(), in.component) == inputs.end())
      return "union input '" + in.component + "' is not among the bolt's inputs; subscribe to it";
  for (const auto& name : inputs) {
    bool known = std::any_of(inputs_.begin(), inputs_.end(),
                             [&](const Input& in) { return in.component == name; });
    if (!known)
      return "the bolt subscribes to '" + name + "', which is not one of the union's inputs "
             "(list it, with its fields, in Union's inputs)";
  }
  return {};
}

void Union::onTuple(const Tuple& t, Emitter& out) {
  const Fields& f = t.fields();
  bool same = f.size() == names_.size();
  for (size_t i = 0; same && i < names_.size(); ++i) same = f[i].name == names_[i];
  if (!same) {
    throw std::invalid_argument("union: a tuple of '" + t.sourceComponent() + ":" + t.sourceStream() +
                                "' has fields " + f.toString() + "; the union's fields are " +
                                inputs_[0].fields.toString());
  }
  out.emit(t.values());
}

}  // namespace gale
