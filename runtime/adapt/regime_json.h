// runtime/adapt/regime_json.h: a Regime as JSON and back, the one encoding
// that the experience log, the planner's output and nasoa::Plan share.
// Internal.
#pragma once

#include "nasoa/regime.h"
#include "runtime/adapt/json_fields.h"

namespace nasoa::runtime::detail {

// Every field of the regime, the model's name included.
Json regime_json(const Regime& regime);

// Reads what regime_json() writes. Throws Error{kCorrupt} through `f`,
// naming the field at fault, also for a regime that validate() refuses.
Regime read_regime(const Fields& f);

}  // namespace nasoa::runtime::detail
