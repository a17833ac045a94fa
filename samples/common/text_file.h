// Whole-file reads and replacing writes for the sample programs, public API
// only (errors are nasoa::Error, as the SDK's own).
#pragma once

#include <fcntl.h>
#include <nasoa/nasoa.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace nasoa_samples {

// `text` (a file name) on one line: a tab, a line break, any other control
// byte, a C1 control or a Unicode line or paragraph separator (Python's
// splitlines() breaks at \v, \f, \x1c-\x1e, U+0085, U+2028 and U+2029;
// ESC and U+009B reach the terminal) or a backslash would otherwise split,
// forge or garble lines of output, so they are written \t, \n, \r, \\ and
// the others byte by byte as \xHH.
inline std::string one_line(const std::string& text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  auto hex = [&](unsigned char byte) {
    out += "\\x";
    out += kHex[byte >> 4];
    out += kHex[byte & 15];
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const auto byte = static_cast<unsigned char>(c);
    const auto next = [&](std::size_t k) { return i + k < text.size() ? static_cast<unsigned char>(text[i + k]) : 0; };
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\\') out += "\\\\";
    else if (byte < 0x20 || byte == 0x7f) hex(byte);
    else if (byte == 0xc2 && next(1) >= 0x80 && next(1) <= 0x9f) {  // U+0080-U+009F
      hex(byte);
      hex(next(1));
      i += 1;
    } else if (byte == 0xe2 && next(1) == 0x80 && (next(2) == 0xa8 || next(2) == 0xa9)) {  // U+2028, U+2029
      hex(byte);
      hex(next(1));
      hex(next(2));
      i += 2;
    } else out += c;
  }
  return out;
}

// The file's bytes. Throws Error{kIo} naming the file when it cannot be read.
inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": cannot open");
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": cannot read");
  return text.str();
}

// Replaces `path` with `text` by writing PATH.tmp.<pid>, flushing it to the
// disk and renaming it, so that a reader (or a later run after a kill or a
// power cut) sees the old file or the new one, never half of one. Throws
// Error{kIo} naming the file.
inline void write_text(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const auto fail = [&](const std::string& file, const char* what) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw nasoa::Error(nasoa::ErrorCode::kIo, path + ": " + what + (file == path ? "" : " (its temporary " + file + ")") +
                                                  ": " + reason);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, "cannot create");
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      fail(tmp, "cannot write");
    }
    done += std::size_t(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail(tmp, "cannot flush to disk");
  }
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, "cannot move into place");
  // The rename is durable once the folder's entry is.
  const std::string parent = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/') + 1);
  const int dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

// The plan saved in `path` for --resume. Throws Error{kIo} when it cannot be
// read and Error{kCorrupt} naming the file (and the field) when it is not a
// plan.
inline nasoa::Plan read_saved_plan(const std::string& path) {
  try {
    return nasoa::Plan::from_json(read_text(path));
  } catch (const nasoa::Error& e) {
    if (e.code() != nasoa::ErrorCode::kCorrupt) throw;
    throw nasoa::Error(e.code(), path + ": " + e.what() + "; remove it and the checkpoint beside it to start again");
  }
}

// The lines that say which of a task's files were skipped and why: at most
// `most` of them, then how many more, so that a folder of thousands of bad
// files does not bury everything else. Paths are written on one line each.
inline std::vector<std::string> skipped_lines(const std::vector<nasoa::SkippedFile>& skipped, std::size_t most = 10) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < skipped.size() && i < most; ++i)
    lines.push_back("skipped " + one_line(skipped[i].path) + ": " + one_line(skipped[i].reason));
  if (skipped.size() > most) lines.push_back("and " + std::to_string(skipped.size() - most) + " more skipped files");
  return lines;
}

}  // namespace nasoa_samples
