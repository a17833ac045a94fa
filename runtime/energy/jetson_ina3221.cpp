// Jetson boards carry INA3221 power monitors on their supply rails. The
// driver exposes them differently by JetPack release:
//   JetPack 5/6, hwmon: class/hwmon/hwmonN/name == "ina3221", channel i with
//     in{i}_label, in{i}_input (mV) and curr{i}_input (mA).
//     Orin Nano/NX and Xavier NX label one channel VDD_IN (the whole module);
//     AGX Orin has two sensors and no VDD_IN, so the module is the sum of its
//     rails. Entries such as "sum of shunt voltages" have no current channel,
//     and unused channels are labelled "NC": neither is a rail.
//   JetPack 4, iio: bus/iio/devices/iio:deviceN/name == "ina3221x", channel N
//     with rail_name_N and in_power{N}_input (mW). Nano's module input is
//     POM_5V_IN; some boards name it VDD_IN.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "nasoa/error.h"
#include "runtime/energy/meters.h"
#include "runtime/energy/sysfs.h"
#include "zoo/text/printable.h"

namespace nasoa::runtime {
namespace {

struct Rail {
  std::string label;
  // Integer files whose product, times `scale`, is the rail's watts.
  std::vector<std::string> factors;
  double scale = 1.0;
};

class RailMeter final : public EnergyMeter {
 public:
  RailMeter(MeterKind kind, std::string name, std::vector<Rail> rails)
      : kind_(kind), name_(std::move(name)), rails_(std::move(rails)) {}

  std::string name() const override { return name_; }
  MeterKind kind() const override { return kind_; }
  MeterQuantity quantity() const override { return MeterQuantity::kPower; }
  bool measured() const override { return true; }

  double read_watts() override {
    double watts = 0;
    for (const Rail& rail : rails_) {
      double product = rail.scale;
      for (std::size_t i = 0; i < rail.factors.size(); ++i) {
        const std::int64_t value = sysfs::read_int(rail.factors[i]);
        // Only the last factor (a current, or the power itself) may read a
        // little below zero; a bus voltage cannot, and a negative one times
        // a negative current would pass for positive power.
        if (value < 0 && i + 1 < rail.factors.size())
          throw Error(ErrorCode::kCorrupt, "rail " + rail.label + ": " + rail.factors[i] + " reads " +
                                               std::to_string(value) + ": a negative bus voltage");
        product *= static_cast<double>(value);
      }
      // A near-idle rail's shunt offset can read a few milliamps below zero:
      // that is no power. More than a watt below zero is a fault.
      if (product < -1.0) {
        std::string files;
        for (const std::string& path : rail.factors) files += (files.empty() ? "" : " x ") + path;
        throw Error(ErrorCode::kCorrupt, "rail " + rail.label + " reads " + zoo::shown_number(product) +
                                             " W (" + files + "): negative power");
      }
      watts += std::max(0.0, product);
    }
    return watts;
  }

 private:
  MeterKind kind_;
  std::string name_;
  std::vector<Rail> rails_;
};

// `name` is prefix + decimal index + suffix; returns the index text or "".
std::string index_of(const std::string& name, const std::string& prefix, const std::string& suffix) {
  if (name.size() <= prefix.size() + suffix.size()) return "";
  if (name.compare(0, prefix.size(), prefix) != 0) return "";
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return "";
  const std::string digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  for (const char c : digits) {
    if (c < '0' || c > '9') return "";
  }
  return digits;
}

// Whether `rail` can be read: a rail counts only if every factor reads as a
// number now. A factor that is not there (kNotFound: a missing file, or a
// disabled channel) makes no rail; any other failure is a rail that exists
// and fails, and `fault` says how.
struct RailCheck {
  bool readable = false;
  std::string fault;  // set when a rail is there but fails to read
};
RailCheck check_rail(const Rail& rail) {
  try {
    for (const std::string& path : rail.factors) sysfs::read_int(path);
    return {true, {}};
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kNotFound) return {};
    return {false, rail.label + " (" + e.what() + ")"};
  }
}

bool is_rail_label(const std::string& label) { return !label.empty() && label != "NC"; }

// One rail named `preferred` (the first that exists) or, when none, all rails.
std::unique_ptr<EnergyMeter> choose_rails(MeterKind kind, const std::string& prefix,
                                          std::vector<Rail> rails,
                                          const std::vector<std::string>& preferred) {
  for (const std::string& want : preferred) {
    for (Rail& rail : rails) {
      if (rail.label == want) {
        std::string name = prefix + rail.label;
        return std::make_unique<RailMeter>(kind, std::move(name), std::vector<Rail>{std::move(rail)});
      }
    }
  }
  std::string name = prefix + "sum(";
  for (std::size_t i = 0; i < rails.size(); ++i) name += (i ? "," : "") + rails[i].label;
  name += ")";
  return std::make_unique<RailMeter>(kind, std::move(name), std::move(rails));
}

// The same sensor shows up under class/hwmon and under the i2c driver's
// device; real sysfs links both to one directory, so compare resolved paths.
std::string resolved(const std::string& path) {
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(path, ec);
  return ec ? path : canonical.string();
}

std::vector<std::string> hwmon_sensor_dirs(const std::string& root) {
  std::vector<std::string> dirs;
  std::set<std::string> seen;
  const auto consider = [&](const std::string& dir) {
    if (seen.insert(resolved(dir)).second) dirs.push_back(dir);
  };
  const std::string class_dir = root + "/class/hwmon";
  for (const std::string& entry : sysfs::list_dir(class_dir)) consider(class_dir + "/" + entry);
  const std::string driver_dir = root + "/bus/i2c/drivers/ina3221";
  for (const std::string& device : sysfs::list_dir(driver_dir)) {
    const std::string hwmon_dir = driver_dir + "/" + device + "/hwmon";
    for (const std::string& entry : sysfs::list_dir(hwmon_dir)) consider(hwmon_dir + "/" + entry);
  }
  return dirs;
}

// The readable rails of one sensor directory: every entry `<prefix>N<suffix>`
// holds a rail's label, and `factors(N)` the files whose product, times
// `scale`, is its power. Both INA3221 layouts (hwmon and iio) share this. A
// labelled channel whose files are there but fail to read (EIO, a value that
// is no number) is added to `faults`: a meter that sums the rails must not
// leave it out. A channel without its files, or disabled, is no rail.
void collect_rails(const std::string& dir, const char* prefix, const char* suffix, double scale,
                   const std::function<std::vector<std::string>(const std::string&)>& factors,
                   std::vector<Rail>* rails, std::vector<std::string>* faults) {
  for (const std::string& entry : sysfs::list_dir(dir)) {
    const std::string n = index_of(entry, prefix, suffix);
    if (n.empty()) continue;
    Rail rail;
    try {
      rail.label = sysfs::read_text(dir + "/" + entry);
    } catch (const Error&) {
      continue;
    }
    if (!is_rail_label(rail.label)) continue;
    rail.factors = factors(n);
    rail.scale = scale;
    const RailCheck check = check_rail(rail);
    if (check.readable)
      rails->push_back(std::move(rail));
    else if (!check.fault.empty())
      faults->push_back(check.fault);
  }
}

std::string read_name(const std::string& dir) {
  try {
    return sysfs::read_text(dir + "/name");
  } catch (const Error&) {
    return "";
  }
}


// Why no meter should be made of these rails ("" when one can): the module
// input rail, when readable, is the whole board and is used alone; without
// it the meter is the sum of the rails, and a sum missing a rail that is
// there but fails would pass for the whole board and under-count.
std::string rail_problem(const std::vector<Rail>& rails, const std::vector<std::string>& inputs,
                         const std::vector<std::string>& faults) {
  if (faults.empty()) return "";
  for (const Rail& rail : rails)
    if (std::find(inputs.begin(), inputs.end(), rail.label) != inputs.end()) return "";
  std::string text = "rail";
  text += faults.size() > 1 ? "s " : " ";
  for (std::size_t i = 0; i < faults.size(); ++i) text += (i ? ", " : "") + faults[i];
  return text + " cannot be read: without the module input rail the meter sums the rails, and a sum without " +
         (faults.size() > 1 ? "them" : "it") + " would under-count";
}

const std::vector<std::string> kHwmonInputs = {"VDD_IN"};
const std::vector<std::string> kIioInputs = {"POM_5V_IN", "VDD_IN"};

}  // namespace

std::unique_ptr<EnergyMeter> open_jetson_hwmon(const MeterOptions& options, std::string* why_not) {
  const std::string& root = options.sysfs_root;
  std::vector<Rail> rails;
  std::vector<std::string> faults;
  int sensors = 0;
  for (const std::string& dir : hwmon_sensor_dirs(root)) {
    if (read_name(dir) != "ina3221") continue;
    ++sensors;
    collect_rails(dir, "in", "_label", 1e-6,  // mV * mA = uW
                  [&](const std::string& i) -> std::vector<std::string> {
                    return {dir + "/in" + i + "_input", dir + "/curr" + i + "_input"};
                  },
                  &rails, &faults);
  }
  if (const std::string problem = rail_problem(rails, kHwmonInputs, faults); !problem.empty()) {
    *why_not = problem;
    return nullptr;
  }
  if (rails.empty()) {
    *why_not = sensors == 0
                   ? "no hwmon sensor named 'ina3221' under " + root + "/class/hwmon or " + root +
                         "/bus/i2c/drivers/ina3221"
                   : "the ina3221 sensor(s) under " + root +
                         "/class/hwmon have no channel with a label, in*_input and curr*_input "
                         "that can be read";
    return nullptr;
  }
  return choose_rails(MeterKind::kJetsonHwmon, "jetson-ina3221-hwmon:", std::move(rails), kHwmonInputs);
}

std::unique_ptr<EnergyMeter> open_jetson_iio(const MeterOptions& options, std::string* why_not) {
  const std::string devices_dir = options.sysfs_root + "/bus/iio/devices";
  std::vector<Rail> rails;
  std::vector<std::string> faults;
  int sensors = 0;
  for (const std::string& device : sysfs::list_dir(devices_dir)) {
    if (device.rfind("iio:device", 0) != 0) continue;
    const std::string dir = devices_dir + "/" + device;
    if (read_name(dir) != "ina3221x") continue;
    ++sensors;
    collect_rails(dir, "rail_name_", "", 1e-3,  // mW
                  [&](const std::string& n) -> std::vector<std::string> {
                    return {dir + "/in_power" + n + "_input"};
                  },
                  &rails, &faults);
  }
  if (const std::string problem = rail_problem(rails, kIioInputs, faults); !problem.empty()) {
    *why_not = problem;
    return nullptr;
  }
  if (rails.empty()) {
    *why_not = sensors == 0 ? "no iio device named 'ina3221x' under " + devices_dir
                            : "the ina3221x device(s) under " + devices_dir +
                                  " have no rail_name_N with a readable in_powerN_input";
    return nullptr;
  }
  return choose_rails(MeterKind::kJetsonIio, "jetson-ina3221-iio:", std::move(rails), kIioInputs);
}

}  // namespace nasoa::runtime
