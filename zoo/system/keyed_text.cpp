#include "zoo/system/keyed_text.h"

#include <fstream>

#include "zoo/text/printable.h"

namespace nasoa::zoo {
std::optional<std::string> keyed_value(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || trim_blanks(std::string_view(line).substr(0, colon)) != key) continue;
    std::string value(trim_blanks(std::string_view(line).substr(colon + 1)));
    if (!value.empty()) return value;
  }
  return std::nullopt;
}

}  // namespace nasoa::zoo
