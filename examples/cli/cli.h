// The command line of gale's examples and tools: CLI11 (Debian libcli11-dev), one exit-code rule.
//
// Each program declares its options in one function (`defineOptions`) next to its main and then
// calls parseCommandLine. --help prints the options and exits 0; a bad command line (unknown
// option, missing or malformed value, value out of range) prints CLI11's message naming the
// option and exits 2, instead of an uncaught std::stoll exception aborting the program.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>

#include <CLI/CLI.hpp>

namespace gale::examples {

inline constexpr int kBadCommandLine = 2;

// Parses argv. Returns nullopt when the program should go on, otherwise the exit code to return
// from main (0 after --help, kBadCommandLine after an error, whose message is on stderr).
inline std::optional<int> parseCommandLine(CLI::App& app, int argc, char** argv) {
  // Errors start with the program's name, as its other messages do.
  std::string name = argc > 0 ? argv[0] : "";
  name = name.substr(name.rfind('/') + 1);
  app.failure_message([name](const CLI::App*, const CLI::Error& e) {
    return name + ": " + e.what() + "\nRun with --help for more information.\n";
  });
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    // exit() prints the help (stdout) or the error and a pointer to --help (stderr).
    return app.exit(e) == 0 ? 0 : kBadCommandLine;
  }
}

// A number of type T within [min, max], checked on the text before CLI11 converts it: CLI11's own
// conversion lets an integer too large for T through (clamped), and its PositiveNumber validator
// answers "abc" with a range up to DBL_MAX. Integers must be whole decimal numbers; doubles finite.
template <typename T>
CLI::Validator number(T min, T max = std::numeric_limits<T>::max(), bool minExclusive = false) {
  std::string kind = std::is_integral_v<T> ? "an integer" : "a number";
  std::string range = (minExclusive ? "> " : ">= ") + CLI::detail::to_string(min);
  std::string shown = range;  // in --help, after the type
  if (max != std::numeric_limits<T>::max()) {
    range += " and <= " + CLI::detail::to_string(max);
    shown = CLI::detail::to_string(min) + ".." + CLI::detail::to_string(max);
  } else if ((minExclusive && min == T{0}) || (!minExclusive && std::is_integral_v<T> && min == T{1})) {
    shown = "POSITIVE";
  } else if (!minExclusive && min == T{0}) {
    shown = "NON-NEGATIVE";
  }
  return CLI::Validator(
      [=](const std::string& s) -> std::string {
        T v{};
        bool ok = false;
        if constexpr (std::is_integral_v<T>) {
          auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
          if (ec == std::errc::result_out_of_range) return "'" + s + "' is out of range";
          ok = ec == std::errc() && end == s.data() + s.size();
        } else {
          char* end = nullptr;
          v = static_cast<T>(std::strtod(s.c_str(), &end));
          ok = !s.empty() && end == s.c_str() + s.size() && std::isfinite(v);
        }
        if (!ok) return "'" + s + "' is not " + kind;
        if (v < min || (minExclusive && v == min) || v > max)
          return "must be " + range + ", got " + s;
        return {};
      },
      shown);
}
// Integers >= 1; doubles > 0.
template <typename T>
CLI::Validator positive() {
  if constexpr (std::is_integral_v<T>) return number<T>(1);
  else return number<T>(0, std::numeric_limits<T>::max(), true);
}

// A "host:port" value with a port in 1..65535 (word_count --socket).
inline const CLI::Validator& hostPort() {
  static const CLI::Validator v(
      [](const std::string& s) -> std::string {
        auto colon = s.rfind(':');
        if (colon == std::string::npos || colon == 0)
          return "wants host:port, e.g. localhost:9999, got '" + s + "'";
        std::string port = s.substr(colon + 1);
        int p = 0;
        if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
            (p = std::stoi(port)) < 1 || p > 65535)
          return "port must be 1..65535, got '" + port + "'";
        return {};
      },
      "HOST:PORT");
  return v;
}

}  // namespace gale::examples
