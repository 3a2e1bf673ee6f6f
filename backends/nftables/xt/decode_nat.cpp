// DNAT, SNAT (revisions 0-2), MASQUERADE and REDIRECT: NatStmt, which ends the rule with accept.
#include <arpa/inet.h>

#include <linux/netfilter/nf_nat.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

namespace {

// Revision 0 of the IPv4 targets uses the old multi-range struct; revision 1 nf_nat_range and
// revision 2 nf_nat_range2 (same prefix). IPv6 MASQUERADE/REDIRECT revision 0 use nf_nat_range.
std::optional<NatRange> read_range(const XtExpr& x, bool v6, std::string* why) {
  NatRange r;
  if (x.rev == 0 && !v6) {
    auto i = info_as<nf_nat_ipv4_multi_range_compat>(x, "nf_nat_ipv4_multi_range_compat", why);
    if (!i) return std::nullopt;
    if (i->rangesize != 1) {
      *why = fmt::format("{} ranges (only one is modelled)", i->rangesize);
      return std::nullopt;
    }
    const nf_nat_ipv4_range& g = i->range[0];
    r.flags = g.flags;
    r.min_addr = addr_bytes(&g.min_ip, false);
    r.max_addr = addr_bytes(&g.max_ip, false);
    r.min_port = ntohs(g.min.all);
    r.max_port = ntohs(g.max.all);
    return r;
  }
  auto i = info_as<nf_nat_range>(x, "nf_nat_range", why);
  if (!i) return std::nullopt;
  r.flags = i->flags;
  r.min_addr = addr_bytes(v6 ? static_cast<const void*>(&i->min_addr.in6) : &i->min_addr.ip, v6);
  r.max_addr = addr_bytes(v6 ? static_cast<const void*>(&i->max_addr.in6) : &i->max_addr.ip, v6);
  r.min_port = ntohs(i->min_proto.all);
  r.max_port = ntohs(i->max_proto.all);
  return r;
}

}  // namespace

std::optional<XtDecoded> decode_nat(const XtExpr& x, XtContext& ctx, std::string* why) {
  bool v6 = table_is_v6(ctx);
  if ((x.name == "DNAT" || x.name == "SNAT") && x.rev == 0 && v6) {
    *why = "revision 0 exists only for IPv4";
    return std::nullopt;
  }
  auto r = read_range(x, v6, why);
  if (!r) return std::nullopt;
  return nat_stmts(x.name, *r, why);
}

std::optional<XtDecoded> nat_stmts(const std::string& name, const NatRange& range,
                                   std::string* why) {
  const NatRange* r = &range;
  NatStmt n;
  if (name == "MASQUERADE") {
    n.kind = NatStmt::Kind::masquerade;  // the address is the output interface's; ports do not
                                         // matter here
    XtDecoded d;
    d.stmts.push_back(std::move(n));
    return d;
  }
  n.kind = name == "DNAT"   ? NatStmt::Kind::dnat
           : name == "SNAT" ? NatStmt::Kind::snat
                            : NatStmt::Kind::redirect;
  if (r->flags & (NF_NAT_RANGE_PROTO_OFFSET | NF_NAT_RANGE_NETMAP)) {
    *why = "port offsets and NETMAP-style mappings are not modelled";
    return std::nullopt;
  }
  if ((r->flags & NF_NAT_RANGE_MAP_IPS) && n.kind != NatStmt::Kind::redirect) {
    if (!(r->min_addr == r->max_addr)) {
      *why = "an address range is not modelled (only a single address is)";
      return std::nullopt;
    }
    n.addr = r->min_addr;
  }
  if (r->flags & NF_NAT_RANGE_PROTO_SPECIFIED) {
    if (r->min_port != r->max_port) {
      *why = fmt::format("port range {}-{} is not modelled (only a single port is)", r->min_port,
                         r->max_port);
      return std::nullopt;
    }
    n.port = r->min_port;
  }
  XtDecoded d;
  d.stmts.push_back(std::move(n));
  return d;
}

}  // namespace dpi::nft::xt
