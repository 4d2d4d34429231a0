// What a micro-batch job (job.cpp) writes about its batches besides their state: the offset log
// of batches cut but not yet committed (replayed exactly after a restart), and the committed
// offsets in the state store's form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gale/batch/coordinator.h"
#include "gale/state/state_store.h"

namespace gale {

// The offsets of a commit, per source and partition, as the state store keeps them.
SourceOffsets toStateOffsets(const Offsets& o);
Offsets fromStateOffsets(const SourceOffsets& o);

// The offset log: key = txid (20 digits, so keys sort by txid), value = the batch's end offsets
// as "source\toffset,offset,...\n" lines (one offset per partition), and a line "#end-of-input"
// when the batch ended the input (a replay must fire the same windows).
inline constexpr const char* kOffsetLogState = "_gale_offset_log";

std::string offsetLogKey(uint64_t txid);

struct LoggedPlan {
  Offsets end;
  bool endOfInput = false;
};

std::string encodeOffsets(const Offsets& o, bool endOfInput);
// Throws StateError on a line it cannot read.
LoggedPlan decodeOffsets(std::string_view s);

// Per partition, the smaller of two limits (a partition missing from one takes the other's).
Offsets minOffsets(const Offsets& a, const Offsets& b);

}  // namespace gale
