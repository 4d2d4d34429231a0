#include "gale/connectors/console_sink.h"

#include <ctime>
#include <iostream>

#include "gale/core/watermark.h"

namespace gale {

namespace {
// One lock for everything printed to std::cout by console sinks, whoever built them.
std::shared_ptr<std::mutex> coutLock() {
  static auto lock = std::make_shared<std::mutex>();
  return lock;
}

std::string readableTime(Timestamp t) {
  if (t == kEndOfTime) return "end of time";
  time_t secs = static_cast<time_t>(t.micros / 1'000'000);
  int64_t frac = t.micros % 1'000'000;
  if (frac < 0) {  // before 1970: the fraction counts up from the second before
    frac += 1'000'000;
    --secs;
  }
  tm u{};
  gmtime_r(&secs, &u);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", u.tm_year + 1900, u.tm_mon + 1,
                u.tm_mday, u.tm_hour, u.tm_min, u.tm_sec);
  std::string s = buf;
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(frac));
    std::string f = buf;
    s += f.substr(0, f.find_last_not_of('0') + 1);
  }
  return s;
}

std::string line(const std::vector<size_t>& widths) {
  std::string s = "+";
  for (size_t w : widths) s += std::string(w, '-') + "+";
  return s + "\n";
}

std::string row(const std::vector<std::string>& cells, const std::vector<size_t>& widths) {
  std::string s = "|";
  for (size_t i = 0; i < cells.size(); ++i) s += std::string(widths[i] - cells[i].size(), ' ') + cells[i] + "|";
  return s + "\n";
}
}  // namespace

std::string consoleText(const Value& v) {
  if (auto* t = std::get_if<Timestamp>(&v)) return readableTime(*t);
  return toString(v);
}

ConsoleSink::ConsoleSink(std::string prefix) : ConsoleSink(Options{.prefix = std::move(prefix)}) {}
ConsoleSink::ConsoleSink(Options options) : ConsoleSink(&std::cout, std::move(options), coutLock()) {}

ConsoleSink::ConsoleSink(std::ostream& out, std::string prefix)
    : ConsoleSink(out, Options{.prefix = std::move(prefix)}) {}
ConsoleSink::ConsoleSink(std::ostream& out, Options options)
    : ConsoleSink(&out, std::move(options), std::make_shared<std::mutex>()) {}

ConsoleSink::ConsoleSink(std::ostream* out, Options options, std::shared_ptr<std::mutex> lock)
    : out_(out), o_(std::move(options)), lock_(std::move(lock)) {}

std::unique_ptr<Operator> ConsoleSink::clone() const {
  return std::unique_ptr<Operator>(new ConsoleSink(out_, o_, lock_));
}

void ConsoleSink::onTuple(const Tuple& tuple, Emitter&) {
  if (inBatch_) {
    Row r;
    // Rows of one stream share their header (one vector per run of the same fields).
    if (!pending_.empty() && pending_.back().header->size() == tuple.fields().size() &&
        *pending_.back().header == tuple.fields().names()) {
      r.header = pending_.back().header;
    } else {
      r.header = std::make_shared<const std::vector<std::string>>(tuple.fields().names());
    }
    for (const Value& v : tuple.values()) r.cells.push_back(consoleText(v));
    pending_.push_back(std::move(r));
    return;
  }
  std::string text = o_.prefix + "(";
  for (size_t i = 0; i < tuple.values().size(); ++i) {
    if (i) text += ", ";
    text += consoleText(tuple.values()[i]);
  }
  text += ")\n";
  std::lock_guard lock(*lock_);
  *out_ << text << std::flush;
}

void ConsoleSink::onBatchBegin(uint64_t) {
  pending_.clear();
  inBatch_ = true;
}

// Spark's Dataset.showString: widths from the header and the shown cells (at least 3), cells cut
// to `truncate` and right-aligned.
std::string ConsoleSink::table(size_t from, size_t to) const {
  const auto& header = *pending_[from].header;
  const size_t shown = std::min(to - from, o_.numRows);
  auto cut = [&](const std::string& s) {
    if (o_.truncate == 0 || s.size() <= o_.truncate) return s;
    return o_.truncate < 4 ? s.substr(0, o_.truncate) : s.substr(0, o_.truncate - 3) + "...";
  };
  std::vector<std::vector<std::string>> rows{{}};
  for (const auto& h : header) rows[0].push_back(cut(h));
  for (size_t r = from; r < from + shown; ++r) {
    rows.emplace_back();
    for (const auto& c : pending_[r].cells) rows.back().push_back(cut(c));
  }
  std::vector<size_t> widths(header.size(), 3);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
  }
  std::string s = line(widths) + row(rows[0], widths) + line(widths);
  for (size_t r = 1; r < rows.size(); ++r) s += row(rows[r], widths);
  s += line(widths);
  if (shown < to - from) s += "only showing top " + std::to_string(shown) + " rows\n";
  return s + "\n";
}

void ConsoleSink::onBatchEnd(uint64_t txid, Emitter&) {
  const std::string rule = "-------------------------------------------\n";
  std::string text = rule + o_.prefix + "Batch: " + std::to_string(txid) + "\n" + rule;
  if (pending_.empty()) text += "(no rows)\n\n";
  for (size_t from = 0, to; from < pending_.size(); from = to) {
    for (to = from + 1; to < pending_.size() && pending_[to].header == pending_[from].header;) ++to;
    text += table(from, to);
  }
  pending_.clear();
  inBatch_ = false;
  std::lock_guard lock(*lock_);
  *out_ << text << std::flush;
}

}  // namespace gale
