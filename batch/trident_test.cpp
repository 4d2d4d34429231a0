#include "gale/batch/trident.h"

#include <filesystem>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "checkpoint_dir_test_util.h"
#include "batch_test_ops.h"
#include "gale/batch/microbatch.h"
#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/state_codec.h"

namespace gale {
namespace {

using namespace std::chrono_literals;
using namespace gale::testing;
namespace fs = std::filesystem;

// Sentences whose visible length the test sets; with `opaque`, a record read again after
// `changeAfterFirstRead` gives another sentence (an opaque source that lost its buffer).
class Sentences : public Source {
 public:
  explicit Sentences(int64_t n) : avail_(n) {}
  std::string name() const override { return "sentences"; }
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{{"sentence", Type::String}});
  }
  int partitions() const override { return 1; }
  int64_t available(int) override { return avail_; }
  size_t read(int, int64_t from, int64_t to, std::vector<SourceRecord>& out) override {
    for (int64_t o = from; o < to; ++o) out.push_back({o, {at(o)}, 0});
    return static_cast<size_t>(to - from);
  }
  bool replayable() const override { return shift_ == 0; }
  std::string at(int64_t o) const { return SentenceSource::sentenceAt(o + shift_); }
  int64_t avail_;
  int64_t shift_ = 0;  // != 0: the same offsets now hold other sentences
};

void splitWords(const Tuple& t, std::vector<Values>& out) {
  std::istringstream in(t.getString("sentence"));
  std::string w;
  while (in >> w) out.push_back({w});
}

struct TridentTest : testing::CheckpointDirTest {
  MicroBatch config() {
    MicroBatch c;
    c.trigger = BatchTrigger::availableNow();
    c.checkpoint = dir.string();
    c.maxRecordsPerBatch = 60;
    return c;
  }
  std::map<std::string, int64_t> stateCounts(const std::string& name, StateKind kind) {
    auto st = StateStore::inspect(dir.string());
    std::map<std::string, int64_t> m;
    st->keyedState(name, kind).forEach([&](std::string_view k, std::string_view v) {
      m[std::get<std::string>(decodeValues(k).at(0))] = std::get<int64_t>(decodeValues(v).at(0));
      return true;
    });
    return m;
  }
};

Topology wordCount(std::shared_ptr<Source> src, MemoryStorePtr store, StateKind kind) {
  TridentTopology t;
  auto counts = t.newStream("sentences", src)
                    .each(splitWords, Fields{"word"}, 2)
                    .project(Fields{"word"})
                    .groupBy(Fields{"word"})
                    .persistentAggregate({"counts", kind}, CombinerAggregator::count(), "count", 2);
  counts.newValuesStream().sink("out", MemorySink(store));
  return t.build();
}

std::vector<std::string> sentencesOf(const Sentences& s, int64_t from, int64_t to) {
  std::vector<std::string> v;
  for (int64_t o = from; o < to; ++o) v.push_back(s.at(o));
  return v;
}

TEST_F(TridentTest, PersistentAggregateWordCountStateAndNewValuesEqualADirectCount) {
  auto src = std::make_shared<Sentences>(500);
  auto store = std::make_shared<MemoryStore>();
  auto job = runMicroBatch(wordCount(src, store, StateKind::Transactional), config());
  ASSERT_TRUE(job.waitUntilDone(20s));
  resetTerminated();
  auto oracle = directWordCount(sentencesOf(*src, 0, 500));
  EXPECT_EQ(stateCounts("counts", StateKind::Transactional), oracle);
  std::map<std::string, int64_t> latest;
  for (uint64_t txid : store->txids())
    for (auto& r : store->batch(txid)) latest[toString(r.values[0])] = std::get<int64_t>(r.values[1]);
  EXPECT_EQ(latest, oracle);
  // Written once per key per batch: no batch has a word twice.
  for (uint64_t txid : store->txids()) {
    std::set<std::string> seen;
    for (auto& r : store->batch(txid)) EXPECT_TRUE(seen.insert(toString(r.values[0])).second);
  }
}

// A batch that fails in its commit leaves nothing behind; its replay after the restart reads
// other contents from an opaque source, and both kinds of state end equal to the records of the
// batches that did commit.
void replayWithChangedContents(TridentTest& t, StateKind kind) {
  auto src = std::make_shared<Sentences>(300);
  auto store = std::make_shared<MemoryStore>();
  MicroBatch cfg = t.config();
  cfg.onCommitPoint = [](CommitPoint p, uint64_t txid) {
    if (p == CommitPoint::AfterStateWrite && txid == 3) throw std::runtime_error("disk on fire");
  };
  auto job = runMicroBatch(wordCount(src, store, kind), cfg);
  EXPECT_THROW(job.waitUntilDone(20s), std::exception);
  EXPECT_EQ(job.progress().lastTxid, 2u);
  resetTerminated();
  src->shift_ = 7;  // offsets 120.. now hold other sentences
  auto job2 = runMicroBatch(wordCount(src, store, kind), t.config());
  ASSERT_TRUE(job2.waitUntilDone(20s));
  resetTerminated();
  Sentences before(300);
  auto all = sentencesOf(before, 0, 120);
  auto after = sentencesOf(*src, 120, 300);
  all.insert(all.end(), after.begin(), after.end());
  EXPECT_EQ(t.stateCounts("counts", kind), directWordCount(all));
}

TEST_F(TridentTest, TransactionalStateReplayWithChangedBatchContentsEndsCorrect) {
  replayWithChangedContents(*this, StateKind::Transactional);
}

TEST_F(TridentTest, OpaqueStateReplayWithChangedBatchContentsEndsCorrect) {
  replayWithChangedContents(*this, StateKind::Opaque);
}

TEST_F(TridentTest, StateQueryReadsTheCommittedStateAndFilterAndEachShapeTheStream) {
  auto sentences = std::make_shared<Sentences>(200);
  auto queries = std::make_shared<Sentences>(0);
  auto counts = std::make_shared<MemoryStore>();
  auto answers = std::make_shared<MemoryStore>();
  auto build = [&] {
    TridentTopology t;
    auto state = t.newStream("sentences", sentences)
                     .each(splitWords, Fields{"word"})
                     .groupBy(Fields{"word"})
                     .persistentAggregate({"counts", StateKind::Opaque},
                                          CombinerAggregator::count(), "count");
    state.newValuesStream().sink("counts-out", MemorySink(counts));
    t.newStream("queries", queries)
        .each(splitWords, Fields{"word"})
        .filter([](const Tuple& q) { return q.getString("word").size() > 3; })
        .project(Fields{"word"})
        .stateQuery(state, Fields{"word"},
                    [](const Tuple&, const std::optional<Values>& v) {
                      return Values{v ? v->at(0) : Value{int64_t{0}}};
                    },
                    Fields{"count"})
        .sink("answers", MemorySink(answers));
    return t.build();
  };
  runMicroBatch(build(), config()).waitUntilDone();
  resetTerminated();
  queries->avail_ = 5;  // the second run only has queries: they see the first run's counts
  runMicroBatch(build(), config()).waitUntilDone();
  auto oracle = directWordCount(sentencesOf(*sentences, 0, 200));
  auto rows = answers->rows();
  ASSERT_FALSE(rows.empty());
  for (const auto& r : rows) {
    std::string w = toString(r.values[0]);
    EXPECT_GT(w.size(), 3u);
    EXPECT_EQ(std::get<int64_t>(r.values[1]), oracle.count(w) ? oracle[w] : 0) << w;
  }
}

TEST_F(TridentTest, PartitionPersistAppliesTheUpdaterOncePerBatchAndAggregateIsPerBatch) {
  auto src = std::make_shared<Sentences>(100);
  auto perBatch = std::make_shared<MemoryStore>();
  TridentTopology t;
  auto words = t.newStream("sentences", src).each(splitWords, Fields{"word"});
  // Longest word seen per first letter.
  words.partitionPersist({"longest", StateKind::Transactional}, [](const std::vector<Tuple>& batch) {
    std::map<Values, std::function<std::optional<Values>(const std::optional<Values>&)>> u;
    std::map<std::string, std::string> best;
    for (const auto& tp : batch) {
      const std::string& w = tp.getString("word");
      auto& b = best[w.substr(0, 1)];
      if (w.size() > b.size()) b = w;
    }
    for (auto& [letter, w] : best) {
      u[Values{letter}] = [w](const std::optional<Values>& old) -> std::optional<Values> {
        if (old && std::get<std::string>(old->at(0)).size() >= w.size()) return old;
        return Values{w};
      };
    }
    return u;
  });
  words.groupBy(Fields{"word"}).aggregate(CombinerAggregator::count(), "n").sink("per-batch", MemorySink(perBatch));
  runMicroBatch(t.build(), config()).waitUntilDone();
  resetTerminated();
  std::map<std::string, std::string> expect;
  int64_t total = 0;
  for (auto& s : sentencesOf(*src, 0, 100)) {
    std::istringstream in(s);
    std::string w;
    while (in >> w) {
      auto& b = expect[w.substr(0, 1)];
      if (w.size() > b.size()) b = w;
      ++total;
    }
  }
  auto st = StateStore::inspect(dir.string());
  std::map<std::string, size_t> got;
  st->keyedState("longest", StateKind::Transactional).forEach([&](std::string_view k, std::string_view v) {
    got[std::get<std::string>(decodeValues(k).at(0))] = std::get<std::string>(decodeValues(v).at(0)).size();
    return true;
  });
  ASSERT_EQ(got.size(), expect.size());
  for (auto& [l, w] : expect) EXPECT_EQ(got[l], w.size()) << l;
  int64_t sum = 0;
  for (auto& r : perBatch->rows()) sum += std::get<int64_t>(r.values[1]);
  EXPECT_EQ(sum, total);
  EXPECT_EQ(perBatch->txids().size(), 2u);  // 100 records, 60 per batch
}

TEST_F(TridentTest, BadFieldsAreRefusedNamingTheField) {
  auto src = std::make_shared<Sentences>(1);
  TridentTopology t;
  auto s = t.newStream("sentences", src);
  try {
    s.project(Fields{"nope"});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'nope'"), std::string::npos);
  }
  EXPECT_THROW(s.groupBy(Fields{"word"}), std::invalid_argument);
  EXPECT_THROW(s.each(splitWords, Fields{"sentence"}), std::invalid_argument);
}

}  // namespace
}  // namespace gale
