#include "zoo/bundle/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "nasoa/error.h"

namespace nasoa::zoo {
namespace {

[[noreturn]] void io_error(const std::string& path, const char* what) {
  throw Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
              path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

void remove_stale_temporaries(const std::string& dir, const std::string& prefix) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (fs::directory_iterator it(dir.empty() ? "." : dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    // PREFIX<pid>, or PREFIX<pid>.<n> (write_file_atomic's n-th temporary of the process).
    const std::string rest = name.substr(prefix.size());
    const std::string digits = rest.substr(0, rest.find('.'));
    const std::string serial = rest.size() > digits.size() ? rest.substr(digits.size() + 1) : "0";
    if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    if (serial.empty() || serial.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(digits));
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::error_code time_ec;
    const auto changed = fs::last_write_time(it->path(), time_ec);
    if (time_ec || fs::file_time_type::clock::now() - changed < std::chrono::minutes(5)) continue;
    std::error_code ignored;
    fs::remove_all(it->path(), ignored);
  }
}

std::filesystem::path named_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path absolute = fs::absolute(dir);
  // ".." after a link goes up from the link's target, as the OS resolves
  // it, not from the link's folder, as lexically_normal() alone would (and
  // name another folder): the part up to the last ".." is resolved through
  // the file system, the rest only as text (a link named there stays the
  // link, and what is kept beside it stays beside it).
  std::vector<fs::path> parts(absolute.begin(), absolute.end());
  std::size_t last_up = parts.size();
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (parts[i] == "..") last_up = i;
  fs::path path;
  if (last_up == parts.size()) {
    path = absolute.lexically_normal();
  } else {
    fs::path head, tail;
    for (std::size_t i = 0; i < parts.size(); ++i) (i <= last_up ? head : tail) /= parts[i];
    std::error_code ec;
    fs::path resolved = fs::weakly_canonical(head, ec);
    if (ec) resolved = head.lexically_normal();
    path = (resolved / tail).lexically_normal();
  }
  return path.filename().empty() ? path.parent_path() : path;
}

void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) io_error(dir, "cannot open directory to sync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) io_error(dir, "fsync failed");
}

void create_directories_durably(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path target = fs::absolute(dir, ec);
  if (ec) throw Error(ErrorCode::kIo, dir + ": cannot resolve the folder: " + ec.message());
  // The missing folders, outermost first.
  std::vector<fs::path> missing;
  for (fs::path p = target.lexically_normal(); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    if (p == p.parent_path()) break;  // the root
    missing.push_back(p);
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
    if (it->filename().empty()) continue;  // "a/b/" names "a/b" twice
    if (!fs::create_directory(*it, ec) && ec)
      throw Error(ErrorCode::kIo, it->string() + ": cannot create the folder: " + ec.message());
    sync_directory(it->parent_path().string());
  }
  if (!fs::is_directory(target, ec)) throw Error(ErrorCode::kIo, dir + ": exists and is not a folder");
}

namespace {

// Writes a temporary file beside `path` and renames it over `path`. Durable:
// flushed to storage before the rename and the folder after it, and the
// temporaries of killed writers removed.
void write_by_rename(const std::string& path, const std::function<void(const ByteSink&)>& produce, bool durable) {
  const std::filesystem::path target(path);
  // The rename below would replace a device, a pipe or a folder's entry.
  std::error_code ec;
  if (std::filesystem::exists(target, ec) && !std::filesystem::is_regular_file(target, ec))
    throw Error(ErrorCode::kInvalidArgument, path + ": exists and is not a regular file; refusing to replace it");
  // One temporary per call: two threads writing the same file must not
  // share one, or one's rename would move the other's half-written bytes.
  static std::atomic<std::uint64_t> serial{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(serial++);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error(tmp, "cannot create");
  auto write_all = [&](std::string_view bytes) {
    std::size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
      if (n < 0) {
        if (errno == EINTR) continue;
        io_error(tmp, "write failed");
      }
      written += static_cast<std::size_t>(n);
    }
  };
  // Small pieces (a tensor's header) are gathered, large ones written as
  // they come: at most one buffer of the file is ever held here.
  constexpr std::size_t kBuffer = std::size_t(1) << 20;
  std::string buffer;
  const ByteSink sink = [&](std::string_view bytes) {
    if (buffer.size() + bytes.size() <= kBuffer) {
      buffer.append(bytes);
      return;
    }
    write_all(buffer);
    buffer.clear();
    if (bytes.size() >= kBuffer)
      write_all(bytes);
    else
      buffer.append(bytes);
  };
  try {
    produce(sink);
    write_all(buffer);
    if (durable && ::fsync(fd) != 0) io_error(tmp, "fsync failed");
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    io_error(path, "rename failed");
  }
  if (!durable) return;
  sync_directory(target.parent_path().string());
  remove_stale_temporaries(target.parent_path().string(), target.filename().string() + ".tmp.");
}

}  // namespace

void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic(path, [&](const ByteSink& sink) { sink(bytes); });
}

void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce) {
  write_by_rename(path, produce, true);
}

void replace_file_lightly(const std::string& path, std::string_view bytes) {
  write_by_rename(path, [&](const ByteSink& sink) { sink(bytes); }, false);
}

std::string read_file(const std::string& path) {
  // A folder reads as empty, a pipe blocks, a device never ends.
  std::error_code ec;
  if (std::filesystem::exists(path, ec) && !std::filesystem::is_regular_file(path, ec))
    throw Error(ErrorCode::kInvalidArgument, path + ": not a regular file");
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) io_error(path, "cannot open");
  // Sized once and read in place: growing a stream's buffer and copying it
  // out touched each page of a 10 MB experience log several times.
  const std::streamoff size = in.tellg();
  if (size < 0) throw Error(ErrorCode::kIo, path + ": cannot tell its size");
  std::string bytes;
  if (size > 0) {
    bytes.resize(std::size_t(size));
    if (!in.seekg(0)) throw Error(ErrorCode::kIo, path + ": cannot seek to its start");
    in.read(bytes.data(), size);
    bytes.resize(std::size_t(in.gcount()));  // shorter if it shrank meanwhile
  }
  if (in.bad()) throw Error(ErrorCode::kIo, path + ": read failed");
  in.clear();
  // What was appended since the size was taken.
  std::ostringstream rest;
  rest << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::kIo, path + ": read failed");
  bytes += rest.str();
  return bytes;
}

}  // namespace nasoa::zoo
