#include "gale/connectors/generator_source.h"

#include <map>
#include <random>
#include <set>
#include <stdexcept>

#include <gtest/gtest.h>

namespace gale {
namespace {

GeneratorSource::Generator idGenerator() {
  return [](int p, int64_t o) { return Values{int64_t{p}, o}; };
}

GeneratorSource::Options opts(int partitions, double rate, int64_t total = -1) {
  GeneratorSource::Options o;
  o.partitions = partitions;
  o.ratePerSecond = rate;
  o.total = total;
  return o;
}

TEST(GeneratorSource, AvailableGrowsWithTimeAtTheGivenRateOverAllPartitions) {
  ManualClock clock(Timestamp{1'000'000});
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(4, 1000));
  src.open(clock);
  for (int p = 0; p < 4; ++p) EXPECT_EQ(src.available(p), 0);
  clock.advance(Duration{1000});  // 1 ms -> record g=0 due (partition 0)
  EXPECT_EQ(src.available(0), 1);
  EXPECT_EQ(src.available(1), 0);
  clock.advance(Duration{2000});  // 3 ms -> g=0,1,2
  EXPECT_EQ(src.available(0), 1);
  EXPECT_EQ(src.available(1), 1);
  EXPECT_EQ(src.available(2), 1);
  EXPECT_EQ(src.available(3), 0);
  clock.advance(Duration{997'000});  // 1 s -> 1000 records, 250 per partition
  int64_t sum = 0;
  for (int p = 0; p < 4; ++p) {
    EXPECT_EQ(src.available(p), 250);
    sum += src.available(p);
  }
  EXPECT_EQ(sum, 1000);
  EXPECT_FALSE(src.finished());
}

TEST(GeneratorSource, OriginNanosAreTheScheduledTimesNotTheReadTime) {
  ManualClock clock(Timestamp{5'000'000});
  const int64_t start = clock.monoNanos();
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(2, 1000));
  src.open(clock);
  clock.advance(Duration{10'000'000});  // read 10 s late: 10000 records due
  std::vector<SourceRecord> out;
  ASSERT_EQ(src.read(1, 0, 5, out), 5u);
  for (int64_t o = 0; o < 5; ++o) {
    const int64_t g = o * 2 + 1;
    EXPECT_EQ(out[o].offset, o);
    EXPECT_EQ(out[o].originNanos, start + (g + 1) * 1'000'000) << "offset " << o;
    EXPECT_EQ(out[o].values, (Values{int64_t{1}, o}));
  }
}

TEST(GeneratorSource, ReadingTheSameRangeTwiceGivesTheSameRecords) {
  ManualClock clock;
  GeneratorSource src(
      Fields{"x"}, [](int p, int64_t o) { return Values{std::to_string(p * 1000003 + o * 31)}; },
      opts(3, 0, 3000));
  src.open(clock);
  std::mt19937 rng(1);
  for (int i = 0; i < 50; ++i) {
    int p = static_cast<int>(rng() % 3);
    int64_t a = rng() % 1000, b = a + rng() % 100;
    std::vector<SourceRecord> r1, r2;
    src.read(p, a, b, r1);
    src.read(p, a, b, r2);
    ASSERT_EQ(r1.size(), r2.size());
    for (size_t k = 0; k < r1.size(); ++k) {
      EXPECT_EQ(r1[k].offset, r2[k].offset);
      EXPECT_EQ(r1[k].values, r2[k].values);
    }
  }
}

TEST(GeneratorSource, ReadStopsAtTheRecordsThatAreDue) {
  ManualClock clock;
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(1, 100));
  src.open(clock);
  clock.advance(Duration{50'000});  // 50 ms at 100/s -> 5 records
  std::vector<SourceRecord> out;
  EXPECT_EQ(src.read(0, 0, 100, out), 5u);
  EXPECT_EQ(out.back().offset, 4);
}

TEST(GeneratorSource, BoundedSourceIsFinishedOnceAllRecordsWereDue) {
  ManualClock clock;
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(3, 1000, 10));
  src.open(clock);
  clock.advance(Duration{9'000});
  EXPECT_FALSE(src.finished());
  clock.advance(Duration{1'000});
  EXPECT_TRUE(src.finished());
  clock.advance(Duration{60'000'000});
  // 10 records over 3 partitions: 4, 3, 3 -- and no more however long we wait.
  EXPECT_EQ(src.available(0), 4);
  EXPECT_EQ(src.available(1), 3);
  EXPECT_EQ(src.available(2), 3);
  std::vector<SourceRecord> out;
  EXPECT_EQ(src.read(0, 0, 100, out), 4u);
}

TEST(GeneratorSource, UnlimitedBoundedSourceHasEverythingAvailableAtOnce) {
  ManualClock clock;
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(2, 0, 7));
  src.open(clock);
  EXPECT_TRUE(src.finished());
  EXPECT_EQ(src.available(0), 4);
  EXPECT_EQ(src.available(1), 3);
}

TEST(GeneratorSource, UnlimitedUnboundedSourceRunsAFixedLookaheadBeyondTheReads) {
  ManualClock clock;
  auto o = opts(1, 0);
  o.unlimitedLookahead = 100;
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), o);
  src.open(clock);
  EXPECT_EQ(src.available(0), 100);
  std::vector<SourceRecord> out;
  EXPECT_EQ(src.read(0, 0, 100, out), 100u);
  EXPECT_EQ(src.available(0), 200);
  clock.advance(Duration{7});
  out.clear();
  src.read(0, 100, 101, out);
  EXPECT_EQ(out[0].originNanos, clock.monoNanos()) << "unlimited: origin is the read time";
  EXPECT_FALSE(src.finished());
}

TEST(GeneratorSource, UnlimitedUnboundedSourceResumedPastTheLookaheadShowsRecordsPastTheResume) {
  // A restart resumes at 100'000 (committed before open(), as both runtimes do): the lookahead
  // runs from there, not from the offsets read in this run (0), or the reader would see nothing.
  ManualClock clock;
  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(2, 0));
  src.commit(1, 100'000);
  src.open(clock);
  EXPECT_EQ(src.available(1), 100'000 + 65'536);
  EXPECT_EQ(src.available(0), 65'536) << "the other partition keeps its own base";
  std::vector<SourceRecord> out;
  EXPECT_EQ(src.read(1, 100'000, 100'010, out), 10u);
  EXPECT_EQ(out.front().offset, 100'000);
  src.commit(1, 5);  // an older commit does not move the base back
  EXPECT_EQ(src.available(1), 100'010 + 65'536);
  EXPECT_THROW(src.commit(2, 0), std::out_of_range);
}

TEST(GeneratorSource, BadOptionsAndBadReadsAreRejectedWithClearErrors) {
  EXPECT_THROW(GeneratorSource(Fields{"x"}, idGenerator(), opts(0, 10)), std::invalid_argument);
  EXPECT_THROW(GeneratorSource(Fields{"x"}, idGenerator(), opts(1, -1)), std::invalid_argument);
  EXPECT_THROW(GeneratorSource(Fields{"x"}, idGenerator(), opts(1, 10, -5)), std::invalid_argument);
  EXPECT_THROW(GeneratorSource(Fields{"x"}, nullptr, opts(1, 10)), std::invalid_argument);

  GeneratorSource src(Fields{"p", "o"}, idGenerator(), opts(2, 10));
  std::vector<SourceRecord> out;
  try {
    src.read(0, 0, 1, out);
    FAIL() << "read before open must throw";
  } catch (const SourceError& e) {
    EXPECT_NE(std::string(e.what()).find("before open"), std::string::npos) << e.what();
  }
  ManualClock clock;
  src.open(clock);
  try {
    src.available(2);
    FAIL() << "partition 2 of 2 must throw";
  } catch (const std::out_of_range& e) {
    EXPECT_NE(std::string(e.what()).find("partition 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(src.read(0, 5, 3, out), std::invalid_argument);
  EXPECT_THROW(src.read(0, -1, 3, out), std::invalid_argument);
}

TEST(SentenceSource, SentencesAreDeterministicByOffsetAndSpreadOverTheBuiltInList) {
  SentenceSource::Options o;
  o.partitions = 2;
  o.total = 2000;
  SentenceSource a(o), b(o);
  ManualClock clock;
  a.open(clock);
  b.open(clock);
  OutputFieldsDeclarer d;
  a.declareOutputFields(d);
  ASSERT_EQ(d.streams().size(), 1u);
  EXPECT_EQ(d.streams()[0].second.names(), (std::vector<std::string>{"sentence"}));

  std::set<std::string> seen;
  for (int p = 0; p < 2; ++p) {
    std::vector<SourceRecord> ra, rb;
    ASSERT_EQ(a.read(p, 0, 1000, ra), 1000u);
    b.read(p, 0, 1000, rb);
    for (size_t i = 0; i < ra.size(); ++i) {
      EXPECT_EQ(ra[i].values, rb[i].values);
      const auto& s = std::get<std::string>(ra[i].values[0]);
      EXPECT_EQ(s, SentenceSource::sentenceAt(static_cast<int64_t>(i) * 2 + p));
      seen.insert(s);
    }
  }
  EXPECT_GE(SentenceSource::sentences().size(), 20u);
  EXPECT_EQ(seen.size(), SentenceSource::sentences().size()) << "2000 draws should hit every sentence";
}

TEST(SentenceSource, EventTimeFieldFollowsTheGlobalSequence) {
  SentenceSource::Options o;
  o.partitions = 3;
  o.total = 30;
  o.withEventTime = true;
  o.eventTimeStart = Timestamp{1'000'000};
  o.eventTimeStep = Duration{10};
  SentenceSource src(o);
  ManualClock clock;
  src.open(clock);
  OutputFieldsDeclarer d;
  src.declareOutputFields(d);
  EXPECT_EQ(d.streams()[0].second.indexOf("ts"), 1);
  std::vector<SourceRecord> out;
  src.read(2, 0, 10, out);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(std::get<Timestamp>(out[i].values[1]).micros, 1'000'000 + (i * 3 + 2) * 10);
  }
}

}  // namespace
}  // namespace gale
