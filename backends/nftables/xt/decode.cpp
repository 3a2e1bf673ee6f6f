#include <algorithm>
#include <initializer_list>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft {

namespace xt {

std::string c_string(const char* p, std::size_t n) {
  std::size_t len = 0;
  while (len < n && p[len]) ++len;
  return std::string(p, len);
}

Operand operand(Key k, Type t) {
  Operand o;
  o.key = k;
  o.type = t;
  o.width = static_cast<uint8_t>(type_width(t));
  return o;
}

MatchStmt match_range(Operand o, uint64_t lo, uint64_t hi, bool invert) {
  MatchStmt m;
  std::size_t w = o.width;
  m.lhs.parts.push_back(std::move(o));
  m.op = Op::eq;
  m.invert = invert;
  m.rhs_kind = MatchStmt::RhsKind::range;
  m.range = Range{Bytes::from_uint(lo, w), Bytes::from_uint(hi, w)};
  return m;
}

MatchStmt match_flags(Selector s, const Bytes& flags, bool invert) {
  MatchStmt m;
  m.lhs = std::move(s);
  m.op = Op::flags_any;
  m.invert = invert;
  m.rhs_kind = MatchStmt::RhsKind::flags;
  m.flags = flags;
  return m;
}

const SetDef* add_anon_set(XtContext& ctx, const Selector& key, std::vector<SetElem> elems) {
  SetDef s;
  s.family = ctx.family;
  s.table = ctx.table;
  for (const auto& p : key.parts) {
    s.key_types.push_back(p.type);
    s.key_widths.push_back(p.width);
  }
  s.interval = true;
  s.elems = std::move(elems);
  s.build_index();
  ctx.rs.sets.push_back(std::move(s));
  return &ctx.rs.sets.back();
}

MatchStmt match_set(Selector s, const SetDef* set, bool invert) {
  MatchStmt m;
  m.lhs = std::move(s);
  m.op = Op::eq;
  m.invert = invert;
  m.rhs_kind = MatchStmt::RhsKind::set;
  m.set = set;
  return m;
}

Bytes addr_bytes(const void* p, bool v6) {
  Bytes b;
  b.len = v6 ? 16 : 4;
  std::memcpy(b.d.data(), p, b.len);
  return b;
}

bool table_is_v6(const XtContext& ctx) {
  return ctx.family == "ip6";
}

std::optional<XtDecoded> decode_comment(const XtExpr& x, XtContext&, std::string*) {
  XtDecoded d;
  d.comment = c_string(reinterpret_cast<const char*>(x.info.data()), x.info.size());
  return d;
}

namespace {

struct Entry {
  bool target;
  const char* name;
  std::initializer_list<uint32_t> revs;
  Decoder fn;
};

// Revisions listed are the layouts each decoder reads.
const Entry kEntries[] = {
    {false, "comment", {0}, decode_comment},
    {false, "conntrack", {1, 2, 3}, decode_conntrack},
    {false, "state", {0}, decode_state},
    {false, "set", {1, 2, 3, 4}, decode_set},
    {false, "multiport", {1}, decode_multiport},
    {false, "tcp", {0}, decode_tcp},
    {false, "udp", {0}, decode_udp},
    {false, "statistic", {0}, decode_statistic},
    {false, "icmp", {0}, decode_icmp},
    {false, "icmp6", {0}, decode_icmp},
    {false, "addrtype", {1}, decode_addrtype},
    {false, "rpfilter", {0}, decode_rpfilter},
    {false, "mark", {1}, decode_mark_match},
    {false, "limit", {0}, decode_limit},
    {false, "connlimit", {0, 1}, decode_connlimit},
    {true, "MARK", {2}, decode_mark_target},
    {true, "CONNMARK", {1, 2}, decode_connmark_target},
    {true, "CT", {0, 1, 2}, decode_ct_target},
    {true, "NOTRACK", {0}, decode_ct_target},
    {true, "NFLOG", {0}, decode_nflog},
    {true, "LOG", {0}, decode_log},
    {true, "REJECT", {0}, decode_reject},
    {true, "DNAT", {0, 1, 2}, decode_nat},
    {true, "SNAT", {0, 1, 2}, decode_nat},
    {true, "MASQUERADE", {0}, decode_nat},
    {true, "REDIRECT", {0}, decode_nat},
};

}  // namespace
}  // namespace xt

std::optional<XtDecoded> decode_xt(const XtExpr& x, XtContext& ctx, std::string* why) {
  const char* kind = x.target ? "target" : "match";
  for (const auto& e : xt::kEntries) {
    if (e.target != x.target || x.name != e.name) continue;
    if (std::find(e.revs.begin(), e.revs.end(), x.rev) == e.revs.end()) break;
    std::string inner;
    auto d = e.fn(x, ctx, &inner);
    if (!d) *why = fmt::format("xt {} \"{}\" revision {}: {}", kind, x.name, x.rev, inner);
    return d;
  }
  *why = fmt::format("xt {} \"{}\" revision {} is not decoded", kind, x.name, x.rev);
  return std::nullopt;
}

}  // namespace dpi::nft
