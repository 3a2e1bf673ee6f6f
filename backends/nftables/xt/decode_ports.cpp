// -m multiport (revision 1) and -m icmp / -m icmp6.
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_multiport.h>
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

std::optional<XtDecoded> decode_multiport(const XtExpr& x, XtContext& ctx, std::string* why) {
  auto i = info_as<xt_multiport_v1>(x, "xt_multiport_v1", why);
  if (!i) return std::nullopt;
  if (i->count == 0 || i->count > XT_MULTI_PORTS) {
    *why = fmt::format("port count {} is out of range", i->count);
    return std::nullopt;
  }
  std::vector<Range> ranges;
  for (unsigned k = 0; k < i->count; ++k) {
    uint16_t lo = i->ports[k], hi = lo;
    if (i->pflags[k]) {  // a range takes two slots
      if (k + 1 >= i->count) {
        *why = "a port range is cut off by the port count";
        return std::nullopt;
      }
      hi = i->ports[++k];
    }
    ranges.push_back(Range{Bytes::from_uint(lo, 2), Bytes::from_uint(hi, 2)});
  }
  return multiport_stmts(ctx, i->flags, ranges, i->invert != 0, why);
}

std::optional<XtDecoded> multiport_stmts(XtContext& ctx, uint8_t flags,
                                         const std::vector<Range>& ranges, bool invert,
                                         std::string* why) {
  Operand sport = operand(Key::th_sport, Type::inet_service),
          dport = operand(Key::th_dport, Type::inet_service);
  Selector sel;
  std::vector<SetElem> elems;
  Range any{Bytes::from_uint(0, 2), Bytes::from_uint(0xffff, 2)};
  switch (flags) {
    case XT_MULTIPORT_SOURCE:
    case XT_MULTIPORT_DESTINATION:
      sel.parts.push_back(flags == XT_MULTIPORT_SOURCE ? sport : dport);
      for (const auto& r : ranges) elems.push_back(SetElem{{r}, {}, std::nullopt});
      break;
    case XT_MULTIPORT_EITHER:
      // --ports: source or destination in the list, i.e. "sport . dport" in
      // { r . *, * . r } for every listed r.
      sel.parts = {sport, dport};
      for (const auto& r : ranges) {
        elems.push_back(SetElem{{r, any}, {}, std::nullopt});
        elems.push_back(SetElem{{any, r}, {}, std::nullopt});
      }
      break;
    default:
      *why = fmt::format("direction {} is not source, destination or either", flags);
      return std::nullopt;
  }
  const SetDef* set = add_anon_set(ctx, sel, std::move(elems));
  XtDecoded d;
  d.stmts.push_back(match_set(std::move(sel), set, invert));
  return d;
}

// ipt_icmp and ip6t_icmp have the same layout.
std::optional<XtDecoded> decode_icmp(const XtExpr& x, XtContext& ctx, std::string* why) {
  static_assert(sizeof(ipt_icmp) == sizeof(ip6t_icmp));
  bool v6 = x.name == "icmp6";
  auto i = info_as<ipt_icmp>(x, v6 ? "ip6t_icmp" : "ipt_icmp", why);
  if (!i) return std::nullopt;
  bool inv = i->invflags & IPT_ICMP_INV;
  if (i->invflags & ~IPT_ICMP_INV) {
    *why = fmt::format("inverse flags 0x{:x} are not decoded", i->invflags);
    return std::nullopt;
  }
  XtDecoded d;
  d.stmts.push_back(icmp_match(ctx, v6, i->type, i->code[0], i->code[1], inv));
  return d;
}

MatchStmt icmp_match(XtContext& ctx, bool v6, uint8_t itype, uint8_t code_lo, uint8_t code_hi,
                     bool inv) {
  Operand type =
      v6 ? operand(Key::icmpv6_type, Type::icmpv6_type) : operand(Key::icmp_type, Type::icmp_type);
  Operand code =
      v6 ? operand(Key::icmpv6_code, Type::icmp_code) : operand(Key::icmp_code, Type::icmp_code);
  Selector sel;
  std::vector<SetElem> elems;
  if (!v6 && itype == 0xff) {
    // "--icmp-type any": every ICMP packet.
    sel.parts = {type};
    elems.push_back(
        SetElem{{Range{Bytes::from_uint(0, 1), Bytes::from_uint(0xff, 1)}}, {}, std::nullopt});
  } else {
    // type == T and code in [lo, hi], negated as a whole by "!": one concatenated lookup.
    sel.parts = {type, code};
    elems.push_back(SetElem{{Range{Bytes::from_uint(itype, 1), Bytes::from_uint(itype, 1)},
                             Range{Bytes::from_uint(code_lo, 1), Bytes::from_uint(code_hi, 1)}},
                            {},
                            std::nullopt});
  }
  const SetDef* set = add_anon_set(ctx, sel, std::move(elems));
  return match_set(std::move(sel), set, inv);
}

}  // namespace dpi::nft::xt
