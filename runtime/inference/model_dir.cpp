#include "runtime/inference/model_dir.h"

#include <filesystem>
#include <system_error>

#include "nasoa/error.h"
#include "zoo/bundle/atomic_file.h"
#include "zoo/bundle/bundle.h"
#include "zoo/bundle/manifest.h"

namespace fs = std::filesystem;

namespace nasoa::runtime {
namespace {

struct Paths {
  fs::path dir, staging, aside;
};

Paths paths_of(const std::string& dir) {
  Paths p;
  p.dir = fs::absolute(dir).lexically_normal();
  if (p.dir.filename().empty()) p.dir = p.dir.parent_path();  // "dir/" names dir
  const std::string name = p.dir.filename().string();
  p.staging = p.dir.parent_path() / ("." + name + ".new");
  p.aside = p.dir.parent_path() / ("." + name + ".old");
  return p;
}

bool is_bundle(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir, ec) && fs::is_regular_file(dir / zoo::kManifestFileName, ec);
}

void rename_or_throw(const fs::path& from, const fs::path& to, const char* what) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec)
    throw Error(ErrorCode::kIo, from.string() + ": cannot " + what + " (to " + to.string() +
                                    "): " + ec.message());
}

void check_labels(const std::vector<std::string>& labels, int classes) {
  if (static_cast<int>(labels.size()) != classes)
    throw Error(ErrorCode::kInvalidArgument, std::to_string(labels.size()) + " labels for a network of " +
                                                 std::to_string(classes) + " classes");
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels[i].empty() || labels[i].find_first_of("\t\n\r") != std::string::npos)
      throw Error(ErrorCode::kInvalidArgument,
                  "label " + std::to_string(i) + " ('" + labels[i] +
                      "') must be non-empty and free of tabs and line breaks (they delimit output)");
}

}  // namespace

std::string recover_model_dir(const std::string& dir) {
  const Paths p = paths_of(dir);
  std::error_code ec;
  if (!fs::exists(p.aside, ec)) return p.dir.string();
  if (fs::exists(p.dir, ec)) {
    // The new model is in place; the crash came while removing the old one.
    fs::remove_all(p.aside, ec);
    return p.dir.string();
  }
  // The crash came between the two renames: the aside copy is the complete old model.
  if (!is_bundle(p.aside)) return p.dir.string();
  fs::rename(p.aside, p.dir, ec);
  if (ec) return p.aside.string();
  zoo::sync_directory(p.dir.parent_path().string());
  return p.dir.string();
}

void save_model_dir(const std::string& dir, zoo::Network& network, const ModelDirInfo& info) {
  check_labels(info.labels, network->num_classes());
  const Paths p = paths_of(dir);
  recover_model_dir(p.dir.string());
  std::error_code ec;
  const bool replacing = fs::exists(fs::symlink_status(p.dir, ec));
  if (replacing && !is_bundle(p.dir))
    throw Error(ErrorCode::kInvalidArgument,
                p.dir.string() + " exists and is not a model directory (no " +
                    zoo::kManifestFileName + "); refusing to replace it");

  zoo::BundleInput input;
  input.name = zoo::is_safe_name(p.dir.filename().string()) ? p.dir.filename().string() : kModelName;
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

  // A staging copy left by an earlier crash was never the live model.
  fs::remove_all(p.staging, ec);
  zoo::write_bundle(p.staging.string(), input);
  if (replacing) rename_or_throw(p.dir, p.aside, "move the old model directory aside");
  try {
    rename_or_throw(p.staging, p.dir, "move the new model directory into place");
  } catch (...) {
    fs::rename(p.aside, p.dir, ec);
    fs::remove_all(p.staging, ec);
    throw;
  }
  zoo::sync_directory(p.dir.parent_path().string());
  if (replacing) fs::remove_all(p.aside, ec);
}

LoadedModel open_model_dir(const std::string& dir) {
  LoadedModel m;
  m.dir = recover_model_dir(dir);
  const zoo::Manifest manifest = zoo::open_bundle(m.dir);
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
  m.network->eval();
  return m;
}

}  // namespace nasoa::runtime
