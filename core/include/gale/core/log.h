// Minimal logging: one line per event to stderr (or a sink a test installs). A line repeated
// (same level and text) within the repeat window is counted, not written: a poison record replayed
// thousands of times costs one line per window, "... (repeated 1234 times)".
#pragma once

#include <chrono>
#include <functional>
#include <string_view>

namespace gale {

enum class LogLevel { Debug = 0, Info, Warn, Error };

void log(LogLevel level, std::string_view message);
inline void logInfo(std::string_view m) { log(LogLevel::Info, m); }
inline void logWarn(std::string_view m) { log(LogLevel::Warn, m); }
inline void logError(std::string_view m) { log(LogLevel::Error, m); }

void setLogLevel(LogLevel level);  // lines below it are not written; from any thread
LogLevel logLevel();
// Replaces the sink (nullptr restores stderr). Returns the previous sink.
using LogSink = std::function<void(LogLevel, std::string_view)>;
LogSink setLogSink(LogSink sink);

// Within `window` (1 s by default) of writing a line, identical lines are only counted; the first
// identical line after the window is written with " (repeated N times)". Zero: write every line.
void setLogRepeatWindow(std::chrono::nanoseconds window);
// Writes the counts of lines still held back (at shutdown, or in tests) and forgets them.
void flushLogRepeats();

}  // namespace gale
