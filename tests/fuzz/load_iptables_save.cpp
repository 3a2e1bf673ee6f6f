// Fuzz target: the iptables-save reader (load_iptables_save, --iptables-save), with the ipsets of
// tests/fixtures/xt/capture.ipsets for "-m set", then what the CLI does with the ruleset
// (pipeline.h). Invariants: no crash, no sanitizer report, no exception escapes, and a refused
// input gets an error that starts with the file's name.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/nftables/iptables_save/iptables_save.h"
#include "backends/nftables/xt/ipsets.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "ipset_checks.h"
#include "pipeline.h"

DPI_FUZZ_INIT(load_iptables_save) {
  dpi::fuzz::capture_ipsets();
  dpi::fuzz::pipeline();
}

DPI_FUZZ_ONE_INPUT(load_iptables_save) {
  constexpr const char* kOrigin = "rules.save";
  std::string_view text(reinterpret_cast<const char*>(data), size);
  dpi::nft::IptablesSaveOptions opts;
  opts.ipsets = &dpi::fuzz::capture_ipsets();
  auto rs = dpi::nft::load_iptables_save(text, kOrigin, opts);
  if (!rs) {
    FUZZ_CHECK(rs.error().message.rfind(kOrigin, 0) == 0,
               "load error does not name the file: " + rs.error().message);
    return 0;
  }
  dpi::nft::Loaded src;
  src.ruleset = std::move(*rs);
  dpi::fuzz::exercise(src);
  return 0;
}
