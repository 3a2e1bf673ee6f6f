// Loading the lab's tc program over a node's pinned maps and attaching it.
#pragma once

#include <array>

#include "options.h"

namespace dpl {

// Kernel ids of what was loaded, for the caller to print.
struct Attached {
  unsigned from_wep = 0, to_wep = 0;
  unsigned from_hep = 0, to_hep = 0;
  std::array<unsigned, 2> allowed{}, drop{};  // per hook: tc ingress, tc egress
};

// Loads bpf/calico_tc.bpf.c (skeleton) with every map replaced by the pinned map of the version,
// stores allowed/drop in the static programs map(s), attaches to tc ingress/egress of each
// interface. Throws AttachError. Everything it opened is closed on return; the tc filters hold the
// programs.
Attached load_and_attach(const Options& o);

}  // namespace dpl
