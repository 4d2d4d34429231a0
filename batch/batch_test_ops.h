// Word-count operators for gale's micro-batch tests (batch/*_test.cpp, tests/batch_fault_test.cpp):
// small, deterministic, with a snapshot, so a test can check exactly-once results against a direct
// count.
#pragma once

#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gale/core/operator.h"

namespace gale::testing {

// "sentence" -> one ("word") per word.
class SplitWords final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"word"}); }
  std::unique_ptr<Operator> clone() const override { return std::make_unique<SplitWords>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    const std::string& s = t.getString(0);
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && s[i] == ' ') ++i;
      size_t j = i;
      while (j < s.size() && s[j] != ' ') ++j;
      if (j > i) out.emit(Values{s.substr(i, j - i)});
      i = j;
    }
  }
};

// Running count per word. At each batch end it emits (word, count) for the words the batch
// changed (Spark's update mode); in continuous mode it emits on every tuple.
class CountWords final : public Operator {
 public:
  explicit CountWords(bool throwOnWord = false, std::string bad = "") 
      : throwOnWord_(throwOnWord), bad_(std::move(bad)) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"word", "count"});
  }
  std::unique_ptr<Operator> clone() const override {
    return std::make_unique<CountWords>(throwOnWord_, bad_);
  }
  void onTuple(const Tuple& t, Emitter& out) override {
    const std::string& w = t.getString(0);
    if (throwOnWord_ && w == bad_) throw std::runtime_error("CountWords: refused word '" + w + "'");
    int64_t c = ++counts_[w];
    if (inBatch_) {
      changed_.insert(w);
    } else {
      out.emit(Values{w, c});
    }
  }
  void onBatchBegin(uint64_t) override { inBatch_ = true; }
  void onBatchEnd(uint64_t, Emitter& out) override {
    for (const auto& w : changed_) out.emit(Values{w, counts_[w]});
    changed_.clear();
  }
  bool stateful() const override { return true; }
  std::string snapshot() const override {
    std::string s;
    for (const auto& [w, c] : counts_) s += w + "\t" + std::to_string(c) + "\n";
    return s;
  }
  void restore(std::string_view snap) override {
    counts_.clear();
    std::istringstream in{std::string(snap)};
    std::string line;
    while (std::getline(in, line)) {
      auto tab = line.find('\t');
      if (tab == std::string::npos) throw std::invalid_argument("CountWords: corrupt snapshot");
      counts_[line.substr(0, tab)] = std::stoll(line.substr(tab + 1));
    }
  }
  size_t stateSize() const override { return counts_.size(); }
  const std::map<std::string, int64_t>& counts() const { return counts_; }

 private:
  bool throwOnWord_;
  std::string bad_;
  bool inBatch_ = false;
  std::map<std::string, int64_t> counts_;
  std::set<std::string> changed_;
};

// The count a direct loop gives for the words of `sentences`.
inline std::map<std::string, int64_t> directWordCount(const std::vector<std::string>& sentences) {
  std::map<std::string, int64_t> m;
  for (const auto& s : sentences) {
    std::istringstream in(s);
    std::string w;
    while (in >> w) ++m[w];
  }
  return m;
}

}  // namespace gale::testing
