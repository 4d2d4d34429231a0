// Slice arithmetic of the DStream sliding windows (reduceByKeyAndWindow, window): time is cut
// into slices of `slide`, aligned to the epoch; window k covers slices (k-n, k] for n =
// length / slide and ends at (k+1)*slide.
#pragma once

#include <cstdint>
#include <limits>

#include "gale/core/value.h"
#include "gale/core/watermark.h"

namespace gale::dstream {

inline int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && (a < 0)); }

// The last slice whose window is complete at watermark w: window k is complete when
// (k+1)*slide - 1 <= w.
inline int64_t readySlice(Timestamp w, int64_t slide) {
  if (w == kEndOfTime) return std::numeric_limits<int64_t>::max() - 1;
  return floorDiv(w.micros, slide) - ((w.micros + 1) % slide != 0 ? 1 : 0);
}

// The "late" stream of the event-time DStream operators: why, the tuple's event time, the
// watermark it missed, and its values (encodeValues).
inline Fields lateFields() {
  return Fields({FieldSpec{"reason", Type::String}, FieldSpec{"event_time", Type::Timestamp},
                 FieldSpec{"watermark", Type::Timestamp}, FieldSpec{"values", Type::Bytes}});
}

}  // namespace gale::dstream
