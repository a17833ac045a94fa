// Energy meters against fake sysfs trees laid out like the boards they model.
#include "runtime/energy/energy_meter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include "nasoa/error.h"
#include "runtime/energy/cuda_device.h"
#include "runtime/energy/meters.h"
#include "tests/runtime/fake_sysfs.h"
#include "tests/support/expect_error.h"

namespace nasoa::runtime {
namespace {

using nasoa::testing::throws_error;
using testing::FakeSysfs;

// A library name that exists nowhere, so that no test depends on whether the
// machine running it has NVIDIA's driver.
constexpr const char* kNoNvml = "libnasoa-test-no-such-nvml.so.1";

MeterOptions options_for(const FakeSysfs& fs, double estimate_watts = 0) {
  MeterOptions options;
  options.sysfs_root = fs.root();
  options.nvml_library = kNoNvml;
  options.estimate_watts = estimate_watts;
  return options;
}

// Orin Nano / NX on JetPack 5/6: one sensor with VDD_IN, plus the driver's
// summary entry and another hwmon device that is not an INA3221.
void make_orin_nano(const FakeSysfs& fs) {
  fs.write("class/hwmon/hwmon0/name", "cpu_thermal");
  fs.write("class/hwmon/hwmon0/in1_label", "VDD_IN");
  fs.write("class/hwmon/hwmon0/in1_input", 9999);
  fs.write("class/hwmon/hwmon0/curr1_input", 9999);
  fs.write("class/hwmon/hwmon1/name", "ina3221");
  fs.hwmon_channel("hwmon1", 1, "VDD_IN", 5080, 1234);
  fs.hwmon_channel("hwmon1", 2, "VDD_CPU_GPU_CV", 5072, 400);
  fs.hwmon_channel("hwmon1", 3, "VDD_SOC", 5064, 300);
  fs.write("class/hwmon/hwmon1/in7_label", "sum of shunt voltages");
  fs.write("class/hwmon/hwmon1/in7_input", 12);
}

TEST(JetsonHwmon, OrinNanoUsesVddIn) {
  FakeSysfs fs;
  make_orin_nano(fs);
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-hwmon:VDD_IN");
  EXPECT_EQ(meter->kind(), MeterKind::kJetsonHwmon);
  EXPECT_EQ(meter->quantity(), MeterQuantity::kPower);
  EXPECT_TRUE(meter->measured());
  EXPECT_DOUBLE_EQ(meter->read_watts(), 5080.0 * 1234.0 / 1e6);
  // Every read goes to the files again.
  fs.write("class/hwmon/hwmon1/curr1_input", 2000);
  EXPECT_DOUBLE_EQ(meter->read_watts(), 5080.0 * 2000.0 / 1e6);
}

TEST(JetsonHwmon, AgxOrinWithoutVddInSumsEveryRailOfBothSensors) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon1/name", "ina3221");
  fs.hwmon_channel("hwmon1", 1, "VDD_GPU_SOC", 19000, 500);
  fs.hwmon_channel("hwmon1", 2, "VDD_CPU_CV", 19000, 300);
  fs.hwmon_channel("hwmon1", 3, "VIN_SYS_5V0", 5000, 800);
  fs.write("class/hwmon/hwmon2/name", "ina3221");
  fs.hwmon_channel("hwmon2", 1, "NC", 100, 100);  // an unused channel
  fs.hwmon_channel("hwmon2", 2, "VDDQ_VDD2_1V8AO", 5000, 100);
  fs.hwmon_channel("hwmon2", 3, "NC", 0, 0);
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(),
            "jetson-ina3221-hwmon:sum(VDD_GPU_SOC,VDD_CPU_CV,VIN_SYS_5V0,VDDQ_VDD2_1V8AO)");
  const double expected = (19000.0 * 500 + 19000.0 * 300 + 5000.0 * 800 + 5000.0 * 100) / 1e6;
  EXPECT_DOUBLE_EQ(meter->read_watts(), expected);
}

TEST(JetsonHwmon, ChannelWithoutCurrentIsIgnored) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon4/name", "ina3221");
  fs.write("class/hwmon/hwmon4/in1_label", "VDD_IN");  // no curr1_input
  fs.write("class/hwmon/hwmon4/in1_input", 5000);
  fs.hwmon_channel("hwmon4", 2, "VDD_SOC", 5000, 200);
  fs.hwmon_channel("hwmon4", 3, "VDD_CPU", 5000, 300);
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-hwmon:sum(VDD_SOC,VDD_CPU)");
  EXPECT_DOUBLE_EQ(meter->read_watts(), 2.5);
}

// AGX Orin has no VDD_IN: its meter is the sum of the rails, so a rail that
// is there but fails (EIO, garbage) must not drop out of the sum, which
// would then pass for the whole board; with VDD_IN readable it does not
// matter.
TEST(JetsonHwmon, ASummedRailThatFailsRefusesTheMeter) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon1/name", "ina3221");
  fs.hwmon_channel("hwmon1", 1, "VDD_GPU_SOC", 19000, 500);
  fs.hwmon_channel("hwmon1", 2, "VDD_CPU_CV", 19000, 300);
  fs.write("class/hwmon/hwmon1/curr1_input", "garbage");
  MeterOptions forced = options_for(fs);
  forced.kind = MeterKind::kJetsonHwmon;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "VDD_GPU_SOC"));
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "hwmon1/curr1_input"));
  EXPECT_EQ(detect_energy_meter(options_for(fs, 7))->kind(), MeterKind::kEstimate);
  // A directory where the value should be reads as an I/O error: the same.
  fs.remove("class/hwmon/hwmon1/curr1_input");
  fs.mkdir("class/hwmon/hwmon1/curr1_input");
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "VDD_GPU_SOC"));
  // A module input rail that reads covers a failing part.
  fs.hwmon_channel("hwmon1", 3, "VDD_IN", 19000, 1000);
  EXPECT_EQ(detect_energy_meter(forced)->name(), "jetson-ina3221-hwmon:VDD_IN");
}

TEST(JetsonHwmon, NegativeBusVoltageIsAFault) {
  FakeSysfs fs;
  make_orin_nano(fs);
  auto meter = detect_energy_meter(options_for(fs));
  // -5 V x -2 A would read as +10 W.
  fs.write("class/hwmon/hwmon1/in1_input", -5000);
  fs.write("class/hwmon/hwmon1/curr1_input", -2000);
  EXPECT_TRUE(throws_error([&] { meter->read_watts(); }, ErrorCode::kCorrupt, "hwmon1/in1_input"));
}

TEST(JetsonHwmon, SensorWithNoCompleteChannelIsNotAMeter) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon0/name", "ina3221");
  fs.write("class/hwmon/hwmon0/in1_label", "VDD_IN");
  fs.write("class/hwmon/hwmon0/in1_input", 5000);
  std::string why_not;
  EXPECT_EQ(open_jetson_hwmon(options_for(fs), &why_not), nullptr);
  EXPECT_NE(why_not.find("curr*_input"), std::string::npos) << why_not;
  EXPECT_EQ(detect_energy_meter(options_for(fs, 4.0))->name(), "estimate:4W");
}

TEST(JetsonHwmon, FoundThroughTheI2cDriverAndCountedOnce) {
  FakeSysfs fs;
  const std::string dev = "bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3";
  fs.write(dev + "/name", "ina3221");
  for (const auto& [i, label, ma] : {std::tuple{1, "VDD_GPU_SOC", 100}, std::tuple{2, "VDD_CPU_CV", 200}}) {
    fs.write(dev + "/in" + std::to_string(i) + "_label", label);
    fs.write(dev + "/in" + std::to_string(i) + "_input", 10000);
    fs.write(dev + "/curr" + std::to_string(i) + "_input", ma);
  }
  {
    auto meter = detect_energy_meter(options_for(fs));
    EXPECT_EQ(meter->name(), "jetson-ina3221-hwmon:sum(VDD_GPU_SOC,VDD_CPU_CV)");
    EXPECT_DOUBLE_EQ(meter->read_watts(), 3.0);
  }
  // Real sysfs also lists the sensor as class/hwmon/hwmon3, a link to the
  // same directory: its rails must not be counted twice.
  fs.symlink(dev, "class/hwmon/hwmon3");
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-hwmon:sum(VDD_GPU_SOC,VDD_CPU_CV)");
  EXPECT_DOUBLE_EQ(meter->read_watts(), 3.0);
}

TEST(JetsonHwmon, UnparsableValueIsAnErrorNamingTheFileAndTheMeterRecovers) {
  FakeSysfs fs;
  make_orin_nano(fs);
  auto meter = detect_energy_meter(options_for(fs));
  fs.write("class/hwmon/hwmon1/in1_input", "garbage");
  EXPECT_TRUE(throws_error([&] { meter->read_watts(); }, ErrorCode::kCorrupt, "hwmon1/in1_input"));
  fs.remove("class/hwmon/hwmon1/curr1_input");
  fs.write("class/hwmon/hwmon1/in1_input", 5000);
  EXPECT_TRUE(throws_error([&] { meter->read_watts(); }, ErrorCode::kNotFound, "hwmon1/curr1_input"));
  fs.write("class/hwmon/hwmon1/curr1_input", 1000);
  EXPECT_DOUBLE_EQ(meter->read_watts(), 5.0);
}

TEST(JetsonHwmon, NegativePowerIsAFaultBeyondARailsShuntOffset) {
  FakeSysfs fs;
  make_orin_nano(fs);
  auto meter = detect_energy_meter(options_for(fs));
  fs.write("class/hwmon/hwmon1/curr1_input", -2000);  // -10 W on the module input
  EXPECT_TRUE(throws_error([&] { meter->read_watts(); }, ErrorCode::kCorrupt, "hwmon1/curr1_input"));
  // A near-idle rail's offset of a few milliamps below zero is no power.
  fs.write("class/hwmon/hwmon1/curr1_input", -3);
  EXPECT_DOUBLE_EQ(meter->read_watts(), 0.0);
}

TEST(JetsonHwmon, AnUnreadableModuleInputIsNotReplacedByTheSumOfItsParts) {
  FakeSysfs fs;
  make_orin_nano(fs);
  fs.write("class/hwmon/hwmon1/curr1_input", "garbage");
  MeterOptions forced = options_for(fs);
  forced.kind = MeterKind::kJetsonHwmon;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "VDD_IN"));
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "hwmon1/curr1_input"));
  // Auto detection goes on to the next meter, here the estimate.
  EXPECT_EQ(detect_energy_meter(options_for(fs, 7))->kind(), MeterKind::kEstimate);
}

TEST(JetsonIio, NanoUsesPom5vIn) {
  FakeSysfs fs;
  fs.write("bus/iio/devices/iio:device0/name", "ina3221x");
  fs.iio_channel("iio:device0", 0, "POM_5V_IN", 3120);
  fs.iio_channel("iio:device0", 1, "POM_5V_GPU", 480);
  fs.iio_channel("iio:device0", 2, "POM_5V_CPU", 820);
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-iio:POM_5V_IN");
  EXPECT_EQ(meter->kind(), MeterKind::kJetsonIio);
  EXPECT_EQ(meter->quantity(), MeterQuantity::kPower);
  EXPECT_DOUBLE_EQ(meter->read_watts(), 3.12);
}

TEST(JetsonIio, XavierUsesVddInOnItsSecondSensor) {
  FakeSysfs fs;
  fs.write("bus/iio/devices/iio:device0/name", "ina3221x");
  fs.iio_channel("iio:device0", 0, "GPU", 1500);
  fs.iio_channel("iio:device0", 1, "CPU", 900);
  fs.iio_channel("iio:device0", 2, "SOC", 1100);
  fs.write("bus/iio/devices/iio:device1/name", "ina3221x");
  fs.iio_channel("iio:device1", 0, "VDD_IN", 7450);
  fs.iio_channel("iio:device1", 1, "CV", 0);
  fs.iio_channel("iio:device1", 2, "VDDRQ", 600);
  fs.write("bus/iio/devices/iio:device2/name", "some-adc");
  fs.iio_channel("iio:device2", 0, "POM_5V_IN", 99999);  // not an INA3221
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-iio:VDD_IN");
  EXPECT_DOUBLE_EQ(meter->read_watts(), 7.45);
}

TEST(JetsonIio, WithoutAnInputRailSumsTheRails) {
  FakeSysfs fs;
  fs.write("bus/iio/devices/iio:device0/name", "ina3221x");
  fs.iio_channel("iio:device0", 0, "GPU", 1500);
  fs.iio_channel("iio:device0", 1, "CPU", 900);
  fs.write("bus/iio/devices/iio:device0/rail_name_2", "SOC");  // no in_power2_input
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "jetson-ina3221-iio:sum(GPU,CPU)");
  EXPECT_DOUBLE_EQ(meter->read_watts(), 2.4);
}

TEST(Detect, HwmonComesBeforeIioAndRapl) {
  FakeSysfs fs;
  make_orin_nano(fs);
  fs.write("bus/iio/devices/iio:device0/name", "ina3221x");
  fs.iio_channel("iio:device0", 0, "POM_5V_IN", 3120);
  fs.rapl_zone("intel-rapl:0", "package-0", 1000, 262143328850);
  EXPECT_EQ(detect_energy_meter(options_for(fs))->kind(), MeterKind::kJetsonHwmon);
  MeterOptions forced = options_for(fs);
  forced.kind = MeterKind::kRapl;
  EXPECT_EQ(detect_energy_meter(forced)->name(), "rapl:package-0");
  forced.kind = MeterKind::kJetsonIio;
  EXPECT_EQ(detect_energy_meter(forced)->name(), "jetson-ina3221-iio:POM_5V_IN");
}

TEST(Rapl, SumsTopLevelPackagesAndIgnoresSubzones) {
  FakeSysfs fs;
  fs.mkdir("class/powercap/intel-rapl");  // the control type, not a zone
  fs.rapl_zone("intel-rapl:0", "package-0", 1000, 262143328850);
  fs.rapl_zone("intel-rapl:0:0", "core", 999999, 262143328850);
  fs.rapl_zone("intel-rapl:1", "package-1", 2000, 65532610987);
  fs.rapl_zone("intel-rapl:1:0", "dram", 888888, 65532610987);
  auto meter = detect_energy_meter(options_for(fs));
  EXPECT_EQ(meter->name(), "rapl:package-0+package-1");
  EXPECT_EQ(meter->kind(), MeterKind::kRapl);
  EXPECT_EQ(meter->quantity(), MeterQuantity::kEnergyCounter);
  EXPECT_TRUE(meter->measured());
  EXPECT_EQ(meter->read_counters_uj(), (std::vector<std::uint64_t>{1000, 2000}));
  EXPECT_EQ(meter->counter_ranges_uj(), (std::vector<std::uint64_t>{262143328850ULL, 65532610987ULL}));
  EXPECT_TRUE(throws_error([&] { meter->read_watts(); }, ErrorCode::kInternal, "rapl:package-0+package-1"));
}

TEST(Rapl, PsysZoneIsNotAddedToThePackages) {
  FakeSysfs fs;
  fs.rapl_zone("intel-rapl:0", "package-0", 1000, 262143328850);
  fs.rapl_zone("intel-rapl:1", "psys", 5000, 262143328850);
  EXPECT_EQ(detect_energy_meter(options_for(fs))->name(), "rapl:package-0");
}

TEST(Rapl, CounterDeltaAcrossTheWrap) {
  constexpr std::uint64_t kRange = 262143328850ULL;
  EXPECT_EQ(counter_delta_uj(1000, 5000, kRange), 4000u);
  EXPECT_EQ(counter_delta_uj(kRange - 100, 50, kRange), 150u);
  EXPECT_EQ(counter_delta_uj(7, 7, kRange), 0u);
  // A counter that goes back with no known range (a driver reset) adds nothing.
  EXPECT_EQ(counter_delta_uj(5000, 100, 0), 0u);
  EXPECT_EQ(counter_delta_uj(kRange + 10, 100, kRange), 0u);
}

TEST(Rapl, UnreadableEnergyIsUnavailableInAutoAndAnErrorWhenForced) {
  // Root reads any file whatever its mode, so "unreadable" is modelled as a
  // directory where energy_uj should be, which read() refuses for anyone.
  FakeSysfs fs;
  fs.write("class/powercap/intel-rapl:0/name", "package-0");
  fs.write("class/powercap/intel-rapl:0/max_energy_range_uj", 262143328850);
  fs.mkdir("class/powercap/intel-rapl:0/energy_uj");
  auto meter = detect_energy_meter(options_for(fs, 7.5));
  EXPECT_EQ(meter->name(), "estimate:7.5W");
  MeterOptions forced = options_for(fs, 7.5);
  forced.kind = MeterKind::kRapl;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "intel-rapl:0/energy_uj"));

  fs.remove("class/powercap/intel-rapl:0/energy_uj");  // missing altogether
  EXPECT_EQ(detect_energy_meter(options_for(fs, 7.5))->name(), "estimate:7.5W");
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "intel-rapl:0/energy_uj"));
}

TEST(Estimate, ChosenWhenNothingCanBeRead) {
  FakeSysfs fs;
  auto meter = detect_energy_meter(options_for(fs, 12.5));
  EXPECT_EQ(meter->name(), "estimate:12.5W");
  EXPECT_EQ(meter->kind(), MeterKind::kEstimate);
  EXPECT_EQ(meter->quantity(), MeterQuantity::kPower);
  EXPECT_FALSE(meter->measured());
  EXPECT_DOUBLE_EQ(meter->read_watts(), 12.5);
}

TEST(Estimate, NonPositiveWattsAreRefused) {
  FakeSysfs fs;
  EXPECT_TRUE(throws_error([] { make_estimated_meter(0); }, ErrorCode::kInvalidArgument, "estimate_watts"));
  EXPECT_TRUE(throws_error([] { make_estimated_meter(-2); }, ErrorCode::kInvalidArgument, "-2"));
  EXPECT_TRUE(throws_error([] { make_estimated_meter(std::numeric_limits<double>::quiet_NaN()); },
                           ErrorCode::kInvalidArgument, "estimate_watts"));
  MeterOptions forced = options_for(fs, 0);
  forced.kind = MeterKind::kEstimate;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kInvalidArgument, "estimate_watts"));
  // A negative value is bad input even when a real meter would be found.
  make_orin_nano(fs);
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options_for(fs, -3)); }, ErrorCode::kInvalidArgument,
                           "estimate_watts"));
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options_for(fs, std::numeric_limits<double>::infinity())); },
                           ErrorCode::kInvalidArgument, "estimate_watts"));
  // So is a figure no device draws, which would overflow the joules.
  EXPECT_TRUE(throws_error([] { make_estimated_meter(1e308); }, ErrorCode::kInvalidArgument, "1e+308"));
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options_for(fs, kMaxPlausibleWatts * 2)); },
                           ErrorCode::kInvalidArgument, "estimate_watts"));
}

TEST(Detect, NothingReadableAndNoEstimateSaysWhatWasTried) {
  FakeSysfs fs;
  MeterOptions options = options_for(fs, 0);
  options.gpu_job = true;
  EXPECT_TRUE(nasoa::testing::throws_error_with(
      [&] { detect_energy_meter(options); }, ErrorCode::kNotFound,
      {"jetson-hwmon", "jetson-iio", "nvml", "rapl", kNoNvml, "estimate_watts"}));
  // For a job on the CPU, NVML is not tried, and the message says why.
  options.gpu_job = false;
  EXPECT_TRUE(
      throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound, "nvml: not for a job on the CPU"));
}

TEST(Detect, AMeterWhoseFirstReadingIsImplausibleIsPassedOver) {
  // Numbers in every file, but -10 W on one rail and 2.5 MW on the other:
  // a meter that could never read would count no joule at all.
  for (const auto& [mv, ma] : {std::pair{5000LL, -2000LL}, std::pair{50000000LL, 50000LL}}) {
    FakeSysfs fs;
    fs.write("class/hwmon/hwmon0/name", "ina3221");
    fs.hwmon_channel("hwmon0", 1, "VDD_IN", mv, ma);
    EXPECT_EQ(detect_energy_meter(options_for(fs, 4.0))->name(), "estimate:4W") << mv << " mV, " << ma << " mA";
    MeterOptions forced = options_for(fs);
    forced.kind = MeterKind::kJetsonHwmon;
    EXPECT_TRUE(throws_error([&] { detect_energy_meter(forced); }, ErrorCode::kNotFound, "first reading failed"))
        << mv << " mV, " << ma << " mA";
  }
}

TEST(Detect, ForcedMeterThatIsAbsentNamesWhereItLooked) {
  FakeSysfs fs;
  MeterOptions options = options_for(fs, 10);
  options.kind = MeterKind::kJetsonHwmon;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound, fs.root() + "/class/hwmon"));
  options.kind = MeterKind::kJetsonIio;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound,
                           fs.root() + "/bus/iio/devices"));
  options.kind = MeterKind::kRapl;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound,
                           fs.root() + "/class/powercap"));
  options.kind = MeterKind::kNvml;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound, kNoNvml));
}

TEST(Nvml, AbsentLibraryIsSkippedInAuto) {
  FakeSysfs fs;
  MeterOptions options = options_for(fs, 9);
  options.gpu_job = true;
  // A library that certainly is not there.
  std::string why_not;
  options.nvml_library = kNoNvml;
  EXPECT_EQ(open_nvml(options, &why_not), nullptr);
  EXPECT_NE(why_not.find(kNoNvml), std::string::npos) << why_not;
  // A library that exists but is not NVML.
  options.nvml_library = "libm.so.6";
  EXPECT_EQ(open_nvml(options, &why_not), nullptr);
  EXPECT_NE(why_not.find("nvmlInit_v2"), std::string::npos) << why_not;
  EXPECT_EQ(detect_energy_meter(options)->name(), "estimate:9W");
}

TEST(MeterKindNames, RoundTripAndRefuseUnknown) {
  for (const MeterKind kind : {MeterKind::kAuto, MeterKind::kJetsonHwmon, MeterKind::kJetsonIio,
                               MeterKind::kNvml, MeterKind::kRapl, MeterKind::kEstimate}) {
    EXPECT_EQ(parse_meter_kind(to_string(kind)), kind);
  }
  EXPECT_TRUE(throws_error([] { parse_meter_kind("ina"); }, ErrorCode::kInvalidArgument, "'ina'"));
}

// The stand-in libnvidia-ml (tests/support/fake_nvml.cpp): one GPU, index 0,
// whose millijoule counter grows by 250 at every read.
MeterOptions fake_nvml(const FakeSysfs& fs) {
  MeterOptions options = options_for(fs);
  options.nvml_library = NASOA_FAKE_NVML;
  return options;
}

TEST(Nvml, ReadsTheDriversEnergyCounter) {
  FakeSysfs fs;
  MeterOptions options = fake_nvml(fs);
  options.kind = MeterKind::kNvml;
  auto meter = detect_energy_meter(options);
  EXPECT_EQ(meter->name(), "nvml:gpu0");
  EXPECT_EQ(meter->kind(), MeterKind::kNvml);
  EXPECT_EQ(meter->quantity(), MeterQuantity::kEnergyCounter);
  EXPECT_TRUE(meter->measured());
  EXPECT_EQ(meter->counter_ranges_uj(), (std::vector<std::uint64_t>{0})) << "64-bit millijoules do not wrap";
  const std::vector<std::uint64_t> first = meter->read_counters_uj(), second = meter->read_counters_uj();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0] - first[0], 250u * 1000) << "millijoules become microjoules";
  EXPECT_EQ(first[0] % 1000, 0u);
}

TEST(Nvml, FindsTheGpuAJobRunsOnByItsPciBusId) {
  // CUDA's device 0 may be any of NVML's GPUs: the meter goes by bus id.
  EXPECT_EQ(cuda_pci_bus_id(0, NASOA_FAKE_CUDA), "0000:3b:00.0");
  EXPECT_EQ(cuda_pci_bus_id(1, NASOA_FAKE_CUDA), "") << "no such device";
  EXPECT_EQ(cuda_pci_bus_id(0, kNoNvml), "") << "no driver";
  FakeSysfs fs;
  MeterOptions options = fake_nvml(fs);
  options.kind = MeterKind::kNvml;
  options.gpu_pci_bus_id = cuda_pci_bus_id(0, NASOA_FAKE_CUDA);
  options.nvml_gpu_index = 7;  // not used when the bus id is known
  auto meter = detect_energy_meter(options);
  EXPECT_EQ(meter->name(), "nvml:gpu@0000:3b:00.0");
  const std::vector<std::uint64_t> first = meter->read_counters_uj(), second = meter->read_counters_uj();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0] - first.at(0), 250u * 1000);
  options.gpu_pci_bus_id = "0000:af:00.0";
  EXPECT_TRUE(
      throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound, "no GPU at PCI bus id 0000:af:00.0"));
}

TEST(Nvml, AGpuThatIsNotThereIsNamed) {
  FakeSysfs fs;
  MeterOptions options = fake_nvml(fs);
  options.kind = MeterKind::kNvml;
  options.nvml_gpu_index = 3;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound, "no GPU with index 3"));
}

TEST(Nvml, ChosenInAutoOnlyForAJobOnTheGpu) {
  FakeSysfs fs;
  fs.rapl_zone("intel-rapl:0", "package-0", 1000, 262143328850);
  MeterOptions options = fake_nvml(fs);
  options.gpu_job = true;
  EXPECT_EQ(detect_energy_meter(options)->name(), "nvml:gpu0");
  // On the CPU the job's energy is the CPU's: RAPL, not an idle GPU's counter.
  options.gpu_job = false;
  EXPECT_EQ(detect_energy_meter(options)->name(), "rapl:package-0");
  fs.remove("class/powercap");
  options.estimate_watts = 9;
  EXPECT_EQ(detect_energy_meter(options)->name(), "estimate:9W");
  // A Jetson's rails cover the board, so they win either way.
  make_orin_nano(fs);
  options.gpu_job = true;
  EXPECT_EQ(detect_energy_meter(options)->kind(), MeterKind::kJetsonHwmon);
}

TEST(Rapl, NotChosenInAutoForAJobOnTheGpu) {
  // The packages miss the GPU that draws most of the power; had RAPL been
  // taken when NVML does not load, the joules would read as measured and an
  // energy budget would let several times its worth through.
  FakeSysfs fs;
  fs.rapl_zone("intel-rapl:0", "package-0", 1000, 262143328850);
  MeterOptions options = options_for(fs, 9);
  options.gpu_job = true;
  auto meter = detect_energy_meter(options);
  EXPECT_EQ(meter->name(), "estimate:9W");
  EXPECT_FALSE(meter->measured());
  options.estimate_watts = 0;
  EXPECT_TRUE(throws_error([&] { detect_energy_meter(options); }, ErrorCode::kNotFound,
                           "rapl: not for a job on the GPU"));
  // Asked for by name, RAPL is still given.
  options.kind = MeterKind::kRapl;
  EXPECT_EQ(detect_energy_meter(options)->name(), "rapl:package-0");
}

}  // namespace
}  // namespace nasoa::runtime
