// Derives, once per rule at load time, the syntax-free facts Calico attribution reads.
#pragma once

#include "backends/nftables/model.h"

namespace dpi::nft {

void derive_chain_facts(Chain& chain);

}  // namespace dpi::nft
