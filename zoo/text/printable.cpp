#include "zoo/text/printable.h"

#include <algorithm>
#include <sstream>

namespace nasoa::zoo {
namespace {

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7F;
}

}  // namespace

std::string printable(std::string_view text) {
  constexpr const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (is_control(c)) out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
    else out += c;
  }
  return out;
}

std::string shown_number(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  return out.str();
}

bool is_valid_label(std::string_view name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), is_control);
}

}  // namespace nasoa::zoo
