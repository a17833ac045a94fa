#include "zoo/system/keyed_text.h"

#include <fstream>

namespace nasoa::zoo {
namespace {

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t\r\n") + 1 - begin);
}

}  // namespace

std::optional<std::string> keyed_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || trim(line.substr(0, colon)) != key) continue;
    std::string value = trim(line.substr(colon + 1));
    if (!value.empty()) return value;
  }
  return std::nullopt;
}

}  // namespace nasoa::zoo
