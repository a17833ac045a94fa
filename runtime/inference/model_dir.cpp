#include "runtime/inference/model_dir.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/manifest.h"
#include "zoo/text/printable.h"

namespace fs = std::filesystem;

namespace nasoa::runtime {
namespace {

void check_labels(const std::vector<std::string>& labels, int classes) {
  if (static_cast<int>(labels.size()) != classes)
    throw Error(ErrorCode::kInvalidArgument, std::to_string(labels.size()) + " labels for a network of " +
                                                 std::to_string(classes) + " classes");
  std::size_t at = 0;
  if (const std::string problem = zoo::label_problem(labels, &at); !problem.empty())
    throw Error(ErrorCode::kInvalidArgument, "label " + std::to_string(at) + ": " + problem);
}

}  // namespace

fs::path model_dir_path(const std::string& dir) { return zoo::named_folder(dir); }

std::string recover_model_dir(const std::string& dir) { return zoo::recover_bundle(dir); }

namespace {

// Whether `path` lies inside the folder `folder` (not equal to it), both
// resolved through links and "..". The sample programs carry a check of
// their own (samples/common/output_path.h) because they build against the
// public headers alone.
bool inside(const fs::path& path, const fs::path& folder) {
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return false;
  const fs::path f = fs::weakly_canonical(fs::absolute(folder, ec), ec);
  if (ec) return false;
  const fs::path rel = p.lexically_relative(f);
  return !rel.empty() && rel != "." && *rel.begin() != "..";
}

}  // namespace

void check_model_dir_target(const std::string& dir, const std::string& protect) {
  const fs::path path = model_dir_path(dir);
  std::error_code ec;
  // Saved inside the zoo's folder, the model would be deleted with the old
  // folder the next time a host tool replaces the bundle.
  if (!protect.empty() && inside(path, protect))
    throw Error(ErrorCode::kInvalidArgument, dir + ": lies inside the zoo bundle " + protect +
                                                 " being adapted; save the model outside it");
  // A replacement a crash interrupted left `dir`'s old copy aside, and `dir`
  // missing: that copy is what `dir` holds, and what a save would put back
  // and replace, so it is the one checked (a zoo there is not lost).
  const fs::path live = recover_model_dir(path.string());
  // A link whose target is missing (and no copy of it aside): writing
  // through it would create the target's folders wherever it points (an
  // unmounted drive's mount point, say).
  const bool live_exists = fs::exists(fs::symlink_status(live, ec));
  if (fs::is_symlink(fs::symlink_status(path, ec)) && !live_exists)
    throw Error(ErrorCode::kInvalidArgument,
                dir + " is a link to " + live.string() + ", which does not exist; refusing to write through it");
  // A save stages the new folder beside `dir` and renames it in: a parent
  // that cannot be written to (a read-only mount, permissions) would fail
  // the save only after the whole training.
  const auto check_parent_writable = [&] {
    const fs::path parent = path.parent_path();
    if (::access(parent.c_str(), W_OK | X_OK) != 0)
      throw Error(ErrorCode::kInvalidArgument, dir + ": cannot be written, its folder " + parent.string() +
                                                   " is not writable (" + std::strerror(errno) + ")");
  };
  if (!live_exists) {
    if (!fs::is_directory(path.parent_path(), ec))
      throw Error(ErrorCode::kInvalidArgument,
                  dir + ": cannot be created, " + path.parent_path().string() +
                      (fs::exists(path.parent_path(), ec) ? " is not a folder" : " does not exist"));
    check_parent_writable();
    return;
  }
  // The copy aside is read where it is when it cannot be put back (a
  // read-only file system): say so. (Through a link, `live` is its target.)
  const std::string name = live.filename().string();
  const bool aside = name.size() > 5 && name.front() == '.' && name.compare(name.size() - 4, 4, ".old") == 0 &&
                     live.filename() != path.filename();
  const std::string shown = aside ? dir + " (its copy " + live.string() + " left by an interrupted save)" : dir;
  if (!protect.empty() && fs::equivalent(live, protect, ec))
    throw Error(ErrorCode::kInvalidArgument, shown + ": is the zoo bundle being adapted; refusing to replace it");
  if (!fs::is_directory(live, ec) || !fs::is_regular_file(live / zoo::kManifestFileName, ec))
    throw Error(ErrorCode::kInvalidArgument,
                shown + " exists and is not a model directory (no MANIFEST); refusing to replace it");
  // What the manifest says, even when a weights file is damaged: a damaged
  // model directory may be replaced, a damaged zoo may not.
  zoo::Manifest manifest;
  try {
    manifest = zoo::read_manifest((live / zoo::kManifestFileName).string());
  } catch (const Error& e) {
    throw Error(ErrorCode::kInvalidArgument,
                shown + " exists and cannot be read as a model directory (" + e.what() + "); refusing to replace it");
  }
  if (manifest.models.size() != 1 || manifest.models.front().labels.empty())
    throw Error(ErrorCode::kInvalidArgument,
                shown + ": a zoo bundle of " + std::to_string(manifest.models.size()) +
                    " model(s), not a model directory; refusing to replace it");
  // A zoo of one model (nasoa-pretrain's, say) has labels too: what tells
  // it apart is what shipped it. Model directories are written by the SDK
  // ("nasoa VERSION Adapter::fine_tune"), zoos by the offline tools
  // ("nasoa-pretrain VERSION", ...), and only zoos ship experience.
  const std::string& tool = manifest.provenance.tool;
  if (manifest.predictor || manifest.experience || tool.rfind("nasoa-", 0) == 0)
    throw Error(ErrorCode::kInvalidArgument,
                shown + ": a zoo bundle" + (tool.empty() ? std::string() : " written by " + zoo::printable(tool)) +
                    ", not a model directory; refusing to replace it");
  check_parent_writable();
}

void save_model_dir(const std::string& dir, zoo::Network& network, const ModelDirInfo& info) {
  check_labels(info.labels, network->num_classes());
  const fs::path path = model_dir_path(dir);
  check_model_dir_target(path.string());
  zoo::BundleInput input;
  input.name = zoo::is_safe_name(path.filename().string()) ? path.filename().string() : kModelName;
  input.provenance = info.provenance;
  zoo::BundleModelInput model;
  model.name = kModelName;
  model.network = network;
  model.input_size = info.input_size;
  model.mean = info.mean;
  model.std = info.std;
  model.upstream_accuracy = info.validation_accuracy;
  model.labels = info.labels;
  input.models.push_back(std::move(model));
  zoo::replace_bundle(path.string(), input);
}

LoadedModel open_model_dir(const std::string& dir) {
  LoadedModel m;
  m.dir = recover_model_dir(dir);
  // The weights are loaded within the bundle's consistent read: a save
  // swapping a new model in between the manifest and the weights would pair
  // the old manifest with the new weights.
  zoo::open_bundle(m.dir, [&](const zoo::Manifest& manifest) {
    if (manifest.models.size() != 1)
      throw Error(ErrorCode::kInvalidArgument,
                  m.dir + ": a zoo bundle of " + std::to_string(manifest.models.size()) +
                      " models, not a model directory (exactly one model expected)");
    m.info = manifest.models.front();
    if (m.info.labels.empty())
      throw Error(ErrorCode::kInvalidArgument,
                  m.dir + ": model '" + m.info.name + "' has no class labels; not a model directory");
    m.provenance = manifest.provenance;
    m.network = zoo::load_network(m.dir, m.info);
  });
  // The checksum shows the file is whole, not that it is a trained model:
  // training never saves a NaN, an infinity or a negative variance, and any
  // of them would turn every probability into NaN.
  torch::NoGradGuard no_grad;
  const auto refuse = [&](const std::string& name, const char* what) {
    throw Error(ErrorCode::kCorrupt, m.dir + ": model '" + m.info.name + "' tensor " + name + " holds " + what +
                                         "; not a model training saves");
  };
  for (const auto& p : m.network->named_parameters())
    if (!torch::isfinite(p.value()).all().item<bool>()) refuse(p.key(), "NaN or infinite values");
  for (const auto& b : m.network->named_buffers()) {
    if (!b.value().is_floating_point()) continue;
    if (!torch::isfinite(b.value()).all().item<bool>()) refuse(b.key(), "NaN or infinite values");
    const std::string& name = b.key();
    const std::string suffix = "running_var";
    if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0 &&
        (b.value() < 0).any().item<bool>())
      refuse(name, "a negative variance");
  }
  m.network->eval();
  return m;
}

}  // namespace nasoa::runtime
