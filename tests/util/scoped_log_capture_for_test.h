// Captures gale's log lines for the lifetime of the object: installs a sink that keeps every line
// (so none reaches stderr) and puts the previous sink back on destruction. The log's repeat
// suppression is flushed at both ends, so a line another test logged a moment ago is not held
// back as a repeat here, and repeats held here are counted here, not in whoever logs next. A test that fails an
// ASSERT, throws or returns early still restores the sink, so no later line is written through a
// lambda into a finished test's locals. Lines may come from any thread (workers, links).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gale/core/log.h"

namespace gale::testing {

class ScopedLogCapture {
 public:
  struct Line {
    LogLevel level;
    std::string text;
  };

  ScopedLogCapture() {
    flushLogRepeats();
    previous_ = setLogSink([this](LogLevel level, std::string_view m) {
      std::lock_guard lk(mutex_);
      lines_.push_back(Line{level, std::string(m)});
      cv_.notify_all();
    });
  }
  // setLogSink takes the log's own mutex, which a line being written holds: once it returns, no
  // call into this object is under way or can start.
  ~ScopedLogCapture() {
    flushLogRepeats();
    setLogSink(std::move(previous_));
  }
  ScopedLogCapture(const ScopedLogCapture&) = delete;
  ScopedLogCapture& operator=(const ScopedLogCapture&) = delete;

  // The text of every line so far (of `level` only, if given), in the order written.
  std::vector<std::string> lines(std::optional<LogLevel> level = std::nullopt) const {
    std::lock_guard lk(mutex_);
    std::vector<std::string> out;
    for (const Line& l : lines_)
      if (!level || l.level == *level) out.push_back(l.text);
    return out;
  }

  // How many lines so far contain `part` (and are of `level`, if given).
  size_t count(std::string_view part, std::optional<LogLevel> level = std::nullopt) const {
    std::lock_guard lk(mutex_);
    return countLocked(part, level);
  }
  bool contains(std::string_view part) const { return count(part) > 0; }

  // Waits until at least `n` lines contain `part`; false if `timeout` passes first.
  bool waitFor(std::string_view part, size_t n = 1,
               std::chrono::milliseconds timeout = std::chrono::seconds(60),
               std::optional<LogLevel> level = std::nullopt) const {
    std::unique_lock lk(mutex_);
    return cv_.wait_for(lk, timeout, [&] { return countLocked(part, level) >= n; });
  }
  // The same for lines that begin with `prefix`: for a test whose phrase could also appear
  // quoted inside another line (an error that carries a link's message, say).
  bool waitForLinesStartingWith(std::string_view prefix, size_t n,
                                std::chrono::milliseconds timeout) const {
    std::unique_lock lk(mutex_);
    return cv_.wait_for(lk, timeout, [&] {
      size_t k = 0;
      for (const Line& l : lines_) k += std::string_view(l.text).starts_with(prefix);
      return k >= n;
    });
  }

 private:
  size_t countLocked(std::string_view part, std::optional<LogLevel> level) const {
    size_t n = 0;
    for (const Line& l : lines_)
      n += (!level || l.level == *level) && l.text.find(part) != std::string::npos;
    return n;
  }

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::vector<Line> lines_;
  LogSink previous_;
};

}  // namespace gale::testing
