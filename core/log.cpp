#include "gale/core/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <unordered_map>

namespace gale {
namespace {
std::atomic<int> gLevel{static_cast<int>(LogLevel::Info)};
std::mutex gMutex;
LogSink gSink;

// Repeats of one line (same level and text) within the window are counted instead of written;
// the next one written after the window carries the count. The table is bounded: when it is
// full, the counts it holds are written out and it starts over.
constexpr size_t kMaxTracked = 1024;
struct Repeat {
  int64_t windowStart = 0;  // steady ns of the last line written
  uint64_t suppressed = 0;
};
std::unordered_map<std::string, Repeat> gRepeats;  // key: level byte + text
int64_t gWindowNanos = 1'000'000'000;

const char* levelName(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "?";
}

int64_t steadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Under gMutex.
void write(LogLevel level, std::string_view message) {
  if (gSink) {
    gSink(level, message);
    return;
  }
  std::fprintf(stderr, "gale %s: %.*s\n", levelName(level), static_cast<int>(message.size()),
               message.data());
}

std::string withCount(std::string_view message, uint64_t n) {
  return std::string(message) + " (repeated " + std::to_string(n) + " times)";
}

// Under gMutex: writes the counts still held and forgets every line.
void flushRepeatsLocked() {
  for (auto& [key, r] : gRepeats)
    if (r.suppressed)
      write(static_cast<LogLevel>(key[0]), withCount(std::string_view(key).substr(1), r.suppressed));
  gRepeats.clear();
}
}  // namespace

void log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) < gLevel.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(gMutex);
  if (gWindowNanos <= 0) return write(level, message);
  std::string key;
  key.reserve(message.size() + 1);
  key.push_back(static_cast<char>(level));
  key.append(message);
  int64_t now = steadyNanos();
  auto it = gRepeats.find(key);
  if (it != gRepeats.end()) {
    Repeat& r = it->second;
    if (now - r.windowStart < gWindowNanos) {
      ++r.suppressed;
      return;
    }
    uint64_t n = r.suppressed;
    r = Repeat{now, 0};
    if (n) return write(level, withCount(message, n));
    return write(level, message);
  }
  if (gRepeats.size() >= kMaxTracked) flushRepeatsLocked();
  gRepeats.emplace(std::move(key), Repeat{now, 0});
  write(level, message);
}

void setLogLevel(LogLevel level) { gLevel.store(static_cast<int>(level)); }
LogLevel logLevel() { return static_cast<LogLevel>(gLevel.load()); }

LogSink setLogSink(LogSink sink) {
  std::lock_guard lock(gMutex);
  std::swap(gSink, sink);
  return sink;
}

void setLogRepeatWindow(std::chrono::nanoseconds window) {
  std::lock_guard lock(gMutex);
  gWindowNanos = window.count();
}

void flushLogRepeats() {
  std::lock_guard lock(gMutex);
  flushRepeatsLocked();
}

}  // namespace gale
