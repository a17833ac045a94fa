// nasoa::Zoo, the public face of zoo/bundle.
#include <filesystem>

#include "nasoa/zoo.h"
#include "sdk/boundary.h"
#include "sdk/zoo_impl.h"
#include "zoo/bundle/bundle.h"

namespace nasoa {

Zoo::Zoo(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Zoo::Zoo(Zoo&&) noexcept = default;
Zoo& Zoo::operator=(Zoo&&) noexcept = default;
Zoo::~Zoo() = default;

Zoo Zoo::open(const std::string& dir) {
  return sdk::at_boundary("Zoo::open", [&] {
    if (dir.empty()) throw Error(ErrorCode::kInvalidArgument, "Zoo::open: no bundle directory given (empty path)");
    auto impl = std::make_unique<Impl>();
    impl->dir = std::filesystem::absolute(dir).lexically_normal().string();
    impl->manifest = zoo::open_bundle(impl->dir);
    return Zoo(std::move(impl));
  });
}

const std::string& Zoo::dir() const { return impl_->dir; }
const std::string& Zoo::name() const { return impl_->manifest.name; }
std::uint32_t Zoo::format_version() const { return impl_->manifest.format_version; }
const Provenance& Zoo::provenance() const { return impl_->manifest.provenance; }
const std::vector<ModelInfo>& Zoo::models() const { return impl_->manifest.models; }

const ModelInfo& Zoo::model(std::string_view name) const {
  for (const ModelInfo& m : impl_->manifest.models)
    if (m.name == name) return m;
  std::string known;
  for (const ModelInfo& m : impl_->manifest.models) known += (known.empty() ? "" : ", ") + m.name;
  throw Error(ErrorCode::kNotFound, "bundle '" + impl_->manifest.name + "' has no model '" +
                                        std::string(name) + "' (it has: " + known + ")");
}

std::optional<std::string> Zoo::predictor_path() const {
  if (!impl_->manifest.predictor) return std::nullopt;
  return (std::filesystem::path(impl_->dir) / impl_->manifest.predictor->path).string();
}

std::optional<std::string> Zoo::experience_path() const {
  if (!impl_->manifest.experience) return std::nullopt;
  return (std::filesystem::path(impl_->dir) / impl_->manifest.experience->path).string();
}

void Zoo::verify() const {
  sdk::at_boundary("Zoo::verify", [&] {
    for (const zoo::FileEntry& f : impl_->manifest.files()) zoo::verify_file(impl_->dir, f);
  });
}

}  // namespace nasoa
