// Invariants of an accepted ipset catalog, whichever reader (ipset save text, netlink dump) made
// it; then what "-m set" does with it: resolve each set's members, with and without
// --return-nomatch.
#pragma once

#include <string>

#include "backends/nftables/xt/ipset_internal.h"
#include "backends/nftables/xt/ipsets.h"
#include "fuzz_check.h"

namespace dpi::fuzz {

// The ipsets the xt payload fixtures were captured with (tests/fixtures/xt/capture.ipsets), read
// once: "-m set" in the decoders and the iptables-save loader looks sets up in it.
inline const dpi::nft::IpsetCatalog& capture_ipsets() {
  static const dpi::nft::IpsetCatalog c = [] {
    auto r = dpi::nft::parse_ipset_save(source_file("tests/fixtures/xt/capture.ipsets"),
                                        "capture.ipsets");
    FUZZ_CHECK(r.ok(), "tests/fixtures/xt/capture.ipsets does not parse");
    return std::move(*r);
  }();
  return c;
}

inline void check_ipset_catalog(const dpi::nft::IpsetCatalog& cat) {
  for (const auto& s : cat.sets) {
    FUZZ_CHECK(cat.by_name(s.name) == &s, "set names are unique");
    FUZZ_CHECK(cat.by_index(s.index) == &s, "set indexes are unique");
    FUZZ_CHECK(!dpi::nft::xt::check_members(s), "an accepted set has malformed members");
    for (bool return_nomatch : {false, true}) {
      std::string why;
      auto elems = dpi::nft::xt::resolve_members(s, return_nomatch, &why);
      FUZZ_CHECK(elems || !why.empty(), "resolve_members refused without saying why");
    }
  }
}

}  // namespace dpi::fuzz
