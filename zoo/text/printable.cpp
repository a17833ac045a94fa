#include "zoo/text/printable.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string_view>
#include <unordered_map>

namespace nasoa::zoo {
namespace {

bool is_control(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7F;
}

constexpr const char* kHex = "0123456789abcdef";

void append_hex_byte(std::string& out, unsigned char u) { out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]}; }

// The length of the well-formed UTF-8 sequence at text[at] (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0.
std::size_t utf8_sequence(std::string_view text, std::size_t at) {
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(at);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) n = 3, lo = 0xA0;
  else if (b0 == 0xED) n = 3, hi = 0x9F;
  else if (b0 >= 0xE1 && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) n = 4, lo = 0x90;
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else if (b0 == 0xF4) n = 4, hi = 0x8F;
  else return 0;
  if (at + n > text.size()) return 0;
  if (byte(at + 1) < lo || byte(at + 1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i)
    if (byte(at + i) < 0x80 || byte(at + i) > 0xBF) return 0;
  return n;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    const auto u = static_cast<unsigned char>(c);
    const std::size_t n = utf8_sequence(text, i);
    if (c == '\t') out += "\\t";
    else if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (is_control(c) || n == 0) append_hex_byte(out, u);
    else out.append(text.substr(i, n));
    i += n == 0 ? 1 : n;
  }
  return out;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = utf8_sequence(text, i);
    if (n == 0) append_hex_byte(out, static_cast<unsigned char>(text[i]));
    else out.append(text.substr(i, n));
    i += n == 0 ? 1 : n;
  }
  return out;
}

std::string utf8_escaped(std::string_view text) {
  std::string doubled;
  doubled.reserve(text.size());
  for (const char c : text) {
    doubled += c;
    if (c == '\\') doubled += c;
  }
  return utf8_safe(doubled);
}

std::string_view trim_blanks(std::string_view text) {
  constexpr std::string_view kBlanks = " \t\n\v\f\r";
  const auto begin = text.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kBlanks) + 1 - begin);
}

std::string round_trip_number(double value) {
  char text[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(text, sizeof text, "%.*g", digits, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

std::string shown_number(double value) {
  std::ostringstream out;
  out.precision(15);
  out << value;
  return out.str();
}

std::string fixed_number(double value, int decimals) {
  std::ostringstream out;
  out << std::fixed;
  out.precision(decimals);
  out << value;
  return out.str();
}

bool is_valid_label(std::string_view name) {
  return !name.empty() && std::none_of(name.begin(), name.end(), is_control) && is_valid_utf8(name);
}

std::string label_problem(const std::vector<std::string>& labels, std::size_t* index) {
  // Where each label was first seen: a search per label would take minutes
  // for the million labels a manifest may list.
  std::unordered_map<std::string_view, std::size_t> first;
  first.reserve(labels.size());
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (index != nullptr) *index = i;
    if (!is_valid_label(labels[i]))
      return "'" + printable(labels[i]) +
             "' cannot be a label: labels must be non-empty UTF-8 text free of tabs, line breaks and other "
             "control characters (they separate a model's labels in its files and in nasoa-classify's output; "
             "a model's files and reports hold UTF-8)";
    const auto [earlier, added] = first.emplace(labels[i], i);
    if (!added)
      return "'" + printable(labels[i]) + "' is given to two classes (" + std::to_string(earlier->second) +
             " and " + std::to_string(i) + ")";
  }
  return "";
}

}  // namespace nasoa::zoo
