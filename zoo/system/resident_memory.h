// zoo/system/resident_memory.h: this process's resident memory, as the
// device profile measures it and as the fine-tuner enforces a memory cap.
//
// The kernel keeps a peak mark (VmHWM) that writing "5" to
// /proc/self/clear_refs resets to the current resident set. Where that is
// allowed, a phase of work can be measured on its own: reset the mark when it
// starts and read it after. Elsewhere only the process's lifetime peak
// (getrusage) is known, which also counts whatever ran before.
#pragma once

#include <cstdint>
#include <optional>

namespace nasoa::zoo {

// The resident set now (VmRSS), in bytes; nullopt where /proc cannot tell.
std::optional<std::int64_t> resident_bytes();

// Hands freed heap pages back to the system (give_back_freed_memory() of
// zoo/system/heap_policy.h), so that the resident set is close to what is
// live, and resets the peak mark. Returns whether the mark was reset;
// peak_resident_bytes() then reads the peak since this call.
bool start_peak_measurement();

// The peak resident set since start_peak_measurement() last succeeded in
// this process, or the lifetime peak where it never did; in bytes.
std::int64_t peak_resident_bytes();

}  // namespace nasoa::zoo
