#include "zoo/system/usable_cores.h"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace nasoa::zoo {
namespace {

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

bool has_token(const std::string& list, const std::string& token) {
  const std::vector<std::string> tokens = split(list, ',');
  return std::find(tokens.begin(), tokens.end(), token) != tokens.end();
}

// A cgroup hierarchy's mount: where it is, and which cgroup is its top.
struct Mount {
  std::string point;
  std::string root;
};

// The mount of cgroup v2 (`controller` empty) or of the v1 hierarchy that
// has `controller`, from mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS] - FSTYPE SOURCE SUPER".
std::optional<Mount> find_mount(const std::string& mountinfo, const std::string& controller) {
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    const std::vector<std::string> f = split(line, ' ');
    const auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 5 || dash == f.end() || std::distance(dash, f.end()) < 4) continue;
    const std::string& fstype = *(dash + 1);
    const std::string& super = *(dash + 3);
    const bool wanted = controller.empty() ? fstype == "cgroup2" : fstype == "cgroup" && has_token(super, controller);
    if (wanted) return Mount{f[4], f[3]};
  }
  return std::nullopt;
}

// This process's cgroup in v2 (`controller` empty) or in the v1 hierarchy
// that has `controller`, from /proc/self/cgroup: "ID:CONTROLLERS:PATH".
std::optional<std::string> find_cgroup(const std::string& cgroup, const std::string& controller) {
  std::istringstream lines(cgroup);
  std::string line;
  while (std::getline(lines, line)) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const bool wanted = controller.empty() ? line.compare(0, first, "0") == 0 && controllers.empty()
                                           : has_token(controllers, controller);
    if (wanted) return line.substr(second + 1);
  }
  return std::nullopt;
}

// The folders from the process's cgroup up to the hierarchy's top as this
// mount shows them. In a container the mount's top is the container's own
// cgroup, whose path /proc/self/cgroup may give from the host's top.
std::vector<std::filesystem::path> cgroup_folders(const Mount& mount, const std::string& path,
                                                  const std::string& root) {
  const std::filesystem::path top = std::filesystem::path(root + mount.point);
  std::string relative = path;
  if (mount.root != "/" && relative.compare(0, mount.root.size(), mount.root) == 0)
    relative = relative.substr(mount.root.size());
  std::vector<std::filesystem::path> folders;
  const std::filesystem::path below = std::filesystem::path(relative).relative_path();
  std::filesystem::path at = below.empty() ? top : top / below;
  std::error_code ec;
  if (!std::filesystem::is_directory(at, ec)) at = top;  // a path from outside a cgroup namespace
  for (;;) {
    folders.push_back(at);
    if (at == top || !at.has_relative_path() || at.parent_path() == at) break;
    at = at.parent_path();
  }
  return folders;
}

// Quota over period in cores, or nothing for no limit or an unreadable value.
std::optional<double> quota_cores(double quota, double period) {
  if (!(quota > 0) || !(period > 0) || !std::isfinite(quota / period)) return std::nullopt;
  return quota / period;
}

std::optional<double> v2_limit(const std::filesystem::path& folder) {
  std::istringstream in(read_small_file((folder / "cpu.max").string()));
  std::string quota;
  double period = 0;
  if (!(in >> quota >> period) || quota == "max") return std::nullopt;
  try {
    return quota_cores(std::stod(quota), period);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<double> v1_limit(const std::filesystem::path& folder) {
  double quota = 0, period = 0;
  std::istringstream q(read_small_file((folder / "cpu.cfs_quota_us").string()));
  std::istringstream p(read_small_file((folder / "cpu.cfs_period_us").string()));
  if (!(q >> quota) || !(p >> period)) return std::nullopt;  // -1 is "no limit": quota_cores refuses it
  return quota_cores(quota, period);
}

int affinity_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  return int(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int usable_cores(int affinity, const std::string& proc_self_cgroup, const std::string& proc_self_mountinfo,
                 const std::string& root) {
  double cores = std::max(1, affinity);
  const auto lower = [&](const std::string& controller, auto limit_of) {
    const std::optional<Mount> mount = find_mount(proc_self_mountinfo, controller);
    const std::optional<std::string> path = find_cgroup(proc_self_cgroup, controller);
    if (!mount || !path) return;
    for (const std::filesystem::path& folder : cgroup_folders(*mount, *path, root))
      if (const std::optional<double> limit = limit_of(folder)) cores = std::min(cores, *limit);
  };
  lower("", v2_limit);
  lower("cpu", v1_limit);
  return std::max(1, int(std::ceil(cores - 1e-9)));
}

int usable_cores() {
  return usable_cores(affinity_cores(), read_small_file("/proc/self/cgroup"), read_small_file("/proc/self/mountinfo"),
                      "");
}

}  // namespace nasoa::zoo
