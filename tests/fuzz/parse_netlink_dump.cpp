// Fuzz target: the nfnetlink dump parsers of the live read, fed saved reply bytes instead of a
// socket (xt::nl_parse): the NFT_MSG_GETRULE dump that carries iptables-nft's compat payloads, and
// the IPSET_CMD_LIST dump. Input layout (seeds: tests/fuzz/corpus/parse_netlink_dump/, dumps the
// kernel sent, saved by the privileged test "saved netlink dumps replay to what the live read
// gave"):
//   byte 0   bit 0: an ipset dump (else a rule dump)
//   then     the netlink messages, copied to a 4-byte aligned buffer as a receive buffer is.
// Then what consumes the result: decode_xt of every payload, resolve_members of every set.
// Invariants: no crash or sanitizer report, a refusal says why, names and indexes resolve.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/nftables/xt/decode.h"
#include "backends/nftables/xt/ipsets.h"
#include "backends/nftables/xt/xt_payloads.h"
#include "fuzz_check.h"
#include "fuzz_target.h"
#include "ipset_checks.h"

namespace {

void rules(const void* buf, std::size_t len) {
  auto payloads = dpi::nft::xt_payloads_from_dump(buf, len);
  if (!payloads) {
    FUZZ_CHECK(!payloads.error().message.empty(), "refused without saying why");
    return;
  }
  dpi::nft::IpsetCatalog no_sets;
  for (const auto& [key, exprs] : *payloads) {
    FUZZ_CHECK(!exprs.empty(), "a rule without xt expressions is listed");
    dpi::nft::Ruleset rs;
    dpi::nft::XtContext ctx{rs, &no_sets, key.family, key.table};
    for (const auto& x : exprs) {
      std::string why;
      auto d = dpi::nft::decode_xt(x, ctx, &why);
      FUZZ_CHECK(d || !why.empty(), "decode_xt refused without saying why");
    }
  }
}

void ipsets(const void* buf, std::size_t len) {
  auto cat = dpi::nft::ipsets_from_dump(buf, len);
  if (!cat) {
    FUZZ_CHECK(!cat.error().message.empty(), "refused without saying why");
    return;
  }
  dpi::fuzz::check_ipset_catalog(*cat);
}

}  // namespace

DPI_FUZZ_ONE_INPUT(parse_netlink_dump) {
  if (size < 1) return 0;
  const std::size_t len = size - 1;
  std::vector<uint32_t> aligned((len + 3) / 4);
  if (len) std::memcpy(aligned.data(), data + 1, len);
  if (data[0] & 1)
    ipsets(aligned.data(), len);
  else
    rules(aligned.data(), len);
  return 0;
}
