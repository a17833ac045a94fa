// tests/runtime/fake_sysfs.h: a throw-away sysfs tree for the energy tests.
//
// Each FakeSysfs is a fresh directory under the system's temp directory,
// removed with everything in it when the object goes away. Values are written
// with a rename, so that a meter sampling concurrently sees the old or the
// new value and never half a file.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace nasoa::runtime::testing {

class FakeSysfs {
 public:
  FakeSysfs() {
    std::string pattern = (std::filesystem::temp_directory_path() / "nasoa-sysfs-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    root_ = pattern;
  }
  ~FakeSysfs() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  FakeSysfs(const FakeSysfs&) = delete;
  FakeSysfs& operator=(const FakeSysfs&) = delete;

  const std::string& root() const { return root_; }
  std::string path(const std::string& relative) const { return root_ + "/" + relative; }

  // Creates parent directories as needed; sysfs values end with a newline.
  void write(const std::string& relative, const std::string& value) const {
    const std::filesystem::path target(path(relative));
    std::filesystem::create_directories(target.parent_path());
    const std::string tmp = target.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << value << "\n";
      if (!out) throw std::runtime_error("cannot write " + tmp);
    }
    std::filesystem::rename(tmp, target);
  }
  void write(const std::string& relative, long long value) const {
    write(relative, std::to_string(value));
  }

  void remove(const std::string& relative) const { std::filesystem::remove_all(path(relative)); }
  void mkdir(const std::string& relative) const { std::filesystem::create_directories(path(relative)); }
  void symlink(const std::string& target_relative, const std::string& link_relative) const {
    const std::filesystem::path link(path(link_relative));
    std::filesystem::create_directories(link.parent_path());
    std::filesystem::create_directory_symlink(path(target_relative), link);
  }

  // One INA3221 channel in the JetPack 5/6 hwmon layout.
  void hwmon_channel(const std::string& sensor, int i, const std::string& label, long long mv,
                     long long ma) const {
    const std::string dir = "class/hwmon/" + sensor + "/";
    write(dir + "in" + std::to_string(i) + "_label", label);
    write(dir + "in" + std::to_string(i) + "_input", mv);
    write(dir + "curr" + std::to_string(i) + "_input", ma);
  }

  // One INA3221 channel in the JetPack 4 iio layout.
  void iio_channel(const std::string& device, int n, const std::string& rail, long long mw) const {
    const std::string dir = "bus/iio/devices/" + device + "/";
    write(dir + "rail_name_" + std::to_string(n), rail);
    write(dir + "in_power" + std::to_string(n) + "_input", mw);
    write(dir + "in_voltage" + std::to_string(n) + "_input", 5000);
    write(dir + "in_current" + std::to_string(n) + "_input", mw / 5);
  }

  void rapl_zone(const std::string& zone, const std::string& name, unsigned long long energy_uj,
                 unsigned long long max_range_uj) const {
    const std::string dir = "class/powercap/" + zone + "/";
    write(dir + "name", name);
    write(dir + "energy_uj", std::to_string(energy_uj));
    write(dir + "max_energy_range_uj", std::to_string(max_range_uj));
  }

 private:
  std::string root_;
};

}  // namespace nasoa::runtime::testing
