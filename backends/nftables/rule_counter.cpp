#include "backends/nftables/rule_counter.h"

#include <cerrno>
#include <ctime>
#include <endian.h>
#include <sys/socket.h>
#include <vector>

// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "backends/linux/mnl_socket.h"

namespace dpi::nft {

namespace {

// What the reply's walk found: whether a rule came back at all, and its counter if any.
struct Found {
  bool rule = false;
  std::optional<RuleCounter> counter;
};

// The attributes of one nested attribute, by type (0 where absent).
struct NestedAttrs {
  std::vector<const nlattr*> by_type;
  explicit NestedAttrs(std::size_t max) : by_type(max + 1, nullptr) {}
  const nlattr* operator[](uint16_t t) const { return t < by_type.size() ? by_type[t] : nullptr; }
};

int collect(const nlattr* attr, void* data) {
  auto* a = static_cast<NestedAttrs*>(data);
  uint16_t t = mnl_attr_get_type(attr);
  if (t < a->by_type.size()) a->by_type[t] = attr;
  return MNL_CB_OK;
}

// NFTA_EXPR_DATA of a "counter" expression: NFTA_COUNTER_PACKETS / _BYTES, big-endian u64.
std::optional<RuleCounter> counter_of(const nlattr* data) {
  NestedAttrs c(NFTA_COUNTER_MAX);
  if (mnl_attr_parse_nested(data, collect, &c) < 0) return std::nullopt;
  const nlattr* p = c[NFTA_COUNTER_PACKETS];
  const nlattr* b = c[NFTA_COUNTER_BYTES];
  if (!p || mnl_attr_validate(p, MNL_TYPE_U64) < 0) return std::nullopt;
  RuleCounter out;
  out.packets = be64toh(mnl_attr_get_u64(p));
  if (b && mnl_attr_validate(b, MNL_TYPE_U64) >= 0) out.bytes = be64toh(mnl_attr_get_u64(b));
  return out;
}

int on_rule(const nlmsghdr* nlh, void* data) {
  auto* found = static_cast<Found*>(data);
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE)) return MNL_CB_OK;
  found->rule = true;
  NestedAttrs rule(NFTA_RULE_MAX);
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), collect, &rule) < 0) return MNL_CB_ERROR;
  const nlattr* exprs = rule[NFTA_RULE_EXPRESSIONS];
  if (!exprs) return MNL_CB_OK;
  // mnl_attr_for_each_nested relies on C's void* conversions; the same walk, spelled out.
  const auto* elem = static_cast<const nlattr*>(mnl_attr_get_payload(exprs));
  for (int left = static_cast<int>(mnl_attr_get_payload_len(exprs)); mnl_attr_ok(elem, left);
       left -= static_cast<int>(MNL_ALIGN(elem->nla_len)), elem = mnl_attr_next(elem)) {
    NestedAttrs e(NFTA_EXPR_MAX);
    if (mnl_attr_parse_nested(elem, collect, &e) < 0) continue;
    const nlattr* name = e[NFTA_EXPR_NAME];
    const nlattr* body = e[NFTA_EXPR_DATA];
    if (!name || !body || mnl_attr_validate(name, MNL_TYPE_NUL_STRING) < 0) continue;
    // The first counter is the rule's: nft and iptables-nft render one per rule.
    if (std::string(mnl_attr_get_str(name)) == "counter") {
      found->counter = counter_of(body);
      break;
    }
  }
  return MNL_CB_OK;
}

}  // namespace

std::optional<uint8_t> family_number(const std::string& family) {
  if (family == "ip") return NFPROTO_IPV4;
  if (family == "ip6") return NFPROTO_IPV6;
  if (family == "inet") return NFPROTO_INET;
  if (family == "arp") return NFPROTO_ARP;
  if (family == "bridge") return NFPROTO_BRIDGE;
  if (family == "netdev") return NFPROTO_NETDEV;
  return std::nullopt;
}

Result<std::optional<RuleCounter>> read_rule_counter(const NftRuleLocation& at) {
  if (!at.handle) return make_error(ErrorCode::bad_input, "a chain's policy has no counter");
  auto family = family_number(at.family);
  if (!family) return make_error(ErrorCode::bad_input, "unknown nft family " + at.family);
  os::MnlSocket sock;
  if (int err = sock.open(NETLINK_NETFILTER))
    return os::netlink_errno_error(err, "nfnetlink socket");

  // A GETRULE without NLM_F_DUMP names one rule by table, chain and handle.
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 4);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = *family;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  mnl_attr_put_strz(nlh, NFTA_RULE_TABLE, at.table.c_str());
  mnl_attr_put_strz(nlh, NFTA_RULE_CHAIN, at.chain.c_str());
  mnl_attr_put_u64(nlh, NFTA_RULE_HANDLE, htobe64(*at.handle));
  const uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
    return os::netlink_errno_error(errno, "NFT_MSG_GETRULE request");

  Found found;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
    if (n < 0) return os::netlink_errno_error(errno, "NFT_MSG_GETRULE reply");
    int rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, sock.portid(), on_rule, &found);
    if (rc < 0) {
      if (errno == ENOENT)
        return make_error(ErrorCode::not_found,
                          "rule handle " + std::to_string(*at.handle) + " in chain " + at.chain +
                              " is gone: the ruleset changed since it was read");
      return os::netlink_errno_error(errno, "NFT_MSG_GETRULE");
    }
    if (rc == MNL_CB_STOP) break;  // the ACK after the rule
  }
  if (!found.rule) return make_error(ErrorCode::system, "NFT_MSG_GETRULE: no rule in the reply");
  return found.counter;
}

}  // namespace dpi::nft
