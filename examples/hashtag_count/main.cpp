// hashtag_count: the windowed hashtag count of the Spark Streaming seeds — hashtags of generated
// tweets counted over the last 300 s, sliding by 1 s, with reduceByKeyAndWindow(+, -), and the
// top 10 tags of each window printed.
//
//   hashtag_count                       # 60000 tweets (10 min of event time) in 10 s, continuous
//   hashtag_count --micro-batch --tweets 0 --rate 2000    # unbounded, 2000 tweets/s
#include <iostream>

#include <CLI/CLI.hpp>

#include "example_ui.h"

#include "hashtag_count.h"

using namespace gale;
using namespace gale::examples;

int main(int argc, char** argv) {
  HashtagCountOptions o;
  o.rate = 6000;  // 10 min of event time in 10 s
  int64_t windowS = 300, slideS = 1, intervalMs = 1000;
  CLI::App app{"Top hashtags over a sliding window (reduceByKeyAndWindow with an inverse function)"};
  app.add_option("--tweets", o.tweets, "tweets to generate (0 = unbounded)")->check(CLI::NonNegativeNumber);
  app.add_option("--tweets-per-second", o.tweetsPerSecond, "tweets per second of event time")
      ->check(CLI::PositiveNumber);
  app.add_option("--rate", o.rate, "tweets per second of processing time (0 = unlimited)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--window", windowS, "window length, seconds")->check(CLI::PositiveNumber);
  app.add_option("--slide", slideS, "slide, seconds (the window must be a multiple)")->check(CLI::PositiveNumber);
  app.add_option("--top", o.top, "tags printed per window")->check(CLI::PositiveNumber);
  app.add_flag("--micro-batch", o.microBatch, "run in micro-batch mode (default: continuous)");
  app.add_option("--batch-interval-ms", intervalMs, "micro-batch trigger interval")->check(CLI::PositiveNumber);
  app.add_option("--checkpoint", o.checkpoint, "micro-batch checkpoint directory (default: a temporary one)");
  UiFlags uiFlags;
  addUiOptions(app, uiFlags);
  if (auto rc = parseCommandLine(app, argc, argv)) return *rc;  // bad values: exit 2
  o.window = std::chrono::seconds(windowS);
  o.slide = std::chrono::seconds(slideS);
  o.batchInterval = std::chrono::milliseconds(intervalMs);
  try {
    auto server = startUi(uiFlags);
    o.ui = server.get();
    runHashtagCount(o, std::cout);
    keepUiUntilInterrupted(server.get());
  } catch (const std::exception& e) {
    std::cerr << "hashtag_count: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
