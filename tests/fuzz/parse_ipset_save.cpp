// Fuzz target: the `ipset save` reader (parse_ipset_save), then what "-m set" does with an
// accepted catalog: resolve each set's members into intervals, with and without
// --return-nomatch. Invariants: no crash or sanitizer report, a refusal is one line naming the
// input, and set names and indexes resolve to their sets.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/nftables/xt/ipset_internal.h"
#include "backends/nftables/xt/ipsets.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr const char* kOrigin = "ipsets.save";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cat = dpi::nft::parse_ipset_save(text, kOrigin);
  if (!cat) {
    FUZZ_CHECK(dpi::fuzz::one_line_naming(cat.error().message, kOrigin),
               "error is not one line naming the input: " + cat.error().message);
    return 0;
  }
  for (const auto& s : cat->sets) {
    FUZZ_CHECK(cat->by_name(s.name) == &s, "set names are unique");
    FUZZ_CHECK(cat->by_index(s.index) == &s, "set indexes are unique");
    FUZZ_CHECK(!dpi::nft::xt::check_members(s), "an accepted set has malformed members");
    for (bool return_nomatch : {false, true}) {
      std::string why;
      auto elems = dpi::nft::xt::resolve_members(s, return_nomatch, &why);
      FUZZ_CHECK(elems || !why.empty(), "resolve_members refused without saying why");
    }
  }
  return 0;
}
