// runtime/energy/sysfs.h: reading the small text files that sysfs exposes.
//
// Every meter reads its values through these helpers, relative to a root
// directory that tests point at a fake tree. Each call opens, reads and closes
// the file: sysfs regenerates the content on every read, and a file that
// vanishes between two samples must fail that read only. Stateless and
// thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nasoa::runtime::sysfs {

// The file's content with trailing whitespace removed. Throws
// Error{kNotFound} for a missing file or one whose driver has no value
// (ENODATA, e.g. a disabled INA3221 channel), Error{kIo} for any other
// failure (no permission, a directory in the file's place, EIO); the message
// names `path`.
std::string read_text(const std::string& path);

// The file as one decimal integer (surrounding whitespace allowed). Throws as
// read_text(), and Error{kCorrupt} naming `path` and the text when the content
// is not such a number or does not fit.
std::int64_t read_int(const std::string& path);
std::uint64_t read_uint(const std::string& path);

// True when `path` can be read as a file by this process right now.
bool readable(const std::string& path);

// Names (not paths) of `dir`'s entries, sorted; empty when `dir` is missing or
// unreadable, because an absent sysfs class simply means absent hardware.
std::vector<std::string> list_dir(const std::string& dir);

}  // namespace nasoa::runtime::sysfs
