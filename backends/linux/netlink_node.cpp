#include "backends/linux/netlink_node.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "backends/linux/mnl_socket.h"

namespace dpi::os {

namespace {

// Dumps are sent in skbs of up to 32 KiB; a smaller buffer would truncate them.
constexpr std::size_t kRecvBufferSize = std::size_t{64} * 1024;
// The kernel flags a dump that raced with a change (NLM_F_DUMP_INTR); it is simply redone.
constexpr int kDumpAttempts = 5;

using MessageFn = std::function<void(const nlmsghdr*)>;

int dispatch(const nlmsghdr* nlh, void* data) {
  (*static_cast<const MessageFn*>(data))(nlh);
  return MNL_CB_OK;
}

// One complete dump on a socket of its own, so an aborted attempt leaves nothing behind for the
// next one. `header` is the family-specific struct that follows nlmsghdr.
template <class Header>
Status dump(uint16_t type, const Header& header, const char* what, const MessageFn& on_message,
            const std::function<void()>& reset) {
  std::vector<char> buf(kRecvBufferSize);
  for (int attempt = 0;; ++attempt) {
    reset();
    MnlSocket sock;
    if (int err = sock.open(NETLINK_ROUTE)) return netlink_errno_error(err, "netlink socket");

    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr)) + attempt;
    std::memcpy(mnl_nlmsg_put_extra_header(nlh, sizeof header), &header, sizeof header);
    const uint32_t seq = nlh->nlmsg_seq;
    if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
      return netlink_errno_error(errno, "netlink " + std::string(what) + " request");

    int rc = MNL_CB_OK;
    while (rc > MNL_CB_STOP) {
      ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
      if (n < 0) {
        rc = -1;
        break;
      }
      rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, sock.portid(), dispatch,
                      const_cast<MessageFn*>(&on_message));
    }
    if (rc >= 0) return Ok{};
    int err = errno;
    if (err == EINTR && attempt + 1 < kDumpAttempts) continue;
    return netlink_errno_error(err, "netlink " + std::string(what) + " dump");
  }
}

struct AttrTable {
  std::vector<const nlattr*> tb;
};

int collect_attr(const nlattr* attr, void* data) {
  auto& tb = static_cast<AttrTable*>(data)->tb;
  auto t = static_cast<std::size_t>(mnl_attr_get_type(attr));
  if (t < tb.size()) tb[t] = attr;
  return MNL_CB_OK;
}

// Attributes following the family header T, indexed by type; later duplicates win.
template <class T>
std::vector<const nlattr*> parse_attrs(const nlmsghdr* nlh, int max_type) {
  AttrTable t{std::vector<const nlattr*>(static_cast<std::size_t>(max_type) + 1, nullptr)};
  mnl_attr_parse(nlh, sizeof(T), collect_attr, &t);
  return std::move(t.tb);
}

bool is_u32(const nlattr* a) {
  return a && mnl_attr_validate(a, MNL_TYPE_U32) >= 0;
}

// An address attribute of the given family, or nullopt if it has the wrong size.
std::optional<IpAddr> attr_addr(const nlattr* a, int family) {
  if (!a) return std::nullopt;
  IpAddr out;
  out.family = family;
  if (mnl_attr_get_payload_len(a) != out.size()) return std::nullopt;
  std::memcpy(out.bytes.data(), mnl_attr_get_payload(a), out.size());
  return out;
}

// RTA_VIA carries a gateway of another family (IPv4 routes via an IPv6 nexthop).
std::optional<IpAddr> attr_via(const nlattr* a) {
  if (!a || mnl_attr_get_payload_len(a) < sizeof(rtvia)) return std::nullopt;
  const auto* via = static_cast<const rtvia*>(mnl_attr_get_payload(a));
  IpAddr out;
  if (via->rtvia_family != AF_INET && via->rtvia_family != AF_INET6) return std::nullopt;
  out.family = via->rtvia_family;
  if (mnl_attr_get_payload_len(a) < sizeof(rtvia) + out.size()) return std::nullopt;
  std::memcpy(out.bytes.data(), via->rtvia_addr, out.size());
  return out;
}

std::string route_type_name(unsigned char type) {
  switch (type) {
    case RTN_UNICAST: return "unicast";
    case RTN_LOCAL: return "local";
    case RTN_BROADCAST: return "broadcast";
    case RTN_ANYCAST: return "anycast";
    case RTN_MULTICAST: return "multicast";
    case RTN_BLACKHOLE: return "blackhole";
    case RTN_UNREACHABLE: return "unreachable";
    case RTN_PROHIBIT: return "prohibit";
    case RTN_THROW: return "throw";
    case RTN_NAT: return "nat";
    default: return "unspec";  // RTN_UNSPEC, RTN_XRESOLVE: not produced by today's kernels
  }
}

void on_link(const nlmsghdr* nlh, std::vector<Interface>& out) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return;
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(nlh));
  auto tb = parse_attrs<ifinfomsg>(nlh, IFLA_IFNAME);
  Interface i;
  i.index = ifi->ifi_index;
  i.up = (ifi->ifi_flags & IFF_UP) != 0;
  if (tb[IFLA_IFNAME] && mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) >= 0)
    i.name = mnl_attr_get_str(tb[IFLA_IFNAME]);
  out.push_back(std::move(i));
}

void on_addr(const nlmsghdr* nlh, std::vector<Interface>& ifs) {
  if (nlh->nlmsg_type != RTM_NEWADDR) return;
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return;
  auto tb = parse_attrs<ifaddrmsg>(nlh, IFA_LOCAL);
  // On point-to-point links IFA_ADDRESS is the peer and IFA_LOCAL our end; elsewhere IFA_LOCAL
  // is either equal or (IPv6) absent.
  auto addr = attr_addr(tb[IFA_LOCAL], ifa->ifa_family);
  if (!addr) addr = attr_addr(tb[IFA_ADDRESS], ifa->ifa_family);
  if (!addr) return;
  for (auto& i : ifs)
    if (i.index == static_cast<int>(ifa->ifa_index))
      i.addrs.push_back(IpPrefix{*addr, ifa->ifa_prefixlen});
}

void on_route(const nlmsghdr* nlh, int family, std::vector<Route>& out) {
  if (nlh->nlmsg_type != RTM_NEWROUTE) return;
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(nlh));
  // A kernel without the requested family answers with every family's routes.
  if (rtm->rtm_family != family || (rtm->rtm_flags & RTM_F_CLONED)) return;
  auto tb = parse_attrs<rtmsg>(nlh, RTA_MAX);

  Route r;
  r.type = route_type_name(rtm->rtm_type);
  r.table = is_u32(tb[RTA_TABLE]) ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
  r.priority = is_u32(tb[RTA_PRIORITY]) ? mnl_attr_get_u32(tb[RTA_PRIORITY]) : 0;
  r.dst.addr.family = family;
  r.dst.len = rtm->rtm_dst_len;
  if (auto dst = attr_addr(tb[RTA_DST], family)) r.dst.addr = *dst;
  if (is_u32(tb[RTA_OIF])) r.oif = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  r.gateway = attr_addr(tb[RTA_GATEWAY], family);
  if (!r.gateway) r.gateway = attr_via(tb[RTA_VIA]);

  // ECMP: the kernel hashes flows over the nexthops; we cannot know which one a flow takes, so
  // the first stands for all of them.
  const nlattr* mp = tb[RTA_MULTIPATH];
  if (r.oif == 0 && mp && mnl_attr_get_payload_len(mp) >= sizeof(rtnexthop)) {
    const auto* nh = static_cast<const rtnexthop*>(mnl_attr_get_payload(mp));
    if (nh->rtnh_len >= sizeof(rtnexthop) && nh->rtnh_len <= mnl_attr_get_payload_len(mp)) {
      r.oif = nh->rtnh_ifindex;
      const char* p = reinterpret_cast<const char*>(nh) + RTNH_LENGTH(0);
      const char* end = reinterpret_cast<const char*>(nh) + nh->rtnh_len;
      for (const auto* a = reinterpret_cast<const nlattr*>(p);
           mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
           a = mnl_attr_next(a)) {
        if (mnl_attr_get_type(a) == RTA_GATEWAY) r.gateway = attr_addr(a, family);
        if (mnl_attr_get_type(a) == RTA_VIA) r.gateway = attr_via(a);
      }
    }
  }
  out.push_back(std::move(r));
}

void on_rule(const nlmsghdr* nlh, int family, std::vector<IpRule>& out) {
  if (nlh->nlmsg_type != RTM_NEWRULE || mnl_nlmsg_get_payload_len(nlh) < sizeof(fib_rule_hdr))
    return;
  const auto* frh = static_cast<const fib_rule_hdr*>(mnl_nlmsg_get_payload(nlh));
  if (frh->family != family) return;
  auto tb = parse_attrs<fib_rule_hdr>(nlh, FRA_MAX);
  auto u32 = [&](int type) -> std::optional<uint32_t> {
    return is_u32(tb[type]) ? std::optional(mnl_attr_get_u32(tb[type])) : std::nullopt;
  };
  auto str = [&](int type) -> std::string {
    return tb[type] && mnl_attr_validate(tb[type], MNL_TYPE_NUL_STRING) >= 0
               ? mnl_attr_get_str(tb[type])
               : "";
  };
  IpRule r;
  r.family = family == AF_INET ? 4 : 6;
  r.priority = u32(FRA_PRIORITY).value_or(0);
  r.invert = (frh->flags & FIB_RULE_INVERT) != 0;
  if (auto a = attr_addr(tb[FRA_SRC], family)) r.src = IpPrefix{*a, frh->src_len};
  if (auto a = attr_addr(tb[FRA_DST], family)) r.dst = IpPrefix{*a, frh->dst_len};
  if (auto m = u32(FRA_FWMARK)) {
    r.fwmark = *m;
    r.fwmask = u32(FRA_FWMASK).value_or(0xffffffff);
  }
  r.iif = str(FRA_IIFNAME);
  r.oif = str(FRA_OIFNAME);
  switch (frh->action) {
    case FR_ACT_TO_TBL: r.action = "lookup"; break;
    case FR_ACT_GOTO: r.action = "goto"; break;
    case FR_ACT_NOP: r.action = "nop"; break;
    case FR_ACT_BLACKHOLE: r.action = "blackhole"; break;
    case FR_ACT_UNREACHABLE: r.action = "unreachable"; break;
    case FR_ACT_PROHIBIT: r.action = "prohibit"; break;
    default: r.action = "nop"; r.unsupported = fmt::format("action {}", frh->action);
  }
  r.table = u32(FRA_TABLE).value_or(frh->table);
  r.goto_priority = u32(FRA_GOTO).value_or(0);
  if (auto s = u32(FRA_SUPPRESS_PREFIXLEN); s && *s != 0xffffffff)
    r.suppress_prefixlength = static_cast<int>(*s);
  // Selectors the route lookup model does not follow: named as `ip rule` prints them.
  r.tos = frh->tos;
  if (tb[FRA_IP_PROTO] && mnl_attr_get_payload_len(tb[FRA_IP_PROTO]) >= 1)
    r.ipproto = mnl_attr_get_u8(tb[FRA_IP_PROTO]);
  auto ports = [&](int type) -> std::optional<std::pair<uint16_t, uint16_t>> {
    if (!tb[type] || mnl_attr_get_payload_len(tb[type]) < sizeof(fib_rule_port_range))
      return std::nullopt;
    const auto* p = static_cast<const fib_rule_port_range*>(mnl_attr_get_payload(tb[type]));
    return std::pair<uint16_t, uint16_t>(p->start, p->end);
  };
  r.sport = ports(FRA_SPORT_RANGE);
  r.dport = ports(FRA_DPORT_RANGE);
  if (tb[FRA_UID_RANGE] &&
      mnl_attr_get_payload_len(tb[FRA_UID_RANGE]) >= sizeof(fib_rule_uid_range)) {
    const auto* u = static_cast<const fib_rule_uid_range*>(mnl_attr_get_payload(tb[FRA_UID_RANGE]));
    r.uidrange = std::pair<uint32_t, uint32_t>(u->start, u->end);
  }
  std::vector<std::string> other;
  if (tb[FRA_L3MDEV]) other.push_back("l3mdev");
  if (tb[FRA_TUN_ID]) other.push_back("tun_id");
  if (auto g = u32(FRA_SUPPRESS_IFGROUP); g && *g != 0xffffffff)
    other.push_back("suppress_ifgroup");
  for (const auto& o : other) r.unsupported += (r.unsupported.empty() ? "" : " ") + o;
  out.push_back(std::move(r));
}

// The family-specific request headers of per_family dumps.
struct RouteRequest {
  rtmsg value{};
  void rtm_family_field(int f) { value.rtm_family = static_cast<unsigned char>(f); }
};
struct RuleRequest {
  fib_rule_hdr value{};
  void rtm_family_field(int f) { value.family = static_cast<unsigned char>(f); }
};

}  // namespace

Result<NodeInfo> read_node_info() {
  NodeInfo node;

  ifinfomsg link_req{};
  link_req.ifi_family = AF_UNSPEC;
  Status st = dump(
      RTM_GETLINK, link_req, "RTM_GETLINK",
      [&](const nlmsghdr* nlh) { on_link(nlh, node.interfaces); },
      [&] { node.interfaces.clear(); });
  if (!st) return st.error();
  std::sort(node.interfaces.begin(), node.interfaces.end(),
            [](const Interface& a, const Interface& b) { return a.index < b.index; });

  ifaddrmsg addr_req{};
  addr_req.ifa_family = AF_UNSPEC;
  st = dump(
      RTM_GETADDR, addr_req, "RTM_GETADDR",
      [&](const nlmsghdr* nlh) { on_addr(nlh, node.interfaces); },
      [&] {
        for (auto& i : node.interfaces) i.addrs.clear();
      });
  if (!st) return st.error();

  // Routes and rules per family (a dump request names one); a retried dump drops its partial list.
  auto per_family = [&](uint16_t type, const char* what, auto header, auto& list, auto on_msg) {
    for (int family : {AF_INET, AF_INET6}) {
      header.rtm_family_field(family);
      std::size_t first = list.size();
      Status s = dump(
          type, header.value, fmt::format("{} (IPv{})", what, family == AF_INET ? 4 : 6).c_str(),
          [&](const nlmsghdr* nlh) { on_msg(nlh, family, list); }, [&] { list.resize(first); });
      if (!s) return s;
    }
    return Status{Ok{}};
  };
  // rtm_table 0 and no filter attributes: every table, as `ip route show table all`.
  st = per_family(RTM_GETROUTE, "RTM_GETROUTE", RouteRequest{}, node.routes, on_route);
  if (!st) return st.error();
  st = per_family(RTM_GETRULE, "RTM_GETRULE", RuleRequest{}, node.rules, on_rule);
  if (!st) return st.error();
  node.rules_read = true;

  for (auto& r : node.routes)
    if (const Interface* i = node.find_interface(r.oif)) r.dev = i->name;
  return node;
}

}  // namespace dpi::os
