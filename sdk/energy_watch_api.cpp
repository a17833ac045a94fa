// nasoa::EnergyWatch: the energy a caller spends before planning or
// fine-tuning, read from the meter fine_tune() reads.
#include <chrono>
#include <memory>
#include <string>

#include "nasoa/adapter.h"
#include "nasoa/error.h"
#include "runtime/energy/energy_monitor.h"
#include "runtime/energy/meters.h"
#include "sdk/adapter_impl.h"
#include "sdk/boundary.h"

namespace nasoa {

struct EnergyWatch::Impl {
  std::unique_ptr<runtime::EnergyMonitor> monitor;  // where a meter measures
  double estimate_watts = 0;                        // else the estimate's power (0: none)
  std::string estimate_name;
  std::chrono::steady_clock::time_point estimate_from;
};

EnergyWatch::EnergyWatch(const AdapterOptions& options, std::chrono::steady_clock::time_point estimate_from) {
  sdk::at_boundary("EnergyWatch", [&] {
    sdk::check_estimate_watts(options);
    if (estimate_from > std::chrono::steady_clock::now())
      throw Error(ErrorCode::kInvalidArgument, "EnergyWatch: estimate_from lies in the future");
    auto impl = std::make_unique<Impl>();
    impl->monitor = sdk::start_measuring_meter(options);
    if (!impl->monitor && options.estimate_watts > 0) {
      impl->estimate_watts = options.estimate_watts;
      impl->estimate_name = runtime::make_estimated_meter(options.estimate_watts)->name();
      impl->estimate_from = estimate_from;
    }
    impl_ = std::move(impl);
  });
}
EnergyWatch::EnergyWatch(EnergyWatch&&) noexcept = default;
EnergyWatch& EnergyWatch::operator=(EnergyWatch&&) noexcept = default;
EnergyWatch::~EnergyWatch() = default;

double EnergyWatch::joules() const {
  if (!impl_) return 0;  // moved from
  if (impl_->monitor) return impl_->monitor->joules();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - impl_->estimate_from).count();
  return impl_->estimate_watts * seconds;
}

std::string EnergyWatch::meter() const {
  if (!impl_) return "none";
  if (impl_->monitor) return impl_->monitor->meter_name();
  return impl_->estimate_watts > 0 ? impl_->estimate_name : "none";
}

bool EnergyWatch::measured() const { return impl_ && impl_->monitor; }

}  // namespace nasoa
