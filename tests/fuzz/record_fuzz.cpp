// libFuzzer target: the checkpoint record reader (state/record_codec.h), through which every
// record gale reads back from LMDB goes. Input: a script byte count n, n script bytes choosing the
// reads (u8, u32, u64, i64, length-prefixed string, the rest, expectEnd), then the record.
// Properties: no crash or sanitizer report; a read either returns what the bytes say (checked
// against an independent little-endian decode) or throws StateError — never another exception,
// never a read past the record; the bytes consumed always add up.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "record_codec.h"

using namespace gale;

namespace {

uint64_t littleEndian(std::string_view s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(s[at + i])} << (8 * i);
  return v;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  size_t n = std::min<size_t>(data[0] % 32, size - 1);
  std::string_view script(reinterpret_cast<const char*>(data) + 1, n);
  std::string_view record(reinterpret_cast<const char*>(data) + 1 + n, size - 1 - n);
  RecordReader r(record, "fuzzed record");
  size_t at = 0;  // bytes consumed so far, by this harness's own count
  try {
    for (char op : script) {
      size_t left = record.size() - at;
      switch (static_cast<uint8_t>(op) % 7) {
        case 0:
          if (left < 1) {
            r.u8();
            fuzz::fail("u8 read past the end");
          }
          fuzz::check(r.u8() == littleEndian(record, at, 1), "u8");
          at += 1;
          break;
        case 1:
          if (left < 4) {
            r.u32();
            fuzz::fail("u32 read past the end");
          }
          fuzz::check(r.u32() == littleEndian(record, at, 4), "u32");
          at += 4;
          break;
        case 2:
          if (left < 8) {
            r.u64();
            fuzz::fail("u64 read past the end");
          }
          fuzz::check(r.u64() == littleEndian(record, at, 8), "u64");
          at += 8;
          break;
        case 3:
          if (left < 8) {
            r.i64();
            fuzz::fail("i64 read past the end");
          }
          fuzz::check(static_cast<uint64_t>(r.i64()) == littleEndian(record, at, 8), "i64");
          at += 8;
          break;
        case 4: {
          uint64_t len = left >= 4 ? littleEndian(record, at, 4) : 0;
          if (left < 4 || left - 4 < len) {
            r.str();
            fuzz::fail("str read past the end");
          }
          fuzz::check(r.str() == record.substr(at + 4, len), "str");
          at += 4 + len;
          break;
        }
        case 5:
          fuzz::check(r.rest() == record.substr(at), "rest");
          at = record.size();
          break;
        default:
          if (at != record.size()) {
            r.expectEnd();
            fuzz::fail("expectEnd accepted trailing bytes");
          }
          r.expectEnd();
      }
    }
  } catch (const StateError&) {
    // The expected way to refuse a record; anything else escapes and libFuzzer reports it.
  }
  return 0;
}
