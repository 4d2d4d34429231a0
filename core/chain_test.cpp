#include "gale/core/chain.h"

#include <gtest/gtest.h>

#include "gale/core/state_codec.h"
#include "gale/core/stateless.h"
#include "gale/core/window.h"

namespace gale {
namespace {

using namespace std::chrono_literals;

struct Out : Emitter {
  std::vector<std::pair<std::string, Values>> rows;
  void emit(std::string_view stream, Values v) override {
    rows.emplace_back(std::string(stream), std::move(v));
  }
};

// Doubles field "n"; sends odd inputs to a side stream "odd".
class DoubleEvens final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override {
    d.declare(Fields{"n", "ts"});
    d.declareStream("odd", Fields{"n"});
  }
  OperatorPtr clone() const override { return std::make_unique<DoubleEvens>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    int64_t n = t.getInt("n");
    if (n % 2)
      out.emit("odd", {n});
    else
      out.emit({n * 2, t.get("ts")});
  }
};

// Records the origin of what it sees, then passes it on.
class OriginProbe final : public Operator {
 public:
  std::vector<int64_t>* seen;
  explicit OriginProbe(std::vector<int64_t>* s) : seen(s) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n", "ts"}); }
  OperatorPtr clone() const override { return std::make_unique<OriginProbe>(seen); }
  void onTuple(const Tuple& t, Emitter& out) override {
    seen->push_back(t.originNanos());
    out.emit(Values(t.values()));
  }
};

// A running sum per parity, emitted at each watermark: a small stateful operator.
class RunningSum final : public Operator {
 public:
  int64_t sums[2] = {0, 0};
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"even", "odd"}); }
  OperatorPtr clone() const override { return std::make_unique<RunningSum>(); }
  void onTuple(const Tuple& t, Emitter&) override { sums[t.getInt("n") % 8 == 0] += t.getInt("n"); }
  void onWatermark(Timestamp, Emitter& out) override { out.emit({sums[0], sums[1]}); }
  bool stateful() const override { return true; }
  std::string snapshot() const override {
    StateWriter w;
    w.svarint(sums[0]);
    w.svarint(sums[1]);
    return w.take();
  }
  void restore(std::string_view b) override {
    StateReader r(b, "running sum");
    sums[0] = r.svarint("even");
    sums[1] = r.svarint("odd");
    r.expectEnd();
  }
};

class NoOutput final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  OperatorPtr clone() const override { return std::make_unique<NoOutput>(); }
  void onTuple(const Tuple&, Emitter&) override {}
};

SchemaPtr input() { return makeSchema("src", "default", Fields{"n", "ts"}); }

Tuple tuple(int64_t n, int64_t ts) {
  Tuple t(input(), {n, Timestamp{ts}});
  t.setOriginNanos(1000 + n);
  return t;
}

TEST(ChainOperator, FeedsEachOperatorsDefaultStreamIntoTheNextAndSideStreamsOut) {
  std::vector<int64_t> origins;
  auto c = chain(DoubleEvens{}, OriginProbe(&origins),
                 *windowed(Tumbling(10s), Count{}).eventTime("ts").outputMode(OutputMode::Append).build());
  OutputFieldsDeclarer d;
  c.declareOutputFields(d);
  ASSERT_NE(d.find("odd"), nullptr);
  ASSERT_NE(d.find("late"), nullptr);
  ASSERT_NE(d.find(kDefaultStream), nullptr);
  EXPECT_EQ(d.find(kDefaultStream)->names(),
            (std::vector<std::string>{"window_start", "window_end", "count"}));
  Out out;
  for (int64_t n = 0; n < 10; ++n) c.onTuple(tuple(n, n * 1'000'000), out);
  EXPECT_EQ(origins, (std::vector<int64_t>{1000, 1002, 1004, 1006, 1008}));
  ASSERT_EQ(out.rows.size(), 5u);  // the odd ones, on the side stream
  for (auto& r : out.rows) EXPECT_EQ(r.first, "odd");
  // The watermark reaches the window (last in the chain): the window [0, 10s) fires with 5 rows.
  c.onWatermark(Timestamp{10'000'000}, out);
  ASSERT_EQ(out.rows.size(), 6u);
  EXPECT_EQ(out.rows[5].first, kDefaultStream);
  EXPECT_EQ(out.rows[5].second[2], Value(int64_t{5}));
}

TEST(ChainOperator, SnapshotAndRestoreMidStreamGiveTheSameOutput) {
  auto make = [] {
    return chain(DoubleEvens{}, RunningSum{});
  };
  auto a = make();
  Out outA;
  for (int64_t n = 0; n < 20; ++n) a.onTuple(tuple(n, n * 1'000'000), outA);
  ASSERT_TRUE(a.stateful());
  std::string snap = a.snapshot();
  auto b = make();
  b.restore(snap);
  Out outB;
  for (auto* c : {&a, &b}) {
    Out& o = c == &a ? outA : outB;
    for (int64_t n = 20; n < 30; ++n) c->onTuple(tuple(n, n * 1'000'000), o);
    c->onWatermark(Timestamp{40'000'000}, o);
  }
  std::vector<Values> fa, fb;
  for (auto& r : outA.rows) if (r.first == kDefaultStream) fa.push_back(r.second);
  for (auto& r : outB.rows) if (r.first == kDefaultStream) fb.push_back(r.second);
  ASSERT_EQ(fa.size(), 1u);
  EXPECT_EQ(fa, fb);
  EXPECT_EQ(fa[0], (Values{int64_t{2 * (2 + 6 + 10 + 14 + 18 + 22 + 26)}, int64_t{2 * (4 + 8 + 12 + 16 + 20 + 24 + 28)}}));
}

TEST(ChainOperator, RejectsBadChainsWithAMessageThatSaysWhy) {
  EXPECT_THROW(ChainOperator(std::vector<OperatorPtr>{}), std::invalid_argument);
  try {
    chain(NoOutput{}, DoubleEvens{});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no default stream"), std::string::npos) << e.what();
  }
  try {
    chain(DoubleEvens{}, DoubleEvens{});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'odd'"), std::string::npos) << e.what();
  }
  auto c = chain(DoubleEvens{});
  EXPECT_THROW(c.restore("garbage"), SnapshotError);
}

TEST(ChainOperator, ACloneHasItsOwnState) {
  auto a = chain(DoubleEvens{}, RunningSum{});
  Out out;
  a.onTuple(tuple(2, 0), out);
  auto b = a.clone();
  Out outB;
  b->onWatermark(Timestamp{20'000'000}, outB);
  ASSERT_EQ(outB.rows.size(), 1u);
  EXPECT_EQ(outB.rows[0].second, (Values{int64_t{0}, int64_t{0}}));
  a.onWatermark(Timestamp{20'000'000}, out);
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0].second, (Values{int64_t{4}, int64_t{0}}));
}

// Records the address of each tuple it sees and forwards it.
class AddressProbe final : public Operator {
 public:
  std::vector<const Tuple*>* seen;
  explicit AddressProbe(std::vector<const Tuple*>* s) : seen(s) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"n", "ts"}); }
  OperatorPtr clone() const override { return std::make_unique<AddressProbe>(seen); }
  void onTuple(const Tuple& t, Emitter& out) override {
    seen->push_back(&t);
    out.forward(t);
  }
};

TEST(Chain, AForwardedTupleReachesTheNextOperatorItselfAndLeavesTheChainAsACopy) {
  std::vector<const Tuple*> seen;
  ChainOperator c = chain(AddressProbe(&seen), Filter(Fields{"n", "ts"}, [](const Tuple& t) {
                            return t.getInt("n") > 1;
                          }),
                          AddressProbe(&seen));
  Out out;
  Tuple in(makeSchema("up", kDefaultStream, Fields{"n", "ts"}), {int64_t{2}, int64_t{5}});
  c.onTuple(in, out);
  Tuple dropped(makeSchema("up", kDefaultStream, Fields{"n", "ts"}), {int64_t{1}, int64_t{6}});
  c.onTuple(dropped, out);
  // The first probe saw both inputs, the filter passed the first on: no copy in between.
  EXPECT_EQ(seen, (std::vector<const Tuple*>{&in, &in, &dropped}));
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0].first, kDefaultStream);
  EXPECT_EQ(out.rows[0].second, (Values{int64_t{2}, int64_t{5}}));
}

// Emits borrowed: one reused Values whose string outgrows the small-string buffer.
class BorrowingParser final : public Operator {
 public:
  Values scratch;
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"s", "n"}); }
  OperatorPtr clone() const override { return std::make_unique<BorrowingParser>(); }
  void onTuple(const Tuple& t, Emitter& out) override {
    scratch.resize(2);
    if (!std::holds_alternative<std::string>(scratch[0])) scratch[0] = std::string();
    std::get<std::string>(scratch[0]).assign(40, static_cast<char>('a' + t.getInt("n")));
    scratch[1] = t.getInt("n");
    out.emitBorrowed(kDefaultStream, scratch);
  }
};

// Records where the string it sees lives; throws on n == 3.
class StringProbe final : public Operator {
 public:
  std::vector<const char*>* seen;
  explicit StringProbe(std::vector<const char*>* s) : seen(s) {}
  void declareOutputFields(OutputFieldsDeclarer& d) const override { d.declare(Fields{"s", "n"}); }
  OperatorPtr clone() const override { return std::make_unique<StringProbe>(seen); }
  void onTuple(const Tuple& t, Emitter& out) override {
    seen->push_back(t.getString("s").data());
    if (t.getInt("n") == 3) throw std::runtime_error("three");
    out.forward(t);
  }
};

TEST(Chain, BorrowedValuesReachTheNextOperatorUncopiedAndComeBackEvenWhenItThrows) {
  std::vector<const char*> seen;
  ChainOperator c = chain(BorrowingParser(), StringProbe(&seen));
  auto& parser = static_cast<BorrowingParser&>(c.at(0));
  Out out;
  SchemaPtr in = makeSchema("up", kDefaultStream, Fields{"n"});
  c.onTuple(Tuple(in, {int64_t{1}}), out);
  ASSERT_EQ(parser.scratch.size(), 2u) << "the values came back to the parser";
  const char* buffer = std::get<std::string>(parser.scratch[0]).data();
  c.onTuple(Tuple(in, {int64_t{2}}), out);
  EXPECT_THROW(c.onTuple(Tuple(in, {int64_t{3}}), out), std::runtime_error);
  // The probe saw the parser's own string every time (no copy), and the parser kept it.
  EXPECT_EQ(seen, (std::vector<const char*>{buffer, buffer, buffer}));
  ASSERT_EQ(parser.scratch.size(), 2u) << "the values came back after the throw";
  EXPECT_EQ(std::get<std::string>(parser.scratch[0]), std::string(40, 'd'));
  // What leaves the chain is a copy: later inputs do not change it.
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[0].second, (Values{std::string(40, 'b'), int64_t{1}}));
  EXPECT_EQ(out.rows[1].second, (Values{std::string(40, 'c'), int64_t{2}}));
  // Outside a chain the emitter copies, and the caller keeps its values.
  BorrowingParser alone;
  Out direct;
  alone.onTuple(Tuple(in, {int64_t{4}}), direct);
  ASSERT_EQ(direct.rows.size(), 1u);
  EXPECT_EQ(direct.rows[0].second, (Values{std::string(40, 'e'), int64_t{4}}));
  EXPECT_EQ(alone.scratch, direct.rows[0].second);
}

}  // namespace
}  // namespace gale
