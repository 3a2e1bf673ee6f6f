// Calico's accept/pass/drop mark bits as this ruleset uses them. Felix hands the bits out from
// its mark mask (IptablesMarkMask / NftablesMarkMask, default 0xffff0000) lowest first, so a
// node with another mask uses other bits; attribution must read them, not assume them.
#pragma once

#include <string>
#include <vector>

#include "core/calico/attribution.h"

namespace dpi::nft {

struct Ruleset;

struct MarkLayout {
  calico::MarkBits bits;  // the v3.30+ defaults where the ruleset shows nothing else
  bool accept_read = false, pass_read = false, drop_read = false;
  // Endpoint chains that disagree with the majority (a half-reprogrammed node): reported, and the
  // majority is used.
  std::vector<std::string> conflicts;

  bool is_default() const;
  // "accept 0x10000, pass 0x20000, drop 0x40000" (drop only when read)
  std::string text() const;
};

// Reads the bits from the shapes Felix renders around them, which hold in both layouts and with or
// without comments:
//   accept: "mark & A == A return" in endpoint chains (Return if policy/profile accepted);
//   pass:   "mark & P == 0 jump <policy chain>" and the end-of-tier "mark & P == 0 drop" there;
//   drop:   "mark & D == D drop" in policy and profile chains (v3.30+ deny rules).
// Call after derive_chain_facts.
MarkLayout infer_mark_bits(const Ruleset& rs);

}  // namespace dpi::nft
