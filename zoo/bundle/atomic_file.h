// zoo/bundle/atomic_file.h: crash-safe file writes and whole-file reads.
//
// write_file_atomic writes to a temporary file beside the target, fsyncs it,
// renames it over the target and fsyncs the directory: after a crash or power
// loss at any instant, the target holds either its old or its new content.
#pragma once

#include <string>
#include <string_view>

namespace nasoa::zoo {

// Throws Error{kIo} naming the path and the system error, and
// Error{kInvalidArgument} when `path` exists and is not a regular file (a
// device, a pipe or a folder, which the rename would replace).
void write_file_atomic(const std::string& path, std::string_view bytes);

// fsync a directory, so that renames and creations in it are durable.
void sync_directory(const std::string& dir);

// Whole file into memory. Throws Error{kNotFound} or Error{kIo}, and
// Error{kInvalidArgument} for what is not a regular file (a folder, a pipe,
// a device).
std::string read_file(const std::string& path);

}  // namespace nasoa::zoo
