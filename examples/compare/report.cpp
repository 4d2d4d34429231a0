#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gale/core/xml_escape.h"

namespace gale::compare {

void ResultRow::setLatency(const Histogram& h) {
  latency = h;
  samples = h.count();
  p50 = h.percentile(0.50);
  p90 = h.percentile(0.90);
  p99 = h.percentile(0.99);
  p999 = h.percentile(0.999);
  max = h.max();
}

std::string loadLabel(double r) {
  if (r <= 0) return "max";
  char buf[32];
  if (r >= 1e6)
    std::snprintf(buf, sizeof buf, "%gM/s", r / 1e6);
  else if (r >= 1e3)
    std::snprintf(buf, sizeof buf, "%gK/s", r / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%g/s", r);
  return buf;
}

std::string formatNanos(int64_t ns) {
  char buf[32];
  double v = static_cast<double>(ns);
  if (ns < 1000)
    std::snprintf(buf, sizeof buf, "%lld ns", static_cast<long long>(ns));
  else if (ns < 1000000)
    std::snprintf(buf, sizeof buf, "%.0f µs", v / 1e3);
  else if (ns < 1000000000)
    std::snprintf(buf, sizeof buf, "%.1f ms", v / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2f s", v / 1e9);
  return buf;
}

namespace {
std::string rate(double r) {
  char buf[32];
  if (r >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2f M/s", r / 1e6);
  else if (r >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1f K/s", r / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f /s", r);
  return buf;
}

// Pads by display width (µ is two bytes but one column).
std::string pad(const std::string& s, size_t width, bool right) {
  size_t cols = 0;
  for (unsigned char c : s) cols += (c & 0xC0) != 0x80;
  if (cols >= width) return s;
  std::string fill(width - cols, ' ');
  return right ? fill + s : s + fill;
}

// A JSON string, quotes included (nlohmann's escaping; bytes that are not UTF-8 become U+FFFD).
std::string jsonString(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

void writeTable(std::ostream& out, const std::vector<ResultRow>& rows) {
  size_t pw = 10;  // the pipeline column: as wide as the longest name ("kafka-transform")
  for (const auto& r : rows) pw = std::max(pw, r.pipeline.size());
  const std::vector<std::pair<std::string, size_t>> cols = {
      {"pipeline", pw}, {"mode", 20}, {"offered", 9}, {"throughput", 12}, {"p50", 9},
      {"p90", 9},       {"p99", 9},   {"p99.9", 9},   {"max", 9},         {"", 0}};
  for (auto& [name, w] : cols) out << pad(name, w, false) << (w ? " " : "");
  out << "\n";
  for (const auto& r : rows) {
    out << pad(r.pipeline, pw, false) << " " << pad(r.mode, 20, false) << " "
        << pad(loadLabel(r.offeredPerSec), 9, false) << " " << pad(rate(r.throughput), 12, true)
        << " ";
    // No sample: nothing became visible while measuring (e.g. no batch ended), not "0 ns".
    auto lat = [&](int64_t v) { return r.samples ? formatNanos(v) : std::string("n/a"); };
    out << pad(lat(r.p50), 9, true) << " " << pad(lat(r.p90), 9, true) << " "
        << pad(lat(r.p99), 9, true) << " " << pad(lat(r.p999), 9, true) << " "
        << pad(lat(r.max), 9, true);
    if (!r.sustained) out << "  NOT SUSTAINED (fell behind the offered load)";
    out << "\n";
  }
}

void writeCsv(std::ostream& out, const std::vector<ResultRow>& rows) {
  out << "pipeline,mode,knobs,offered_per_s,seconds,records,throughput_per_s,sustained,"
         "latency_kind,latency_offset_ns,samples,p50_ns,p90_ns,p99_ns,p999_ns,max_ns\n";
  for (const auto& r : rows) {
    out << r.pipeline << "," << r.mode << ",\"" << r.knobs << "\"," << r.offeredPerSec << ","
        << r.seconds << "," << r.records << "," << std::fixed << std::setprecision(1)
        << r.throughput << std::defaultfloat << "," << (r.sustained ? "true" : "false") << ","
        << r.latencyKind << "," << r.latencyOffsetNanos << "," << r.samples << "," << r.p50
        << "," << r.p90 << "," << r.p99 << "," << r.p999 << "," << r.max << "\n";
  }
}

void writeJson(std::ostream& out, const std::vector<ResultRow>& rows) {
  out << "[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    out << "  {\"pipeline\": " << jsonString(r.pipeline) << ", \"mode\": " << jsonString(r.mode)
        << ", \"knobs\": " << jsonString(r.knobs) << ", \"offered_per_s\": " << r.offeredPerSec
        << ", \"seconds\": " << r.seconds << ", \"records\": " << r.records
        << ", \"throughput_per_s\": " << std::fixed << std::setprecision(1) << r.throughput
        << std::defaultfloat << ", \"sustained\": " << (r.sustained ? "true" : "false")
        << ", \"latency_kind\": " << jsonString(r.latencyKind)
        << ", \"latency_offset_ns\": " << r.latencyOffsetNanos << ", \"samples\": " << r.samples
        << ", \"p50_ns\": " << r.p50 << ", \"p90_ns\": " << r.p90 << ", \"p99_ns\": " << r.p99
        << ", \"p999_ns\": " << r.p999 << ", \"max_ns\": " << r.max << "}"
        << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "]\n";
}

namespace {
// The room a legend entry takes: swatch, gap, text, and 24 px before the next entry.
double legendWidth(const std::string& mode) { return 18 + 7.0 * mode.size() + 24; }
}  // namespace

void writeSvgChart(std::ostream& out, const std::vector<ResultRow>& rows,
                   const std::string& title) {
  // Groups: offered loads in first-seen order; colours: modes in first-seen order.
  std::vector<std::string> loads, modes;
  for (const auto& r : rows) {
    std::string l = r.pipeline + " @ " + loadLabel(r.offeredPerSec);
    if (std::find(loads.begin(), loads.end(), l) == loads.end()) loads.push_back(l);
    if (std::find(modes.begin(), modes.end(), r.mode) == modes.end()) modes.push_back(r.mode);
  }
  const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                           "#9467bd", "#8c564b", "#e377c2", "#17becf"};
  const double left = 80, right = 30, top = 60, bottom = 90;
  const double barW = 18, gap = 6, groupGap = 36;
  double groupW = modes.size() * (barW + gap) - gap;
  double plotW = std::max(400.0, loads.size() * (groupW + groupGap) + groupGap);
  double plotH = 380;
  double width = left + plotW + right;
  // Legend entries (a 12 px swatch and the mode's name, ~7 px per character) flow left to right
  // and wrap at the chart's right edge, so every one of them is inside the picture.
  std::vector<std::pair<double, int>> legend;  // x, row
  for (size_t m = 0, row = 0; m < modes.size(); ++m) {
    double x = legend.empty() ? left : legend.back().first + legendWidth(modes[m - 1]);
    if (x > left && x + legendWidth(modes[m]) - 24 > width - right) {
      x = left;
      ++row;
    }
    legend.push_back({x, static_cast<int>(row)});
  }
  double height = top + plotH + bottom + 20 * (legend.empty() ? 0 : legend.back().second + 1);

  // Log scale over the data's range, in decades.
  int64_t lo = INT64_MAX, hi = 1;
  for (const auto& r : rows) {
    if (r.samples == 0) continue;
    lo = std::min<int64_t>(lo, std::max<int64_t>(1, r.p50));
    hi = std::max<int64_t>(hi, std::max<int64_t>(1, r.max));
  }
  if (lo == INT64_MAX) lo = 1000;
  double dLo = std::floor(std::log10(static_cast<double>(lo)));
  double dHi = std::ceil(std::log10(static_cast<double>(hi)));
  if (dHi <= dLo) dHi = dLo + 1;
  auto y = [&](int64_t v) {
    double l = std::log10(std::max<double>(1.0, static_cast<double>(v)));
    l = std::clamp(l, dLo, dHi);
    return top + plotH - (l - dLo) / (dHi - dLo) * plotH;
  };

  out << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << " " << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">"
      << xmlEscape(title) << "</text>\n"
      << "<text x=\"" << width / 2
      << "\" y=\"42\" text-anchor=\"middle\" fill=\"#555\">bar: p50 to p99, tick: p90, "
         "whisker: p99.9, dot: max (log scale)</text>\n";
  // Grid and y labels per decade.
  for (int d = static_cast<int>(dLo); d <= static_cast<int>(dHi); ++d) {
    auto v = static_cast<int64_t>(std::pow(10.0, d));
    double yy = y(v);
    out << "<line x1=\"" << left << "\" y1=\"" << yy << "\" x2=\"" << left + plotW << "\" y2=\""
        << yy << "\" stroke=\"#ddd\"/>\n"
        << "<text x=\"" << left - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">"
        << xmlEscape(formatNanos(v)) << "</text>\n";
  }
  out << "<text x=\"18\" y=\"" << top + plotH / 2 << "\" transform=\"rotate(-90 18 "
      << top + plotH / 2 << ")\" text-anchor=\"middle\">end-to-end latency</text>\n";
  out << "<line x1=\"" << left << "\" y1=\"" << top + plotH << "\" x2=\"" << left + plotW
      << "\" y2=\"" << top + plotH << "\" stroke=\"black\"/>\n";

  for (size_t g = 0; g < loads.size(); ++g) {
    double gx = left + groupGap + g * (groupW + groupGap);
    out << "<text x=\"" << gx + groupW / 2 << "\" y=\"" << top + plotH + 18
        << "\" text-anchor=\"middle\">" << xmlEscape(loads[g]) << "</text>\n";
    for (const auto& r : rows) {
      if (r.pipeline + " @ " + loadLabel(r.offeredPerSec) != loads[g] || r.samples == 0) continue;
      size_t m = std::find(modes.begin(), modes.end(), r.mode) - modes.begin();
      double x = gx + m * (barW + gap);
      const char* c = palette[m % 8];
      double y50 = y(r.p50), y99 = y(r.p99), y999 = y(r.p999), yMax = y(r.max), y90 = y(r.p90);
      out << "<g><title>" << xmlEscape(r.mode + " @ " + loadLabel(r.offeredPerSec)) << ": p50 "
          << xmlEscape(formatNanos(r.p50)) << ", p90 " << xmlEscape(formatNanos(r.p90))
          << ", p99 " << xmlEscape(formatNanos(r.p99)) << ", p99.9 "
          << xmlEscape(formatNanos(r.p999)) << ", max " << xmlEscape(formatNanos(r.max))
          << (r.sustained ? "" : " (NOT SUSTAINED)") << "</title>\n"
          << "<rect x=\"" << x << "\" y=\"" << y99 << "\" width=\"" << barW << "\" height=\""
          << std::max(1.0, y50 - y99) << "\" fill=\"" << c << "\""
          << (r.sustained ? "" : " fill-opacity=\"0.35\" stroke=\"black\" stroke-dasharray=\"3 2\"")
          << "/>\n"
          << "<line x1=\"" << x << "\" y1=\"" << y90 << "\" x2=\"" << x + barW << "\" y2=\"" << y90
          << "\" stroke=\"white\"/>\n"
          << "<line x1=\"" << x + barW / 2 << "\" y1=\"" << y99 << "\" x2=\"" << x + barW / 2
          << "\" y2=\"" << y999 << "\" stroke=\"" << c << "\"/>\n"
          << "<line x1=\"" << x + 3 << "\" y1=\"" << y999 << "\" x2=\"" << x + barW - 3
          << "\" y2=\"" << y999 << "\" stroke=\"" << c << "\"/>\n"
          << "<circle cx=\"" << x + barW / 2 << "\" cy=\"" << yMax << "\" r=\"2.5\" fill=\"" << c
          << "\"/>\n";
      if (!r.sustained)
        out << "<text x=\"" << x + barW / 2 << "\" y=\"" << yMax - 6
            << "\" text-anchor=\"middle\" fill=\"#c00\">!</text>\n";
      out << "</g>\n";
    }
  }
  // Legend.
  double ly = top + plotH + 44;
  for (size_t m = 0; m < modes.size(); ++m) {
    double lx = legend[m].first;
    double yy = ly + legend[m].second * 20;
    out << "<rect x=\"" << lx << "\" y=\"" << yy - 10 << "\" width=\"12\" height=\"12\" fill=\""
        << palette[m % 8] << "\"/>\n"
        << "<text x=\"" << lx + 18 << "\" y=\"" << yy << "\">" << xmlEscape(modes[m])
        << "</text>\n";
  }
  out << "<text x=\"" << left << "\" y=\"" << height - 8
      << "\" fill=\"#c00\">! = the mode could not sustain the offered load</text>\n";
  out << "</svg>\n";
}

}  // namespace gale::compare
