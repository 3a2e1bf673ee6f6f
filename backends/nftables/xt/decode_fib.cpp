// Route lookups: -m addrtype (revision 1) and -m rpfilter.
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_rpfilter.h>

#include "backends/nftables/xt/decoders.h"
#include "backends/nftables/xt/ipset_internal.h"

namespace dpi::nft::xt {

namespace {

// "fib Xaddr type" in the route types of an XT_ADDRTYPE_* mask (bit n = route type n).
MatchStmt addrtype_match(XtContext& ctx, Key key, uint16_t mask, bool invert) {
  Selector sel;
  sel.parts.push_back(operand(key, Type::fib_addrtype));
  std::vector<SetElem> elems;
  for (uint32_t t = 0; t < 16; ++t)
    if (mask & (1u << t))
      elems.push_back(SetElem{{exact_range(Bytes::from_uint(t, 4))}, {}, std::nullopt});
  const SetDef* set = add_anon_set(ctx, sel, std::move(elems));
  return match_set(std::move(sel), set, invert);
}

}  // namespace

std::optional<XtDecoded> decode_addrtype(const XtExpr& x, XtContext& ctx, std::string* why) {
  auto i = info_as<xt_addrtype_info_v1>(x, "xt_addrtype_info_v1", why);
  if (!i) return std::nullopt;
  return addrtype_stmts(ctx, i->source, i->dest, i->flags, why);
}

std::optional<XtDecoded> addrtype_stmts(XtContext& ctx, uint16_t source, uint16_t dest,
                                        uint32_t flags, std::string* why) {
  if (flags & (XT_ADDRTYPE_LIMIT_IFACE_IN | XT_ADDRTYPE_LIMIT_IFACE_OUT)) {
    *why =
        "--limit-iface-in/--limit-iface-out (a lookup restricted to one interface) is not modelled";
    return std::nullopt;
  }
  if (flags & ~uint32_t{XT_ADDRTYPE_INVERT_SOURCE | XT_ADDRTYPE_INVERT_DEST}) {
    *why = fmt::format("flags 0x{:x} are not decoded", flags);
    return std::nullopt;
  }
  XtDecoded d;
  if (source)
    d.stmts.push_back(
        addrtype_match(ctx, Key::fib_saddr_type, source, flags & XT_ADDRTYPE_INVERT_SOURCE));
  if (dest)
    d.stmts.push_back(
        addrtype_match(ctx, Key::fib_daddr_type, dest, flags & XT_ADDRTYPE_INVERT_DEST));
  return d;
}

std::optional<XtDecoded> decode_rpfilter(const XtExpr& x, XtContext& ctx, std::string* why) {
  auto i = info_as<xt_rpfilter_info>(x, "xt_rpfilter_info", why);
  if (!i) return std::nullopt;
  return rpfilter_stmts(ctx, i->flags, why);
}

std::optional<XtDecoded> rpfilter_stmts(XtContext& ctx, uint8_t flags, std::string* why) {
  if (flags & (XT_RPFILTER_LOOSE | XT_RPFILTER_ACCEPT_LOCAL)) {
    *why = "--loose and --accept-local reverse-path checks are not modelled (only strict ones are)";
    return std::nullopt;
  }
  if (flags & ~(XT_RPFILTER_VALID_MARK | XT_RPFILTER_INVERT)) {
    *why = fmt::format("flags 0x{:x} are not decoded", flags);
    return std::nullopt;
  }
  // The check passes for packets from loopback, or when the route back to the source leaves
  // through the input interface ("fib saddr . iif oif" is that interface, not none).
  // --validmark makes the reverse lookup use the packet's mark, which ip rules may select on.
  Selector sel;
  sel.parts = {operand(Key::meta_iifname, Type::ifname),
               operand((flags & XT_RPFILTER_VALID_MARK) ? Key::fib_saddr_mark_iif_oif
                                                        : Key::fib_saddr_iif_oif,
                       Type::ifname)};
  Bytes lo = Bytes::from_uint(0, 16), hi, one = Bytes::from_uint(1, 16);
  hi.len = 16;
  hi.d.fill(0xff);
  Bytes lo_if = lo;
  lo_if.d[0] = 'l';
  lo_if.d[1] = 'o';
  std::vector<SetElem> passes;
  passes.push_back(SetElem{{Range{lo_if, lo_if}, Range{lo, hi}}, {}, std::nullopt});
  passes.push_back(SetElem{{Range{lo, hi}, Range{one, hi}}, {}, std::nullopt});
  const SetDef* set = add_anon_set(ctx, sel, std::move(passes));
  XtDecoded d;
  d.stmts.push_back(match_set(std::move(sel), set, flags & XT_RPFILTER_INVERT));
  return d;
}

}  // namespace dpi::nft::xt
