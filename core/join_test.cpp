#include "gale/core/join.h"

#include <gtest/gtest.h>

#include <type_traits>

namespace gale {
namespace {

struct Out : Emitter {
  std::vector<Values> rows;
  void emit(std::string_view, Values v) override { rows.push_back(std::move(v)); }
};

std::shared_ptr<StaticTable> campaigns() {
  auto t = std::make_shared<StaticTable>(Fields{{"campaign_id", Type::String}});
  t->add(std::string("ad1"), {std::string("c1")});
  t->add(std::string("ad2"), {std::string("c2")});
  return t;
}

TEST(StaticJoin, InnerJoinAppendsTheTableColumnsAndDropsUnmatchedTuples) {
  StaticJoin join(campaigns(), "ad_id", Fields{"ad_id", "event_time"});
  auto in = makeSchema("parse", "default", Fields{"event_type", "ad_id", "event_time"});
  Out out;
  join.onTuple(Tuple(in, {std::string("view"), std::string("ad2"), Timestamp{5}}), out);
  join.onTuple(Tuple(in, {std::string("view"), std::string("nope"), Timestamp{6}}), out);
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0], (Values{std::string("ad2"), Timestamp{5}, std::string("c2")}));
  EXPECT_EQ(join.unmatched(), 1u);
  OutputFieldsDeclarer d;
  join.declareOutputFields(d);
  EXPECT_EQ(d.find("default")->names(), (std::vector<std::string>{"ad_id", "event_time", "campaign_id"}));
}

TEST(StaticJoin, LeftOuterJoinKeepsUnmatchedTuplesWithNulls) {
  StaticJoin join(campaigns(), "ad_id", Fields{"ad_id"}, JoinType::LeftOuter);
  auto in = makeSchema("p", "default", Fields{"ad_id"});
  Out out;
  join.onTuple(Tuple(in, {std::string("zz")}), out);
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0], (Values{std::string("zz"), std::monostate{}}));
}

// The join lends its row (Emitter::emitBorrowed) and writes the next row over it: a reader in
// place (a fused task) sees each row whole with nothing left of the row before, and a reader
// that takes the list (leaving it empty, as an unfused emit does) gets full rows too.
TEST(StaticJoin, ALentRowCarriesNothingOverFromTheRowBefore) {
  struct Lent : Emitter {
    bool take = false;
    std::vector<Values> rows;
    const Values* last = nullptr;
    void emit(std::string_view, Values v) override { rows.push_back(std::move(v)); }
    void emitBorrowed(std::string_view, Values& v) override {
      rows.push_back(v);  // read in place
      last = &v;
      if (take) Values().swap(v);
    }
  };
  auto table = std::make_shared<StaticTable>(Fields{{"campaign_id", Type::String}});
  table->add(std::string("ad1"), {std::string("a campaign id longer than a short string")});
  table->add(std::string("ad2"), {std::string("c2")});
  StaticJoin join(table, "ad_id", Fields{"ad_id"}, JoinType::LeftOuter);
  auto in = makeSchema("p", "default", Fields{"ad_id"});
  const std::vector<Values> want{
      {std::string("ad1"), std::string("a campaign id longer than a short string")},
      {std::string("zz"), std::monostate{}},
      {std::string("ad2"), std::string("c2")},
      {std::string("ad1"), std::string("a campaign id longer than a short string")}};
  for (bool take : {false, true}) {
    Lent out;
    out.take = take;
    for (const char* ad : {"ad1", "zz", "ad2", "ad1"}) join.onTuple(Tuple(in, {std::string(ad)}), out);
    EXPECT_EQ(out.rows, want) << (take ? "taken" : "read in place");
    const Values* kept = out.last;
    ASSERT_NE(kept, nullptr) << "the row is lent, not emitted as a new list";
    join.onTuple(Tuple(in, {std::string("ad2")}), out);
    EXPECT_EQ(out.last, kept) << "the join lends the same list each time";
  }
}

TEST(StaticJoin, AMissingKeyFieldIsAnErrorThatNamesTheStream) {
  StaticJoin join(campaigns(), "ad_id", Fields{"x"});
  auto in = makeSchema("parse", "default", Fields{"x"});
  Out out;
  try {
    join.onTuple(Tuple(in, {int64_t{1}}), out);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("parse:default"), std::string::npos) << e.what();
  }
}

// A stream that has the key but not a field to keep is refused; the stream before it is still
// joined by its own positions, not by the ones half resolved for the refused tuple.
TEST(StaticJoin, ATupleRefusedForAMissingFieldLeavesTheOtherStreamsTuplesJoinedRight) {
  StaticJoin join(campaigns(), "ad_id", Fields{"ad_id", "event_time"});
  auto good = makeSchema("parse", "default", Fields{"event_time", "ad_id"});
  auto bad = makeSchema("other", "default", Fields{"ad_id", "x"});
  Out out;
  join.onTuple(Tuple(good, {Timestamp{5}, std::string("ad1")}), out);
  EXPECT_THROW(join.onTuple(Tuple(bad, {std::string("ad2"), int64_t{1}}), out),
               std::invalid_argument);
  join.onTuple(Tuple(good, {Timestamp{6}, std::string("ad2")}), out);
  ASSERT_EQ(out.rows.size(), 2u);
  EXPECT_EQ(out.rows[1], (Values{std::string("ad2"), Timestamp{6}, std::string("c2")}));
}

TEST(StaticTable, RejectsDuplicateKeysAndRowsThatDoNotFitTheColumns) {
  auto t = campaigns();
  EXPECT_THROW(t->add(std::string("ad1"), {std::string("c9")}), std::invalid_argument);
  EXPECT_THROW(t->add(std::string("ad9"), {int64_t{1}}), std::invalid_argument);
}

// The Int64 index points into the table's own map: a copy would look up the original's rows.
static_assert(!std::is_copy_constructible_v<StaticTable> && !std::is_copy_assignable_v<StaticTable>);
static_assert(std::is_move_constructible_v<StaticTable>);

TEST(StaticTable, AMovedTableFindsEveryRowInItsNewPlace) {
  StaticTable a(Fields{{"v", Type::Int64}});
  for (int64_t k = -50; k < 50; ++k) a.add(Value{k}, Values{Value{k * 3}});
  StaticTable b(std::move(a));
  for (int64_t k = -50; k < 50; ++k) {
    const Values* row = b.find(Value{k});
    ASSERT_NE(row, nullptr) << k;
    EXPECT_EQ(std::get<int64_t>((*row)[0]), k * 3);
  }
  EXPECT_EQ(b.find(Value{int64_t{50}}), nullptr);
}

TEST(StaticTable, ADuplicateKeysErrorNamesTheKey) {
  auto t = campaigns();
  try {
    t->add(std::string("ad1"), {std::string("c9")});
    FAIL() << "a duplicate key was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ad1"), std::string::npos) << e.what();
  }
}

// Int64 keys are found through their flat index, every other key through the map: each key is
// found exactly when it was added, with its own row, through the index's growth, with keys that
// share their slot's high bits, and never as a key of another type with the same number.
TEST(StaticTable, EveryInt64KeyIsFoundWithItsRowThroughTheIndexsGrowthAndNoOtherKeyIs) {
  StaticTable t(Fields{{"row", Type::Int64}});
  std::vector<int64_t> keys = {0, -1, 1, INT64_MIN, INT64_MAX};
  for (int64_t i = 1; i <= 3000; ++i) {
    keys.push_back(i * 7919);
    keys.push_back(-i * 104729);
    keys.push_back(i << 40);  // the same low bits: slots apart only by their high bits
  }
  t.add(std::string("text"), {int64_t{-5}});
  t.add(Timestamp{3}, {int64_t{-6}});
  for (size_t k = 0; k < keys.size(); ++k) {
    t.add(keys[k], {static_cast<int64_t>(k)});
    // Everything added so far is found, at every size the index passes through.
    if ((k & (k + 1)) == 0)
      for (size_t j = 0; j <= k; ++j) {
        const Values* row = t.find(keys[j]);
        ASSERT_NE(row, nullptr) << keys[j] << " after " << k + 1 << " keys";
        EXPECT_EQ(*row, (Values{static_cast<int64_t>(j)}));
      }
  }
  for (size_t k = 0; k < keys.size(); ++k) {
    const Values* row = t.find(keys[k]);
    ASSERT_NE(row, nullptr) << keys[k];
    EXPECT_EQ(*row, (Values{static_cast<int64_t>(k)}));
  }
  for (int64_t missing : {int64_t{2}, int64_t{7918}, int64_t{3001} * 7919, int64_t{3001} << 40,
                          INT64_MIN + 1})
    EXPECT_EQ(t.find(missing), nullptr) << missing;
  // The same numbers as other types are other keys.
  EXPECT_EQ(t.find(Timestamp{0}), nullptr);
  EXPECT_EQ(t.find(1.0), nullptr);
  EXPECT_EQ(t.find(Value{}), nullptr);
  ASSERT_NE(t.find(Timestamp{3}), nullptr);
  EXPECT_EQ(*t.find(Timestamp{3}), (Values{int64_t{-6}}));
  ASSERT_NE(t.find(std::string("text")), nullptr);
  EXPECT_EQ(t.find(int64_t{3}), nullptr);
  EXPECT_THROW(t.add(int64_t{7919}, {int64_t{1}}), std::invalid_argument);
  EXPECT_EQ(t.size(), keys.size() + 2);
}

}  // namespace
}  // namespace gale
