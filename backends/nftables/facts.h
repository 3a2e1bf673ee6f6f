// Derives, once per rule at load time, the syntax-free facts Calico attribution reads.
#pragma once

#include "backends/nftables/model.h"

namespace dpi::nft {

// action_bits: Calico's accept|pass|drop bits; a rule that sets one is one API rule's action
// (RuleFacts::action_ordinal).
void derive_chain_facts(Chain& chain, uint32_t action_bits = 0x10000 | 0x20000 | 0x40000);

}  // namespace dpi::nft
