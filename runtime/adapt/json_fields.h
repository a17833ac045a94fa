// runtime/adapt/json_fields.h: typed access to JSON fields whose errors name
// the source and the field's path, shared by the adapt/ formats. Internal.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "nasoa/error.h"

namespace nasoa::runtime::detail {

using Json = nlohmann::json;

// For error messages: the type, and the value itself when it is a short
// scalar. Containers are never dumped: dumping recurses, and a file of
// 200,000 nested '[' (which the parser accepts) would overflow the stack.
template <class AnyJson>  // nlohmann::json or nlohmann::ordered_json
std::string describe_value(const AnyJson& v) {
  if (v.is_structured() || (v.is_string() && v.template get_ref<const std::string&>().size() > 38))
    return v.type_name();
  return std::string(v.type_name()) + " " + v.dump(-1, ' ', false, AnyJson::error_handler_t::replace);
}

// Every failure is Error{kCorrupt} "<source>: field '<path>': <what>".
class Fields {
 public:
  Fields(const Json& object, std::string path, const std::string& source)
      : j_(object), path_(std::move(path)), source_(source) {
    if (!j_.is_object()) fail(path_.empty() ? "(top level)" : path_, "expected an object, got " + kind(j_));
  }

  [[noreturn]] void fail(const std::string& field_path, const std::string& what) const {
    throw Error(ErrorCode::kCorrupt, source_ + ": field '" + field_path + "': " + what);
  }
  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  bool has(const std::string& key) const {
    const auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
  }
  // Present, null or not: a null that was written is damage, not absence.
  bool contains(const std::string& key) const { return j_.find(key) != j_.end(); }
  const Json& get(const std::string& key) const {
    const auto it = j_.find(key);
    if (it == j_.end()) fail(at(key), "missing");
    return *it;
  }
  Fields object(const std::string& key) const { return Fields(get(key), at(key), source_); }

  double number(const std::string& key, double lo = -std::numeric_limits<double>::infinity(),
                double hi = std::numeric_limits<double>::infinity()) const {
    const Json& v = get(key);
    if (!v.is_number()) fail(at(key), "expected a number, got " + kind(v));
    const double x = v.get<double>();
    if (!std::isfinite(x) || x < lo || x > hi)
      fail(at(key), "value " + v.dump() + " is outside [" + num(lo) + ", " + num(hi) + "]");
    return x;
  }
  std::optional<double> optional_number(const std::string& key, double lo = -std::numeric_limits<double>::infinity(),
                                        double hi = std::numeric_limits<double>::infinity()) const {
    if (!has(key)) return std::nullopt;
    return number(key, lo, hi);
  }
  std::int64_t integer(const std::string& key, std::int64_t lo = std::numeric_limits<std::int64_t>::min(),
                       std::int64_t hi = std::numeric_limits<std::int64_t>::max()) const {
    const Json& v = get(key);
    if (!v.is_number_integer()) fail(at(key), "expected an integer, got " + kind(v));
    const bool too_big = v.is_number_unsigned() && v.get<std::uint64_t>() > std::uint64_t(INT64_MAX);
    const std::int64_t x = too_big ? 0 : v.get<std::int64_t>();
    if (too_big || x < lo || x > hi)
      fail(at(key), "value " + v.dump() + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return x;
  }
  std::string string(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_string()) fail(at(key), "expected a string, got " + kind(v));
    return v.get<std::string>();
  }
  bool boolean(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_boolean()) fail(at(key), "expected true or false, got " + kind(v));
    return v.get<bool>();
  }
  const Json& array(const std::string& key) const {
    const Json& v = get(key);
    if (!v.is_array()) fail(at(key), "expected an array, got " + kind(v));
    return v;
  }
  const std::string& source() const { return source_; }

 private:
  static std::string kind(const Json& v) { return describe_value(v); }
  static std::string num(double x) {
    if (std::isinf(x)) return x < 0 ? "-inf" : "inf";
    return Json(x).dump();
  }

  const Json& j_;
  std::string path_;
  const std::string& source_;
};

// Compact one-line text; invalid UTF-8 in strings (folder names, say) is
// replaced rather than refused, so a record can always be written.
inline std::string dump_compact(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace nasoa::runtime::detail
