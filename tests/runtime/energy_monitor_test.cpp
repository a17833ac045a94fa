// The sampling thread and the integration behind it. Assertions are on
// quantities computed from the monitor's own sample times, never on how fast
// anything ran: waits poll for a state with a generous deadline.
#include "runtime/energy/energy_monitor.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <functional>
#include <thread>

#include "nasoa/error.h"
#include "tests/runtime/fake_sysfs.h"
#include "tests/support/expect_error.h"

namespace nasoa::runtime {
namespace {

using testing::FakeSysfs;
using namespace std::chrono_literals;

// Polls `done` until it holds; false after a deadline long enough for the
// most loaded machine, so a false means the monitor is stuck, not slow.
template <typename Pred>
bool eventually(Pred done) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

MonitorOptions fast(bool keep_samples = true) {
  MonitorOptions options;
  options.interval = 5ms;
  options.keep_samples = keep_samples;
  return options;
}

// A power meter whose n-th reading (0-based) is watts(n), which may throw;
// `on_destroy` runs when the meter is destroyed.
class ScriptedMeter final : public EnergyMeter {
 public:
  explicit ScriptedMeter(std::function<double(int)> watts, std::function<void()> on_destroy = {})
      : watts_(std::move(watts)), on_destroy_(std::move(on_destroy)) {}
  ~ScriptedMeter() override {
    if (on_destroy_) on_destroy_();
  }
  std::string name() const override { return "test:scripted"; }
  MeterKind kind() const override { return MeterKind::kEstimate; }
  MeterQuantity quantity() const override { return MeterQuantity::kPower; }
  bool measured() const override { return true; }
  double read_watts() override { return watts_(reads_++); }

 private:
  std::function<double(int)> watts_;
  std::function<void()> on_destroy_;
  int reads_ = 0;
};

// Watts 10, 11, 12, ... on successive reads.
std::unique_ptr<EnergyMeter> ramp_meter() {
  return std::make_unique<ScriptedMeter>([](int n) { return 10.0 + n; });
}

std::unique_ptr<EnergyMeter> open_forced(const FakeSysfs& fs, MeterKind kind) {
  MeterOptions options;
  options.sysfs_root = fs.root();
  options.kind = kind;
  return detect_energy_meter(options);
}

TEST(EnergyIntegrator, PowerByTheTrapezoidRule) {
  EnergyIntegrator integrator;
  integrator.add_power(100.0, 10.0);
  EXPECT_EQ(integrator.joules(), 0.0);
  integrator.add_power(102.0, 20.0);  // 2 s averaging 15 W
  integrator.add_power(103.0, 20.0);  // 1 s at 20 W
  integrator.add_power(103.0, 40.0);  // no time, no energy
  EXPECT_DOUBLE_EQ(integrator.joules(), 50.0);
  EXPECT_DOUBLE_EQ(integrator.seconds(), 3.0);
  EXPECT_EQ(integrator.samples(), 4u);
  EXPECT_DOUBLE_EQ(integrator.last_watts(), 40.0);
  EXPECT_THROW(integrator.add_power(102.5, 10.0), Error);
  EXPECT_DOUBLE_EQ(integrator.joules(), 50.0);
}

TEST(EnergyIntegrator, ImplausiblePowerIsRefused) {
  EnergyIntegrator integrator;
  integrator.add_power(0.0, 5.0);
  for (const double bad : {-10.0, 1e308, kMaxPlausibleWatts * 1.5, std::nan("")}) {
    EXPECT_TRUE(nasoa::testing::throws_error([&] { integrator.add_power(1.0, bad); }, ErrorCode::kCorrupt, ""))
        << bad << " W";
  }
  integrator.add_power(1.0, 5.0);
  EXPECT_DOUBLE_EQ(integrator.joules(), 5.0);
}

TEST(EnergyIntegrator, ACounterResetTakenForAWrapAddsNothingAndCountingGoesOn) {
  const std::vector<std::uint64_t> ranges{262'143'328'850};  // a real package's max_energy_range_uj
  EnergyIntegrator integrator;
  integrator.add_counters(0.0, {200'000'000'000}, ranges);
  integrator.add_counters(1.0, {200'000'010'000}, ranges);  // 0.01 J
  // A reset to 0: as a wrap, 62 kJ in 0.1 s.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { integrator.add_counters(1.1, {5}, ranges); }, ErrorCode::kCorrupt,
                                           "reset"))
      << "a reset was counted as energy";
  EXPECT_DOUBLE_EQ(integrator.joules(), 0.01);
  integrator.add_counters(2.1, {2'000'005}, ranges);  // from the new base: 2 J
  EXPECT_NEAR(integrator.joules(), 2.01, 1e-12);
  // A coarse counter's step (70 J, as a 700 W GPU's driver updates it) seen
  // between two readings a millisecond apart is energy, not a reset.
  integrator.add_counters(2.101, {72'000'005}, ranges);
  EXPECT_NEAR(integrator.joules(), 72.01, 1e-9);
}

// A reset seen after a long gap (a starved sampler) implies less than
// 100 kW in all, but far more than one package draws; and the package that
// did not reset keeps its energy.
TEST(EnergyIntegrator, AResetAfterALongGapIsNoWrapAndTheOtherCountersCount) {
  const std::vector<std::uint64_t> ranges{65'532'610'987, 262'143'328'850};
  EnergyIntegrator integrator;
  integrator.add_counters(0.0, {30'000'000'000, 1'000'000'000}, ranges);
  integrator.add_counters(1.0, {30'000'200'000, 1'000'100'000}, ranges);  // +0.2 J, +0.1 J
  // Counter 0 resets to about 0: as a wrap, 35.5 kJ in 1 s.
  EXPECT_TRUE(nasoa::testing::throws_error([&] { integrator.add_counters(2.0, {100'000, 1'000'300'000}, ranges); },
                                           ErrorCode::kCorrupt, "counter 0 moved by"))
      << "a reset was counted as energy";
  EXPECT_NEAR(integrator.joules(), 0.5, 1e-12);  // counter 1's 0.2 J is kept
  integrator.add_counters(3.0, {1'100'000, 1'000'400'000}, ranges);  // +1 J from the new base, +0.1 J
  EXPECT_NEAR(integrator.joules(), 1.6, 1e-12);
  // A jump forward as implausible is a glitch too; from it, a genuine wrap
  // over the same gap counts: 3 J across the top of the range.
  EXPECT_TRUE(nasoa::testing::throws_error(
      [&] { integrator.add_counters(4.0, {65'532'610'987 - 1'000'000, 1'000'400'000}, ranges); },
      ErrorCode::kCorrupt, "counter 0 moved by"));
  EXPECT_NEAR(integrator.joules(), 1.6, 1e-12);
  integrator.add_counters(5.0, {2'000'000, 1'000'400'000}, ranges);
  EXPECT_NEAR(integrator.joules(), 1.6 + 3.0, 1e-9);
}

TEST(EnergyIntegrator, CountersAcrossAWrap) {
  // Two packages; the second wraps between the 2nd and 3rd reading.
  const std::vector<std::uint64_t> ranges{1'000'000'000, 1'000'000};
  EnergyIntegrator integrator;
  integrator.add_counters(0.0, {5'000'000, 900'000}, ranges);
  integrator.add_counters(1.0, {6'000'000, 950'000}, ranges);    // +1 J, +0.05 J
  integrator.add_counters(2.0, {7'500'000, 50'000}, ranges);     // +1.5 J, +0.1 J
  EXPECT_DOUBLE_EQ(integrator.joules(), 2.65);
  EXPECT_DOUBLE_EQ(integrator.last_watts(), 1.6);
  EXPECT_DOUBLE_EQ(integrator.seconds(), 2.0);
  EXPECT_TRUE(nasoa::testing::throws_error([&] { integrator.add_counters(3.0, {1}, ranges); }, ErrorCode::kCorrupt, ""))
      << "a change in the number of counters must be refused";
  EXPECT_DOUBLE_EQ(integrator.joules(), 2.65);
}

TEST(EnergyMonitor, IntegratesExactlyWithAnInjectedClock) {
  // Sample k is read at t = 0.01 k s with 10 + k watts, however the thread is
  // scheduled, so the total for n samples is known exactly.
  auto ticks = std::make_shared<std::atomic<int>>(0);
  MonitorOptions options = fast();
  options.clock = [ticks] { return 0.01 * ticks->fetch_add(1); };
  EnergyMonitor monitor(ramp_meter(), options);
  EXPECT_EQ(monitor.meter_name(), "test:scripted");
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 10; }));
  monitor.stop();
  const EnergyStatus s = monitor.status();
  ASSERT_GE(s.samples, 10u);
  double expected = 0;
  for (std::uint64_t k = 1; k < s.samples; ++k) expected += 0.01 * (10.0 + k - 0.5);
  EXPECT_NEAR(s.joules, expected, 1e-9);
  EXPECT_NEAR(s.seconds, 0.01 * (s.samples - 1), 1e-12);
  EXPECT_NEAR(s.average_watts, expected / s.seconds, 1e-9);
  EXPECT_EQ(s.failed_samples, 0u);
  EXPECT_FALSE(s.running);
  EXPECT_EQ(monitor.samples_taken().size(), s.samples);
}

TEST(EnergyMonitor, FollowsAPowerFileThatChanges) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon0/name", "ina3221");
  fs.hwmon_channel("hwmon0", 1, "VDD_IN", 5000, 2000);  // 10 W
  EnergyMonitor monitor(open_forced(fs, MeterKind::kJetsonHwmon), fast());
  EXPECT_EQ(monitor.meter_name(), "jetson-ina3221-hwmon:VDD_IN");
  EXPECT_TRUE(monitor.measured());
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 5; }));
  fs.write("class/hwmon/hwmon0/curr1_input", 4000);  // 20 W from now on
  ASSERT_TRUE(eventually([&] { return monitor.status().average_watts > 10.0; }));
  const std::uint64_t seen = monitor.samples();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= seen + 5; }));
  monitor.stop();

  const std::vector<EnergySample> samples = monitor.samples_taken();
  const EnergyStatus s = monitor.status();
  ASSERT_EQ(samples.size(), s.samples);
  EXPECT_EQ(s.failed_samples, 0u);
  // Every reading is one of the two values, 10 W first, 20 W last, and the
  // switch happens once.
  std::size_t first_high = samples.size();
  for (std::size_t i = 0; i < samples.size(); ++i) {
    ASSERT_TRUE(samples[i].watts == 10.0 || samples[i].watts == 20.0) << samples[i].watts;
    if (samples[i].watts == 20.0 && first_high == samples.size()) first_high = i;
    if (i > first_high) {
      ASSERT_EQ(samples[i].watts, 20.0);
    }
  }
  ASSERT_GE(first_high, 5u);
  ASSERT_LT(first_high, samples.size() - 1);
  // 10 W up to the last low reading, 20 W from the first high one, the mean of
  // both in between (the trapezoid's guess for the unobserved switch).
  const double t0 = samples.front().time_s;
  const double t_low = samples[first_high - 1].time_s;
  const double t_high = samples[first_high].time_s;
  const double t_end = samples.back().time_s;
  const double expected = 10.0 * (t_low - t0) + 15.0 * (t_high - t_low) + 20.0 * (t_end - t_high);
  EXPECT_NEAR(s.joules, expected, 1e-9 * expected);
  EXPECT_NEAR(s.seconds, t_end - t0, 1e-12);
  EXPECT_GT(s.average_watts, 10.0);
  EXPECT_LT(s.average_watts, 20.0);
}

TEST(EnergyMonitor, CountsEnergyAcrossARaplWrap) {
  FakeSysfs fs;
  fs.rapl_zone("intel-rapl:0", "package-0", 900'000, 1'000'000);
  EnergyMonitor monitor(open_forced(fs, MeterKind::kRapl), fast());
  EXPECT_EQ(monitor.meter_name(), "rapl:package-0");
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 2; }));
  // Each value is written once the previous one has been counted, so no step
  // can be skipped; the second step crosses the wrap at 1 J.
  double expected = 0;
  for (const auto& [energy_uj, step_j] : {std::pair{950'000, 0.05}, std::pair{50'000, 0.1},
                                           std::pair{150'000, 0.1}, std::pair{999'000, 0.849}}) {
    fs.write("class/powercap/intel-rapl:0/energy_uj", energy_uj);
    expected += step_j;
    ASSERT_TRUE(eventually([&] { return std::abs(monitor.joules() - expected) < 1e-9; }))
        << "stuck at " << monitor.joules() << " J, expected " << expected << " J";
  }
  monitor.stop();
  EXPECT_NEAR(monitor.joules(), 1.099, 1e-9);
  EXPECT_EQ(monitor.failed_samples(), 0u);
}

TEST(EnergyMonitor, StopIsIdempotentAndStartRunsOnce) {
  auto meter = ramp_meter();
  EnergyMonitor never_started(ramp_meter(), fast());
  never_started.stop();
  never_started.stop();
  EXPECT_EQ(never_started.samples(), 0u);
  EXPECT_EQ(never_started.joules(), 0.0);
  EXPECT_THROW(never_started.start(), Error);

  EnergyMonitor monitor(std::move(meter), fast());
  monitor.start();
  EXPECT_THROW(monitor.start(), Error);
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 2; }));
  std::thread other([&] { monitor.stop(); });
  monitor.stop();
  other.join();
  const EnergyStatus first = monitor.status();
  monitor.stop();
  const EnergyStatus second = monitor.status();
  EXPECT_FALSE(second.running);
  EXPECT_EQ(first.samples, second.samples);
  EXPECT_EQ(first.joules, second.joules);
  // And the destructor stops a running monitor by itself: it returns (a
  // hang would time the test out) and the meter, which the thread reads, is
  // destroyed with it, after at least the first reading.
  std::atomic<int> reads{0};
  bool destroyed = false;
  {
    EnergyMonitor running(std::make_unique<ScriptedMeter>(
                              [&reads](int) {
                                ++reads;
                                return 1.0;
                              },
                              [&destroyed] { destroyed = true; }),
                          fast());
    running.start();
    ASSERT_TRUE(eventually([&] { return reads.load() >= 1; }));
  }
  EXPECT_TRUE(destroyed);
}

TEST(EnergyMonitor, VanishedValueFileIsCountedAndSamplingGoesOn) {
  FakeSysfs fs;
  fs.write("class/hwmon/hwmon0/name", "ina3221");
  fs.hwmon_channel("hwmon0", 1, "VDD_IN", 5000, 1600);  // 8 W
  EnergyMonitor monitor(open_forced(fs, MeterKind::kJetsonHwmon), fast(false));
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 3; }));
  fs.remove("class/hwmon/hwmon0/curr1_input");
  ASSERT_TRUE(eventually([&] { return monitor.failed_samples() >= 2; }));
  EnergyStatus during = monitor.status();
  EXPECT_TRUE(during.running);
  EXPECT_NE(during.last_error.find("curr1_input"), std::string::npos) << during.last_error;
  fs.write("class/hwmon/hwmon0/curr1_input", "oops");  // back, but unparsable
  const std::uint64_t failed = monitor.failed_samples();
  ASSERT_TRUE(eventually([&] { return monitor.failed_samples() >= failed + 2; }));
  EXPECT_NE(monitor.status().last_error.find("oops"), std::string::npos);
  fs.write("class/hwmon/hwmon0/curr1_input", 1600);
  const std::uint64_t good = monitor.samples();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= good + 3; }));
  monitor.stop();
  const EnergyStatus s = monitor.status();
  EXPECT_GE(s.failed_samples, 4u);
  // Constant power: the readings on either side of the gap span it at 8 W.
  EXPECT_GT(s.seconds, 0.0);
  EXPECT_NEAR(s.joules, 8.0 * s.seconds, 1e-9);
  EXPECT_NEAR(s.average_watts, 8.0, 1e-9);
}

TEST(EnergyMonitor, AMeterThatStopsWorkingIsCarriedOnAtItsLastPower) {
  // Reads 10 W twice, then fails for good; the clock advances 1 s per call.
  auto ticks = std::make_shared<std::atomic<int>>(0);
  MonitorOptions options = fast(false);
  options.clock = [ticks] { return double(ticks->fetch_add(1)); };
  EnergyMonitor monitor(std::make_unique<ScriptedMeter>([](int n) -> double {
                          if (n < 2) return 10.0;
                          throw Error(ErrorCode::kNotFound, "sensor gone");
                        }),
                        options);
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.failed_samples() >= 3; }));
  monitor.stop();
  const EnergyStatus s = monitor.status();
  EXPECT_EQ(s.samples, 2u);
  EXPECT_EQ(s.last_error, "sensor gone");
  // Each call of the clock is one second: the good readings at 0 and 1 s,
  // the last failure at (calls - 1) s. All of it is counted at 10 W.
  const double last_failure = double(ticks->load() - 1);
  EXPECT_DOUBLE_EQ(s.extrapolated_seconds, last_failure - 1.0);
  EXPECT_DOUBLE_EQ(s.joules, 10.0 * last_failure);
  EXPECT_DOUBLE_EQ(s.seconds, last_failure);
  EXPECT_DOUBLE_EQ(s.average_watts, 10.0);
}

// An energy counter read n-th (0-based) as counter(n) microjoules, which may throw.
class ScriptedCounter final : public EnergyMeter {
 public:
  explicit ScriptedCounter(std::function<std::uint64_t(int)> counter) : counter_(std::move(counter)) {}
  std::string name() const override { return "test:counter"; }
  MeterKind kind() const override { return MeterKind::kRapl; }
  MeterQuantity quantity() const override { return MeterQuantity::kEnergyCounter; }
  bool measured() const override { return true; }
  std::vector<std::uint64_t> read_counters_uj() override { return {counter_(reads_++)}; }
  std::vector<std::uint64_t> counter_ranges_uj() const override { return {0}; }

 private:
  std::function<std::uint64_t(int)> counter_;
  int reads_ = 0;
};

TEST(EnergyMonitor, ACounterThatStallsBeforeFailingIsCarriedOnAtItsMeanPower) {
  // 0 J at 0 s, 20 J at 1 s, still 20 J at 2 s (the counter did not tick in
  // that interval), then failing for good; 1 s per clock call. The last
  // interval's power is 0 W; the gap is carried at the mean, 10 W.
  auto ticks = std::make_shared<std::atomic<int>>(0);
  MonitorOptions options = fast(false);
  options.clock = [ticks] { return double(ticks->fetch_add(1)); };
  EnergyMonitor monitor(std::make_unique<ScriptedCounter>([](int n) -> std::uint64_t {
                          if (n == 0) return 0;
                          if (n <= 2) return 20'000'000;
                          throw Error(ErrorCode::kIo, "counter gone");
                        }),
                        options);
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.failed_samples() >= 3; }));
  monitor.stop();
  const EnergyStatus s = monitor.status();
  EXPECT_EQ(s.samples, 3u);
  const double last_failure = double(ticks->load() - 1);
  EXPECT_DOUBLE_EQ(s.extrapolated_seconds, last_failure - 2.0);
  EXPECT_DOUBLE_EQ(s.joules, 20.0 + 10.0 * (last_failure - 2.0));
}

TEST(EnergyMonitor, WhenReadingsComeBackTheTotalDoesNotFallBack) {
  // 10 W, two failed readings, then 2 W from then on; 1 s per clock call.
  auto ticks = std::make_shared<std::atomic<int>>(0);
  MonitorOptions options = fast(false);
  options.clock = [ticks] { return double(ticks->fetch_add(1)); };
  EnergyMonitor monitor(std::make_unique<ScriptedMeter>([](int n) -> double {
                          if (n == 0) return 10.0;
                          if (n <= 2) throw Error(ErrorCode::kIo, "glitch");
                          return 2.0;
                        }),
                        options);
  monitor.start();
  ASSERT_TRUE(eventually([&] { return monitor.samples() >= 4; }));
  monitor.stop();
  const EnergyStatus s = monitor.status();
  EXPECT_EQ(s.failed_samples, 2u);
  EXPECT_EQ(s.extrapolated_seconds, 0.0);
  // 0-2 s carried at 10 W (20 J), 2-3 s from 10 to 2 W (6 J), then 2 W: not
  // the 18 J a straight line from 10 to 2 W over 0-3 s would give.
  const double last = double(ticks->load() - 1);
  EXPECT_DOUBLE_EQ(s.joules, 26.0 + 2.0 * (last - 3.0));
}

// The total counted for a gap must not depend on whether anyone read it
// while the gap lasted: the reading loop polls joules() every step, a test
// or another app may not.
TEST(EnergyMonitor, AGapCountsTheSameWhetherOrNotTheTotalWasReadDuringIt) {
  // 100 W, 100 W, 2 W, three failed readings, then 2 W; 1 s per clock call
  // (one per reading). The fifth reading (the gap's second) waits until the
  // test has read the total, or not, while the gap lasts.
  const auto run = [](bool read_during_gap) {
    auto ticks = std::make_shared<std::atomic<int>>(0);
    auto released = std::make_shared<std::atomic<bool>>(!read_during_gap);
    MonitorOptions options = fast(false);
    options.clock = [ticks] { return double(ticks->fetch_add(1)); };
    EnergyMonitor monitor(std::make_unique<ScriptedMeter>([released](int n) -> double {
                            if (n < 2) return 100.0;
                            if (n == 2) return 2.0;
                            if (n == 4) EXPECT_TRUE(eventually([&] { return released->load(); }));
                            if (n < 6) throw Error(ErrorCode::kIo, "sensor busy");
                            return 2.0;
                          }),
                          options);
    monitor.start();
    double during = 0;
    if (read_during_gap) {
      EXPECT_TRUE(eventually([&] { return monitor.failed_samples() >= 1; }));
      during = monitor.joules();
      released->store(true);
    }
    EXPECT_TRUE(eventually([&] { return monitor.samples() >= 6; }));
    monitor.stop();
    return std::pair{monitor.status(), during};
  };
  const auto [unread, not_read] = run(false);
  const auto [read, during] = run(true);
  EXPECT_EQ(not_read, 0.0);
  EXPECT_DOUBLE_EQ(during, 100.0 + 51.0 + 2.0) << "0-2 s read, 2-3 s carried at 2 W";
  for (const EnergyStatus& s : {unread, read}) {
    EXPECT_EQ(s.failed_samples, 3u);
    EXPECT_EQ(s.extrapolated_seconds, 0.0);
    // 100 W over 0-1 s, 100 to 2 W over 1-2 s, then 2 W: the gap (2-5 s)
    // at the last good power, 2 W, not at the mean so far (75.5 W).
    EXPECT_NEAR(s.joules, 100.0 + 51.0 + 2.0 * (s.seconds - 2.0), 1e-9);
  }
  // Good readings only: the bridge over the gap is not one. The runs may
  // take different numbers of readings after it.
  EXPECT_GE(unread.samples, 6u);
  EXPECT_EQ(double(unread.samples), unread.seconds + 1 - 3) << "one reading a second from 0 s, three failed";
  EXPECT_EQ(double(read.samples), read.seconds + 1 - 3);
}

TEST(EnergyMonitor, RefusesANullMeterAndAZeroInterval) {
  EXPECT_THROW(EnergyMonitor(nullptr, fast()), Error);
  MonitorOptions zero = fast();
  zero.interval = 0ms;
  EXPECT_THROW(EnergyMonitor(ramp_meter(), zero), Error);
}

}  // namespace
}  // namespace nasoa::runtime
