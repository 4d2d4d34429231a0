// The windowed Kafka job of the cluster tests: words from a Kafka topic (record value: a word;
// record timestamp: its event time) counted per word and tumbling event-time window
// (--window-ms). The window counts live in a SharedKeyedState (--state) as
// "<window start ms> <word>" -> count, updated before the tuple is acked, so a killed worker loses
// none of them; the spout's consumer group (--group) holds its committed offsets, so a restarted
// spout resumes there and replays what was in flight (at-least-once: counted again).
// gale's window operator is not used: in continuous mode it keeps its windows in the worker's
// memory and acks each tuple on arrival, so a killed worker would lose them (docs/cluster.md).
#include <CLI/CLI.hpp>

#include "gale/cluster/shared_keyed_state.h"
#include "gale/cluster/worker.h"
#include "gale/connectors/kafka_source.h"
#include "gale/core/log.h"
#include "gale/topology/topology.h"

namespace {

class WindowCount : public gale::Bolt {
 public:
  WindowCount(std::string dir, int64_t windowMs) : dir_(std::move(dir)), windowMs_(windowMs) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  std::unique_ptr<gale::Bolt> clone() const override {
    return std::make_unique<WindowCount>(dir_, windowMs_);
  }
  void prepare(const gale::TopologyContext&, gale::OutputCollector&) override {
    state_ = std::make_unique<gale::cluster::SharedKeyedState>(dir_);
  }
  void execute(const gale::Tuple& t, gale::OutputCollector& out) override {
    const auto* word = std::get_if<gale::Bytes>(&t.get("value"));
    int64_t ms = t.getTimestamp("timestamp").micros / 1000;
    if (!word || word->data.empty() || ms < 0) {
      // A tombstone or a record without a time: nothing to count, and never worth a replay.
      gale::logWarn("window: record without a word or a time at offset " +
                    std::to_string(t.getInt("offset")) + ", skipped");
      out.ack(t);
      return;
    }
    try {
      state_->add(std::to_string(ms - ms % windowMs_) + " " + word->data, 1);
    } catch (const std::runtime_error& e) {
      gale::logError(std::string("window: ") + e.what());
      out.fail(t);
      return;
    }
    out.ack(t);
  }

 private:
  std::string dir_;
  int64_t windowMs_;
  std::unique_ptr<gale::cluster::SharedKeyedState> state_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string bootstrap, topic, group, state;
  int64_t windowMs = 10000;
  CLI::App app{"cluster_kafka_windows: per-word counts of tumbling event-time windows of a Kafka "
               "topic, at-least-once, as a cluster worker"};
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->required();
  app.add_option("--topic", topic, "the topic of words")->required();
  app.add_option("--group", group, "consumer group holding the spout's offsets")->required();
  app.add_option("--state", state, "directory of the window counts' shared keyed state")->required();
  app.add_option("--window-ms", windowMs, "window length")->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  CLI11_PARSE(app, argc, argv);

  gale::KafkaSource::Options in;
  in.bootstrapServers = bootstrap;
  in.subscribe = {topic};
  in.startingOffsets = "earliest";
  in.groupId = group;
  in.consumerProperties = {{"fetch.wait.max.ms", "5"}};
  gale::TopologyBuilder b;
  b.setSpout("words", std::make_shared<gale::KafkaSource>(in), 1);
  b.setBolt("window", WindowCount(state, windowMs), gale::cluster::parallelism("window", 2))
      .fieldsGrouping("words", {"value"});
  gale::Topology topology = b.build();

  gale::Continuous config;
  config.messageTimeout = std::chrono::milliseconds(2000);
  config.maxRetries = -1;  // at-least-once: a tree lost with a worker is replayed until it completes
  config.retryBackoffMax = std::chrono::milliseconds(500);
  if (auto rc = gale::cluster::runIfClusterWorker(topology, config)) return *rc;
  gale::runContinuous(topology, config).waitUntilDone();
}
