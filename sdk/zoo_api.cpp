// nasoa::Zoo, the public face of zoo/bundle.
#include <filesystem>

#include "nasoa/zoo.h"
#include "sdk/boundary.h"
#include "sdk/zoo_impl.h"
#include "zoo/bundle/bundle.h"

namespace nasoa {

Zoo::Zoo(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Zoo::Zoo(const Zoo&) = default;
Zoo& Zoo::operator=(const Zoo&) = default;
Zoo::Zoo(Zoo&&) noexcept = default;
Zoo& Zoo::operator=(Zoo&&) noexcept = default;
Zoo::~Zoo() = default;

const Zoo::Impl& Zoo::impl() const {
  if (!impl_) throw Error(ErrorCode::kInvalidArgument, "nasoa::Zoo: used after it was moved from");
  return *impl_;
}

Zoo Zoo::open(const std::string& dir) {
  return sdk::at_boundary("Zoo::open", [&] {
    if (dir.empty()) throw Error(ErrorCode::kInvalidArgument, "Zoo::open: no bundle directory given (empty path)");
    auto impl = std::make_unique<Impl>();
    // A bundle whose update a crash interrupted (on a file system that
    // cannot swap folders) is put back first; where it cannot be (read-only),
    // it is read where it was set aside.
    impl->dir = zoo::recover_bundle(std::filesystem::absolute(dir).lexically_normal().string());
    impl->manifest = zoo::open_bundle(impl->dir);
    return Zoo(std::shared_ptr<const Impl>(std::move(impl)));
  });
}

const std::string& Zoo::dir() const { return impl().dir; }
const std::string& Zoo::name() const { return impl().manifest.name; }
std::uint32_t Zoo::format_version() const { return impl().manifest.format_version; }
const Provenance& Zoo::provenance() const { return impl().manifest.provenance; }
const std::vector<ModelInfo>& Zoo::models() const { return impl().manifest.models; }

const ModelInfo& Zoo::model(std::string_view name) const {
  const zoo::Manifest& manifest = impl().manifest;
  for (const ModelInfo& m : manifest.models)
    if (m.name == name) return m;
  std::string known;
  for (const ModelInfo& m : manifest.models) known += (known.empty() ? "" : ", ") + m.name;
  throw Error(ErrorCode::kNotFound, "bundle '" + manifest.name + "' has no model '" + std::string(name) +
                                        "' (it has: " + known + ")");
}

std::optional<std::string> Zoo::predictor_path() const {
  const Impl& bundle = impl();
  if (!bundle.manifest.predictor) return std::nullopt;
  return (std::filesystem::path(bundle.dir) / bundle.manifest.predictor->path).string();
}

std::optional<std::string> Zoo::experience_path() const {
  const Impl& bundle = impl();
  if (!bundle.manifest.experience) return std::nullopt;
  return (std::filesystem::path(bundle.dir) / bundle.manifest.experience->path).string();
}

void Zoo::verify() const {
  sdk::at_boundary("Zoo::verify", [&] {
    const Impl& bundle = impl();
    for (const zoo::FileEntry& f : bundle.manifest.files()) zoo::verify_file(bundle.dir, f);
  });
}

}  // namespace nasoa
