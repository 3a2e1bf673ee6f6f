// -m mark (revision 1), -m limit, -m connlimit.
#include <cstddef>

// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_connlimit.h>
#include <linux/netfilter/xt_limit.h>
#include <linux/netfilter/xt_mark.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

std::optional<XtDecoded> decode_mark_match(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_mark_mtinfo1>(x, "xt_mark_mtinfo1", why);
  if (!i) return std::nullopt;
  XtDecoded d;
  d.stmts.push_back(mark_match(i->mark, i->mask, i->invert));
  return d;
}

MatchStmt mark_match(uint32_t mark, uint32_t mask, bool invert) {
  // (mark & mask) == value, as iptables-nft writes it natively: "meta mark & M == V", and
  // "!=" for "! --mark" (the mark always exists, so that is the exact negation).
  Operand o = operand(Key::meta_mark, Type::mark);
  o.binops.push_back({'&', Bytes::from_uint(mask, 4)});
  MatchStmt m = match_range(std::move(o), mark, mark);
  if (invert) m.op = Op::ne;
  return m;
}

std::optional<XtDecoded> decode_limit(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_rateinfo>(x, "xt_rateinfo", why, offsetof(xt_rateinfo, prev));
  if (!i) return std::nullopt;
  std::string rate =
      i->avg ? fmt::format("{:.4g}/second", double(XT_LIMIT_SCALE) / i->avg) : "unlimited";
  XtDecoded d;
  d.stmts.push_back(AssumeStmt{
      fmt::format("rate limit `-m limit --limit {} --limit-burst {}` not exceeded", rate, i->burst),
      true});
  return d;
}

std::optional<XtDecoded> decode_connlimit(const XtExpr& x, XtContext&, std::string* why) {
  auto i =
      info_as<xt_connlimit_info>(x, "xt_connlimit_info", why, offsetof(xt_connlimit_info, data));
  if (!i) return std::nullopt;
  // Matches when (connections > limit) XOR invert; revision 0 keeps "inverse" in that word.
  bool upto = i->flags & XT_CONNLIMIT_INVERT;
  XtDecoded d;
  d.stmts.push_back(
      AssumeStmt{fmt::format("connection count `-m connlimit --connlimit-{} {}` not exceeded",
                             upto ? "upto" : "above", i->limit),
                 upto});
  return d;
}

}  // namespace dpi::nft::xt
