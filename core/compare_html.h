// compare as one self-contained HTML page: per port a source x destination matrix whose cells are
// coloured by outcome, with both sides' explanations of a cell's flows on click (and as its title).
#pragma once

#include <string>

#include "core/compare.h"

namespace dpi {

// The page inlines its style and script and loads nothing (its Content-Security-Policy forbids
// it). Ports, sources and destinations are in a stable order, so the same comparison gives the
// same bytes. Every cell with flows carries data-outcome, data-src, data-dst, data-port and
// data-flows (indices into the comparison's flows, as in the JSON); a cell with several flows
// shows the most severe outcome. All text from the inputs is HTML-escaped.
std::string render_html(const Comparison& c);

}  // namespace dpi
