#include "zoo/bundle/manifest.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "nasoa/encoding.h"
#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/text/printable.h"
#include "zoo_manifest.pb.h"

namespace nasoa::zoo {
namespace {

constexpr char kMagic[] = "NASOAMF1";
constexpr std::size_t kMagicSize = 8;
constexpr std::size_t kDigestSize = 32;

bool is_hex_digest(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// A path inside the bundle: relative, '/'-separated, every part a safe name.
bool is_safe_path(const std::string& path) {
  if (path.empty()) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t slash = path.find('/', start);
    const std::string part = path.substr(start, slash - start);
    if (!is_safe_name(part)) return false;
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

void to_proto(const FileEntry& f, proto::FileRef* out) {
  out->set_path(f.path);
  out->set_sha256(f.sha256);
  out->set_size(f.size);
}

class Checker {
 public:
  explicit Checker(const std::string& source) : source_(source) {}
  void require(bool ok, const std::string& field, const std::string& what) const {
    if (!ok) throw Error(ErrorCode::kCorrupt, source_ + ": field " + field + ": " + what);
  }
  FileEntry file(const proto::FileRef& ref, const std::string& field) const {
    require(is_safe_path(ref.path()), field + ".path",
            "'" + ref.path() + "' is not a safe relative path inside the bundle");
    require(is_hex_digest(ref.sha256()), field + ".sha256",
            "'" + ref.sha256() + "' is not 64 lower-case hex digits");
    return {ref.path(), ref.sha256(), ref.size()};
  }

 private:
  const std::string& source_;
};

}  // namespace

bool is_safe_name(std::string_view name) {
  if (name.empty() || name[0] == '.' || name.size() > 200) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '.' || c == '_' || c == '-'))
      return false;
  return true;
}

void check_safe_name(std::string_view what, std::string_view name) {
  if (!is_safe_name(name))
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + printable(name) + "' " + kSafeNameRule);
}

std::string name_key(std::string_view name) {
  std::string key(name);
  for (char& c : key)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return key;
}

Manifest read_manifest(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) throw Error(ErrorCode::kNotFound, path + ": missing");
  if (!std::filesystem::is_regular_file(status))
    throw Error(ErrorCode::kCorrupt, path + ": not a regular file");
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kIo, path + ": cannot read its size: " + ec.message());
  if (size > kMaxManifestBytes)
    throw Error(ErrorCode::kCorrupt, path + ": " + std::to_string(size) + " bytes, more than a manifest takes (at most " +
                                         std::to_string(kMaxManifestBytes) + "); not read");
  return decode_manifest(read_file(path), path);
}

bool holds_unknown_fields(const std::string& path) {
  // What this build knows of the manifest, encoded again, is the file itself
  // unless it holds more: protobuf writes known fields in number order and
  // keeps unknown ones (which protobuf-lite does not list) as bytes, and this
  // build writes every field it reads. Only writers ask: readers pay nothing.
  const std::string bytes = read_file(path);
  return encode_manifest(decode_manifest(bytes, path)) != bytes;
}

std::vector<FileEntry> Manifest::files() const {
  std::vector<FileEntry> out;
  for (const ModelInfo& m : models) out.push_back({m.weights_file, m.weights_sha256, m.weights_bytes});
  if (predictor) out.push_back(*predictor);
  if (experience) out.push_back(*experience);
  return out;
}

std::string encode_manifest(const Manifest& m) {
  proto::Manifest p;
  p.set_format_version(m.format_version);
  p.set_name(m.name);
  proto::Provenance* prov = p.mutable_provenance();
  // Free text from the command line: protobuf reads back only UTF-8, so a
  // Latin-1 byte is kept as \xHH rather than making the bundle unreadable.
  prov->set_tool(utf8_safe(m.provenance.tool));
  prov->set_command_line(utf8_safe(m.provenance.command_line));
  prov->set_seed(m.provenance.seed);
  prov->set_date(utf8_safe(m.provenance.date));
  prov->set_data_card(utf8_safe(m.provenance.data_card));
  for (const ModelInfo& info : m.models) {
    proto::Model* model = p.add_models();
    model->set_name(info.name);
    model->set_encoding(info.encoding);
    model->set_input_size(static_cast<std::uint32_t>(info.input_size));
    for (float v : info.mean) model->add_mean(v);
    for (float v : info.std) model->add_std(v);
    model->set_upstream_classes(static_cast<std::uint32_t>(info.upstream_classes));
    for (const std::string& label : info.labels) model->add_labels(label);
    if (info.upstream_accuracy) model->set_upstream_accuracy(*info.upstream_accuracy);
    model->set_parameters(static_cast<std::uint64_t>(info.parameters));
    model->set_macs(static_cast<std::uint64_t>(info.macs));
    to_proto({info.weights_file, info.weights_sha256, info.weights_bytes}, model->mutable_weights());
  }
  if (m.predictor) to_proto(*m.predictor, p.mutable_predictor());
  if (m.experience) to_proto(*m.experience, p.mutable_experience());

  std::string body;
  if (!p.SerializeToString(&body)) throw Error(ErrorCode::kInternal, "manifest serialisation failed");
  // Never write a manifest that cannot be read back (a text field that is
  // not UTF-8 serialises, with a log line, but does not parse).
  if (proto::Manifest again; !again.ParseFromString(body))
    throw Error(ErrorCode::kInvalidArgument,
                "manifest of bundle '" + printable(m.name) +
                    "': a text field (a name or a label) is not valid UTF-8; nothing was written");
  std::string out(kMagic, kMagicSize);
  const std::uint64_t length = body.size();
  out.append(reinterpret_cast<const char*>(&length), sizeof length);
  out += body;
  out += sha256_bytes(body);
  return out;
}

Manifest decode_manifest(std::string_view bytes, const std::string& source) {
  auto corrupt = [&](const std::string& what) {
    throw Error(ErrorCode::kCorrupt, source + ": " + what);
  };
  if (bytes.size() < kMagicSize + 8 + kDigestSize)
    corrupt("too short to be a manifest (" + std::to_string(bytes.size()) + " bytes)");
  if (bytes.substr(0, kMagicSize) != std::string_view(kMagic, kMagicSize))
    corrupt("not a nasoa manifest (bad magic)");
  std::uint64_t length = 0;
  std::memcpy(&length, bytes.data() + kMagicSize, sizeof length);
  const std::size_t expected = kMagicSize + 8 + kDigestSize;
  if (length != bytes.size() - expected)
    corrupt("truncated or extended: the header announces a " + std::to_string(length) +
            "-byte body, the file has room for " + std::to_string(bytes.size() - expected));
  const std::string_view body = bytes.substr(kMagicSize + 8, length);
  if (sha256_bytes(body) != bytes.substr(kMagicSize + 8 + length))
    corrupt("checksum mismatch: the manifest is damaged");

  proto::Manifest p;
  if (!p.ParseFromArray(body.data(), static_cast<int>(body.size())))
    corrupt("the manifest body does not parse");
  if (p.format_version() == 0 || p.format_version() > kZooFormatVersion)
    throw Error(ErrorCode::kUnsupportedVersion,
                source + ": format version " + std::to_string(p.format_version()) +
                    " is not supported (this build reads version 1-" +
                    std::to_string(kZooFormatVersion) + "; upgrade nasoa to read newer bundles)");

  const Checker check(source);
  Manifest m;
  m.format_version = p.format_version();
  m.name = p.name();
  // The rule writers apply: a bundle that opens can be added to.
  check.require(is_safe_name(m.name), "name", "'" + printable(m.name) + "' " + kSafeNameRule);
  m.provenance = {p.provenance().tool(), p.provenance().command_line(), p.provenance().seed(),
                  p.provenance().date(), p.provenance().data_card()};
  std::set<std::string> names, paths;
  for (int i = 0; i < p.models_size(); ++i) {
    const proto::Model& pm = p.models(i);
    const std::string field = "models[" + std::to_string(i) + "]";
    ModelInfo info;
    info.name = pm.name();
    check.require(is_safe_name(info.name), field + ".name", "'" + printable(info.name) + "' " + kSafeNameRule);
    check.require(names.insert(name_key(info.name)).second, field + ".name",
                  "'" + info.name + "' repeats (names may not differ in case alone)");
    info.encoding = pm.encoding();
    std::optional<Encoding> encoding;
    try {
      encoding = Encoding::parse(info.encoding);
    } catch (const Error& e) {
      check.require(false, field + ".encoding", e.what());
    }
    check.require(pm.input_size() >= 8 && pm.input_size() <= 4096, field + ".input_size",
                  std::to_string(pm.input_size()) + " is outside 8-4096");
    info.input_size = static_cast<int>(pm.input_size());
    check.require(pm.mean_size() == 3 && pm.std_size() == 3, field + ".mean/std",
                  "expected 3 values each, found " + std::to_string(pm.mean_size()) + " and " +
                      std::to_string(pm.std_size()));
    // Normalisation divides by std: a NaN, an infinity or a denormal std
    // would turn every prediction into NaN.
    for (int c = 0; c < 3; ++c) {
      info.mean[static_cast<std::size_t>(c)] = pm.mean(c);
      info.std[static_cast<std::size_t>(c)] = pm.std(c);
      check.require(std::isfinite(pm.mean(c)) && std::fabs(pm.mean(c)) <= 1000.0f, field + ".mean",
                    "values must be finite, within +-1000");
      check.require(pm.std(c) >= 1e-6f && pm.std(c) <= 1000.0f, field + ".std", "values must lie in [1e-6, 1000]");
    }
    check.require(pm.upstream_classes() >= 1 && pm.upstream_classes() <= 1000000,
                  field + ".upstream_classes",
                  std::to_string(pm.upstream_classes()) + " is outside 1-1000000");
    info.upstream_classes = static_cast<int>(pm.upstream_classes());
    info.labels.assign(pm.labels().begin(), pm.labels().end());
    std::size_t bad_label = 0;
    const std::string labels_wrong = label_problem(info.labels, &bad_label);
    check.require(labels_wrong.empty(), field + ".labels[" + std::to_string(bad_label) + "]", labels_wrong);
    check.require(info.labels.empty() || static_cast<int>(info.labels.size()) == info.upstream_classes,
                  field + ".labels",
                  std::to_string(info.labels.size()) + " labels for " +
                      std::to_string(info.upstream_classes) + " classes");
    if (pm.upstream_accuracy_known_case() == proto::Model::kUpstreamAccuracy) {
      check.require(pm.upstream_accuracy() >= 0.0 && pm.upstream_accuracy() <= 1.0,
                    field + ".upstream_accuracy", "must lie in [0, 1]");
      info.upstream_accuracy = pm.upstream_accuracy();
    }
    NetworkCost cost;
    try {
      cost = count_cost(*encoding, info.upstream_classes, info.input_size);
    } catch (const Error& e) {
      check.require(false, field + ".encoding", e.what());
    }
    info.parameters = static_cast<std::int64_t>(pm.parameters());
    info.macs = static_cast<std::int64_t>(pm.macs());
    check.require(info.parameters == cost.parameters, field + ".parameters",
                  std::to_string(info.parameters) + " differs from the encoding's " +
                      std::to_string(cost.parameters));
    check.require(info.macs == cost.macs, field + ".macs",
                  std::to_string(info.macs) + " differs from the encoding's " +
                      std::to_string(cost.macs));
    const FileEntry weights = check.file(pm.weights(), field + ".weights");
    // Checked before anything is built: a manifest naming a network of
    // billions of parameters beside a small weights file must not make a
    // loader allocate the network first.
    check.require(weights.size / 4 >= std::uint64_t(info.parameters), field + ".weights.size",
                  std::to_string(weights.size) + " bytes cannot hold the encoding's " +
                      std::to_string(info.parameters) + " float32 parameters");
    info.weights_file = weights.path;
    info.weights_sha256 = weights.sha256;
    info.weights_bytes = weights.size;
    m.models.push_back(std::move(info));
  }
  if (p.has_predictor() && !p.predictor().path().empty())
    m.predictor = check.file(p.predictor(), "predictor");
  if (p.has_experience() && !p.experience().path().empty())
    m.experience = check.file(p.experience(), "experience");
  for (const FileEntry& f : m.files())
    check.require(f.path != kManifestFileName && paths.insert(f.path).second, "files",
                  "'" + f.path + "' is listed twice or shadows the manifest");
  return m;
}

}  // namespace nasoa::zoo
