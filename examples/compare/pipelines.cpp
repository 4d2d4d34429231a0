#include "pipelines.h"

#include <charconv>
#include <stdexcept>

#include "gale/core/aggregate.h"
#include "gale/core/chain.h"
#include "gale/core/join.h"
#include "gale/core/window.h"

namespace gale::compare {

const char* pipelineName(Pipeline p) {
  switch (p) {
    case Pipeline::Stateless: return "stateless";
    case Pipeline::WordCount: return "wordcount";
    case Pipeline::Ysb: return "ysb";
    case Pipeline::YsbTyped: return "ysb-typed";
  }
  return "?";
}

Pipeline parsePipeline(const std::string& name) {
  if (name == "stateless") return Pipeline::Stateless;
  if (name == "wordcount") return Pipeline::WordCount;
  if (name == "ysb") return Pipeline::Ysb;
  if (name == "ysb-typed") return Pipeline::YsbTyped;
  throw std::invalid_argument("unknown pipeline '" + name +
                              "': use stateless, wordcount, ysb, ysb-typed (or all)");
}

// ---- Meter ----

Meter::Meter(Fields fields, std::shared_ptr<RunMeasurements> measurements)
    : fields_(std::move(fields)), measurements_(std::move(measurements)) {
  if (!measurements_) throw std::invalid_argument("Meter: measurements must not be null");
}
void Meter::declareOutputFields(OutputFieldsDeclarer& d) const { d.declare(fields_); }
std::unique_ptr<Operator> Meter::clone() const {
  return std::make_unique<Meter>(fields_, measurements_);
}
void Meter::onTuple(const Tuple& t, Emitter& out) {
  if (++pending_ >= 256) flush();
  out.forward(t);
}
void Meter::flush() {
  if (pending_) measurements_->addInputs(pending_);
  pending_ = 0;
}

// ---- JsonParse ----

JsonParse::JsonParse(std::string input, Fields fields)
    : input_(std::move(input)), fields_(fields), parser_(std::move(fields)) {}
void JsonParse::declareOutputFields(OutputFieldsDeclarer& d) const {
  d.declare(fields_);
  d.declareStream("parse_errors", Fields{{"line", Type::String}, {"error", Type::String}});
}
std::unique_ptr<Operator> JsonParse::clone() const {
  return std::make_unique<JsonParse>(input_, fields_);
}
void JsonParse::onTuple(const Tuple& t, Emitter& out) {
  if (t.schema().get() != resolvedFor_) {
    // By name once per input schema, not per tuple; Tuple::get names what is missing.
    inputIndex_ = static_cast<size_t>(&t.get(input_) - t.values().data());
    resolvedFor_ = t.schema().get();
  }
  const std::string& line = t.getString(inputIndex_);
  if (parser_.parse(line, scratch_)) {
    out.emitBorrowed(kDefaultStream, scratch_);  // scratch_'s strings keep their capacity
  } else {
    out.emit("parse_errors", Values{line, parser_.error()});
  }
}

// ---- KeepEquals ----

KeepEquals::KeepEquals(Fields fields, std::string field, Value value)
    : fields_(std::move(fields)), field_(std::move(field)), value_(std::move(value)) {
  index_ = fields_.indexOf(field_);
  if (index_ < 0)
    throw std::invalid_argument("KeepEquals: field '" + field_ + "' is not in " +
                                fields_.toString());
}
void KeepEquals::declareOutputFields(OutputFieldsDeclarer& d) const { d.declare(fields_); }
std::unique_ptr<Operator> KeepEquals::clone() const {
  return std::make_unique<KeepEquals>(fields_, field_, value_);
}
void KeepEquals::onTuple(const Tuple& t, Emitter& out) {
  if (t[index_] == value_) out.forward(t);
}

// ---- YsbProject ----

void YsbProject::declareOutputFields(OutputFieldsDeclarer& d) const {
  d.declare(Fields{{"ad_id", Type::String}, {"event_time", Type::Timestamp}});
  d.declareStream("bad_event_time", Fields{{"event_time", Type::Any}, {"ad_id", Type::Any}});
}
std::unique_ptr<Operator> YsbProject::clone() const { return std::make_unique<YsbProject>(); }
void YsbProject::onTuple(const Tuple& t, Emitter& out) {
  if (!resolved_ || t.schema().get() != resolvedFor_) {
    // Tuple::get(name) throws naming the stream and its fields when one is missing.
    eventTime_ = static_cast<size_t>(&t.get("event_time") - t.values().data());
    adId_ = static_cast<size_t>(&t.get("ad_id") - t.values().data());
    resolvedFor_ = t.schema().get();
    resolved_ = true;
  }
  const Value& et = t.get(eventTime_);
  const Value& ad = t.get(adId_);
  int64_t millis = 0;
  bool ok = false;
  if (auto* s = std::get_if<std::string>(&et)) {
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), millis);
    ok = ec == std::errc() && p == s->data() + s->size();
  } else if (auto* i = std::get_if<int64_t>(&et)) {
    millis = *i;
    ok = true;
  }
  if (!ok || !std::holds_alternative<std::string>(ad)) {
    out.emit("bad_event_time", Values{et, ad});
    return;
  }
  // Lent, as JsonParse lends its output: the ad id is copied into a string whose capacity is
  // kept from the last event (no allocation per event inside a chain).
  out_.resize(2);
  if (auto* s = std::get_if<std::string>(&out_[0])) *s = std::get<std::string>(ad);
  else out_[0] = ad;
  out_[1] = Timestamp{millis * 1000};
  out.emitBorrowed(kDefaultStream, out_);
}

// ---- SplitWords ----

void SplitWords::declareOutputFields(OutputFieldsDeclarer& d) const {
  d.declare(Fields{{"word", Type::String}});
}
std::unique_ptr<Operator> SplitWords::clone() const { return std::make_unique<SplitWords>(); }
void SplitWords::onTuple(const Tuple& t, Emitter& out) {
  const std::string& s = t.getString("sentence");
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(' ', i);
    if (j == std::string::npos) j = s.size();
    if (j > i) out.emit(Values{s.substr(i, j - i)});
    i = j + 1;
  }
}

// ---- LatencySink ----

LatencySink::LatencySink(std::shared_ptr<RunMeasurements> measurements)
    : measurements_(std::move(measurements)) {
  if (!measurements_) throw std::invalid_argument("LatencySink: measurements must not be null");
}
std::unique_ptr<Operator> LatencySink::clone() const {
  return std::make_unique<LatencySink>(measurements_);
}
void LatencySink::open(const OperatorContext&) { recorder_ = &measurements_->newTask(); }
void LatencySink::onTuple(const Tuple& t, Emitter&) {
  if (inBatch_) origins_.push_back(t.originNanos());
  else recorder_->recordArrival(t.originNanos());
}
void LatencySink::onBatchBegin(uint64_t) {
  inBatch_ = true;
  origins_.clear();
}
void LatencySink::onBatchEnd(uint64_t, Emitter&) {
  // The batch is output now: every row of it became visible at this moment.
  for (int64_t o : origins_) recorder_->recordArrival(o);
  origins_.clear();
}

// ---- WindowSink ----

WindowSink::WindowSink(std::shared_ptr<RunMeasurements> measurements, std::string keyField,
                       std::string valueField)
    : measurements_(std::move(measurements)),
      keyField_(std::move(keyField)),
      valueField_(std::move(valueField)) {
  if (!measurements_) throw std::invalid_argument("WindowSink: measurements must not be null");
}
std::unique_ptr<Operator> WindowSink::clone() const {
  return std::make_unique<WindowSink>(measurements_, keyField_, valueField_);
}
void WindowSink::open(const OperatorContext&) { recorder_ = &measurements_->newTask(); }
void WindowSink::onTuple(const Tuple& t, Emitter&) {
  Row r{toString(t.get(keyField_)), t.getTimestamp("window_start").micros,
        t.getTimestamp("window_end"), t.getInt(valueField_)};
  if (inBatch_) rows_.push_back(std::move(r));
  else publish(r);
}
void WindowSink::onBatchBegin(uint64_t) {
  inBatch_ = true;
  rows_.clear();
}
void WindowSink::onBatchEnd(uint64_t, Emitter&) {
  for (const Row& r : rows_) publish(r);
  rows_.clear();
}
void WindowSink::publish(const Row& r) {
  recorder_->recordWindowResult(r.end);
  recorder_->addRecords(1);
  measurements_->recordWindowValue(r.key, r.start, r.value);
}

// ---- Topologies ----

namespace {

// The members of an event the pipelines read; the parser checks the others' syntax but neither
// decodes nor copies them (user_id, page_id, ad_type, ip_address: four of the seven strings).
Fields ysbEventFields() {
  return Fields{{"ad_id", Type::String}, {"event_type", Type::String},
                {"event_time", Type::String}};
}

std::shared_ptr<YsbSource> ysbSource(const PipelineOptions& o,
                                     std::shared_ptr<const YsbData> data, bool typed = false) {
  GeneratorSource::Options g;
  g.name = "ysb-events";
  g.partitions = o.partitions;
  g.ratePerSecond = o.ratePerSecond;
  g.total = o.total;
  // "As fast as possible": let a micro-batch see up to ~2 s of work per partition at once, so a
  // 1 s trigger is not capped by the generator's default lookahead (64 K records): 8 M JSON
  // events, 16 M typed ones (2 M capped the micro-batch runs at 2.1 M/s, the typed pipeline's
  // first and the JSON one's once it parsed 3.7 M events/s).
  if (o.ratePerSecond <= 0) g.unlimitedLookahead = int64_t{1} << (typed ? 24 : 23);
  YsbSource::EventTimeOptions eventTime = o.eventTime;
  eventTime.typed = typed;
  return std::make_shared<YsbSource>(std::move(data), g, eventTime);
}

}  // namespace

BuiltPipeline buildTopology(const PipelineOptions& o, std::shared_ptr<RunMeasurements> m,
                            std::shared_ptr<const YsbData> data) {
  if (!m) throw std::invalid_argument("buildTopology: measurements must not be null");
  if (o.partitions < 1 || o.parallelism < 1)
    throw std::invalid_argument("buildTopology: partitions and parallelism must be >= 1");
  if (o.window.count() <= 0)
    throw std::invalid_argument("buildTopology: the window size must be positive");
  TopologyBuilder b;
  BuiltPipeline built;
  Fields ysbIn{{"json", Type::String}, {"ts", Type::Timestamp}};
  Fields events = ysbEventFields();
  switch (o.pipeline) {
    case Pipeline::Stateless: {
      if (!data) throw std::invalid_argument("buildTopology: the stateless pipeline needs YsbData");
      auto src = ysbSource(o, data);
      built.source = src;
      b.setSpout("events", src, o.partitions);
      b.setBolt("prepare",
                chain(Meter(ysbIn, m), JsonParse("json", events),
                      KeepEquals(events, "event_type", std::string("view")), YsbProject()),
                o.parallelism)
          .localOrShuffleGrouping("events");
      b.setBolt("sink", LatencySink(m), 1).shuffleGrouping("prepare");
      built.latencyKind = "record";
      break;
    }
    case Pipeline::WordCount: {
      SentenceSource::Options so;
      so.partitions = o.partitions;
      so.ratePerSecond = o.ratePerSecond;
      so.total = o.total;
      auto src = std::make_shared<SentenceSource>(so);
      built.source = src;
      b.setSpout("sentences", src, o.partitions);
      b.setBolt("split", chain(Meter(Fields{{"sentence", Type::String}}, m), SplitWords()),
                o.parallelism)
          .localOrShuffleGrouping("sentences");
      // A running count per word, updated (and emitted) at every input word: the global window
      // with a count trigger of 1, in update mode. Stateful, so micro-batch mode commits it.
      b.setBolt("count",
                *windowed(GlobalWindow(), Count{})
                     .keyBy({"word"})
                     .trigger(Trigger::count(1))
                     .outputMode(OutputMode::Update)
                     .build(),
                o.parallelism)
          .fieldsGrouping("split", Fields{"word"});
      b.setBolt("sink", LatencySink(m), 1).shuffleGrouping("count");
      built.latencyKind = "record";
      break;
    }
    case Pipeline::Ysb:
    case Pipeline::YsbTyped: {
      if (!data) throw std::invalid_argument("buildTopology: the ysb pipelines need YsbData");
      bool typed = o.pipeline == Pipeline::YsbTyped;
      auto src = ysbSource(o, data, typed);
      built.source = src;
      WatermarkSpec wm;
      wm.field = typed ? "event_time" : "ts";
      wm.delay = o.watermarkDelay;
      // A watermark whenever it moves (at most once per millisecond of event time, the
      // resolution of YSB's event_time): a periodic one would add its period to every window.
      wm.every = Duration{0};
      b.setSpout("events", src, o.partitions).withWatermark(wm);
      if (typed) {
        // No parse, no projection: the join keeps event_time and adds campaign_id.
        Fields typedEvents = YsbData::typedEventFields();
        b.setBolt("prepare",
                  chain(Meter(typedEvents, m), KeepEquals(typedEvents, "event_type", int64_t{0}),
                        StaticJoin(data->typedCampaignTable(), "ad_id",
                                   Fields{{"event_time", Type::Timestamp}})),
                  o.parallelism)
            .localOrShuffleGrouping("events");
      } else {
        b.setBolt("prepare",
                  chain(Meter(ysbIn, m), JsonParse("json", events),
                        KeepEquals(events, "event_type", std::string("view")), YsbProject(),
                        StaticJoin(data->campaignTable(), "ad_id",
                                   Fields{{"event_time", Type::Timestamp}})),
                  o.parallelism)
            .localOrShuffleGrouping("events");
      }
      b.setBolt("window",
                *windowed(Tumbling(o.window), Count{})
                     .keyBy({"campaign_id"})
                     .eventTime("event_time")
                     .outputMode(OutputMode::Append)
                     .build(),
                o.parallelism)
          .fieldsGrouping("prepare", Fields{"campaign_id"});
      b.setBolt("sink", WindowSink(m, "campaign_id", "count"), 1).shuffleGrouping("window");
      built.latencyKind = "window";
      m->setWindowLatencyOffset(o.watermarkDelay.count() * 1000);
      break;
    }
  }
  built.topology = b.build();
  return built;
}

}  // namespace gale::compare
