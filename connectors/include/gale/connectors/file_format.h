// The line formats FileSource reads and FileSink writes.
#pragma once

namespace gale {

enum class FileFormat {
  Text,       // one value per line (FileSource: field "line"; FileSink: values joined by '\t')
  JsonLines,  // one flat JSON object per line
  Csv,        // a header line naming the columns, then one record per line
};

// The file name extension of a format, with the dot: ".txt", ".jsonl", ".csv".
inline const char* fileExtension(FileFormat f) {
  switch (f) {
    case FileFormat::Text: return ".txt";
    case FileFormat::JsonLines: return ".jsonl";
    case FileFormat::Csv: return ".csv";
  }
  return "";
}

}  // namespace gale
