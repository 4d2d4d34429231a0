// The user's program of the cluster tests: a word count whose every word occurrence has an id,
// so a test can tell a lost word from a repeated one. Input: text files in --input, each line
// "L<n> word word ...". Output: one line "L<n>:<i> <word>" per word occurrence, appended to a file
// per sink task and process in --output (written before the tuple is acked: at-least-once).
// The spout's committed offset is kept in --offsets, so a restarted worker resumes there.
// With --counts, a stateful bolt "count" (2 tasks unless `gale rebalance --parallelism count=N`)
// also counts each word in a SharedKeyedState in that directory, which outlives workers and
// rebalances. Started by a supervisor it runs as a cluster worker; by hand it runs every task
// itself.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <sstream>

#include "gale/cluster/committed_offsets.h"
#include "gale/cluster/shared_keyed_state.h"
#include "gale/cluster/worker.h"
#include "gale/connectors/file_source.h"
#include "gale/core/log.h"
#include "gale/topology/topology.h"

namespace {

class SplitWithIds : public gale::Bolt {
 public:
  void declareOutputFields(gale::OutputFieldsDeclarer& d) const override {
    d.declare(gale::Fields{{"id", gale::Type::String}, {"word", gale::Type::String}});
  }
  std::unique_ptr<gale::Bolt> clone() const override { return std::make_unique<SplitWithIds>(); }
  void execute(const gale::Tuple& t, gale::OutputCollector& out) override {
    std::istringstream in(std::string(t.getString("line")));
    std::string line, word;
    in >> line;
    for (int i = 0; in >> word; ++i)
      out.emit(t, gale::Values{line + ":" + std::to_string(i), word});
    out.ack(t);
  }
};

class AppendSink : public gale::Bolt {
 public:
  explicit AppendSink(std::string dir) : dir_(std::move(dir)) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  std::unique_ptr<gale::Bolt> clone() const override { return std::make_unique<AppendSink>(dir_); }
  void prepare(const gale::TopologyContext& context, gale::OutputCollector&) override {
    std::string file = dir_ + "/words-" + std::to_string(::getpid()) + "-" +
                       std::to_string(context.task) + ".txt";
    fd_ = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("cannot open " + file);
  }
  void execute(const gale::Tuple& t, gale::OutputCollector& out) override {
    std::string line = std::string(t.getString("id")) + " " + std::string(t.getString("word")) + "\n";
    // One write per line: a SIGKILL leaves whole lines (the page cache keeps them).
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      out.fail(t);
      return;
    }
    out.ack(t);
  }
  void cleanup() override {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  std::string dir_;
  int fd_ = -1;
};

// The word count proper: its state (word -> count) is a SharedKeyedState, updated before the
// tuple is acked, so what was acked survives the worker and a change of this bolt's task count.
class CountBolt : public gale::Bolt {
 public:
  explicit CountBolt(std::string dir) : dir_(std::move(dir)) {}
  void declareOutputFields(gale::OutputFieldsDeclarer&) const override {}
  std::unique_ptr<gale::Bolt> clone() const override { return std::make_unique<CountBolt>(dir_); }
  void prepare(const gale::TopologyContext& context, gale::OutputCollector&) override {
    state_ = std::make_unique<gale::cluster::SharedKeyedState>(dir_);
    gale::logInfo("count: task " + std::to_string(context.taskIndex) + " of " +
                  std::to_string(context.parallelism));
  }
  void execute(const gale::Tuple& t, gale::OutputCollector& out) override {
    try {
      state_->add(std::string(t.getString("word")), 1);
    } catch (const std::runtime_error& e) {
      gale::logError(std::string("count: ") + e.what());
      out.fail(t);  // not counted: replayed
      return;
    }
    out.ack(t);
  }

 private:
  std::string dir_;
  std::unique_ptr<gale::cluster::SharedKeyedState> state_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string input, output, offsets, counts;
  int timeoutMs = 2000;
  CLI::App app{"cluster_word_count: word occurrences with ids, at-least-once, as a cluster worker"};
  app.add_option("--input", input, "directory of input files")->required();
  app.add_option("--output", output, "directory of output files")->required();
  app.add_option("--offsets", offsets, "directory of the spout's committed offsets")->required();
  app.add_option("--counts", counts, "directory of the word counts' shared keyed state");
  app.add_option("--message-timeout-ms", timeoutMs, "tuple tree timeout")->check(CLI::Range(100, 600000));
  CLI11_PARSE(app, argc, argv);

  gale::TopologyBuilder b;
  auto files = std::make_shared<gale::FileSource>(input, gale::FileFormat::Text);
  b.setSpout("lines", std::make_shared<gale::cluster::CommittedOffsetsSource>(files, offsets), 1);
  b.setBolt("split", SplitWithIds{}, 2).shuffleGrouping("lines");
  b.setBolt("sink", AppendSink(output), 2).fieldsGrouping("split", {"word"});
  if (!counts.empty())
    b.setBolt("count", CountBolt(counts), gale::cluster::parallelism("count", 2))
        .fieldsGrouping("split", {"word"});
  gale::Topology topology = b.build();

  gale::Continuous config;
  config.messageTimeout = std::chrono::milliseconds(timeoutMs);
  config.maxRetries = -1;  // at-least-once: a tree lost with a worker is replayed until it completes
  config.retryBackoffMax = std::chrono::milliseconds(500);
  if (auto rc = gale::cluster::runIfClusterWorker(topology, config)) return *rc;
  gale::runContinuous(topology, config).waitUntilDone();
}
