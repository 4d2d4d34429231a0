#include "gale/core/stateless.h"

#include <stdexcept>

namespace gale {

namespace {
void checkRow(const Fields& out, const Values& row, const char* op) {
  std::string why = out.mismatch(row);
  if (!why.empty()) {
    throw std::invalid_argument(std::string(op) + " produced a row that does not fit its declared "
                                "fields " + out.toString() + ": " + why);
  }
}
}  // namespace

Map::Map(Fields out, std::function<Values(const Tuple&)> fn) : out_(std::move(out)), fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("Map needs a function");
}
void Map::onTuple(const Tuple& t, Emitter& out) {
  Values row = fn_(t);
  checkRow(out_, row, "Map");
  out.emit(std::move(row));
}

Filter::Filter(Fields fields, std::function<bool(const Tuple&)> pred)
    : fields_(std::move(fields)), pred_(std::move(pred)) {
  if (!pred_) throw std::invalid_argument("Filter needs a predicate");
}
void Filter::onTuple(const Tuple& t, Emitter& out) {
  if (pred_(t)) out.forward(t);
}

FlatMap::FlatMap(Fields out, Fn fn) : out_(std::move(out)), fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("FlatMap needs a function");
}
void FlatMap::onTuple(const Tuple& t, Emitter& out) {
  rows_.clear();
  fn_(t, rows_);
  for (auto& r : rows_) {
    checkRow(out_, r, "FlatMap");
    out.emit(std::move(r));
  }
  rows_.clear();
}

Select::Select(std::vector<std::string> fields) : fields_(std::move(fields)) {
  if (fields_.empty()) throw std::invalid_argument("Select needs at least one field");
}
void Select::onTuple(const Tuple& t, Emitter& out) {
  if (t.schema().get() != schema_ || !schema_) {
    idx_.clear();
    for (const auto& f : fields_) {
      int i = t.fields().indexOf(f);
      if (i < 0) {
        throw std::invalid_argument("Select: stream '" + t.sourceComponent() + ":" +
                                    t.sourceStream() + "' has no field '" + f + "' (fields are " +
                                    t.fields().toString() + ")");
      }
      idx_.push_back(i);
    }
    schema_ = t.schema().get();
  }
  Values row;
  row.reserve(idx_.size());
  for (int i : idx_) row.push_back(t.values().at(i));
  out.emit(std::move(row));
}

WithColumn::WithColumn(Fields input, std::string name, std::function<Value(const Tuple&)> fn)
    : fn_(std::move(fn)) {
  if (!fn_) throw std::invalid_argument("WithColumn needs a function");
  if (name.empty()) throw std::invalid_argument("WithColumn needs a field name");
  replace_ = input.indexOf(name);
  std::vector<FieldSpec> specs = input.specs();
  if (replace_ >= 0) specs[replace_] = {name, Type::Any};
  else specs.push_back({name, Type::Any});
  out_ = Fields(std::move(specs));
}
void WithColumn::onTuple(const Tuple& t, Emitter& out) {
  Values row = t.values();
  Value v = fn_(t);
  if (replace_ >= 0) row.at(replace_) = std::move(v);
  else row.push_back(std::move(v));
  checkRow(out_, row, "WithColumn");
  out.emit(std::move(row));
}

FlatMap splitWords(std::string field, std::string wordField, std::vector<std::string> keep) {
  std::vector<std::string> names{wordField};
  names.insert(names.end(), keep.begin(), keep.end());
  return FlatMap(Fields(names), [field, keep](const Tuple& t, std::vector<Values>& rows) {
    const std::string& line = t.getString(field);
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) {
        Values row;
        row.reserve(1 + keep.size());
        row.emplace_back(line.substr(i, j - i));
        for (const auto& k : keep) row.push_back(t.get(k));
        rows.push_back(std::move(row));
      }
      i = j;
    }
  });
}

}  // namespace gale
