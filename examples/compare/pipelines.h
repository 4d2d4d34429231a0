// The pipelines gale-compare runs, built by ONE function for both modes (buildTopology): only the
// run call differs between continuous and micro-batch mode, which is what the comparison is about.
//
//   stateless  YSB JSON -> parse -> keep views -> project (ad_id, event_time) -> sink
//   wordcount  sentences -> split -> running count by word (fields grouping) -> sink
//   ysb        YSB JSON -> parse (ad_id, event_type, event_time) -> keep views -> project -> join
//              ad_id to campaign_id (static 100 x 10 table), keeping event_time -> count per
//              campaign in event-time tumbling windows -> sink
//   ysb-typed  YSB's events as typed tuples with integer ids (WindFlow's shipped YSB): keep views
//              -> join ad_id to campaign_id, keeping event_time -> the same windows -> sink
//
// The stateless stages are chained (gale::chain: one task, no hop between them). Each pipeline
// starts with a Meter (counts the input records the pipeline consumed, for throughput) and ends
// in a measuring sink (LatencySink / WindowSink) that reports into RunMeasurements.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gale/connectors/json_line.h"
#include "gale/core/operator.h"
#include "gale/topology/topology.h"
#include "measurement.h"
#include "ysb.h"

namespace gale::compare {

enum class Pipeline { Stateless, WordCount, Ysb, YsbTyped };
// Ysb or YsbTyped: the windowed pipelines whose results the equality check compares.
inline bool isYsb(Pipeline p) { return p == Pipeline::Ysb || p == Pipeline::YsbTyped; }
const char* pipelineName(Pipeline p);
// Throws std::invalid_argument listing the valid names.
Pipeline parsePipeline(const std::string& name);

struct PipelineOptions {
  Pipeline pipeline = Pipeline::Ysb;
  double ratePerSecond = 0;  // 0: as fast as possible
  int64_t total = -1;        // input records; -1 = unbounded
  int partitions = 1;        // source partitions (= spout tasks)
  int parallelism = 1;       // tasks per bolt
  Duration window = std::chrono::seconds(10);         // ysb: tumbling window size
  Duration watermarkDelay = std::chrono::milliseconds(0);  // ysb: bounded out-of-orderness
  YsbSource::EventTimeOptions eventTime;              // ysb / stateless: fixed event times
};

// What a built pipeline is made of, besides the topology: the source (for the due-count of the
// schedule) and what the sink measures.
struct BuiltPipeline {
  Topology topology;
  std::shared_ptr<GeneratorSource> source;
  std::string latencyKind;  // "record" or "window"
};

// Builds the topology of `options.pipeline`; the Meter and the sink report into `measurements`,
// which must outlive every run of the topology. Throws std::invalid_argument on bad options.
BuiltPipeline buildTopology(const PipelineOptions& options,
                            std::shared_ptr<RunMeasurements> measurements,
                            std::shared_ptr<const YsbData> data);

// ---- The operators (public for the tests) ----

// Counts the records passing through into RunMeasurements::addInputs and forwards them unchanged
// (same fields). Flushes its count every 256 records so the progress display moves.
class Meter final : public Operator {
 public:
  Meter(Fields fields, std::shared_ptr<RunMeasurements> measurements);
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onWatermark(Timestamp, Emitter&) override { flush(); }
  void onBatchEnd(uint64_t, Emitter&) override { flush(); }
  void onEndOfInput(Emitter&) override { flush(); }
  ~Meter() override { flush(); }

 private:
  void flush();
  Fields fields_;
  std::shared_ptr<RunMeasurements> measurements_;
  uint64_t pending_ = 0;
};

// Parses the string field `input` as one flat JSON object into `fields`. A malformed line goes to
// the stream "parse_errors" as (line, error) instead of being dropped silently.
class JsonParse final : public Operator {
 public:
  JsonParse(std::string input, Fields fields);
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  std::string input_;
  Fields fields_;
  JsonLineParser parser_;
  Values scratch_;
  const StreamSchema* resolvedFor_ = nullptr;  // the schema inputIndex_ was found in
  size_t inputIndex_ = 0;
};

// Keeps the tuples whose field `field` equals `value` (same type and value).
class KeepEquals final : public Operator {
 public:
  KeepEquals(Fields fields, std::string field, Value value);
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  Fields fields_;
  std::string field_;
  Value value_;
  int index_ = -1;
};

// YSB's projection: (ad_id, event_time) with event_time (a string of epoch milliseconds in the
// JSON) turned into a Timestamp. A record whose event_time is not an integer goes to the stream
// "bad_event_time" as (event_time, ad_id).
class YsbProject final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;

 private:
  // The fields' positions, looked up by name once per input schema (not per tuple).
  bool resolved_ = false;
  const StreamSchema* resolvedFor_ = nullptr;
  size_t eventTime_ = 0, adId_ = 0;
  Values out_;  // the output, reused (see onTuple)
};

// Splits "sentence" on spaces into one ("word") tuple per word.
class SplitWords final : public Operator {
 public:
  void declareOutputFields(OutputFieldsDeclarer& d) const override;
  std::unique_ptr<Operator> clone() const override;
  void onTuple(const Tuple& t, Emitter& out) override;
};

// The sink of per-record pipelines: one latency per record, origin (the generator's scheduled
// time) -> the moment the record is visible. Continuous mode: on arrival. Micro-batch mode: the
// batch's origins are buffered and recorded at onBatchEnd(txid), when the batch is output.
class LatencySink final : public Operator {
 public:
  explicit LatencySink(std::shared_ptr<RunMeasurements> measurements);
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

 private:
  std::shared_ptr<RunMeasurements> measurements_;
  TaskRecorder* recorder_ = nullptr;
  bool inBatch_ = false;
  std::vector<int64_t> origins_;
};

// The sink of windowed pipelines: per window result row (keyField, window_start, window_end,
// count; the key as toString of its value), one latency = the moment the row is visible -
// window_end (minus the watermark delay, RunMeasurements::setWindowLatencyOffset), and the row's
// value for the equality check.
// Visibility as in LatencySink: on arrival, or at onBatchEnd in micro-batch mode.
class WindowSink final : public Operator {
 public:
  WindowSink(std::shared_ptr<RunMeasurements> measurements, std::string keyField,
             std::string valueField);
  void declareOutputFields(OutputFieldsDeclarer&) const override {}
  std::unique_ptr<Operator> clone() const override;
  void open(const OperatorContext& context) override;
  void onTuple(const Tuple& t, Emitter& out) override;
  void onBatchBegin(uint64_t txid) override;
  void onBatchEnd(uint64_t txid, Emitter& out) override;

 private:
  struct Row {
    std::string key;
    int64_t start = 0;
    Timestamp end;
    int64_t value = 0;
  };
  void publish(const Row& row);
  std::shared_ptr<RunMeasurements> measurements_;
  std::string keyField_;
  std::string valueField_;
  TaskRecorder* recorder_ = nullptr;
  bool inBatch_ = false;
  std::vector<Row> rows_;
};

}  // namespace gale::compare
