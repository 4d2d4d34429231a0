// The windowed hashtag count of the Spark Streaming seeds (TwitterPopularTags): generated tweets
// -> hashtags -> reduceByKeyAndWindow(+, -, 300 s, 1 s) per tag -> the top tags of each window
// (transform) -> print(). Incremental: each 1 s slide adds the newest second and subtracts the
// one that left the window, instead of re-counting 300 s. Runs in either mode. Shared by the
// program and its test.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "gale/connectors/memory_sink.h"
#include "gale/core/value.h"
#include "gale/topology/topology.h"

namespace gale::ui {
class UiServer;
}

namespace gale::examples {

struct HashtagCountOptions {
  int64_t tweets = 60000;       // generated tweets (0 = unbounded)
  int tweetsPerSecond = 100;    // of event time
  double rate = 0;              // of processing time, 0 = as fast as possible
  Duration window = std::chrono::seconds(300);
  Duration slide = std::chrono::seconds(1);
  Duration watermarkDelay = std::chrono::seconds(2);
  size_t top = 10;
  bool microBatch = false;
  Duration batchInterval = std::chrono::seconds(1);  // micro-batch trigger
  int64_t maxRecordsPerBatch = 0;
  std::string checkpoint;  // micro-batch: empty = a fresh temporary directory
  ui::UiServer* ui = nullptr;       // --ui: shows the job there
};

// Tweet g: (text, ts). Tags are skewed (a few are popular) and event times are up to 0.5 s out of
// order, within the default watermark delay.
Values tweetAt(int64_t g, int tweetsPerSecond);
std::vector<std::string> hashtagsOf(const std::string& text);

// tweets -> tags -> counts per (tag, window) -> top `top` per window, printed to `print`; the
// count rows (tag, window_start, window_end, count) also go to `counts` when given, and the top
// rows (window_end, rank, tag, count) to `tops`.
Topology hashtagCountTopology(const HashtagCountOptions& o, std::ostream& print,
                              MemoryStorePtr counts = nullptr, MemoryStorePtr tops = nullptr);
void runHashtagCount(const HashtagCountOptions& o, std::ostream& print,
                     MemoryStorePtr counts = nullptr, MemoryStorePtr tops = nullptr);

// (tag, window start µs) -> count, computed directly from the generated tweets.
using TagWindowCounts = std::map<std::pair<std::string, int64_t>, int64_t>;
TagWindowCounts directTagWindowCounts(const HashtagCountOptions& o);

}  // namespace gale::examples
