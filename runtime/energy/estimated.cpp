#include <cmath>
#include <sstream>

#include "nasoa/error.h"
#include "runtime/energy/meters.h"

namespace nasoa::runtime {
namespace {

class EstimatedMeter final : public EnergyMeter {
 public:
  explicit EstimatedMeter(double watts) : watts_(watts) {
    // Shortest form that reads back the same, so "12.5W" and not "12.500000W".
    std::ostringstream out;
    out.precision(15);
    out << "estimate:" << watts_ << "W";
    name_ = out.str();
  }

  std::string name() const override { return name_; }
  MeterKind kind() const override { return MeterKind::kEstimate; }
  MeterQuantity quantity() const override { return MeterQuantity::kPower; }
  bool measured() const override { return false; }
  double read_watts() override { return watts_; }

 private:
  double watts_;
  std::string name_;
};

}  // namespace

std::unique_ptr<EnergyMeter> make_estimated_meter(double watts) {
  if (!(watts > 0 && watts <= kMaxPlausibleWatts)) {
    std::ostringstream out;
    out << "estimate_watts: the device profile's power must be a number of watts in (0, "
        << kMaxPlausibleWatts << "], got " << watts;
    throw Error(ErrorCode::kInvalidArgument, out.str());
  }
  return std::make_unique<EstimatedMeter>(watts);
}

}  // namespace nasoa::runtime
