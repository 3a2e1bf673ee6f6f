// -m statistic: kube-proxy's iptables mode picks a service endpoint with "--mode random
// --probability p". The kernel's choice is random, so it becomes a choice point (numgen mod 2) and
// the evaluator explores both outcomes; probabilities of 0 and 1 are decided outright.
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_statistic.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

std::optional<XtDecoded> decode_statistic(const XtExpr& x, XtContext&, std::string* why) {
  // The kernel-only pointer at the end of the struct is not needed.
  auto i =
      info_as<xt_statistic_info>(x, "xt_statistic_info", why, offsetof(xt_statistic_info, master));
  if (!i) return std::nullopt;
  bool invert = i->flags & XT_STATISTIC_INVERT;
  if (i->mode != XT_STATISTIC_MODE_RANDOM && i->mode != XT_STATISTIC_MODE_NTH) {
    *why = fmt::format("mode {} is not decoded", i->mode);
    return std::nullopt;
  }
  return statistic_stmts(i->mode == XT_STATISTIC_MODE_RANDOM, i->u.random.probability, invert);
}

XtDecoded statistic_stmts(bool random, uint32_t probability, bool invert) {
  XtDecoded d;
  if (random) {
    // probability is p * 2^31: 0 never matches, 2^31 always does.
    if (probability == 0 || probability >= 0x80000000u) {
      bool always = probability != 0;
      if (always == invert)
        d.stmts.push_back(match_range(operand(Key::meta_l4proto, Type::inet_proto), 0, 255, true));
      return d;
    }
  }
  // Random, or every n-th packet of a counter dpinspect cannot see: both outcomes are possible.
  Operand pick;
  pick.key = Key::numgen;
  pick.type = Type::integer;
  pick.width = 4;
  pick.numgen_mod = 2;
  d.stmts.push_back(match_range(pick, 0, 0, invert));
  return d;
}

}  // namespace dpi::nft::xt
