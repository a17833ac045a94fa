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

std::string label_problem(const std::vector<std::string>& labels, std::size_t* index) {
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (index != nullptr) *index = i;
    if (!is_valid_label(labels[i]))
      return "'" + printable(labels[i]) +
             "' cannot be a label: labels must be non-empty and free of tabs, line breaks and other control "
             "characters (they separate a model's labels in its files and in nasoa-classify's output)";
    const auto earlier = std::find(labels.begin(), labels.begin() + long(i), labels[i]);
    if (earlier != labels.begin() + long(i))
      return "'" + printable(labels[i]) + "' is given to two classes (" +
             std::to_string(earlier - labels.begin()) + " and " + std::to_string(i) + ")";
  }
  return "";
}

}  // namespace nasoa::zoo
