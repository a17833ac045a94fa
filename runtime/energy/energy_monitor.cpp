#include "runtime/energy/energy_monitor.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <sstream>

#include "nasoa/error.h"

namespace nasoa::runtime {

void EnergyIntegrator::check_time(double time_s) const {
  if (!std::isfinite(time_s) || (samples_ > 0 && time_s < last_time_s_)) {
    std::ostringstream out;
    out << "energy sample time " << time_s << " s is before the previous sample at "
        << last_time_s_ << " s; the clock must be monotonic";
    throw Error(ErrorCode::kInvalidArgument, out.str());
  }
}

void EnergyIntegrator::add_power(double time_s, double watts) {
  check_time(time_s);
  if (!(watts >= 0 && watts <= kMaxPlausibleWatts)) {
    std::ostringstream out;
    out << "power reading of " << watts << " W is outside [0, " << kMaxPlausibleWatts << "] W";
    throw Error(ErrorCode::kCorrupt, out.str());
  }
  if (samples_ == 0) {
    first_time_s_ = time_s;
  } else {
    power_joules_ += 0.5 * (last_watts_ + watts) * (time_s - last_time_s_);
  }
  last_time_s_ = time_s;
  last_watts_ = watts;
  ++samples_;
}

void EnergyIntegrator::add_counters(double time_s, const std::vector<std::uint64_t>& counters_uj,
                                    const std::vector<std::uint64_t>& ranges_uj) {
  check_time(time_s);
  std::ostringstream resets;
  if (samples_ == 0) {
    first_time_s_ = time_s;
  } else {
    if (counters_uj.size() != last_counters_uj_.size()) {
      throw Error(ErrorCode::kCorrupt, "energy meter returned " + std::to_string(counters_uj.size()) +
                                           " counters, previously " +
                                           std::to_string(last_counters_uj_.size()));
    }
    const double dt = time_s - last_time_s_;
    // Judged over at least a quarter second: counters that update in coarse
    // steps (NVML's every few tens of milliseconds) may show one step between
    // two readings a millisecond apart, which is energy, not a reset.
    const double judged_s = std::max(dt, 0.25);
    std::uint64_t delta_uj = 0;
    for (std::size_t i = 0; i < counters_uj.size(); ++i) {
      const std::uint64_t range = i < ranges_uj.size() ? ranges_uj[i] : 0;
      const std::uint64_t step = counter_delta_uj(last_counters_uj_[i], counters_uj[i], range);
      if (static_cast<double>(step) * 1e-6 / judged_s > kMaxPlausibleCounterWatts) {
        // A reset the wrap rule took for a wrap, or a glitch: this counter's
        // energy across it is unknown; the others' is not.
        resets << (resets.tellp() > 0 ? "; " : "") << "counter " << i << " moved by "
               << static_cast<double>(step) * 1e-6 << " J in " << dt << " s";
        continue;
      }
      delta_uj += step;
    }
    counter_uj_ += delta_uj;
    last_watts_ = dt > 0 ? static_cast<double>(delta_uj) * 1e-6 / dt : 0.0;
  }
  last_counters_uj_ = counters_uj;
  last_time_s_ = time_s;
  // A reading with a reset is a failed one to the monitor, which counts it
  // so; here it is only the base of the next.
  if (resets.tellp() > 0)
    throw Error(ErrorCode::kCorrupt, "energy " + resets.str() + ", above " +
                                         std::to_string(int(kMaxPlausibleCounterWatts)) +
                                         " W for one counter: a reset, not energy; its counting restarts here");
  ++samples_;
}

double EnergyIntegrator::joules() const {
  return power_joules_ + static_cast<double>(counter_uj_) * 1e-6;
}

double EnergyIntegrator::seconds() const { return samples_ == 0 ? 0.0 : last_time_s_ - first_time_s_; }

EnergyMonitor::EnergyMonitor(std::unique_ptr<EnergyMeter> meter, MonitorOptions options)
    : meter_(meter ? std::move(meter)
                   : throw Error(ErrorCode::kInvalidArgument, "EnergyMonitor: meter is null")),
      options_(std::move(options)),
      meter_name_(meter_->name()),
      measured_(meter_->measured()),
      counter_(meter_->quantity() == MeterQuantity::kEnergyCounter),
      ranges_uj_(counter_ ? meter_->counter_ranges_uj() : std::vector<std::uint64_t>{}) {
  if (options_.interval.count() <= 0) {
    throw Error(ErrorCode::kInvalidArgument,
                "EnergyMonitor: interval must be positive, got " +
                    std::to_string(options_.interval.count()) + " ns");
  }
}

EnergyMonitor::~EnergyMonitor() { stop(); }

void EnergyMonitor::mark_started() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (started_ || stop_requested_) {
    throw Error(ErrorCode::kInvalidArgument, "EnergyMonitor for " + meter_name_ +
                                                 " was already started or stopped; a monitor runs once");
  }
  started_ = true;
}

void EnergyMonitor::start() {
  mark_started();
  // The first reading before returning, on the caller's thread: what the
  // caller does from here on is measured, however late the sampling thread
  // gets to run on a loaded machine.
  take_sample();
  std::lock_guard<std::mutex> lock(mutex_);
  thread_ = std::thread([this] { run(); });
}

void EnergyMonitor::stop() {
  std::lock_guard<std::mutex> serial(stop_mutex_);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_requested_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

double EnergyMonitor::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void EnergyMonitor::run() {
  // A fixed schedule, so that slow reads do not stretch the interval; after a
  // stall (a loaded machine) the schedule restarts from now instead of firing
  // a burst of readings that would add nothing but load.
  // start() took the first reading.
  auto next = std::chrono::steady_clock::now();
  for (;;) {
    next += options_.interval;
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (wake_.wait_until(lock, next, [this] { return stop_requested_; })) break;
    }
    take_sample();
  }
  take_sample();
}

void EnergyMonitor::take_sample() {
  // Read outside the lock: sysfs and NVML calls can take milliseconds, and
  // readers of the totals must not wait for them. Nothing may escape this
  // thread, or std::terminate would end the whole process.
  std::string error;
  try {
    if (counter_) {
      const std::vector<std::uint64_t> counters = meter_->read_counters_uj();
      const double t = now();
      std::lock_guard<std::mutex> lock(mutex_);
      integrator_.add_counters(t, counters, ranges_uj_);
      failed_since_good_time_ = std::numeric_limits<double>::quiet_NaN();
      record_locked(t);
    } else {
      const double watts = meter_->read_watts();
      const double t = now();
      std::lock_guard<std::mutex> lock(mutex_);
      // After failed readings the gap was carried at gap_watts_ (the last
      // good power); keep that up to the last failure, so the total does
      // not fall back, and count it as no reading.
      if (failed_since_good_time_ > integrator_.last_time() && failed_since_good_time_ <= t && watts >= 0 &&
          watts <= kMaxPlausibleWatts) {
        integrator_.add_power(failed_since_good_time_, gap_watts_);
        ++bridged_gaps_;
      }
      integrator_.add_power(t, watts);
      failed_since_good_time_ = std::numeric_limits<double>::quiet_NaN();
      record_locked(t);
    }
    return;
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception while reading " + meter_name_;
  }
  double t = std::numeric_limits<double>::quiet_NaN();
  try {
    t = now();
  } catch (...) {
  }
  std::lock_guard<std::mutex> lock(mutex_);
  ++failed_;
  last_error_ = std::move(error);
  if (integrator_.samples() > 0 && std::isfinite(t)) {
    if (!(failed_since_good_time_ > integrator_.last_time())) {
      // A gap begins. A power meter's last reading is a real instantaneous
      // power; a counter's is the mean of its last interval, 0 W where it
      // did not tick, which would freeze the total and leave an energy
      // budget unchecked for as long as the meter fails: the mean so far,
      // when higher.
      const double mean = integrator_.seconds() > 0 ? integrator_.joules() / integrator_.seconds() : 0.0;
      gap_watts_ = counter_ ? std::max(integrator_.last_watts(), mean) : integrator_.last_watts();
    }
    failed_since_good_time_ = t;
  }
}

void EnergyMonitor::record_locked(double time_s) {
  if (options_.keep_samples) {
    history_.push_back({time_s, integrator_.last_watts(), integrator_.joules()});
  }
}

EnergyStatus EnergyMonitor::status_locked() const {
  EnergyStatus s;
  s.meter = meter_name_;
  s.measured = measured_;
  s.running = started_ && !stop_requested_;
  s.joules = integrator_.joules();
  if (failed_since_good_time_ > integrator_.last_time()) {
    s.extrapolated_seconds = failed_since_good_time_ - integrator_.last_time();
    s.joules += gap_watts_ * s.extrapolated_seconds;
  }
  // Never less than reported before: a counter's exact reading after a gap
  // may come in below what the gap was carried at (a power meter's cannot:
  // its gap is bridged at the power it was carried at).
  s.joules = std::max(s.joules, reported_joules_);
  reported_joules_ = s.joules;
  s.seconds = integrator_.seconds() + s.extrapolated_seconds;
  if (s.seconds > 0) {
    s.average_watts = s.joules / s.seconds;
  } else if (!counter_ && integrator_.samples() > 0) {
    s.average_watts = integrator_.last_watts();
  }
  s.samples = integrator_.samples() - bridged_gaps_;
  s.failed_samples = failed_;
  s.last_error = last_error_;
  return s;
}

EnergyStatus EnergyMonitor::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return status_locked();
}

double EnergyMonitor::joules() const { return status().joules; }
double EnergyMonitor::average_watts() const { return status().average_watts; }
std::uint64_t EnergyMonitor::samples() const { return status().samples; }
std::uint64_t EnergyMonitor::failed_samples() const { return status().failed_samples; }

std::vector<EnergySample> EnergyMonitor::samples_taken() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return history_;
}

}  // namespace nasoa::runtime
