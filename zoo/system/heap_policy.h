// zoo/system/heap_policy.h: the C library's heap, set for training loops.
//
// A training step allocates and frees the same tensors every step, many of
// them hundreds of kilobytes to megabytes. With glibc's defaults such blocks
// go back to the kernel when freed (unmapped, or trimmed off the heap's top)
// and come back on the next step as fresh zero-filled pages, a fault per
// 4 KiB. On a 2-core virtual machine an adapt run of 150 steps of a small
// network took 200,000 page faults and 7.0 s with the defaults, 39,000 and
// 4.0 s keeping freed memory for reuse, its peak resident memory 268 against
// 274 MiB (bench/README.md).
//
// keep_freed_memory_for_reuse() sets glibc's heap so (process-wide): blocks
// of up to 32 MiB (512 KiB on 32-bit systems) come from the heap instead of
// their own mappings, the heap grows 64 MiB at a time and keeps up to 1 GiB
// of free memory at its top. It leaves the heap alone where the environment
// already tunes it (glibc.malloc tunables in GLIBC_TUNABLES, or a MALLOC_*
// variable: that choice wins) and where the C library is not glibc. mallopt() settings are not readable, so an app that
// sets them itself turns this off (nasoa::AdapterOptions::tune_heap).
// give_back_freed_memory() returns what the heap keeps free to the kernel
// (malloc_trim), as a run ends and before resident memory is measured
// (zoo/system/resident_memory.h).
//
// Thread-safe (glibc serialises mallopt); the settings last for the process.
#pragma once

namespace nasoa::zoo {

// Returns whether the settings are in effect (set by this call or an
// earlier one); false where the heap was left alone.
bool keep_freed_memory_for_reuse();

// Whether an earlier keep_freed_memory_for_reuse() put the settings in
// effect; changes nothing.
bool keeping_freed_memory();

// Whether keep_freed_memory_for_reuse() would put the settings in effect
// (or already has); changes nothing, so that checking what fine-tuning's
// heap will be (a profile's fit for it, say) does not set it for a process
// that may never fine-tune. Where mallopt() itself refuses, which glibc
// does not, the call would return false although this said true.
bool would_keep_freed_memory();

void give_back_freed_memory();

// Whether `environment` (NAME=VALUE entries, null-terminated, as environ)
// tunes glibc's heap: glibc.malloc tunables in GLIBC_TUNABLES, or any
// MALLOC_* variable.
bool environment_tunes_heap(const char* const* environment);

}  // namespace nasoa::zoo
