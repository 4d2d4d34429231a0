// A small SVG well-formedness check for the tests: every tag closes in order, attributes are
// quoted, one root <svg>. Enough to catch a broken writer without an XML library.
#pragma once

#include <regex>
#include <stack>
#include <string>

namespace gale::compare {

inline bool wellFormedSvg(const std::string& s, std::string* why) {
  std::stack<std::string> open;
  size_t i = s.find("<svg");
  if (i == std::string::npos) {
    *why = "no <svg> element";
    return false;
  }
  std::regex attr(R"(^\s*[A-Za-z_:][-A-Za-z0-9_:.]*\s*=\s*"[^"<]*")");
  bool sawRoot = false;
  while ((i = s.find('<', i)) != std::string::npos) {
    size_t j = s.find('>', i);
    if (j == std::string::npos) {
      *why = "unterminated tag";
      return false;
    }
    std::string tag = s.substr(i + 1, j - i - 1);
    i = j + 1;
    if (tag.empty()) {
      *why = "empty tag";
      return false;
    }
    if (tag[0] == '/') {
      if (open.empty() || open.top() != tag.substr(1)) {
        *why = "mismatched </" + tag.substr(1) + ">";
        return false;
      }
      open.pop();
      continue;
    }
    bool selfClosing = tag.back() == '/';
    if (selfClosing) tag.pop_back();
    size_t sp = tag.find_first_of(" \n\t");
    std::string name = tag.substr(0, sp);
    std::string rest = sp == std::string::npos ? "" : tag.substr(sp);
    while (!rest.empty() && rest.find_first_not_of(" \n\t") != std::string::npos) {
      std::smatch m;
      if (!std::regex_search(rest, m, attr)) {
        *why = "bad attribute in <" + name + ">: " + rest;
        return false;
      }
      rest = m.suffix();
    }
    if (!sawRoot) {
      if (name != "svg") {
        *why = "root is <" + name + ">";
        return false;
      }
      sawRoot = true;
    }
    if (!selfClosing) open.push(name);
  }
  if (!open.empty()) {
    *why = "<" + open.top() + "> is never closed";
    return false;
  }
  return true;
}

}  // namespace gale::compare
