// The micro-batch job's offset log and its offsets in the state store's form (offset_log.h).
#include "offset_log.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>

#include "gale/state/state_store.h"

namespace gale {

SourceOffsets toStateOffsets(const Offsets& o) {
  SourceOffsets out;
  for (const auto& [name, parts] : o) {
    auto& m = out[name];
    for (size_t p = 0; p < parts.size(); ++p) m[static_cast<int>(p)] = parts[p];
  }
  return out;
}

Offsets fromStateOffsets(const SourceOffsets& o) {
  Offsets out;
  for (const auto& [name, parts] : o) {
    auto& v = out[name];
    for (const auto& [p, off] : parts) {
      if (p < 0) continue;
      if (static_cast<size_t>(p) >= v.size()) v.resize(p + 1, 0);
      v[p] = off;
    }
  }
  return out;
}


std::string offsetLogKey(uint64_t txid) {
  char buf[24];
  snprintf(buf, sizeof buf, "%020llu", static_cast<unsigned long long>(txid));
  return buf;
}

std::string encodeOffsets(const Offsets& o, bool endOfInput) {
  std::string out = endOfInput ? "#end-of-input\n" : "";
  for (const auto& [name, parts] : o) {
    out += name;
    out += '\t';
    for (size_t p = 0; p < parts.size(); ++p) {
      if (p) out += ',';
      out += std::to_string(parts[p]);
    }
    out += '\n';
  }
  return out;
}

LoggedPlan decodeOffsets(std::string_view s) {
  LoggedPlan plan;
  Offsets& out = plan.end;
  while (!s.empty()) {
    size_t nl = s.find('\n');
    std::string_view line = s.substr(0, nl);
    s = nl == std::string_view::npos ? std::string_view{} : s.substr(nl + 1);
    if (line == "#end-of-input") {
      plan.endOfInput = true;
      continue;
    }
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) throw StateError("offset log: a line without a tab");
    auto& v = out[std::string(line.substr(0, tab))];
    std::string_view rest = line.substr(tab + 1);
    while (!rest.empty()) {
      size_t c = rest.find(',');
      v.push_back(std::stoll(std::string(rest.substr(0, c))));
      rest = c == std::string_view::npos ? std::string_view{} : rest.substr(c + 1);
    }
  }
  return plan;
}

Offsets minOffsets(const Offsets& a, const Offsets& b) {
  Offsets out = a;
  for (const auto& [name, parts] : b) {
    auto& v = out[name];
    if (v.size() < parts.size()) v.resize(parts.size(), INT64_MAX);
    for (size_t p = 0; p < parts.size(); ++p) v[p] = std::min(v[p], parts[p]);
  }
  return out;
}

}  // namespace gale
