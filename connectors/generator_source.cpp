#include "gale/connectors/generator_source.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace gale {

GeneratorSource::GeneratorSource(Fields fields, Generator generator, Options options)
    : fields_(std::move(fields)), generator_(std::move(generator)), options_(std::move(options)) {
  const std::string who = "GeneratorSource '" + options_.name + "': ";
  if (!generator_) throw std::invalid_argument(who + "the generator function is empty");
  if (options_.partitions < 1) {
    throw std::invalid_argument(who + "partitions must be >= 1, got " +
                                std::to_string(options_.partitions));
  }
  if (!(options_.ratePerSecond >= 0) || std::isinf(options_.ratePerSecond)) {
    throw std::invalid_argument(who + "ratePerSecond must be finite and >= 0 (0 = unlimited), got " +
                                std::to_string(options_.ratePerSecond));
  }
  if (options_.total < -1) {
    throw std::invalid_argument(who + "total must be >= 0, or -1 for unbounded, got " +
                                std::to_string(options_.total));
  }
  if (options_.unlimitedLookahead < 1) {
    throw std::invalid_argument(who + "unlimitedLookahead must be >= 1");
  }
  readHigh_ = std::make_unique<std::atomic<int64_t>[]>(options_.partitions);
  for (int p = 0; p < options_.partitions; ++p) readHigh_[p].store(0);
}

void GeneratorSource::declareOutputFields(OutputFieldsDeclarer& declarer) const {
  declarer.declare(fields_);
}

void GeneratorSource::open(const Clock& clock) {
  clock_ = &clock;
  startNanos_ = clock.monoNanos();
}

void GeneratorSource::checkPartition(int partition, const char* what) const {
  if (partition < 0 || partition >= options_.partitions) {
    throw std::out_of_range("GeneratorSource '" + options_.name + "': " + what + " of partition " +
                            std::to_string(partition) + ", but it has partitions 0.." +
                            std::to_string(options_.partitions - 1));
  }
}

int64_t GeneratorSource::dueCount(int64_t nowNanos) const {
  if (options_.ratePerSecond == 0) {
    return options_.total < 0 ? std::numeric_limits<int64_t>::max() : options_.total;
  }
  int64_t elapsed = nowNanos - startNanos_;
  if (elapsed <= 0) return 0;
  // Record g is due at start + (g + 1) / rate, so floor(elapsed * rate) records are due.
  long double n = static_cast<long double>(elapsed) * options_.ratePerSecond / 1e9L;
  int64_t due = n >= static_cast<long double>(std::numeric_limits<int64_t>::max())
                    ? std::numeric_limits<int64_t>::max()
                    : static_cast<int64_t>(n);
  if (options_.total >= 0) due = std::min(due, options_.total);
  return due;
}

int64_t GeneratorSource::dueNanos(int partition, int64_t offset) const {
  checkPartition(partition, "due time");
  if (options_.ratePerSecond == 0) return 0;
  long double g = static_cast<long double>(offset) * options_.partitions + partition;
  // ceil so that dueCount(dueNanos(g)) counts g: the record is never stamped before it is due.
  return startNanos_ + static_cast<int64_t>(std::ceil((g + 1) * 1e9L / options_.ratePerSecond));
}

int64_t GeneratorSource::availableAt(int partition, int64_t dueTotal) const {
  // Offsets o of partition p with o * N + p < dueTotal.
  const int64_t n = options_.partitions;
  if (dueTotal <= partition) return 0;
  return (dueTotal - partition - 1) / n + 1;
}

int64_t GeneratorSource::available(int partition) {
  checkPartition(partition, "available()");
  if (!clock_) return 0;
  if (options_.ratePerSecond == 0 && options_.total < 0) {
    return readHigh_[partition].load(std::memory_order_relaxed) + options_.unlimitedLookahead;
  }
  return availableAt(partition, dueCount(clock_->monoNanos()));
}

size_t GeneratorSource::read(int partition, int64_t from, int64_t to,
                             std::vector<SourceRecord>& out) {
  checkPartition(partition, "read()");
  if (!clock_) {
    throw SourceError("GeneratorSource '" + options_.name + "': read() before open(); the runtime " +
                      "must open the source first");
  }
  if (from < 0 || to < from) {
    throw std::invalid_argument("GeneratorSource '" + options_.name + "': bad range [" +
                                std::to_string(from) + ", " + std::to_string(to) +
                                ") for partition " + std::to_string(partition));
  }
  const bool unlimited = options_.ratePerSecond == 0;
  if (!unlimited || options_.total >= 0) {
    to = std::min(to, availableAt(partition, dueCount(clock_->monoNanos())));
  }
  if (to <= from) return 0;
  const int64_t readNanos = unlimited ? clock_->monoNanos() : 0;
  out.reserve(out.size() + static_cast<size_t>(to - from));
  for (int64_t o = from; o < to; ++o) {
    SourceRecord& r = out.emplace_back();  // built in place: no record moved and destroyed
    r.offset = o;
    r.values = generator_(partition, o);
    r.originNanos = unlimited ? readNanos : dueNanos(partition, o);
  }
  raiseHigh(partition, to);  // a replay of an older range leaves it alone
  return static_cast<size_t>(to - from);
}

void GeneratorSource::commit(int partition, int64_t offset) {
  checkPartition(partition, "commit()");
  raiseHigh(partition, offset);
}

void GeneratorSource::raiseHigh(int partition, int64_t offset) {
  auto& high = readHigh_[partition];
  int64_t cur = high.load(std::memory_order_relaxed);
  while (cur < offset && !high.compare_exchange_weak(cur, offset, std::memory_order_relaxed)) {
  }
}

bool GeneratorSource::finished() const {
  if (options_.total < 0 || !clock_) return false;
  return dueCount(clock_->monoNanos()) >= options_.total;
}

// --- SentenceSource ---------------------------------------------------------------------------

namespace {

// splitmix64: a stable scramble of the sequence number, so consecutive records do not carry
// consecutive sentences (word counts then look like real text, not a round-robin).
uint64_t scramble(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

Fields sentenceFields(bool withEventTime) {
  if (withEventTime) return Fields{FieldSpec{"sentence", Type::String}, FieldSpec{"ts", Type::Timestamp}};
  return Fields{FieldSpec{"sentence", Type::String}};
}

GeneratorSource::Options generatorOptions(const SentenceSource::Options& o) {
  GeneratorSource::Options g;
  g.name = o.name;
  g.partitions = o.partitions;
  g.ratePerSecond = o.ratePerSecond;
  g.total = o.total;
  return g;
}

}  // namespace

SentenceSource::SentenceSource(Options o)
    : GeneratorSource(
          sentenceFields(o.withEventTime),
          [partitions = o.partitions, withTs = o.withEventTime, start = o.eventTimeStart.micros,
           step = o.eventTimeStep.count()](int partition, int64_t offset) {
            const int64_t g = offset * partitions + partition;
            Values v = recycledValues();  // the vector of a tuple already processed
            v.reserve(withTs ? 2 : 1);
            v.emplace_back(sentenceAt(g));
            if (withTs) v.emplace_back(Timestamp{start + g * step});
            return v;
          },
          generatorOptions(o)) {
  if (o.eventTimeStep.count() < 0) {
    throw std::invalid_argument("SentenceSource '" + o.name + "': eventTimeStep must be >= 0");
  }
}

const std::vector<std::string>& SentenceSource::sentences() {
  static const std::vector<std::string> kSentences = {
      "the cow jumped over the moon",
      "an apple a day keeps the doctor away",
      "four score and seven years ago",
      "snow white and the seven dwarfs",
      "i am at two with nature",
      "the quick brown fox jumps over the lazy dog",
      "to be or not to be that is the question",
      "all that glitters is not gold",
      "a journey of a thousand miles begins with a single step",
      "the early bird catches the worm",
      "actions speak louder than words",
      "every cloud has a silver lining",
      "where there is smoke there is fire",
      "the pen is mightier than the sword",
      "fortune favors the bold",
      "knowledge is power",
      "time flies like an arrow fruit flies like a banana",
      "a picture is worth a thousand words",
      "better late than never",
      "the grass is always greener on the other side",
      "when in rome do as the romans do",
      "do not count your chickens before they hatch",
      "the stream never stops flowing",
      "a watched pot never boils",
      "practice makes perfect",
      "rome was not built in a day",
      "birds of a feather flock together",
      "the apple does not fall far from the tree",
      "two wrongs do not make a right",
      "the squeaky wheel gets the grease",
      "look before you leap",
      "you can not judge a book by its cover",
  };
  return kSentences;
}

const std::string& SentenceSource::sentenceAt(int64_t g) {
  const auto& s = sentences();
  return s[scramble(static_cast<uint64_t>(g)) % s.size()];
}

}  // namespace gale
