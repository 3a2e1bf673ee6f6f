// The nftables backend's answer for one flow: evaluate, then explain in Calico terms.
#pragma once

#include "backends/nftables/source.h"
#include "core/report.h"

namespace dpi::nft {

// flow must be normalized (core/flow.h).
Result<Report> inspect(const Loaded& src, const Flow& flow);

}  // namespace dpi::nft
