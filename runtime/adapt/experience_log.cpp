#include "runtime/adapt/experience_log.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "nasoa/zoo.h"
#include "runtime/adapt/json_fields.h"
#include "runtime/adapt/regime_json.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"

namespace nasoa::runtime {
namespace {

using detail::Fields;
using detail::Json;
using detail::read_regime;
using detail::regime_json;

constexpr std::size_t kHexLength = 64;

[[noreturn]] void io_error(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::kIo, path + ": " + what + ": " + std::strerror(errno));
}

[[noreturn]] void invalid(const std::string& field, const std::string& what) {
  throw Error(ErrorCode::kInvalidArgument, "experience record field '" + field + "': " + what);
}

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

template <typename T>
void put_optional(Json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

Json meta_json(const TaskMeta& m) {
  return Json{{"classes", m.classes},
              {"images", m.images},
              {"min_per_class", m.min_per_class},
              {"max_per_class", m.max_per_class},
              {"mean_per_class", m.mean_per_class},
              {"min_width", m.min_width},
              {"max_width", m.max_width},
              {"min_height", m.min_height},
              {"max_height", m.max_height},
              {"mean_width", m.mean_width},
              {"mean_height", m.mean_height},
              {"grayscale_fraction", m.grayscale_fraction},
              {"pixel_mean", m.pixel_mean},
              {"pixel_std", m.pixel_std}};
}

// Three pixel statistics, each in [0, 255] (whatever the scale, no 8-bit
// image's mean or spread leaves it; a larger value is a damaged record).
std::array<double, 3> triple(const Fields& f, const std::string& key) {
  const Json& a = f.array(key);
  if (a.size() != 3) f.fail(f.at(key), "expected 3 numbers, got " + std::to_string(a.size()));
  std::array<double, 3> out{};
  for (std::size_t i = 0; i < 3; ++i) {
    if (!a[i].is_number() || !(a[i].get<double>() >= 0 && a[i].get<double>() <= 255))
      f.fail(f.at(key) + "[" + std::to_string(i) + "]", "expected a number in [0, 255], got " + detail::describe_value(a[i]));
    out[i] = a[i].get<double>();
  }
  return out;
}

TaskMeta read_meta(const Fields& f) {
  TaskMeta m;
  m.classes = int(f.integer("classes", 0, INT32_MAX));
  m.images = f.integer("images", 0);
  m.min_per_class = f.integer("min_per_class", 0);
  m.max_per_class = f.integer("max_per_class", 0);
  m.mean_per_class = f.number("mean_per_class", 0);
  m.min_width = f.integer("min_width", 0);
  m.max_width = f.integer("max_width", 0);
  m.min_height = f.integer("min_height", 0);
  m.max_height = f.integer("max_height", 0);
  // Sides beyond a billion pixels are no image (and their product overflows).
  m.mean_width = f.number("mean_width", 0, 1e9);
  m.mean_height = f.number("mean_height", 0, 1e9);
  m.grayscale_fraction = f.number("grayscale_fraction", 0, 1);
  m.pixel_mean = triple(f, "pixel_mean");
  m.pixel_std = triple(f, "pixel_std");
  return m;
}

Json model_json(const ModelFeatures& m) {
  Json j{{"name", m.name},           {"encoding", m.encoding},     {"parameters", m.parameters},
         {"macs", m.macs},           {"input_size", m.input_size}, {"num_stages", m.num_stages}};
  put_optional(j, "upstream_accuracy", m.upstream_accuracy);
  put_optional(j, "step_seconds", m.step_seconds);
  return j;
}

ModelFeatures read_model(const Fields& f) {
  ModelFeatures m;
  m.name = f.string("name");
  m.encoding = f.string("encoding");
  m.parameters = f.integer("parameters", 0);
  m.macs = f.integer("macs", 0);
  m.input_size = int(f.integer("input_size", 0, INT32_MAX));
  m.num_stages = int(f.integer("num_stages", 0, INT32_MAX));
  m.upstream_accuracy = f.optional_number("upstream_accuracy", 0, 1);
  m.step_seconds = f.optional_number("step_seconds", 0);
  return m;
}

ExperienceSource read_source(const Fields& f) {
  const std::string s = f.string("source");
  if (s == "shipped") return ExperienceSource::kShipped;
  if (s == "device") return ExperienceSource::kDevice;
  f.fail(f.at("source"), "expected \"shipped\" or \"device\", got \"" + s + "\"");
}

// Lines whose checksum holds but whose record is unusable are reported with
// this text, the first error's message without the source prefix.
std::string strip_source(const std::string& message, const std::string& source) {
  const std::string prefix = source + ": ";
  return message.compare(0, prefix.size(), prefix) == 0 ? message.substr(prefix.size()) : message;
}

// Bytes [begin, end) of the open file `fd`.
std::string read_range(int fd, std::uint64_t begin, std::uint64_t end, const std::string& path) {
  std::string buffer(end - begin, '\0');
  std::size_t got = 0;
  while (got < buffer.size()) {
    const ssize_t n = ::pread(fd, buffer.data() + got, buffer.size() - got, off_t(begin + got));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) throw Error(ErrorCode::kIo, path + ": cannot read before appending: the file shrank while locked");
    if (n < 0) io_error(path, "cannot read before appending");
    got += std::size_t(n);
  }
  return buffer;
}

// Offset just after the last '\n' of the open file `fd` of `size` bytes.
std::uint64_t last_line_end(int fd, std::uint64_t size, const std::string& path) {
  constexpr std::uint64_t kChunk = 1 << 16;
  std::uint64_t end = size;
  while (end > 0) {
    const std::uint64_t begin = end > kChunk ? end - kChunk : 0;
    const std::string buffer = read_range(fd, begin, end, path);
    const auto nl = buffer.rfind('\n');
    if (nl != std::string::npos) return begin + nl + 1;
    end = begin;
  }
  return 0;
}

// Opens for appending; `created` tells whether this call made the file.
int open_for_append(const std::string& path, bool& created) {
  for (;;) {
    int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC);
    if (fd >= 0) {
      created = false;
      return fd;
    }
    if (errno != ENOENT) io_error(path, "cannot open for appending");
    fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
      created = true;
      return fd;
    }
    if (errno != EEXIST) io_error(path, "cannot create");
    // It exists, yet cannot be opened: another process created it in
    // between (open it again), or it is a link to a missing file, which
    // would send this loop round for ever.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
      errno = ENOENT;
      io_error(path, "is a symbolic link to a missing file");
    }
  }
}

class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() { ::close(fd_); }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

const char* to_string(ExperienceSource source) {
  return source == ExperienceSource::kShipped ? "shipped" : "device";
}

ModelFeatures describe_model(const std::string& name, const std::string& encoding, int input_size,
                             int head_classes, std::optional<double> upstream_accuracy) {
  const Encoding e = Encoding::parse(encoding);
  const NetworkCost cost = count_cost(e, head_classes, input_size);
  ModelFeatures m;
  m.name = name;
  m.encoding = e.to_string();
  m.parameters = cost.parameters;
  m.macs = cost.macs;
  m.input_size = input_size;
  m.num_stages = e.num_stages();
  m.upstream_accuracy = upstream_accuracy;
  return m;
}

ModelFeatures describe_model(const ModelInfo& info) {
  ModelFeatures m;
  m.name = info.name;
  m.encoding = info.encoding;
  m.parameters = info.parameters;
  m.macs = info.macs;
  m.input_size = info.input_size;
  m.num_stages = Encoding::parse(info.encoding).num_stages();
  m.upstream_accuracy = info.upstream_accuracy;
  return m;
}

std::int64_t effective_train_images(const ExperienceRecord& r) {
  if (r.train_images > 0) return r.train_images;
  const auto estimate = std::int64_t(std::llround(double(r.task.images) * (1.0 - r.regime.validation_fraction)));
  return std::max<std::int64_t>(1, estimate);
}

void validate(const ExperienceRecord& r) {
  if (r.run_id.empty()) invalid("run_id", "must not be empty");
  if (r.run_id.find_first_of("\r\n") != std::string::npos) invalid("run_id", "must not contain a line break");
  try {
    validate(r.regime);
  } catch (const Error& e) {
    invalid("regime", e.what());
  }
  if (r.model.name.empty()) invalid("model.name", "must not be empty");
  if (r.regime.model != r.model.name)
    invalid("regime.model", "names '" + r.regime.model + "' but the record's model is '" + r.model.name + "'");
  if (r.task.classes < 1) invalid("task.meta.classes", std::to_string(r.task.classes) + " is below 1");
  if (r.task.min_per_class > r.task.max_per_class)
    invalid("task.meta.min_per_class", std::to_string(r.task.min_per_class) + " is above max_per_class " +
                                           std::to_string(r.task.max_per_class));
  if (r.train_images < 0) invalid("task.train_images", std::to_string(r.train_images) + " is negative");
  for (const auto& [name, v] : {std::pair{"result.final_accuracy", r.final_accuracy},
                                std::pair{"result.best_accuracy", r.best_accuracy}})
    if (!(v == -1 || (v >= 0 && v <= 1))) invalid(name, std::to_string(v) + " is neither -1 nor in [0, 1]");
  if (!(r.total_seconds >= 0) || !std::isfinite(r.total_seconds))
    invalid("result.seconds", std::to_string(r.total_seconds) + " is not a non-negative number");
  if (r.joules && !(*r.joules >= 0 && std::isfinite(*r.joules)))
    invalid("result.joules", std::to_string(*r.joules) + " is not a non-negative number");
  if (r.probe_score && !std::isfinite(*r.probe_score)) invalid("probe_score", "is not finite");
  // What the reader refuses must not be written: it would read back as damage.
  for (std::size_t i = 0; i < r.history.size(); ++i) {
    const EpochPoint& e = r.history[i];
    const std::string at = "history[" + std::to_string(i) + "].";
    if (e.epoch < 0) invalid(at + "epoch", std::to_string(e.epoch) + " is negative");
    if (!(e.elapsed_seconds >= 0) || !std::isfinite(e.elapsed_seconds))
      invalid(at + "elapsed_seconds", std::to_string(e.elapsed_seconds) + " is not a non-negative number");
    if (!std::isfinite(e.train_loss)) invalid(at + "train_loss", std::to_string(e.train_loss) + " is not finite");
    if (!(e.validation_accuracy == -1 || (e.validation_accuracy >= 0 && e.validation_accuracy <= 1)))
      invalid(at + "validation_accuracy", std::to_string(e.validation_accuracy) + " is neither -1 nor in [0, 1]");
  }
  for (const auto& [name, v] : {std::pair{"budget.seconds", r.budget_seconds}, std::pair{"budget.joules", r.budget_joules}})
    if (v && !(*v >= 0 && std::isfinite(*v))) invalid(name, std::to_string(*v) + " is not a non-negative number");
  if (r.model.upstream_accuracy && !(*r.model.upstream_accuracy >= 0 && *r.model.upstream_accuracy <= 1))
    invalid("model.upstream_accuracy", std::to_string(*r.model.upstream_accuracy) + " is outside [0, 1]");
}

std::string to_json(const ExperienceRecord& r) {
  Json task{{"id", r.task_id}, {"name", r.task_name}, {"meta", meta_json(r.task)}, {"train_images", r.train_images}};
  Json budget = Json::object();
  put_optional(budget, "seconds", r.budget_seconds);
  put_optional(budget, "joules", r.budget_joules);
  Json history = Json::array();
  for (const EpochPoint& p : r.history)
    history.push_back(Json{{"epoch", p.epoch},
                           {"elapsed_seconds", p.elapsed_seconds},
                           {"train_loss", p.train_loss},
                           {"validation_accuracy", p.validation_accuracy}});
  Json result{{"final_accuracy", r.final_accuracy},
              {"best_accuracy", r.best_accuracy},
              {"seconds", r.total_seconds},
              {"meter", r.meter},
              {"device", r.device},
              {"stop_reason", r.stop_reason}};
  put_optional(result, "joules", r.joules);
  Json j{{"v", kExperienceRecordVersion},
         {"run_id", r.run_id},
         {"source", to_string(r.source)},
         {"task", std::move(task)},
         {"model", model_json(r.model)},
         {"regime", regime_json(r.regime)},
         {"budget", std::move(budget)},
         {"history", std::move(history)},
         {"result", std::move(result)}};
  put_optional(j, "probe_score", r.probe_score);
  return detail::dump_compact(j);
}

ExperienceRecord parse_experience_record(std::string_view json, const std::string& source) {
  Json j;
  try {
    j = Json::parse(json.begin(), json.end());
  } catch (const Json::exception& e) {  // out_of_range too: a number past a double's range
    throw Error(ErrorCode::kCorrupt, source + ": not valid JSON (" + e.what() + ")");
  }
  const Fields top(j, "", source);
  const std::int64_t version = top.integer("v", 1);
  if (version > kExperienceRecordVersion)
    throw Error(ErrorCode::kUnsupportedVersion, source + ": record version " + std::to_string(version) +
                                                    " is newer than this build reads (" +
                                                    std::to_string(kExperienceRecordVersion) + ")");
  ExperienceRecord r;
  r.run_id = top.string("run_id");
  if (r.run_id.empty()) top.fail("run_id", "is empty");
  r.source = read_source(top);
  const Fields task = top.object("task");
  r.task_id = task.string("id");
  r.task_name = task.string("name");
  r.task = read_meta(task.object("meta"));
  r.train_images = task.integer("train_images", 0);
  r.model = read_model(top.object("model"));
  r.regime = read_regime(top.object("regime"));
  const Fields budget = top.object("budget");
  r.budget_seconds = budget.optional_number("seconds", 0);
  r.budget_joules = budget.optional_number("joules", 0);
  const Json& history = top.array("history");
  for (std::size_t i = 0; i < history.size(); ++i) {
    const Fields p(history[i], "history[" + std::to_string(i) + "]", source);
    EpochPoint e;
    e.epoch = int(p.integer("epoch", 0, INT32_MAX));
    e.elapsed_seconds = p.number("elapsed_seconds", 0);
    e.train_loss = p.number("train_loss");
    e.validation_accuracy = p.number("validation_accuracy", -1, 1);
    r.history.push_back(e);
  }
  const Fields result = top.object("result");
  r.final_accuracy = result.number("final_accuracy", -1, 1);
  r.best_accuracy = result.number("best_accuracy", -1, 1);
  r.total_seconds = result.number("seconds", 0);
  r.joules = result.optional_number("joules", 0);
  r.meter = result.string("meter");
  r.device = result.string("device");
  r.stop_reason = result.string("stop_reason");
  r.probe_score = top.optional_number("probe_score");
  // Whole and well-typed is not enough: what the writer refuses (a regime
  // naming another model, no classes, ...) is damage here too.
  try {
    validate(r);
  } catch (const Error& e) {
    throw Error(ErrorCode::kCorrupt, source + ": " + e.what());
  }
  return r;
}

std::string encode_experience_line(const ExperienceRecord& record) {
  validate(record);
  const std::string json = to_json(record);
  return zoo::sha256_hex(json) + " " + json + "\n";
}

std::vector<std::string> ExperienceLogContents::damage_report(const std::string& path) const {
  std::vector<std::string> out;
  for (const LogDamage& d : skipped)
    out.push_back(path + ": line " + std::to_string(d.line) + " (byte " + std::to_string(d.offset) + ", " +
                  std::to_string(d.bytes) + " bytes) skipped: " + d.reason);
  if (torn_tail)
    out.push_back(path + ": line " + std::to_string(torn_tail->line) + " (byte " + std::to_string(torn_tail->offset) +
                  ", " + std::to_string(torn_tail->bytes) + " bytes) dropped: " + torn_tail->reason);
  return out;
}

ExperienceLogContents parse_experience_log(std::string_view bytes, const std::string& source) {
  ExperienceLogContents out;
  std::size_t pos = 0;
  std::int64_t line = 1;
  while (pos < bytes.size()) {
    const std::size_t nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) {
      out.torn_tail = LogDamage{pos, line, bytes.size() - pos, "the last line has no newline (an append cut short)"};
      break;
    }
    const std::string_view text = bytes.substr(pos, nl - pos);
    LogDamage damage{pos, line, nl + 1 - pos, {}};
    if (text.size() < kHexLength + 2 || text[kHexLength] != ' ' || !is_lower_hex(text.substr(0, kHexLength))) {
      damage.reason = "not a '<sha256> <json>' line";
    } else {
      const std::string_view json = text.substr(kHexLength + 1);
      const std::string digest = zoo::sha256_hex(json);
      if (digest != text.substr(0, kHexLength)) {
        damage.reason = "checksum mismatch";
      } else {
        const std::string where = source + ":" + std::to_string(line);
        try {
          out.records.push_back(parse_experience_record(json, where));
          out.record_sha256.push_back(digest);
        } catch (const Error& e) {
          damage.reason = strip_source(e.what(), where);
        }
      }
    }
    if (!damage.reason.empty()) out.skipped.push_back(std::move(damage));
    pos = nl + 1;
    out.good_end = pos;
    ++line;
  }
  return out;
}

ExperienceLogContents read_experience_log(const std::string& path) {
  return parse_experience_log(zoo::read_file(path), path);
}

namespace {

// The one writer of experience lines. With `only_new`, records whose run id
// the file already holds are left out; the file is read under the lock, so
// two processes recording the same run at once still write it once.
AppendReport append_locked(const std::string& path, const std::vector<ExperienceRecord>& records, bool only_new) {
  std::vector<std::string> lines;
  for (const ExperienceRecord& r : records) lines.push_back(encode_experience_line(r));

  bool created = false;
  const FileDescriptor fd(open_for_append(path, created));
  while (::flock(fd.get(), LOCK_EX) != 0)
    if (errno != EINTR) io_error(path, "cannot lock");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) io_error(path, "cannot stat");
  const auto size = std::uint64_t(st.st_size);
  AppendReport report;
  const std::uint64_t end = size > 0 ? last_line_end(fd.get(), size, path) : 0;
  if (end < size) {
    if (::ftruncate(fd.get(), off_t(end)) != 0) io_error(path, "cannot cut the torn last line");
    report.torn_bytes_cut = size - end;
  }
  std::string bytes;
  if (only_new) {
    std::set<std::string> present = completed_run_ids(parse_experience_log(read_range(fd.get(), 0, end, path), path));
    for (std::size_t i = 0; i < records.size(); ++i) {
      if (present.insert(records[i].run_id).second)
        bytes += lines[i];
      else
        ++report.already_present;
    }
  } else {
    for (const std::string& line : lines) bytes += line;
  }
  std::size_t written = 0;
  while (written < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      // A partial line would be a torn tail anyway; removing it keeps the
      // file clean when the failure was, say, a full disk.
      if (::ftruncate(fd.get(), off_t(end)) != 0) { /* the next append cuts it */ }
      errno = saved;
      io_error(path, "append failed");
    }
    written += std::size_t(n);
  }
  if (::fsync(fd.get()) != 0) {
    // The lines may still be in the file while their pages were dropped: a
    // retry would find its run id and be told it was recorded before. Cut
    // them, so that a failure reported is a record not stored.
    const int saved = errno;
    if (::ftruncate(fd.get(), off_t(end)) == 0) (void)::fsync(fd.get());
    errno = saved;
    io_error(path, "fsync failed");
  }
  report.bytes_written = written;
  // An empty log's entry may be as new as the file (its creator killed
  // before syncing the folder): the first record in it makes it durable.
  if (created || end == 0) zoo::sync_directory(std::filesystem::path(path).parent_path().string());
  return report;
}

}  // namespace

AppendReport append_experience(const std::string& path, const std::vector<ExperienceRecord>& records) {
  return append_locked(path, records, false);
}

AppendReport append_experience(const std::string& path, const ExperienceRecord& record) {
  return append_locked(path, {record}, false);
}

AppendReport append_new_experience(const std::string& path, const ExperienceRecord& record) {
  return append_locked(path, {record}, true);
}

std::set<std::string> completed_run_ids(const ExperienceLogContents& contents) {
  std::set<std::string> ids;
  for (const ExperienceRecord& r : contents.records) ids.insert(r.run_id);
  return ids;
}

std::set<std::string> completed_run_ids(const std::string& path) {
  if (!std::filesystem::exists(path)) return {};
  return completed_run_ids(read_experience_log(path));
}

}  // namespace nasoa::runtime
