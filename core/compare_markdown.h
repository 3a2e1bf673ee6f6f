// compare as Markdown, for a pull request or a migration ticket: the counts by outcome as a
// table, then every flow that changed with both sides' explanations.
#pragma once

#include <string>

#include "core/compare.h"

namespace dpi {

// Counts by FlowOutcome, then each flow that is not `same` (every flow with `all`). All text from
// the inputs (sources, names, explanations) is escaped, so it cannot start Markdown syntax.
std::string render_markdown(const Comparison& c, bool all);

}  // namespace dpi
