#include "gale/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

namespace gale {
namespace {
std::atomic<int> gLevel{static_cast<int>(LogLevel::Info)};
std::mutex gMutex;
LogSink gSink;
const char* levelName(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "?";
}
}  // namespace

void log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < gLevel.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(gMutex);
  if (gSink) {
    gSink(level, message);
    return;
  }
  std::fprintf(stderr, "gale %s: %.*s\n", levelName(level), static_cast<int>(message.size()),
               message.data());
}

void setLogLevel(LogLevel level) { gLevel.store(static_cast<int>(level)); }

LogSink setLogSink(LogSink sink) {
  std::lock_guard lock(gMutex);
  std::swap(gSink, sink);
  return sink;
}

}  // namespace gale
