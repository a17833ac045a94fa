#include "runtime/energy/sysfs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "nasoa/error.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime::sysfs {
namespace {

[[noreturn]] void io_error(const std::string& path, int err) {
  // ENODATA is how the INA3221 driver answers for a disabled channel: the
  // value is not there, as for a missing file.
  throw Error(err == ENOENT || err == ENODATA ? ErrorCode::kNotFound : ErrorCode::kIo,
              path + ": cannot read: " + std::strerror(err));
}

std::string_view trim_zeros(std::string_view s) {
  while (s.size() > 1 && s.front() == '0') s.remove_prefix(1);
  return s;
}

template <typename T>
T parse_number(const std::string& path) {
  const std::string text = read_text(path);
  const std::string_view digits = zoo::trim_blanks(text);
  T value{};
  const char* first = digits.data();
  const char* last = digits.data() + digits.size();
  const auto [end, ec] = std::from_chars(first, last, value);
  if (digits.empty() || ec != std::errc() || end != last) {
    throw Error(ErrorCode::kCorrupt,
                path + ": expected a decimal integer, found '" + std::string(digits) + "'");
  }
  return value;
}

// "hwmon2" before "hwmon10", so that rails and zones are listed in the order a
// person reading the hardware's documentation expects.
bool natural_less(const std::string& a, const std::string& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      std::size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      const std::string_view na = trim_zeros(std::string_view(a).substr(i, ie - i));
      const std::string_view nb = trim_zeros(std::string_view(b).substr(j, je - j));
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  if ((a.size() - i) != (b.size() - j)) return (a.size() - i) < (b.size() - j);
  return a < b;
}

}  // namespace

std::string read_text(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error(path, errno);
  std::string text;
  char buffer[256];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      io_error(path, err);
    }
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    // sysfs values are a line long; anything much bigger is not one of them.
    if (text.size() > 4096) {
      ::close(fd);
      throw Error(ErrorCode::kCorrupt, path + ": more than 4 KiB, not a sysfs value file");
    }
  }
  ::close(fd);
  return std::string(zoo::trim_blanks(text));
}

std::int64_t read_int(const std::string& path) { return parse_number<std::int64_t>(path); }

std::uint64_t read_uint(const std::string& path) { return parse_number<std::uint64_t>(path); }

bool readable(const std::string& path) {
  try {
    read_text(path);
    return true;
  } catch (const Error&) {
    return false;
  }
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) return names;
  for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end(), natural_less);
  return names;
}

}  // namespace nasoa::runtime::sysfs
