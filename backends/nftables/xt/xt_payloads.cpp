#include "backends/nftables/xt/xt_payloads.h"

#include <arpa/inet.h>
#include <endian.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>

#include "backends/nftables/xt/nl_dump.h"

namespace dpi::nft {

std::string nft_family_name(int nfproto) {
  switch (nfproto) {
    case NFPROTO_IPV4: return "ip";
    case NFPROTO_IPV6: return "ip6";
    case NFPROTO_INET: return "inet";
    case NFPROTO_ARP: return "arp";
    case NFPROTO_BRIDGE: return "bridge";
    case NFPROTO_NETDEV: return "netdev";
  }
  return "";
}

namespace {

using xt::attr_str;
using xt::Attrs;

// One element of NFTA_RULE_EXPRESSIONS; appends to out when it is a match or target.
void parse_expr(const nlattr* elem, std::vector<XtExpr>& out) {
  Attrs<NFTA_EXPR_MAX> e;
  if (mnl_attr_parse_nested(elem, Attrs<NFTA_EXPR_MAX>::cb, &e) < 0) return;
  std::string kind = attr_str(e[NFTA_EXPR_NAME]);
  if ((kind != "match" && kind != "target") || !e[NFTA_EXPR_DATA]) return;
  static_assert(int{NFTA_MATCH_NAME} == int{NFTA_TARGET_NAME} &&
                int{NFTA_MATCH_REV} == int{NFTA_TARGET_REV} &&
                int{NFTA_MATCH_INFO} == int{NFTA_TARGET_INFO});
  Attrs<NFTA_MATCH_MAX> d;
  if (mnl_attr_parse_nested(e[NFTA_EXPR_DATA], Attrs<NFTA_MATCH_MAX>::cb, &d) < 0) return;
  XtExpr x;
  x.target = kind == "target";
  x.name = attr_str(d[NFTA_MATCH_NAME]);
  if (d[NFTA_MATCH_REV] && mnl_attr_get_payload_len(d[NFTA_MATCH_REV]) >= 4)
    x.rev = ntohl(mnl_attr_get_u32(d[NFTA_MATCH_REV]));
  if (const nlattr* info = d[NFTA_MATCH_INFO]) {
    const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(info));
    x.info.assign(p, p + mnl_attr_get_payload_len(info));
  }
  out.push_back(std::move(x));
}

int on_rule(const nlmsghdr* nlh, XtPayloads& out) {
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE) ||
      mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg))
    return MNL_CB_OK;
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  Attrs<NFTA_RULE_MAX> r;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), Attrs<NFTA_RULE_MAX>::cb, &r) < 0) return MNL_CB_OK;
  if (!r[NFTA_RULE_EXPRESSIONS] || !r[NFTA_RULE_HANDLE] ||
      mnl_attr_get_payload_len(r[NFTA_RULE_HANDLE]) < sizeof(uint64_t))
    return MNL_CB_OK;
  std::vector<XtExpr> xs;
  xt::for_each_nested(r[NFTA_RULE_EXPRESSIONS], [&](const nlattr* elem) {
    if (mnl_attr_get_type(elem) == NFTA_LIST_ELEM) parse_expr(elem, xs);
  });
  if (xs.empty()) return MNL_CB_OK;
  RuleKey k{nft_family_name(nfg->nfgen_family), attr_str(r[NFTA_RULE_TABLE]),
            attr_str(r[NFTA_RULE_CHAIN]), be64toh(mnl_attr_get_u64(r[NFTA_RULE_HANDLE]))};
  out[std::move(k)] = std::move(xs);
  return MNL_CB_OK;
}

}  // namespace

Result<XtPayloads> read_xt_payloads() {
  XtPayloads out;
  xt::NlRequest req;
  req.subsys_msg = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
  req.family = NFPROTO_UNSPEC;
  req.what = "listing nftables rules (xt compat expressions)";
  Status st = xt::nl_dump(
      req, [&](const nlmsghdr* nlh) { return on_rule(nlh, out); }, [&] { out.clear(); });
  if (!st) return st.error();
  return out;
}

Result<XtPayloads> xt_payloads_from_dump(const void* buf, std::size_t len) {
  XtPayloads out;
  Status st = xt::nl_parse(
      buf, len, [&](const nlmsghdr* nlh) { return on_rule(nlh, out); }, "nftables rule dump");
  if (!st) return st.error();
  return out;
}

}  // namespace dpi::nft
