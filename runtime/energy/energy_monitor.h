// runtime/energy/energy_monitor.h: joules used while a job runs.
//
// EnergyIntegrator turns a series of timed readings into joules: power
// readings by the trapezoid rule, cumulative counters by differencing them
// (across wrap-around). It is a plain value type, not thread-safe.
//
// EnergyMonitor owns an EnergyMeter and a sampling thread that feeds an
// EnergyIntegrator every `interval` between start() and stop(). All its const
// members are thread-safe and may be called while it samples. A reading that
// fails (a value file that vanished or holds garbage, an implausible value)
// is counted in failed_samples and skipped: the next good reading spans the
// gap, so the total is kept rather than lost. While readings keep failing,
// the total carries the gap on at the last good power (extrapolated_seconds
// says for how long), so that a meter that stops working mid-run neither
// freezes the total nor lets an energy budget run unchecked; the total never
// goes down when readings come back. The monitor is
// neither copyable nor movable (its thread refers to it); the destructor
// stops it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/energy/energy_meter.h"

namespace nasoa::runtime {

class EnergyIntegrator {
 public:
  // A power reading at `time_s` (any monotonic origin). The first one only
  // starts the series; each later one adds the trapezoid since the previous
  // reading. Throws Error{kInvalidArgument} when time goes backwards and
  // Error{kCorrupt} when `watts` is outside [0, kMaxPlausibleWatts], leaving
  // the integrator as it was.
  void add_power(double time_s, double watts);

  // A counter reading: one value per counter, with each counter's wrap range
  // (see EnergyMeter::counter_ranges_uj(); missing ranges count as 0). Throws
  // Error{kInvalidArgument} when time goes backwards and Error{kCorrupt} when
  // the number of counters changes, leaving the integrator as it was. A
  // counter whose step implies more than kMaxPlausibleCounterWatts (a reset
  // taken for a wrap, a glitch) adds nothing: the other counters' energy is
  // counted, these readings become the base of the next, and then
  // Error{kCorrupt} names the counter.
  void add_counters(double time_s, const std::vector<std::uint64_t>& counters_uj,
                    const std::vector<std::uint64_t>& ranges_uj);

  double joules() const;
  // Time from the first to the latest reading.
  double seconds() const;
  // The latest reading's time (0 before there is one).
  double last_time() const { return last_time_s_; }
  std::uint64_t samples() const { return samples_; }
  // The latest power reading, or for counters the average power since the
  // previous reading (0 before there is one).
  double last_watts() const { return last_watts_; }

 private:
  void check_time(double time_s) const;

  std::uint64_t samples_ = 0;
  double first_time_s_ = 0;
  double last_time_s_ = 0;
  double last_watts_ = 0;
  double power_joules_ = 0;
  // Counters accumulate in integer microjoules, so no rounding builds up.
  std::uint64_t counter_uj_ = 0;
  std::vector<std::uint64_t> last_counters_uj_;
};

struct MonitorOptions {
  // Time between readings. INA3221 and NVML refresh their values every few
  // milliseconds to tens of milliseconds, so faster sampling gains nothing.
  std::chrono::nanoseconds interval = std::chrono::milliseconds(100);
  // Monotonic seconds. Empty: std::chrono::steady_clock. Tests inject a clock
  // to make the integral exact. Called once per reading, successful or not:
  // the first from start()'s caller, the rest from the sampling thread.
  std::function<double()> clock;
  // Keep every reading for samples_taken(); off by default so that long runs
  // use constant memory.
  bool keep_samples = false;
};

struct EnergySample {
  double time_s = 0;  // the clock's value right after the reading
  double watts = 0;   // as EnergyIntegrator::last_watts()
  double joules = 0;  // total up to and including this reading
};

struct EnergyStatus {
  std::string meter;  // EnergyMeter::name(), for the report
  bool measured = false;
  bool running = false;
  double joules = 0;
  double seconds = 0;
  double average_watts = 0;
  std::uint64_t samples = 0;         // successful readings
  std::uint64_t failed_samples = 0;  // readings that threw
  std::string last_error;            // the latest failure's message, "" if none
  // Seconds since the last good reading, while the readings after it fail:
  // `joules` carries them at the last good power. 0 when the latest reading
  // succeeded.
  double extrapolated_seconds = 0;
};

class EnergyMonitor {
 public:
  // Takes ownership of `meter`, which must not be null (Error{kInvalidArgument});
  // so must a zero or negative interval.
  explicit EnergyMonitor(std::unique_ptr<EnergyMeter> meter, MonitorOptions options = {});
  ~EnergyMonitor();
  EnergyMonitor(const EnergyMonitor&) = delete;
  EnergyMonitor& operator=(const EnergyMonitor&) = delete;

  // Starts sampling: a first reading before it returns (on the calling
  // thread, so that what follows the call is measured), then one per
  // interval on the sampling thread. A monitor runs once: start() after
  // start() or stop() throws Error{kInvalidArgument}.
  void start();
  // Takes a last reading, so the total covers the job up to now, and joins the
  // thread. Safe to call again, before start(), or from several threads.
  void stop();

  double joules() const;
  // joules() over the sampled time; for a power meter with a single reading,
  // that reading.
  double average_watts() const;
  std::uint64_t samples() const;
  std::uint64_t failed_samples() const;
  const std::string& meter_name() const { return meter_name_; }
  bool measured() const { return measured_; }
  EnergyStatus status() const;
  // Every successful reading so far, oldest first; empty unless keep_samples.
  std::vector<EnergySample> samples_taken() const;

 private:
  void mark_started();
  void run();
  void take_sample();
  void record_locked(double time_s);
  double now() const;
  EnergyStatus status_locked() const;

  std::unique_ptr<EnergyMeter> meter_;
  const MonitorOptions options_;
  const std::string meter_name_;
  const bool measured_;
  const bool counter_;
  const std::vector<std::uint64_t> ranges_uj_;

  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  bool started_ = false;
  bool stop_requested_ = false;
  EnergyIntegrator integrator_;
  std::uint64_t failed_ = 0;
  std::string last_error_;
  // The time of the latest reading when it failed; NaN when it succeeded.
  double failed_since_good_time_ = std::numeric_limits<double>::quiet_NaN();
  // The power a gap of failed readings is carried at, chosen at its first
  // failure, so that the total reported during the gap and the one counted
  // once readings come back agree whoever asked in between.
  double gap_watts_ = 0;
  // Gaps bridged in the integrator: each added a reading that was not one.
  std::uint64_t bridged_gaps_ = 0;
  // The largest total reported so far: totals never go down.
  mutable double reported_joules_ = 0;
  std::vector<EnergySample> history_;

  std::mutex stop_mutex_;  // serialises stop() callers around join()
  std::thread thread_;
};

}  // namespace nasoa::runtime
