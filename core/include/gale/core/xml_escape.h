// Text for an XML or HTML page (gale-compare's SVG charts, the cluster's status page): the
// characters that would end an element or an attribute become entities.
#pragma once

#include <string>
#include <string_view>

namespace gale {

inline std::string xmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += ch;
    }
  }
  return out;
}

}  // namespace gale
