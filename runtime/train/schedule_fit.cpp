#include "runtime/train/schedule_fit.h"

#include <algorithm>
#include <cmath>

#include "runtime/profile/median.h"

namespace nasoa::runtime {

void ScheduleFit::end_at(int done, int new_end, int regime_epochs) {
  const double reached = scheduled(done);
  anchor_trained = done;
  anchor_scheduled = reached;
  rate = (double(regime_epochs) - reached) / double(new_end - done);
  end_epoch = new_end;
}

double epoch_cost(const std::vector<double>& gaps) {
  if (gaps.size() < kLeastEpochGaps) return 0;
  const std::size_t from = gaps.size() > kRecentEpochGaps ? gaps.size() - kRecentEpochGaps : 0;
  return median(std::vector<double>(gaps.begin() + std::ptrdiff_t(from), gaps.end()));
}

int fitted_end(int done, int regime_epochs, double seconds_per_epoch, double seconds_left,
               double joules_per_epoch, double joules_left) {
  double more = double(regime_epochs - done);
  if (seconds_per_epoch > 0) more = std::min(more, std::floor(std::max(0.0, seconds_left) / seconds_per_epoch));
  if (joules_per_epoch > 0) more = std::min(more, std::floor(std::max(0.0, joules_left) / joules_per_epoch));
  return std::min(regime_epochs, done + std::max(1, int(more)));
}

}  // namespace nasoa::runtime
