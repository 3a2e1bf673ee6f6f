#include "backends/nftables/xt/ipsets.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <map>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/ipset/ip_set.h>
#include <linux/netfilter/nfnetlink.h>

#include "backends/nftables/xt/ipset_internal.h"
#include "backends/nftables/xt/nl_dump.h"

namespace dpi::nft {

namespace {

using xt::attr_str;
using xt::Attrs;

constexpr int kNfnlSubsysIpset = 6;  // NFNL_SUBSYS_IPSET (not in the UAPI nfnetlink.h enum)

std::optional<uint64_t> attr_be(const nlattr* a, std::size_t width) {
  if (!a || mnl_attr_get_payload_len(a) < width) return std::nullopt;
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
  uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | p[i];
  return v;
}

// IPSET_ATTR_IP-style nested address.
std::optional<Bytes> attr_addr(const nlattr* a) {
  if (!a) return std::nullopt;
  Attrs<IPSET_ATTR_IPADDR_MAX> t;
  if (mnl_attr_parse_nested(a, Attrs<IPSET_ATTR_IPADDR_MAX>::cb, &t) < 0) return std::nullopt;
  const nlattr* x =
      t[IPSET_ATTR_IPADDR_IPV4] ? t[IPSET_ATTR_IPADDR_IPV4] : t[IPSET_ATTR_IPADDR_IPV6];
  if (!x) return std::nullopt;
  std::size_t len = t[IPSET_ATTR_IPADDR_IPV4] ? 4 : 16;
  if (mnl_attr_get_payload_len(x) < len) return std::nullopt;
  Bytes b;
  b.len = static_cast<uint8_t>(len);
  std::memcpy(b.d.data(), mnl_attr_get_payload(x), len);
  return b;
}

struct State {
  IpsetCatalog cat;
  std::map<std::string, std::size_t> pos;
  std::string error;
};

bool add_ip(const nlattr* ip, const nlattr* cidr, const nlattr* ip_to, IpsetMember& m) {
  auto a = attr_addr(ip);
  if (!a) return false;
  if (auto to = attr_addr(ip_to)) {
    m.key.push_back(Range{*a, *to});
  } else if (auto c = attr_be(cidr, 1)) {
    m.key.push_back(xt::prefix_range(*a, static_cast<int>(*c)));
  } else {
    m.key.push_back(xt::exact_range(*a));
  }
  return true;
}

bool add_port(const nlattr* port, const nlattr* port_to, IpsetMember& m) {
  auto p = attr_be(port, 2);
  if (!p) return false;
  auto to = attr_be(port_to, 2);
  m.key.push_back(Range{Bytes::from_uint(*p, 2), Bytes::from_uint(to.value_or(*p), 2)});
  return true;
}

// One IPSET_ATTR_DATA element of the ADT list.
std::optional<std::string> parse_elem(const nlattr* data, Ipset& s) {
  Attrs<IPSET_ATTR_ADT_MAX> t;
  if (mnl_attr_parse_nested(data, Attrs<IPSET_ATTR_ADT_MAX>::cb, &t) < 0)
    return "malformed element";
  if (s.type == "list:set") {
    s.list_members.push_back(attr_str(t[IPSET_ATTR_NAME]));
    return std::nullopt;
  }
  IpsetMember m;
  auto flags = attr_be(t[IPSET_ATTR_CADT_FLAGS], 4).value_or(0);
  m.nomatch = flags & IPSET_FLAG_NOMATCH;
  int ips = 0;
  bool ok = true;
  for (std::size_t i = 0; i < s.key_types.size() && ok; ++i) {
    Type kt = s.key_types[i];
    if (kt == Type::ipv4 || kt == Type::ipv6) {
      ok = ips++ == 0 ? add_ip(t[IPSET_ATTR_IP], t[IPSET_ATTR_CIDR], t[IPSET_ATTR_IP_TO], m)
                      : add_ip(t[IPSET_ATTR_IP2], t[IPSET_ATTR_CIDR2], t[IPSET_ATTR_IP2_TO], m);
    } else if (kt == Type::inet_proto) {
      auto p = attr_be(t[IPSET_ATTR_PROTO], 1);
      ok = p.has_value();
      if (ok) m.key.push_back(xt::exact_range(Bytes::from_uint(*p, 1)));
    } else if (kt == Type::inet_service) {
      ok = add_port(t[IPSET_ATTR_PORT], t[IPSET_ATTR_PORT_TO], m);
    } else if (kt == Type::mark) {
      auto v = attr_be(t[IPSET_ATTR_MARK], 4);
      ok = v.has_value();
      if (ok) m.key.push_back(xt::exact_range(Bytes::from_uint(*v, 4)));
    } else if (kt == Type::ether_addr) {
      const nlattr* e = t[IPSET_ATTR_ETHER];
      ok = e && mnl_attr_get_payload_len(e) >= 6;
      if (ok) {
        Bytes b;
        b.len = 6;
        std::memcpy(b.d.data(), mnl_attr_get_payload(e), 6);
        m.key.push_back(xt::exact_range(b));
      }
    } else if (kt == Type::ifname) {
      std::string name = attr_str(t[IPSET_ATTR_IFACE]);
      ok = t[IPSET_ATTR_IFACE] != nullptr;
      Bytes lo;
      lo.len = 16;
      std::memcpy(lo.d.data(), name.data(), std::min<std::size_t>(name.size(), 15));
      Bytes hi = lo;
      if (flags & IPSET_FLAG_IFACE_WILDCARD)
        for (std::size_t k = name.size(); k < 16; ++k) hi.d[k] = 0xff;
      m.key.push_back(Range{lo, hi});
    }
  }
  if (!ok) return fmt::format("an element lacks a key part of type {}", s.type);
  s.members.push_back(std::move(m));
  return std::nullopt;
}

int on_msg(const nlmsghdr* nlh, State& st) {
  if ((nlh->nlmsg_type >> 8) != kNfnlSubsysIpset ||
      mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg))
    return MNL_CB_OK;
  Attrs<IPSET_ATTR_CMD_MAX> t;
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), Attrs<IPSET_ATTR_CMD_MAX>::cb, &t) < 0)
    return MNL_CB_OK;
  std::string name = attr_str(t[IPSET_ATTR_SETNAME]);
  if (name.empty()) return MNL_CB_OK;
  auto it = st.pos.find(name);
  if (it == st.pos.end()) {
    Ipset s;
    s.name = name;
    s.index = static_cast<uint16_t>(st.cat.sets.size());
    it = st.pos.emplace(name, st.cat.sets.size()).first;
    st.cat.sets.push_back(std::move(s));
  }
  Ipset& s = st.cat.sets[it->second];
  if (t[IPSET_ATTR_TYPENAME]) {
    s.type = attr_str(t[IPSET_ATTR_TYPENAME]);
    s.family = static_cast<int>(attr_be(t[IPSET_ATTR_FAMILY], 1).value_or(0));
    std::string why;
    s.key_types = ipset_key_types(s.type, s.family, &why);
    if (!why.empty() && st.error.empty()) st.error = fmt::format("ipset {}: {}", s.name, why);
  }
  if (auto idx = attr_be(t[IPSET_ATTR_INDEX], 2)) s.index = static_cast<uint16_t>(*idx);
  if (t[IPSET_ATTR_DATA]) {
    Attrs<IPSET_ATTR_CREATE_MAX> c;
    if (mnl_attr_parse_nested(t[IPSET_ATTR_DATA], Attrs<IPSET_ATTR_CREATE_MAX>::cb, &c) >= 0)
      if (auto nm = attr_be(c[IPSET_ATTR_NETMASK], 1)) {
        int bits = s.family == NFPROTO_IPV6 ? 128 : 32;
        if (static_cast<int>(*nm) < bits) s.netmask = static_cast<uint8_t>(*nm);
      }
  }
  if (t[IPSET_ATTR_ADT]) {
    xt::for_each_nested(t[IPSET_ATTR_ADT], [&](const nlattr* e) {
      if (mnl_attr_get_type(e) != IPSET_ATTR_DATA) return;
      if (auto err = parse_elem(e, s); err && st.error.empty())
        st.error = fmt::format("ipset {}: {}", s.name, *err);
    });
  }
  return MNL_CB_OK;
}

// What the dump said, checked: every set's type known and every member complete.
Result<IpsetCatalog> finish(State& st) {
  if (!st.error.empty()) return make_error(ErrorCode::system, st.error);
  // "-m set" names sets by index: two sets under one index would make every lookup a guess.
  std::map<uint16_t, const std::string*> by_index;
  for (const auto& set : st.cat.sets)
    if (auto [it, fresh] = by_index.emplace(set.index, &set.name); !fresh)
      return make_error(ErrorCode::system, fmt::format("ipsets {} and {} have the same index {}",
                                                       *it->second, set.name, set.index));
  for (auto& set : st.cat.sets) {
    xt::apply_netmask(set);
    if (auto e = xt::check_members(set)) return make_error(ErrorCode::system, *e);
  }
  return std::move(st.cat);
}

}  // namespace

Result<IpsetCatalog> read_ipsets() {
  State st;
  xt::NlRequest req;
  req.subsys_msg = static_cast<uint16_t>((kNfnlSubsysIpset << 8) | IPSET_CMD_LIST);
  req.family = NFPROTO_IPV4;
  req.what = "listing ipsets";
  req.add_attrs = [](nlmsghdr* nlh) { mnl_attr_put_u8(nlh, IPSET_ATTR_PROTOCOL, IPSET_PROTOCOL); };
  int err_no = 0;
  Status s = xt::nl_dump(
      req, [&](const nlmsghdr* nlh) { return on_msg(nlh, st); }, [&] { st = State{}; }, 5, &err_no);
  if (!s) {
    // Without the ip_set module there are no sets (a rule using one would have loaded it).
    if (err_no == EPROTONOSUPPORT || err_no == EOPNOTSUPP || err_no == ENOENT)
      return IpsetCatalog{};
    return s.error();
  }
  return finish(st);
}

Result<IpsetCatalog> ipsets_from_dump(const void* buf, std::size_t len) {
  State st;
  Status s = xt::nl_parse(
      buf, len, [&](const nlmsghdr* nlh) { return on_msg(nlh, st); }, "ipset dump");
  if (!s) return s.error();
  return finish(st);
}

}  // namespace dpi::nft
