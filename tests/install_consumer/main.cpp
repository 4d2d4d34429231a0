// Built against an installed gale by tests/install_test.sh: proves that the installed headers,
// libraries and package config are enough to write and run a topology, as a user would.
#include <cctype>
#include <cstdio>
#include <memory>

#include "gale/connectors/generator_source.h"
#include "gale/connectors/memory_sink.h"
#include "gale/core/stateless.h"
#include "gale/topology/runtime.h"

int main() {
  gale::SentenceSource::Options options;
  options.total = 100;
  auto store = std::make_shared<gale::MemoryStore>();

  gale::TopologyBuilder b;
  b.setSpout("sentences", std::make_shared<gale::SentenceSource>(options), 1);
  b.setBolt("split", gale::splitWords("sentence"), 2).shuffleGrouping("sentences");
  b.setBolt("sink", gale::MemorySink(store), 1).globalGrouping("split");
  gale::runContinuous(b.build()).waitUntilDone();

  size_t expected = 0;
  for (int64_t g = 0; g < options.total; ++g) {
    const std::string& s = gale::SentenceSource::sentenceAt(g);
    bool inWord = false;
    for (char c : s) {
      bool w = !std::isspace(static_cast<unsigned char>(c));
      if (w && !inWord) ++expected;
      inWord = w;
    }
  }
  size_t got = store->size();
  std::printf("consumer: %zu words from 100 sentences (expected %zu)\n", got, expected);
  return got == expected ? 0 : 1;
}
