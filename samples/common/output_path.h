// Where the sample programs may write: an output file or folder must not lie
// in (or be) a folder they read from or manage, or writing it would replace a
// zoo's manifest, a training image or the model just saved.
#pragma once

#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace nasoa_samples {

// Whether `path` is `folder` or lies under it, both resolved first (links,
// "..", relative paths), so that a folder reached another way still counts.
inline bool is_within(const std::string& path, const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) return false;
  const fs::path f = fs::weakly_canonical(fs::absolute(folder, ec), ec);
  if (ec) return false;
  auto pi = p.begin();
  for (auto fi = f.begin(); fi != f.end(); ++fi) {
    if (fi->empty()) continue;  // a trailing separator
    while (pi != p.end() && pi->empty()) ++pi;
    if (pi == p.end() || *pi != *fi) return false;
    ++pi;
  }
  return true;
}

// "" when `path` (given as option `what`) is clear of every (option, folder)
// in `folders`; otherwise why not, naming both options. Empty folders are
// skipped (an option left out).
inline std::string output_clash(const std::string& what, const std::string& path,
                                const std::vector<std::pair<std::string, std::string>>& folders) {
  for (const auto& [option, folder] : folders) {
    if (folder.empty() || !is_within(path, folder)) continue;
    return what + " " + path + " is inside " + option + " " + folder +
           ", which it would overwrite or add to; write it somewhere else";
  }
  return "";
}

// "" when a file can be written at `path` (given as option `what`): it is a
// regular file or absent, in a folder that exists. Checked before the work,
// so that a summary cannot be lost after it.
inline std::string output_file_problem(const std::string& what, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p = fs::absolute(path, ec);
  if (fs::exists(fs::symlink_status(p, ec)) && !fs::is_regular_file(p, ec))
    return what + " " + path + ": exists and is not a regular file";
  if (!fs::is_directory(p.parent_path(), ec))
    return what + " " + path + ": its folder " + p.parent_path().string() + " does not exist";
  return "";
}

// "" when `state` can be the state folder: not a file, and outside every
// (option, folder) in `inputs` (a state folder inside a task folder is read
// as a class on the next run). An empty `state` (none known) is "".
inline std::string state_folder_problem(const std::string& state,
                                        const std::vector<std::pair<std::string, std::string>>& inputs) {
  namespace fs = std::filesystem;
  if (state.empty()) return "";
  std::error_code ec;
  if (fs::exists(fs::symlink_status(state, ec)) && !fs::is_directory(state, ec))
    return "--state " + state + ": exists and is not a folder";
  for (const auto& [option, folder] : inputs) {
    if (folder.empty() || !is_within(state, folder)) continue;
    return "--state " + state + " is inside " + option + " " + folder + ", which it would add to; keep it elsewhere";
  }
  return "";
}

}  // namespace nasoa_samples
