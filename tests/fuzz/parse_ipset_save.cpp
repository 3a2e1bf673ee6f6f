// Fuzz target: the `ipset save` reader (parse_ipset_save), then what "-m set" does with an
// accepted catalog: resolve each set's members into intervals, with and without
// --return-nomatch. Invariants: no crash or sanitizer report, a refusal is one line naming the
// input, and set names and indexes resolve to their sets.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/nftables/xt/ipsets.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "ipset_checks.h"

DPI_FUZZ_ONE_INPUT(parse_ipset_save) {
  constexpr const char* kOrigin = "ipsets.save";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cat = dpi::nft::parse_ipset_save(text, kOrigin);
  if (!cat) {
    FUZZ_CHECK(dpi::fuzz::one_line_naming(cat.error().message, kOrigin),
               "error is not one line naming the input: " + cat.error().message);
    return 0;
  }
  dpi::fuzz::check_ipset_catalog(*cat);
  return 0;
}
