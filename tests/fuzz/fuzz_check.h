// What gale's fuzz targets share: how a harness reports a broken property (a crash libFuzzer
// records with the input), and value equality that tells NaNs and -0.0 apart by their bits.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "gale/core/value.h"

namespace gale::fuzz {

// A property the harness checks failed: say which and abort, so libFuzzer keeps the input as a
// crash file and the replay test (the normal build) fails on it.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "gale fuzz property failed: %s\n", what);
  std::abort();
}
inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

inline bool sameValue(const Value& a, const Value& b) {
  if (a.index() != b.index()) return false;
  if (auto* d = std::get_if<double>(&a)) return std::memcmp(d, &std::get<double>(b), sizeof(double)) == 0;
  return a == b;
}
inline bool sameValues(const Values& a, const Values& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!sameValue(a[i], b[i])) return false;
  return true;
}

}  // namespace gale::fuzz
