// KafkaSource's own work per record: N records (gale-compare's, with a "sent" header) produced
// into one partition of the in-process mock cluster, then read through ready() / read() /
// commit() in chunks of 64 on one thread, as a continuous-mode spout task reads them. Prints that
// thread's CPU time per record (CLOCK_THREAD_CPUTIME_ID: librdkafka's and the broker's threads
// are not counted, so other load on the machine hardly moves it). The mock keeps ~5 MB per
// partition: at most ~90 000 such records.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "gale/connectors/kafka_mock.h"
#include "gale/connectors/kafka_source.h"

using namespace gale;

namespace {

double threadCpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 80000;
  KafkaMockCluster mc(1);
  mc.createTopic("bench", 1);
  for (int i = 0; i < n; ++i) {
    std::string ad = "ad-" + std::to_string(i % 100);
    mc.produce("bench", 0, ad, "{\"ad\":\"" + ad + "\",\"event\":\"view\"}",
               {{"sent", "1732999999123456"}});
  }
  mc.flush();
  KafkaSource::Options o;
  o.bootstrapServers = mc.bootstraps();
  o.subscribe = {"bench"};
  o.startingOffsets = "earliest";
  o.endingOffsets = "latest";
  o.consumerProperties = {{"fetch.wait.max.ms", "1"}};
  KafkaSource src(o);
  SystemClock clock;
  src.open(clock);
  std::vector<SourceRecord> out;
  int64_t next = 0;
  double cpu = 0;  // only the calls that returned records: not the waits for fetches
  while (next < n) {
    const double t0 = threadCpuSeconds();
    int64_t to = src.ready(0);
    if (to <= next) continue;
    to = std::min<int64_t>(to, next + 64);
    out.clear();
    src.read(0, next, to, out);
    next = to;
    src.commit(0, next);
    cpu += threadCpuSeconds() - t0;
  }
  std::printf("%d records read through KafkaSource: %.0f ns CPU per record on the reading thread\n",
              n, cpu * 1e9 / n);
  src.close();
}
