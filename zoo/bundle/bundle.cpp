#include "zoo/bundle/bundle.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <set>
#include <system_error>

#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/sha256.h"
#include "zoo/bundle/weights_file.h"
#include "zoo/system/folder_lock.h"
#include "zoo/text/printable.h"

namespace fs = std::filesystem;

namespace nasoa::zoo {
namespace {

constexpr char kPredictorFile[] = "predictor.bin";
constexpr char kExperienceFile[] = "experience.log";

FileEntry write_listed(const fs::path& root, const std::string& relative, const std::string& bytes) {
  write_file_atomic((root / relative).string(), bytes);
  return {relative, sha256_hex(bytes), bytes.size()};
}

void make_directory(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorCode::kIo, dir.string() + ": cannot create directory: " + ec.message());
}

struct SwapPaths {
  fs::path dir, staging, aside;
};

SwapPaths swap_paths(const std::string& dir) {
  SwapPaths p;
  p.dir = named_folder(dir);
  // A link to a bundle: the bundle it points at is replaced, not the link.
  std::error_code ec;
  if (fs::is_symlink(p.dir, ec)) {
    if (const fs::path target = fs::canonical(p.dir, ec); !ec) {
      p.dir = target;
    } else if (fs::path link = fs::read_symlink(p.dir, ec); !ec) {
      // A dangling link: its target was set aside by a save a crash
      // interrupted (or is gone); the copy aside is looked for beside the
      // target, where the save put it, not beside the link.
      if (link.is_relative()) link = p.dir.parent_path() / link;
      std::error_code weak_ec;
      const fs::path resolved = fs::weakly_canonical(link, weak_ec);
      p.dir = weak_ec ? link.lexically_normal() : resolved;
    }
  }
  const std::string name = p.dir.filename().string();
  p.staging = p.dir.parent_path() / ("." + name + ".new");
  p.aside = p.dir.parent_path() / ("." + name + ".old");
  return p;
}

}  // namespace

Manifest write_bundle(const std::string& dir, const BundleInput& input) {
  check_safe_name("bundle name", input.name);
  std::set<std::string> names;
  for (const BundleModelInput& m : input.models) {
    check_safe_name("model name", m.name);
    if (!names.insert(name_key(m.name)).second)
      throw Error(ErrorCode::kInvalidArgument,
                  "model name '" + m.name + "' is used twice (names may not differ in case alone: they are file names)");
    if (!m.labels.empty() && static_cast<int>(m.labels.size()) != m.network->num_classes())
      throw Error(ErrorCode::kInvalidArgument,
                  "model '" + m.name + "': " + std::to_string(m.labels.size()) + " labels for " +
                      std::to_string(m.network->num_classes()) + " classes");
    if (m.input_size < 8 || m.input_size > 4096)
      throw Error(ErrorCode::kInvalidArgument,
                  "model '" + m.name + "': input size " + std::to_string(m.input_size) +
                      " is outside 8-4096");
  }
  const fs::path target = named_folder(dir);
  std::error_code ec;
  if (fs::exists(target, ec))
    throw Error(ErrorCode::kInvalidArgument,
                target.string() + " already exists; bundles are never overwritten in place");
  make_directory(target.parent_path());
  const fs::path staging =
      target.parent_path() / ("." + target.filename().string() + ".partial-" + std::to_string(::getpid()));
  fs::remove_all(staging, ec);
  // Staging folders of writers killed mid-way are never a bundle: removed.
  remove_stale_temporaries(target.parent_path().string(), "." + target.filename().string() + ".partial-");
  make_directory(staging / "models");

  try {
    Manifest manifest;
    manifest.name = input.name;
    manifest.provenance = input.provenance;
    for (const BundleModelInput& m : input.models) {
      const Encoding& encoding = m.network->encoding();
      const NetworkCost cost = count_cost(encoding, m.network->num_classes(), m.input_size);
      const FileEntry weights = write_listed(staging, "models/" + m.name + ".weights",
                                             encode_weights(module_state(*m.network)));
      ModelInfo info;
      info.name = m.name;
      info.encoding = encoding.to_string();
      info.input_size = m.input_size;
      info.mean = m.mean;
      info.std = m.std;
      info.upstream_classes = m.network->num_classes();
      info.upstream_accuracy = m.upstream_accuracy;
      info.labels = m.labels;
      info.parameters = cost.parameters;
      info.macs = cost.macs;
      info.weights_file = weights.path;
      info.weights_sha256 = weights.sha256;
      info.weights_bytes = weights.size;
      manifest.models.push_back(std::move(info));
    }
    if (input.predictor) manifest.predictor = write_listed(staging, kPredictorFile, *input.predictor);
    if (input.experience) manifest.experience = write_listed(staging, kExperienceFile, *input.experience);
    const std::string manifest_bytes = encode_manifest(manifest);
    // The reader's own checks (normalisation within range, labels without
    // tabs, line breaks or repeats, an accuracy in [0, 1], no NaN): a bundle
    // no reader opens is never written, and so never replaces a good one.
    try {
      decode_manifest(manifest_bytes, "manifest of bundle '" + printable(input.name) + "'");
    } catch (const Error& e) {
      throw Error(ErrorCode::kInvalidArgument, std::string(e.what()) + " (no reader would open it); nothing was written");
    }
    write_file_atomic((staging / kManifestFileName).string(), manifest_bytes);
    sync_directory((staging / "models").string());
    fs::rename(staging, target, ec);
    if (ec) throw Error(ErrorCode::kIo, target.string() + ": cannot move the finished bundle into place: " + ec.message());
    sync_directory(target.parent_path().string());
    return manifest;
  } catch (...) {
    fs::remove_all(staging, ec);
    throw;
  }
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

std::string provenance_command_line(int argc, char** argv) {
  std::string out = argc > 0 ? fs::path(argv[0]).filename().string() : std::string();
  for (int i = 1; i < argc; ++i) out += " " + std::string(argv[i]);
  return out;
}

void verify_file(const std::string& dir, const FileEntry& file) {
  const fs::path path = fs::path(dir) / file.path;
  std::error_code ec;
  // A bundle is what lies in its folder: a listed file (or a folder on its
  // way) that is a link would make it depend on files that copying it leaves
  // behind, and that can change under it.
  fs::path walked = fs::path(dir);
  for (const fs::path& part : fs::path(file.path)) {
    walked /= part;
    if (fs::is_symlink(fs::symlink_status(walked, ec)))
      throw Error(ErrorCode::kCorrupt, walked.string() + ": a symbolic link; the files of a bundle must lie inside it");
  }
  const auto status = fs::status(path, ec);
  if (!fs::exists(status))
    throw Error(ErrorCode::kNotFound, path.string() + ": listed in the manifest but missing");
  if (!fs::is_regular_file(status))
    throw Error(ErrorCode::kCorrupt, path.string() + ": listed in the manifest but not a regular file");
  const std::uintmax_t size = fs::file_size(path, ec);
  if (ec) throw Error(ErrorCode::kIo, path.string() + ": cannot read its size: " + ec.message());
  if (size != file.size)
    throw Error(ErrorCode::kCorrupt, path.string() + ": " +
                                         (size < file.size ? "truncated" : "longer than listed") +
                                         ": " + std::to_string(size) + " bytes, the manifest lists " +
                                         std::to_string(file.size));
  const std::string digest = sha256_file_hex(path.string());
  if (digest != file.sha256)
    throw Error(ErrorCode::kCorrupt, path.string() + ": SHA-256 mismatch: the file is " + digest +
                                         ", the manifest lists " + file.sha256);
}

namespace {

// DIR/MANIFEST, after checking that `dir` is a bundle directory that has one.
std::string manifest_path_of(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::exists(dir, ec)) throw Error(ErrorCode::kInvalidArgument, dir + ": is a file, not a bundle directory");
    // A writer killed between its two renames leaves the bundle aside.
    const SwapPaths p = swap_paths(dir);
    if (fs::is_directory(p.aside, ec))
      throw Error(ErrorCode::kNotFound, dir + ": no such bundle directory; a replacement of it was interrupted and " +
                                            p.aside.string() + " holds the bundle: the next nasoa-zoo or " +
                                            "nasoa-pretrain writing it puts it back, or rename it to " + p.dir.string());
    throw Error(ErrorCode::kNotFound, dir + ": no such bundle directory");
  }
  const std::string manifest_path = (fs::path(dir) / kManifestFileName).string();
  if (!fs::exists(manifest_path, ec))
    throw Error(ErrorCode::kNotFound, manifest_path + ": missing; " + dir + " is not a zoo bundle");
  return manifest_path;
}

// Reads the bundle's MANIFEST and runs `check` on it. A writer replacing the
// bundle (an atomic swap of folders) between our reading its manifest and
// its files pairs the old manifest with the new files: when `check` fails
// and the manifest has changed since, the bundle is read again.
Manifest read_consistently(const std::string& dir, const std::function<void(const Manifest&)>& check) {
  const std::string manifest_path = manifest_path_of(dir);
  for (int attempt = 1;; ++attempt) {
    Manifest manifest = read_manifest(manifest_path);
    try {
      check(manifest);
      return manifest;
    } catch (const Error& e) {
      if (attempt >= 3 || e.code() == ErrorCode::kIo) throw;
      Manifest now;
      try {
        now = read_manifest(manifest_path);
      } catch (const Error&) {
        throw e;
      }
      if (encode_manifest(now) == encode_manifest(manifest)) throw;
    }
  }
}

}  // namespace

Manifest open_bundle(const std::string& dir) { return open_bundle(dir, {}); }

Manifest open_bundle(const std::string& dir, const std::function<void(const Manifest&)>& then) {
  return read_consistently(dir, [&](const Manifest& manifest) {
    for (const FileEntry& f : manifest.files()) verify_file(dir, f);
    if (then) then(manifest);
  });
}

Manifest verify_bundle(const std::string& dir) {
  return open_bundle(dir, [&](const Manifest& manifest) {
    for (const ModelInfo& model : manifest.models) load_network(dir, model);
  });
}

Network load_network(const std::string& dir, const ModelInfo& model) {
  const std::string path = (fs::path(dir) / model.weights_file).string();
  const std::string bytes = read_file(path);
  if (sha256_hex(bytes) != model.weights_sha256)
    throw Error(ErrorCode::kCorrupt, path + ": SHA-256 mismatch: the file changed after the bundle was opened "
                                            "(damaged, or the bundle was replaced since; open it again)");
  Network network(Encoding::parse(model.encoding), model.upstream_classes);
  load_module_state(*network, decode_weights(bytes, path), path);
  return network;
}

Network load_network_for_task(const std::string& dir, const ModelInfo& model, int num_classes,
                              std::uint64_t seed) {
  Network network = load_network(dir, model);
  torch::manual_seed(seed);
  network->reset_head(num_classes);
  return network;
}

namespace {

bool is_bundle_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / kManifestFileName, ec);
}

void rename_or_throw(const fs::path& from, const fs::path& to, const char* what) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    throw Error(ErrorCode::kIo, from.string() + ": cannot " + what + " (to " + to.string() +
                                    "): " + ec.message());
}

// Writers of one bundle take turns: an exclusive lock on the folder that
// holds it, held from reading the old bundle to swapping the new one in, so
// that two tools adding models at once both land. Writers of other bundles
// in that folder wait too; they are rare and short. Where the file system
// cannot lock a folder, writing goes on without it, as it did before there
// was a lock.
class BundleLock : public FolderLock {
 public:
  explicit BundleLock(const SwapPaths& p) : FolderLock(p.dir.parent_path().string(), "replace a bundle in it") {}
};

// Swaps two directories in one step where the kernel and file system can
// (renameat2 RENAME_EXCHANGE, Linux 3.15+): DIR is then never missing, not
// even for a moment a reader could fall into. Called through syscall() so
// that it works with a C library older than the call's wrapper (glibc 2.28;
// JetPack 4 has 2.27); false where either cannot do it.
bool exchange(const fs::path& a, const fs::path& b) {
#ifdef SYS_renameat2
  constexpr unsigned kRenameExchange = 1u << 1;  // RENAME_EXCHANGE in <linux/fs.h>
  return ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), kRenameExchange) == 0;
#else
  (void)a, (void)b;
  return false;
#endif
}

// Removes a folder of ours in a way a crash cannot turn into a half-deleted
// bundle that looks like something else: it is renamed to the staging name
// first, which every writer removes unconditionally.
void remove_via_staging(const fs::path& folder, const SwapPaths& p) {
  std::error_code ec;
  fs::remove_all(p.staging, ec);
  fs::rename(folder, p.staging, ec);
  fs::remove_all(ec ? folder : p.staging, ec);
}

// recover_bundle() for a caller that holds the writers' lock.
std::string recover_locked(const SwapPaths& p) {
  std::error_code ec;
  // With DIR in place an aside copy is a writer's leftover: the next writer
  // removes it.
  if (!fs::exists(p.aside, ec) || fs::exists(p.dir, ec)) return p.dir.string();
  // The crash came between the two renames: the aside copy is the complete old bundle.
  if (!is_bundle_dir(p.aside)) return p.dir.string();
  fs::rename(p.aside, p.dir, ec);
  if (ec) return p.aside.string();
  sync_directory(p.dir.parent_path().string());
  return p.dir.string();
}

}  // namespace

std::string recover_bundle(const std::string& dir) {
  const SwapPaths p = swap_paths(dir);
  std::error_code ec;
  if (!fs::exists(p.aside, ec) || fs::exists(p.dir, ec)) return p.dir.string();
  // DIR is missing: a writer may be between its two renames right now, or
  // one crashed there. With the writers' lock held (waiting for a writer to
  // finish: its swap is short) it is a crash to repair, or already repaired.
  // Where there is no lock to take (NFS), the old copy is read where it is
  // and the repair is left to the next writer.
  const BundleLock lock(p);
  if (!lock.held()) return is_bundle_dir(p.aside) ? p.aside.string() : p.dir.string();
  return recover_locked(p);
}

namespace {

// What the bundle folder `dir` holds besides the files its manifest lists
// (and the folders on their way), the topmost of each, relative to `dir`:
// replacing the bundle would delete them with it. Nothing when the manifest
// cannot be read (a damaged bundle, which may be replaced).
std::vector<std::string> unlisted_entries(const fs::path& dir) {
  Manifest manifest;
  try {
    manifest = read_manifest((dir / kManifestFileName).string());
  } catch (const Error&) {
    return {};
  }
  std::set<std::string> files{kManifestFileName}, folders;
  for (const FileEntry& f : manifest.files()) {
    files.insert(fs::path(f.path).lexically_normal().generic_string());
    for (fs::path up = fs::path(f.path).lexically_normal().parent_path(); !up.empty(); up = up.parent_path())
      folders.insert(up.generic_string());
  }
  std::vector<std::string> unlisted;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    const bool folder = it->is_directory(ec) && !it->is_symlink(ec);
    if (folder ? folders.count(rel) > 0 : files.count(rel) > 0) continue;
    unlisted.push_back(rel);
    if (folder) it.disable_recursion_pending();
  }
  return unlisted;
}

Manifest replace_locked(const SwapPaths& p, const BundleInput& input) {
  recover_locked(p);
  std::error_code ec;
  const bool replacing = fs::exists(fs::symlink_status(p.dir, ec));
  if (replacing && !is_bundle_dir(p.dir))
    throw Error(ErrorCode::kInvalidArgument, p.dir.string() + " exists and is not a zoo bundle (no " +
                                                 kManifestFileName + "); refusing to replace it");
  // A model fine-tuned into the bundle's folder, say: the new bundle would
  // be swapped in and the old folder, with it, deleted.
  if (replacing) {
    const std::vector<std::string> unlisted = unlisted_entries(p.dir);
    if (!unlisted.empty()) {
      std::string shown;
      for (std::size_t i = 0; i < unlisted.size() && i < 5; ++i)
        shown += (i ? ", " : "") + printable(unlisted[i]);
      if (unlisted.size() > 5) shown += " and " + std::to_string(unlisted.size() - 5) + " more";
      throw Error(ErrorCode::kInvalidArgument,
                  p.dir.string() + " holds what its manifest does not list (" + shown +
                      "): replacing the bundle would delete it; move it out of the bundle's folder first");
    }
  }
  if (fs::exists(fs::symlink_status(p.aside, ec))) {
    // An earlier writer's leftover: DIR is complete (recover_locked above).
    // Anything else of that name is not ours to delete.
    if (!is_bundle_dir(p.aside))
      throw Error(ErrorCode::kInvalidArgument, p.aside.string() + " exists and is not an old copy of the bundle " +
                                                   p.dir.string() + "; move it away");
    remove_via_staging(p.aside, p);
  }
  // A staging copy left by an earlier crash was never the live bundle.
  fs::remove_all(p.staging, ec);
  Manifest manifest = write_bundle(p.staging.string(), input);
  if (replacing && exchange(p.staging, p.dir)) {
    sync_directory(p.dir.parent_path().string());
    fs::remove_all(p.staging, ec);  // now the old bundle
    return manifest;
  }
  if (replacing) {
    try {
      rename_or_throw(p.dir, p.aside, "move the old bundle aside");
    } catch (...) {
      fs::remove_all(p.staging, ec);
      throw;
    }
  }
  try {
    rename_or_throw(p.staging, p.dir, "move the new bundle into place");
  } catch (...) {
    if (replacing) fs::rename(p.aside, p.dir, ec);
    fs::remove_all(p.staging, ec);
    throw;
  }
  sync_directory(p.dir.parent_path().string());
  if (replacing) remove_via_staging(p.aside, p);
  return manifest;
}

}  // namespace

Manifest replace_bundle(const std::string& dir, const BundleInput& input) {
  const SwapPaths p = swap_paths(dir);
  const BundleLock lock(p);
  return replace_locked(p, input);
}

namespace {

// A model of an existing bundle, to be written again unchanged. Weights
// round-trip bit-exactly through a network, so re-encoding the loaded one
// reproduces the file byte for byte (the tests check it).
BundleModelInput kept_model(const std::string& live, const ModelInfo& m) {
  BundleModelInput kept;
  kept.name = m.name;
  kept.network = load_network(live, m);
  kept.input_size = m.input_size;
  kept.mean = m.mean;
  kept.std = m.std;
  kept.upstream_accuracy = m.upstream_accuracy;
  kept.labels = m.labels;
  return kept;
}

// The commands that made a bundle, then `next`. The same command run again
// (shipping the same log once more) makes what it made before, so it is
// not written twice in a row.
std::string chained_command(const std::string& made_by, const std::string& next) {
  if (made_by.empty()) return next;
  if (next.empty()) return made_by;
  const std::string tail = " && " + next;
  const auto ends_with_tail = [&tail](const std::string& s) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  // Bundles shipped before this rule chained the same command once per
  // rerun: those repeats at the end collapse into one.
  std::string chained = made_by;
  while (ends_with_tail(chained)) {
    std::string shorter = chained.substr(0, chained.size() - tail.size());
    if (shorter != next && !ends_with_tail(shorter)) break;
    chained = std::move(shorter);
  }
  if (chained == next || ends_with_tail(chained)) return chained;
  return chained + tail;
}

// The bundle at `live`, opened to be rewritten: refused when its manifest
// holds fields this build does not know, which the rewrite would drop.
Manifest open_to_rewrite(const std::string& live, const std::string& dir) {
  Manifest old = open_bundle(live);
  if (holds_unknown_fields((fs::path(live) / kManifestFileName).string()))
    throw Error(ErrorCode::kUnsupportedVersion,
                dir + ": its manifest holds fields this nasoa does not know, written by a newer version; "
                      "rewriting it here would drop them: update nasoa, or write the bundle with the version "
                      "that made it");
  return old;
}

}  // namespace

Manifest set_bundle_experience(const std::string& dir, const std::string& predictor, const std::string& experience,
                               const Provenance& provenance) {
  const SwapPaths p = swap_paths(dir);
  const BundleLock lock(p);
  const std::string live = recover_locked(p);
  const Manifest old = open_to_rewrite(live, dir);
  BundleInput input;
  input.name = old.name;
  input.provenance = provenance;
  input.provenance.command_line = chained_command(old.provenance.command_line, provenance.command_line);
  for (const ModelInfo& m : old.models) input.models.push_back(kept_model(live, m));
  input.predictor = predictor;
  input.experience = experience;
  return replace_locked(p, input);
}

Manifest add_to_bundle(const std::string& dir, const BundleModelInput& model, const std::string& name,
                       const Provenance& provenance, bool* dropped_experience) {
  if (dropped_experience) *dropped_experience = false;
  const SwapPaths p = swap_paths(dir);
  const BundleLock lock(p);
  const std::string live = recover_locked(p);
  BundleInput input;
  input.name = name;
  input.provenance = provenance;
  std::error_code ec;
  if (fs::exists(fs::symlink_status(live, ec)) && is_bundle_dir(live)) {
    const Manifest old = open_to_rewrite(live, dir);
    input.name = old.name;
    input.provenance.command_line = chained_command(old.provenance.command_line, provenance.command_line);
    bool replaced = false, retrained = false;
    for (const ModelInfo& m : old.models) {
      if (m.name == model.name) {  // the new model takes the old one's place in the order
        input.models.push_back(model);
        replaced = true;
        // The very same model added again (the same command and seed make
        // the same weights) leaves what was learnt about it valid.
        retrained = sha256_hex(encode_weights(module_state(*model.network))) != m.weights_sha256 ||
                    model.upstream_accuracy != m.upstream_accuracy || model.input_size != m.input_size;
        continue;
      }
      input.models.push_back(kept_model(live, m));
    }
    if (!replaced) input.models.push_back(model);
    // The predictor was fitted on, and the experience gathered with, the old
    // weights of a retrained model: shipped with the new ones they would
    // predict from another network, silently. Left out instead (the caller
    // says so); nasoa-gather refuses a log of the old weights, too.
    if (retrained) {
      if (dropped_experience) *dropped_experience = old.predictor.has_value() || old.experience.has_value();
    } else {
      if (old.predictor) input.predictor = read_file((fs::path(live) / old.predictor->path).string());
      if (old.experience) input.experience = read_file((fs::path(live) / old.experience->path).string());
      // A file changed since open_bundle() must not be carried into a bundle that vouches for it.
      if (old.predictor && sha256_hex(*input.predictor) != old.predictor->sha256)
        throw Error(ErrorCode::kCorrupt, live + "/" + old.predictor->path + ": changed while the bundle was rewritten");
      if (old.experience && sha256_hex(*input.experience) != old.experience->sha256)
        throw Error(ErrorCode::kCorrupt, live + "/" + old.experience->path + ": changed while the bundle was rewritten");
    }
  } else {
    input.models.push_back(model);
  }
  return replace_locked(p, input);
}

}  // namespace nasoa::zoo
