// Fuzz target: the iptables-nft compat decoders (decode_xt), which read kernel structs out of the
// payload bytes of an xt match or target. Input layout (tests/fuzz/make_corpus.py writes seeds
// from the payloads the kernel dumped in tests/fixtures/xt/captured.json):
//   byte 0   bit 0: a target (else a match); bit 1: the rule's table is ip6 (else ip)
//   byte 1   revision
//   then     the extension name, NUL-terminated (e.g. "conntrack\0"), then the payload bytes.
// "-m set" looks sets up by index in the catalog of tests/fixtures/xt/capture.ipsets.
// Invariants: no crash or sanitizer report, and a refusal says why.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "backends/nftables/xt/decode.h"
#include "backends/nftables/xt/ipsets.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "ipset_checks.h"

DPI_FUZZ_INIT(decode_xt) {
  dpi::fuzz::capture_ipsets();
}

DPI_FUZZ_ONE_INPUT(decode_xt) {
  if (size < 3) return 0;
  dpi::nft::XtExpr x;
  x.target = data[0] & 1;
  const std::string family = (data[0] & 2) ? "ip6" : "ip";
  x.rev = data[1];
  const auto* name = reinterpret_cast<const char*>(data + 2);
  const void* nul = std::memchr(name, 0, size - 2);
  if (!nul) return 0;
  x.name.assign(name, static_cast<const char*>(nul));
  const auto* info = static_cast<const uint8_t*>(nul) + 1;
  x.info.assign(info, data + size);

  dpi::nft::Ruleset rs;
  const std::string table = "filter";
  dpi::nft::XtContext ctx{rs, &dpi::fuzz::capture_ipsets(), family, table};
  std::string why;
  auto d = dpi::nft::decode_xt(x, ctx, &why);
  FUZZ_CHECK(d || !why.empty(), "decode_xt refused without saying why");
  return 0;
}
