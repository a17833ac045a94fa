// zoo/bundle/atomic_file.h: crash-safe file writes and whole-file reads.
//
// write_file_atomic writes to a temporary file beside the target, fsyncs it,
// renames it over the target and fsyncs the directory: after a crash or power
// loss at any instant, the target holds either its old or its new content.
// The temporary file a killed writer left is removed by the next write.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

namespace nasoa::zoo {

// Throws Error{kIo} naming the path and the system error, and
// Error{kInvalidArgument} when `path` exists and is not a regular file (a
// device, a pipe or a folder, which the rename would replace).
void write_file_atomic(const std::string& path, std::string_view bytes);

// Where a writer puts its bytes, piece by piece.
using ByteSink = std::function<void(std::string_view)>;

// The same for contents too large to hold twice in memory (a checkpoint):
// `produce` is called once and hands the file's bytes to the sink in pieces.
// An exception from it leaves the target as it was and propagates.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);

// Replaces a small file's contents by a rename, as write_file_atomic does,
// but flushes nothing to storage and looks for no leftovers: for a file
// rewritten every second whose reader can do without it (a checkpoint's
// clock), on devices where each flush to an SD card or eMMC costs
// milliseconds and wear. A killed process leaves the old or the new
// contents; a power loss may leave the file empty or missing. The temporary
// a process killed mid-write leaves is named as write_file_atomic's are, so
// remove_stale_temporaries(dir, name + ".tmp.") removes it. Throws as
// write_file_atomic does.
void replace_file_lightly(const std::string& path, std::string_view bytes);

// Removes the entries of `dir` named `prefix` + a process id whose process is
// gone: the temporary files and staging folders (named so) that a process
// killed mid-write left. A live process's entry is never touched; nor is one
// changed in the last five minutes, since a writer in another PID namespace
// (a container sharing the folder) has an id this process cannot see. Best
// effort: errors are ignored.
void remove_stale_temporaries(const std::string& dir, const std::string& prefix);

// `dir` as the folder it names, absolute: "dir", "dir/" and "dir/." all name
// dir, so that what is kept beside it (a staging copy, a checkpoint, an old
// copy set aside) is beside it for every spelling, never inside it. A ".."
// is resolved as the OS does ("link/.." is the folder above the link's
// target); a link named after the last ".." is kept as the link.
std::filesystem::path named_folder(const std::string& dir);

// fsync a directory, so that renames and creations in it are durable.
void sync_directory(const std::string& dir);

// Creates `dir` and whatever of its parents is missing, like
// std::filesystem::create_directories, and syncs the parent of each folder
// it creates: a file made durable inside a new folder is not lost with the
// folder's own entry on a power loss. Throws Error{kIo} naming the folder
// it could not create or sync.
void create_directories_durably(const std::string& dir);

// Whole file into memory. Throws Error{kNotFound} or Error{kIo}, and
// Error{kInvalidArgument} for what is not a regular file (a folder, a pipe,
// a device).
std::string read_file(const std::string& path);

}  // namespace nasoa::zoo
