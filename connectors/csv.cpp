#include "gale/connectors/csv.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace gale {

bool splitCsvLine(std::string_view line, std::vector<std::string>& fields, std::string& error) {
  size_t count = 0;
  auto next = [&]() -> std::string& {
    if (fields.size() <= count) fields.emplace_back();
    std::string& f = fields[count++];
    f.clear();
    return f;
  };
  size_t i = 0;
  for (;;) {
    std::string& f = next();
    if (i < line.size() && line[i] == '"') {
      const size_t open = i++;
      for (;;) {
        if (i >= line.size()) {
          error = "unterminated quoted field starting at column " + std::to_string(open + 1) +
                  " (fields spanning lines are not supported)";
          fields.resize(count);
          return false;
        }
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            f += '"';
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        f += line[i++];
      }
      if (i < line.size() && line[i] != ',') {
        error = "unexpected character after the closing quote at column " + std::to_string(i + 1);
        fields.resize(count);
        return false;
      }
    } else {
      const size_t comma = line.find(',', i);
      const size_t stop = comma == std::string_view::npos ? line.size() : comma;
      f.append(line.substr(i, stop - i));
      if (f.find('"') != std::string::npos) {
        error = "a quote inside an unquoted field (column " + std::to_string(i + 1) +
                "); quote the whole field and double the quote";
        fields.resize(count);
        return false;
      }
      i = stop;
    }
    if (i >= line.size()) break;
    ++i;  // the comma
  }
  fields.resize(count);
  return true;
}

bool parseTextValue(std::string_view text, Type type, Value& out, std::string& error) {
  if (text.empty() && type != Type::String && type != Type::Any) {
    out = std::monostate{};
    return true;
  }
  auto bad = [&](const char* what) {
    error = "\"" + std::string(text.substr(0, 64)) + "\" is not " + what;
    return false;
  };
  const char* b = text.data();
  const char* e = b + text.size();
  switch (type) {
    case Type::Int64:
    case Type::Timestamp: {
      int64_t v;
      auto r = std::from_chars(b, e, v);
      if (r.ec == std::errc::result_out_of_range) return bad("in the int64 range");
      if (r.ec != std::errc() || r.ptr != e) {
        return bad(type == Type::Int64 ? "an integer" : "a timestamp (integral microseconds)");
      }
      if (type == Type::Int64) out = v;
      else out = Timestamp{v};
      return true;
    }
    case Type::Double: {
      double v;
      auto r = std::from_chars(b, e, v);
      if (r.ec != std::errc() || r.ptr != e) return bad("a number");
      out = v;
      return true;
    }
    case Type::Bool:
      if (text == "true") out = true;
      else if (text == "false") out = false;
      else return bad("a boolean (true or false)");
      return true;
    case Type::Bytes: out = Bytes{std::string(text)}; return true;
    case Type::Null: return bad("null (the field is declared null)");
    default: out = std::string(text); return true;
  }
}

namespace {
void appendCsvField(std::string& out, std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += s;
    return;
  }
  out += '"';
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}
}  // namespace

void appendCsvLine(std::string& out, const Values& values) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    const Value& v = values[i];
    switch (typeOf(v)) {
      case Type::Null: break;
      case Type::String: appendCsvField(out, std::get<std::string>(v)); break;
      case Type::Bytes: appendCsvField(out, std::get<Bytes>(v).data); break;
      case Type::Timestamp: out += std::to_string(std::get<Timestamp>(v).micros); break;
      case Type::Double: {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof buf, std::get<double>(v));
        out.append(buf, r.ptr);
        break;
      }
      default: appendCsvField(out, toString(v));
    }
  }
}

void appendCsvHeader(std::string& out, const Fields& fields) {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    appendCsvField(out, fields[i].name);
  }
}

std::shared_ptr<StaticTable> readCsvTable(const std::string& path, const FieldSpec& key,
                                          const Fields& columns) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("readCsvTable: cannot read '" + path + "'");
  auto fail = [&](size_t line, const std::string& why) {
    throw std::runtime_error("readCsvTable: " + path + ":" + std::to_string(line) + ": " + why);
  };
  std::vector<std::string> cells, header;
  std::string text, error;
  size_t line = 0;
  if (!std::getline(in, text)) fail(1, "no header line");
  ++line;
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (!splitCsvLine(text, header, error)) fail(line, error);
  // Where each wanted column is in a line: the key first, then `columns` in order.
  std::vector<FieldSpec> wanted{key};
  for (size_t i = 0; i < columns.size(); ++i) wanted.push_back(columns[i]);
  std::vector<size_t> at;
  for (const auto& w : wanted) {
    auto it = std::find(header.begin(), header.end(), w.name);
    if (it == header.end()) fail(line, "the header has no column '" + w.name + "'");
    at.push_back(static_cast<size_t>(it - header.begin()));
  }
  auto table = std::make_shared<StaticTable>(columns);
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    if (!splitCsvLine(text, cells, error)) fail(line, error);
    if (cells.size() != header.size()) {
      fail(line, "the line has " + std::to_string(cells.size()) + " columns, the header has " +
                     std::to_string(header.size()));
    }
    Values row(wanted.size());
    for (size_t i = 0; i < wanted.size(); ++i) {
      if (!parseTextValue(cells[at[i]], wanted[i].type, row[i], error)) {
        fail(line, "column '" + wanted[i].name + "': " + error);
      }
    }
    Value k = std::move(row[0]);
    row.erase(row.begin());
    if (table->find(k)) fail(line, "the key " + toString(k) + " is already in the table");
    table->add(std::move(k), std::move(row));
  }
  return table;
}

}  // namespace gale
