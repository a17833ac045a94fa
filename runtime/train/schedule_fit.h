// runtime/train/schedule_fit.h: ending the learning-rate schedule in the
// time (and energy) a run turns out to have.
//
// A plan fixes its epochs from the device profile's step times. When the
// device trains slower than its profile says (other load, a hot chip, a
// profile measured elsewhere), those epochs do not fit, and the budget guard
// stops the run part-way: its cosine still near the peak, its weights never
// annealed. The same seconds buy more accuracy with a schedule that ends on
// time. So at every epoch end the fine-tuner measures what an epoch really
// costs and, when the epochs left would not fit, ends the schedule sooner:
// the learning rate goes on from where it is to the schedule's end over the
// epochs that fit. A run never trains longer than its regime: a device
// faster than its profile finishes early, as the plan said.
//
// Free of LibTorch: the fine-tuner and its tests include it.
#pragma once

#include <cstddef>
#include <vector>

namespace nasoa::runtime {

// Epoch gaps (from one epoch end to the next, checkpoint writes left out)
// measured before an epoch's cost is trusted: the median of three is not
// moved by one gap that holds a stall (a page fault storm, a slow disk).
inline constexpr std::size_t kLeastEpochGaps = 3;
// Of the gaps measured, the latest this many count: a device that slows
// part-way (a throttled chip) is followed within a few epochs.
inline constexpr std::size_t kRecentEpochGaps = 5;

// Where in the regime's schedule (in its epochs) a run is after some epochs
// trained: the identity until the run is fitted; from then on linear, so that
// the schedule's end falls at `end_epoch` and the rate runs on without a jump.
struct ScheduleFit {
  int end_epoch = 0;              // the run ends after this many epochs; 0: the regime's own
  double anchor_trained = 0;      // epochs trained at the last fit
  double anchor_scheduled = 0;    // where in the schedule they had reached
  double rate = 1;                // schedule epochs per trained epoch since then

  double scheduled(double trained) const { return anchor_scheduled + (trained - anchor_trained) * rate; }
  int end(int regime_epochs) const { return end_epoch > 0 ? end_epoch : regime_epochs; }
  bool fitted(int regime_epochs) const { return end(regime_epochs) != regime_epochs || rate != 1; }
  // Ends the run after `end` epochs, `done` having been trained: the part of
  // the schedule still ahead is spread over the epochs between. Needs
  // done < end <= regime_epochs.
  void end_at(int done, int end, int regime_epochs);
};

// What the next epochs will cost, from the gaps measured so far in this
// call: the median of the latest kRecentEpochGaps, or 0 (unknown) with
// fewer than kLeastEpochGaps.
double epoch_cost(const std::vector<double>& gaps);

// The epoch to end after, at the end of epoch `done`: as many more as
// `seconds_left` covers at `seconds_per_epoch` each, and `joules_left` at
// `joules_per_epoch` where both are > 0; at most the regime's
// `regime_epochs`, and at least one more: when none fits, the rest of the
// schedule is swept in one epoch, which the guard may stop part-way, as it
// would have stopped the run anyway. A cost of 0 or less is unknown and
// limits nothing.
int fitted_end(int done, int regime_epochs, double seconds_per_epoch, double seconds_left,
               double joules_per_epoch = 0, double joules_left = 0);

}  // namespace nasoa::runtime
