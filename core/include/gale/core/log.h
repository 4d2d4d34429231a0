// Minimal logging: one line per event to stderr (or a sink a test installs).
#pragma once

#include <functional>
#include <string_view>

namespace gale {

enum class LogLevel { Debug = 0, Info, Warn, Error };

void log(LogLevel level, std::string_view message);
inline void logInfo(std::string_view m) { log(LogLevel::Info, m); }
inline void logWarn(std::string_view m) { log(LogLevel::Warn, m); }
inline void logError(std::string_view m) { log(LogLevel::Error, m); }

void setLogLevel(LogLevel level);
// Replaces the sink (nullptr restores stderr). Returns the previous sink.
using LogSink = std::function<void(LogLevel, std::string_view)>;
LogSink setLogSink(LogSink sink);

}  // namespace gale
