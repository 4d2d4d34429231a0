// Built against an installed gale by tests/install_test.sh: proves that the installed headers,
// libraries and package config are enough to write a program.
#include <cstdio>

#include "gale/core/histogram.h"
#include "gale/core/tuple.h"

int main() {
  auto schema = gale::makeSchema("words", "default", gale::Fields{"word", "count"});
  gale::Tuple t(schema, {std::string("gale"), int64_t{3}});
  gale::Histogram h;
  h.record(t.getInt("count"));
  if (t.getString("word") != "gale" || h.count() != 1) return 1;
  std::printf("consumer ok: %s\n", t.toString().c_str());
  return 0;
}
