// -m set --match-set NAME DIRS (xt_set revisions 1-4): a lookup in a kernel ipset, here a
// SetDef built from the set's members.
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_set.h>

#include "backends/nftables/xt/decoders.h"
#include "backends/nftables/xt/ipset_internal.h"

namespace dpi::nft::xt {

namespace {

std::optional<SetOpts> read_opts(const XtExpr& x, std::string* why) {
  SetOpts o;
  const xt_set_info* ms = nullptr;
  xt_set_info_match_v1 v1;
  xt_set_info_match_v3 v3;
  xt_set_info_match_v4 v4;
  uint32_t flags = 0;
  if (x.rev <= 2) {
    auto i = info_as<xt_set_info_match_v1>(x, "xt_set_info_match_v1", why);
    if (!i) return std::nullopt;
    v1 = *i;
    ms = &v1.match_set;
    // Revision 2 carries --return-nomatch in the match flags.
    if (x.rev == 2 && (ms->flags & IPSET_RETURN_NOMATCH)) flags |= IPSET_FLAG_RETURN_NOMATCH;
  } else if (x.rev == 3) {
    auto i = info_as<xt_set_info_match_v3>(x, "xt_set_info_match_v3", why);
    if (!i) return std::nullopt;
    v3 = *i;
    ms = &v3.match_set;
    flags = v3.flags;
    if (v3.packets.op != IPSET_COUNTER_NONE || v3.bytes.op != IPSET_COUNTER_NONE) {
      *why = "--packets-*/--bytes-* counter conditions are not modelled";
      return std::nullopt;
    }
  } else {
    auto i = info_as<xt_set_info_match_v4>(x, "xt_set_info_match_v4", why);
    if (!i) return std::nullopt;
    v4 = *i;
    ms = &v4.match_set;
    flags = v4.flags;
    if (v4.packets.op != IPSET_COUNTER_NONE || v4.bytes.op != IPSET_COUNTER_NONE) {
      *why = "--packets-*/--bytes-* counter conditions are not modelled";
      return std::nullopt;
    }
  }
  if (flags & IPSET_FLAG_MATCH_COUNTERS) {
    *why = "counter matching is not modelled";
    return std::nullopt;
  }
  // --update-counters / --update-subcounters (SKIP_* flags) do not change the verdict.
  constexpr uint32_t kKnown = IPSET_FLAG_SKIP_COUNTER_UPDATE | IPSET_FLAG_SKIP_SUBCOUNTER_UPDATE |
                              IPSET_FLAG_RETURN_NOMATCH;
  if (flags & ~kKnown) {
    *why = fmt::format("match flags 0x{:x} are not decoded", flags & ~kKnown);
    return std::nullopt;
  }
  o.index = ms->index;
  o.dim = ms->dim;
  o.dir_flags = ms->flags;
  o.invert = ms->flags & IPSET_INV_MATCH;
  o.return_nomatch = flags & IPSET_FLAG_RETURN_NOMATCH;
  if (o.dim == 0 || o.dim > IPSET_DIM_MAX) {
    *why = fmt::format("dimension {} is out of range", o.dim);
    return std::nullopt;
  }
  return o;
}

// Number of xt dimensions (src/dst flags) a set's key consumes: a port is proto + port.
int dimensions(const Ipset& s) {
  int n = 0;
  for (Type t : s.key_types)
    if (t != Type::inet_service || s.type == "bitmap:port") ++n;
  return n;
}

// The packet fields a lookup reads, in key order.
std::optional<Selector> selector_for(const Ipset& s, const SetOpts& o, std::string* why) {
  Selector sel;
  int dim = 0;
  for (std::size_t c = 0; c < s.key_types.size(); ++c) {
    bool src = o.dir_flags & (1u << (dim + 1));
    Type t = s.key_types[c];
    switch (t) {
      case Type::ipv4:
        sel.parts.push_back(operand(src ? Key::ip_saddr : Key::ip_daddr, t));
        ++dim;
        break;
      case Type::ipv6:
        sel.parts.push_back(operand(src ? Key::ip6_saddr : Key::ip6_daddr, t));
        ++dim;
        break;
      case Type::inet_proto: sel.parts.push_back(operand(Key::meta_l4proto, t)); break;
      case Type::inet_service:
        sel.parts.push_back(operand(src ? Key::th_sport : Key::th_dport, t));
        ++dim;
        break;
      default:
        *why = fmt::format("ipset {} of type {} is not modelled (only ip, net and port parts are)",
                           s.name, s.type);
        return std::nullopt;
    }
  }
  return sel;
}

bool has_icmp_ports(const Ipset& s) {
  for (std::size_t c = 0; c < s.key_types.size(); ++c)
    if (s.key_types[c] == Type::inet_proto)
      for (const auto& m : s.members) {
        auto p = m.key[c].lo.as_uint();
        if (p == 1 || p == 58) return true;
      }
  return false;
}

struct Lookup {
  Selector sel;
  std::vector<SetElem> elems;
};

// The elements of one (non-list) set as seen by this match; an empty list when the kernel's
// lookup can never succeed (family or dimension mismatch).
std::optional<Lookup> lookup_of(const Ipset& s, const SetOpts& o, int nfproto, std::string* why) {
  auto sel = selector_for(s, o, why);
  if (!sel) return std::nullopt;
  Lookup l{std::move(*sel), {}};
  if (s.family != 0 && s.family != nfproto) return l;  // ip_set_test: family mismatch
  if (o.dim < dimensions(s)) return l;                 // ip_set_test: too few dimensions given
  if (has_icmp_ports(s)) {
    *why = fmt::format("ipset {} has ICMP type/code elements, which are not modelled", s.name);
    return std::nullopt;
  }
  auto elems = resolve_members(s, o.return_nomatch, why);
  if (!elems) return std::nullopt;
  l.elems = std::move(*elems);
  return l;
}

bool same_layout(const Selector& a, const Selector& b) {
  if (a.parts.size() != b.parts.size()) return false;
  for (std::size_t i = 0; i < a.parts.size(); ++i)
    if (a.parts[i].key != b.parts[i].key || a.parts[i].width != b.parts[i].width) return false;
  return true;
}

}  // namespace

std::optional<XtDecoded> decode_set(const XtExpr& x, XtContext& ctx, std::string* why) {
  auto o = read_opts(x, why);
  if (!o) return std::nullopt;
  if (!ctx.ipsets) {
    *why = fmt::format("ipset index {}: the node's ipsets were not read", o->index);
    return std::nullopt;
  }
  int nfproto = ctx.family == "ip" ? 2 : ctx.family == "ip6" ? 10 : 0;
  if (!nfproto) {
    *why = fmt::format("a set match in a table of family {} is not modelled", ctx.family);
    return std::nullopt;
  }
  const Ipset* s = ctx.ipsets->by_index(o->index);
  if (!s) {
    *why = fmt::format("ipset index {} does not exist", o->index);
    return std::nullopt;
  }
  return set_lookup(ctx, *s, *o, why);
}

std::optional<XtDecoded> set_lookup(XtContext& ctx, const Ipset& set, const SetOpts& opts,
                                    std::string* why) {
  const Ipset* s = &set;
  const SetOpts* o = &opts;
  int nfproto = ctx.family == "ip" ? 2 : ctx.family == "ip6" ? 10 : 0;
  if (!nfproto) {
    *why = fmt::format("a set match in a table of family {} is not modelled", ctx.family);
    return std::nullopt;
  }
  if (!ctx.ipsets) {
    *why = fmt::format("ipset {}: the node's ipsets were not read", s->name);
    return std::nullopt;
  }
  std::optional<Lookup> l;
  if (s->type == "list:set") {
    if (o->return_nomatch) {
      *why = fmt::format("--return-nomatch on list:set {} is not modelled", s->name);
      return std::nullopt;
    }
    // A list:set matches when one of its members does: the union of their elements, provided
    // all members that can match are looked up with the same packet fields.
    for (const auto& name : s->list_members) {
      const Ipset* m = ctx.ipsets->by_name(name);
      if (!m) {
        *why = fmt::format("list:set {} names ipset {}, which does not exist", s->name, name);
        return std::nullopt;
      }
      if (m->type == "list:set") {
        *why = fmt::format("list:set {} contains list:set {}", s->name, name);
        return std::nullopt;
      }
      auto ml = lookup_of(*m, *o, nfproto, why);
      if (!ml) return std::nullopt;
      if (ml->elems.empty()) continue;
      if (!l) {
        l = std::move(ml);
      } else if (!same_layout(l->sel, ml->sel)) {
        *why = fmt::format(
            "list:set {} mixes member types ({} and others) that read different packet fields",
            s->name, m->type);
        return std::nullopt;
      } else {
        l->elems.insert(l->elems.end(), ml->elems.begin(), ml->elems.end());
      }
    }
    if (!l) {  // no member can match: any lookup misses
      l = Lookup{};
      l->sel.parts.push_back(operand(nfproto == 2 ? Key::ip_saddr : Key::ip6_saddr,
                                     nfproto == 2 ? Type::ipv4 : Type::ipv6));
    }
  } else {
    l = lookup_of(*s, *o, nfproto, why);
    if (!l) return std::nullopt;
  }
  const SetDef* def = add_anon_set(ctx, l->sel, std::move(l->elems));
  XtDecoded d;
  d.stmts.push_back(match_set(std::move(l->sel), def, o->invert));
  return d;
}

}  // namespace dpi::nft::xt
