// Whole-file reads and replacing writes for the sample programs, public API
// only (errors are nasoa::Error, as the SDK's own).
#pragma once

#include <nasoa/nasoa.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace nasoa_samples {

// The file's bytes. Throws Error{kIo} naming the file when it cannot be read.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": cannot read");
  return text.str();
}

// Replaces `path` with `text` by writing PATH.tmp and renaming it, so that a
// reader (or a later run after a kill) sees the old file or the new one,
// never half of one. Throws Error{kIo} naming the file.
inline void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    out << text;
    out.flush();
    if (!out) {
      std::remove(tmp.c_str());
      throw nasoa::Error(nasoa::ErrorCode::kIo, tmp + ": cannot write");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": cannot move into place");
  }
}

}  // namespace nasoa_samples
