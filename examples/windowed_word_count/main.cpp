// windowed_word_count: the continuous-mode windowed word count (Flink's / Spark's classic):
// sentences with event times, split into words, counted per word in 5 s tumbling event-time
// windows (append mode: one final row per word and window), checked against a direct count.
//
//   windowed_word_count [--sentences N] [--update] [--ui PORT]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cli.h"
#include "example_ui.h"
#include "gale/topology/runtime.h"
#include "windowed_word_count.h"

using namespace gale;
using namespace gale::examples;

namespace {

int run(const WindowedWordCountOptions& o, const UiFlags& uiFlags) {
  auto results = std::make_shared<MemoryStore>();
  auto late = std::make_shared<MemoryStore>();
  Topology t = windowedWordCountTopology(o, results, late);
  auto server = startUi(uiFlags);
  auto start = std::chrono::steady_clock::now();
  auto rt = runContinuous(t, Continuous{});
  UiAttachment attached(server.get(), rt, "windowed word count");
  rt.waitUntilDone();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  WindowCounts got = collectWindowCounts(*results);
  WindowCounts want = expectedWindowCounts(o);
  std::printf("%lld sentences (%lld s of event time) in %.2f s: %zu result rows, %zu late\n",
              static_cast<long long>(o.sentences),
              static_cast<long long>(o.sentences * o.eventTimeStep.count() / 1000000), s,
              results->size(), late->size());
  int shown = 0;
  for (const auto& [key, n] : got) {
    if (n < 50 || shown >= 8) continue;
    std::printf("  [%6.1f s, +5 s)  %-10s %lld\n", key.second / 1e6, key.first.c_str(),
                static_cast<long long>(n));
    ++shown;
  }
  bool same = got == want;
  std::printf("equal to a direct count of the same input: %s\n", same ? "yes" : "NO");
  std::fflush(stdout);
  keepUiUntilInterrupted(server.get());
  return same ? 0 : 1;
}

// Every option of windowed_word_count, in one place.
void defineOptions(CLI::App& app, WindowedWordCountOptions& o, UiFlags& ui) {
  app.description(
      "windowed_word_count: words counted in 5 s tumbling event-time windows (continuous mode), "
      "checked against a direct count.");
  app.add_option("--sentences", o.sentences, "generated sentences, 1 ms of event time apart")
      ->capture_default_str()
      ->check(gale::examples::positive<int64_t>());
  app.add_flag_callback("--update", [&o] { o.mode = OutputMode::Update; },
                        "update output mode (a row per change) instead of append");
  addUiOptions(app, ui);
}

}  // namespace

int main(int argc, char** argv) {
  WindowedWordCountOptions o;
  UiFlags ui;
  CLI::App app;
  defineOptions(app, o, ui);
  if (auto rc = parseCommandLine(app, argc, argv)) return *rc;
  try {
    return run(o, ui);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "windowed_word_count: %s\n", e.what());
    return 1;
  }
}
