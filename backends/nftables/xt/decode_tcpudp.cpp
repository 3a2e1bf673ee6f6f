// -m tcp / -m udp (revision 0): port ranges and TCP flags, as kube-proxy's iptables rules write
// them ("-p tcp -m tcp --dport 80").
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_tcpudp.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

// A full 0-65535 range without "!" tests nothing, so it adds no statement.
void add_port_range(XtDecoded& d, Key key, const uint16_t pts[2], bool invert) {
  if (pts[0] == 0 && pts[1] == 0xffff && !invert) return;
  d.stmts.push_back(match_range(operand(key, Type::inet_service), pts[0], pts[1], invert));
}

MatchStmt tcp_flags_match(uint8_t mask, uint8_t cmp, bool invert) {
  // --tcp-flags MASK COMP: (flags & MASK) == COMP.
  Operand flags = operand(Key::tcp_flags, Type::tcp_flags);
  flags.binops.emplace_back('&', Bytes::from_uint(mask, 1));
  return match_range(flags, cmp, cmp, invert);
}

std::optional<XtDecoded> decode_tcp(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_tcp>(x, "xt_tcp", why);
  if (!i) return std::nullopt;
  if (i->invflags & ~XT_TCP_INV_MASK) {
    *why = fmt::format("inverse flags 0x{:x} are not decoded", i->invflags);
    return std::nullopt;
  }
  if (i->option) {
    *why = fmt::format("--tcp-option {} is not decoded", i->option);
    return std::nullopt;
  }
  XtDecoded d;
  add_port_range(d, Key::tcp_sport, i->spts, i->invflags & XT_TCP_INV_SRCPT);
  add_port_range(d, Key::tcp_dport, i->dpts, i->invflags & XT_TCP_INV_DSTPT);
  if (i->flg_mask)
    d.stmts.push_back(tcp_flags_match(i->flg_mask, i->flg_cmp, i->invflags & XT_TCP_INV_FLAGS));
  if (d.stmts.empty()) {
    // Still a protocol test: "-m tcp" alone matches only TCP.
    Operand proto = operand(Key::meta_l4proto, Type::inet_proto);
    d.stmts.push_back(match_range(proto, 6, 6));
  }
  return d;
}

std::optional<XtDecoded> decode_udp(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_udp>(x, "xt_udp", why);
  if (!i) return std::nullopt;
  if (i->invflags & ~XT_UDP_INV_MASK) {
    *why = fmt::format("inverse flags 0x{:x} are not decoded", i->invflags);
    return std::nullopt;
  }
  XtDecoded d;
  add_port_range(d, Key::udp_sport, i->spts, i->invflags & XT_UDP_INV_SRCPT);
  add_port_range(d, Key::udp_dport, i->dpts, i->invflags & XT_UDP_INV_DSTPT);
  if (d.stmts.empty())
    d.stmts.push_back(match_range(operand(Key::meta_l4proto, Type::inet_proto), 17, 17));
  return d;
}

}  // namespace dpi::nft::xt
