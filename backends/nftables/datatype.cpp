#include "backends/nftables/datatype.h"

#include <arpa/inet.h>
#include <charconv>
#include <cstdio>
#include <netdb.h>
#include <span>
#include <utility>

#include <fmt/format.h>

namespace dpi::nft {

std::string Bytes::hex() const {
  std::string s = "0x";
  for (std::size_t i = 0; i < len; ++i) s += fmt::format("{:02x}", d[i]);
  return s;
}

namespace {

struct NameVal {
  std::string_view name;
  unsigned value;
};
using Names = std::span<const NameVal>;

constexpr NameVal kCtState[] = {
    {"invalid", 1}, {"established", 2}, {"related", 4}, {"new", 8}, {"untracked", 64}};
constexpr NameVal kCtStatus[] = {{"expected", 1},  {"seen-reply", 2}, {"assured", 4},
                                 {"confirmed", 8}, {"snat", 16},      {"dnat", 32},
                                 {"dying", 512}};
constexpr NameVal kCtDir[] = {{"original", 0}, {"reply", 1}};
constexpr NameVal kNfproto[] = {{"ipv4", 2}, {"ipv6", 10}};
constexpr NameVal kPkttype[] = {
    {"host", 0}, {"unicast", 0}, {"broadcast", 1}, {"multicast", 2}, {"other", 3}};
constexpr NameVal kIcmpType[] = {{"echo-reply", 0},           {"destination-unreachable", 3},
                                 {"source-quench", 4},        {"redirect", 5},
                                 {"echo-request", 8},         {"router-advertisement", 9},
                                 {"router-solicitation", 10}, {"time-exceeded", 11},
                                 {"parameter-problem", 12},   {"timestamp-request", 13},
                                 {"timestamp-reply", 14},     {"info-request", 15},
                                 {"info-reply", 16},          {"address-mask-request", 17},
                                 {"address-mask-reply", 18}};
constexpr NameVal kIcmp6Type[] = {
    {"destination-unreachable", 1},  {"packet-too-big", 2},         {"time-exceeded", 3},
    {"parameter-problem", 4},        {"echo-request", 128},         {"echo-reply", 129},
    {"mld-listener-query", 130},     {"mld-listener-report", 131},  {"mld-listener-done", 132},
    {"mld-listener-reduction", 132}, {"nd-router-solicit", 133},    {"nd-router-advert", 134},
    {"nd-neighbor-solicit", 135},    {"nd-neighbor-advert", 136},   {"nd-redirect", 137},
    {"router-renumbering", 138},     {"ind-neighbor-solicit", 141}, {"ind-neighbor-advert", 142},
    {"mld2-listener-report", 143}};
constexpr NameVal kIcmpCode[] = {
    {"net-unreachable", 0},  {"host-unreachable", 1},  {"prot-unreachable", 2},
    {"port-unreachable", 3}, {"frag-needed", 4},       {"net-prohibited", 9},
    {"host-prohibited", 10}, {"admin-prohibited", 13}, {"no-route", 0},
    {"addr-unreachable", 3}, {"policy-fail", 5},       {"reject-route", 6}};
constexpr NameVal kFibType[] = {{"unspec", 0},    {"unicast", 1},     {"local", 2},
                                {"broadcast", 3}, {"anycast", 4},     {"multicast", 5},
                                {"blackhole", 6}, {"unreachable", 7}, {"prohibit", 8}};
constexpr NameVal kTcpFlags[] = {{"fin", 1},  {"syn", 2},  {"rst", 4},  {"psh", 8},
                                 {"ack", 16}, {"urg", 32}, {"ecn", 64}, {"cwr", 128}};
// Used when /etc/protocols is missing (minimal images).
constexpr NameVal kProtos[] = {{"icmp", 1},   {"igmp", 2},      {"ipencap", 4},    {"ipip", 4},
                               {"tcp", 6},    {"udp", 17},      {"ipv6", 41},      {"gre", 47},
                               {"esp", 50},   {"ah", 51},       {"ipv6-icmp", 58}, {"icmpv6", 58},
                               {"sctp", 132}, {"udplite", 136}, {"dccp", 33}};

std::optional<unsigned> lookup(Names names, std::string_view s) {
  for (const auto& nv : names)
    if (nv.name == s) return nv.value;
  return std::nullopt;
}

Names names_for(Type t) {
  switch (t) {
    case Type::ct_state: return kCtState;
    case Type::ct_status: return kCtStatus;
    case Type::ct_dir: return kCtDir;
    case Type::nfproto: return kNfproto;
    case Type::pkttype: return kPkttype;
    case Type::icmp_type: return kIcmpType;
    case Type::icmpv6_type: return kIcmp6Type;
    case Type::icmp_code: return kIcmpCode;
    case Type::fib_addrtype: return kFibType;
    case Type::tcp_flags: return kTcpFlags;
    case Type::inet_proto: return kProtos;
    default: return {};
  }
}

std::optional<uint64_t> parse_number(std::string_view s) {
  uint64_t v = 0;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<uint64_t> symbol_value(Type t, std::string_view s) {
  if (auto n = parse_number(s)) return n;
  if (auto v = lookup(names_for(t), s)) return *v;
  if (t == Type::inet_proto) {
    if (const protoent* p = getprotobyname(std::string(s).c_str())) return p->p_proto;
  }
  if (t == Type::inet_service) {
    if (const servent* se = getservbyname(std::string(s).c_str(), nullptr))
      return ntohs(static_cast<uint16_t>(se->s_port));
  }
  if (t == Type::boolean) {
    if (s == "exists" || s == "true") return 1;
    if (s == "missing" || s == "false") return 0;
  }
  return std::nullopt;
}

}  // namespace

std::size_t type_width(Type t) {
  switch (t) {
    case Type::ipv4: return 4;
    case Type::ipv6: return 16;
    case Type::inet_proto:
    case Type::nfproto:
    case Type::pkttype:
    case Type::ct_dir:
    case Type::icmp_type:
    case Type::icmpv6_type:
    case Type::icmp_code:
    case Type::tcp_flags:
    case Type::boolean: return 1;
    case Type::inet_service: return 2;
    case Type::ifname: return 16;
    case Type::ether_addr: return 6;
    case Type::mark:
    case Type::ct_state:
    case Type::ct_status:
    case Type::fib_addrtype:
    case Type::verdict:
    case Type::integer: return 4;
  }
  return 4;
}

std::optional<Type> type_from_name(std::string_view n) {
  static constexpr std::pair<std::string_view, Type> kTypes[] = {
      {"ipv4_addr", Type::ipv4},
      {"ipv6_addr", Type::ipv6},
      {"inet_proto", Type::inet_proto},
      {"inet_service", Type::inet_service},
      {"ifname", Type::ifname},
      {"mark", Type::mark},
      {"nf_proto", Type::nfproto},
      {"pkt_type", Type::pkttype},
      {"ct_state", Type::ct_state},
      {"ct_status", Type::ct_status},
      {"ct_dir", Type::ct_dir},
      {"icmp_type", Type::icmp_type},
      {"icmpv6_type", Type::icmpv6_type},
      {"icmp_code", Type::icmp_code},
      {"icmpx_code", Type::icmp_code},
      {"icmpv6_code", Type::icmp_code},
      {"fib_addrtype", Type::fib_addrtype},
      {"tcp_flag", Type::tcp_flags},
      {"verdict", Type::verdict},
      {"ether_addr", Type::ether_addr},
      {"boolean", Type::boolean},
      {"integer", Type::integer},
  };
  for (auto& [name, t] : kTypes)
    if (name == n) return t;
  return std::nullopt;
}

std::string_view type_name(Type t) {
  switch (t) {
    case Type::integer: return "integer";
    case Type::ipv4: return "ipv4_addr";
    case Type::ipv6: return "ipv6_addr";
    case Type::inet_proto: return "inet_proto";
    case Type::inet_service: return "inet_service";
    case Type::ifname: return "ifname";
    case Type::mark: return "mark";
    case Type::nfproto: return "nf_proto";
    case Type::pkttype: return "pkt_type";
    case Type::ct_state: return "ct_state";
    case Type::ct_status: return "ct_status";
    case Type::ct_dir: return "ct_dir";
    case Type::icmp_type: return "icmp_type";
    case Type::icmpv6_type: return "icmpv6_type";
    case Type::icmp_code: return "icmp_code";
    case Type::fib_addrtype: return "fib_addrtype";
    case Type::tcp_flags: return "tcp_flag";
    case Type::verdict: return "verdict";
    case Type::ether_addr: return "ether_addr";
    case Type::boolean: return "boolean";
  }
  return "?";
}

bool is_flag_type(Type t) {
  return t == Type::ct_state || t == Type::ct_status || t == Type::tcp_flags;
}

std::optional<Bytes> parse_constant(Type t, std::size_t width, const nlohmann::json& v,
                                    std::string* why) {
  if (t == Type::integer && width == 0) width = 4;
  if (t != Type::integer) width = type_width(t);
  if (v.is_number_unsigned() || v.is_number_integer()) {
    if (t == Type::ipv4 || t == Type::ipv6 || t == Type::ifname) {
      // A bare 0 is how nft prints "no interface" (fib ... oif 0).
      if (v.get<int64_t>() == 0 && t == Type::ifname) return Bytes::from_uint(0, 16);
      *why = fmt::format("a number where {} was expected", type_name(t));
      return std::nullopt;
    }
    return Bytes::from_uint(v.get<uint64_t>(), width);
  }
  if (v.is_boolean()) return Bytes::from_uint(v.get<bool>() ? 1 : 0, width);
  if (!v.is_string()) {
    *why = fmt::format("unsupported constant {} for {}", v.dump(), type_name(t));
    return std::nullopt;
  }
  const std::string& s = v.get_ref<const std::string&>();
  switch (t) {
    case Type::ipv4:
    case Type::ipv6: {
      Bytes b;
      b.len = static_cast<uint8_t>(width);
      if (inet_pton(t == Type::ipv4 ? AF_INET : AF_INET6, s.c_str(), b.d.data()) != 1) {
        *why = fmt::format("'{}' is not an {} address", s, t == Type::ipv4 ? "IPv4" : "IPv6");
        return std::nullopt;
      }
      return b;
    }
    case Type::ifname: {
      Bytes b;
      b.len = 16;
      if (s == "0") return b;
      if (s.size() > 15) {
        *why = fmt::format("interface name '{}' is longer than 15 characters", s);
        return std::nullopt;
      }
      std::memcpy(b.d.data(), s.data(), s.size());
      return b;
    }
    case Type::ether_addr: {
      unsigned m[6];
      if (std::sscanf(s.c_str(), "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) !=
          6) {
        *why = fmt::format("'{}' is not a MAC address", s);
        return std::nullopt;
      }
      Bytes b;
      b.len = 6;
      for (int i = 0; i < 6; ++i) b.d[i] = static_cast<uint8_t>(m[i]);
      return b;
    }
    default: break;
  }
  if (auto n = symbol_value(t, s)) return Bytes::from_uint(*n, width);
  *why = fmt::format("unknown {} value '{}'", type_name(t), s);
  return std::nullopt;
}

std::optional<Range> parse_range(Type t, std::size_t width, const nlohmann::json& v,
                                 std::string* why) {
  if (v.is_object() && v.contains("prefix")) {
    const auto& p = v["prefix"];
    auto addr = parse_constant(t, width, p.value("addr", nlohmann::json()), why);
    if (!addr) return std::nullopt;
    int len = p.value("len", -1);
    int bits = addr->len * 8;
    if (len < 0 || len > bits) {
      *why = fmt::format("bad prefix length {}", len);
      return std::nullopt;
    }
    Range r{*addr, *addr};
    for (int i = len; i < bits; ++i) {
      uint8_t bit = static_cast<uint8_t>(0x80 >> (i % 8));
      r.lo.d[i / 8] &= static_cast<uint8_t>(~bit);
      r.hi.d[i / 8] |= bit;
    }
    return r;
  }
  if (v.is_object() && v.contains("range")) {
    const auto& a = v["range"];
    if (!a.is_array() || a.size() != 2) {
      *why = "range must have two ends";
      return std::nullopt;
    }
    auto lo = parse_constant(t, width, a[0], why);
    auto hi = lo ? parse_constant(t, width, a[1], why) : std::nullopt;
    if (!hi) return std::nullopt;
    return Range{*lo, *hi};
  }
  if (t == Type::ifname && v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (!s.empty() && s.back() == '*' && (s.size() < 2 || s[s.size() - 2] != '\\')) {
      auto lo = parse_constant(t, width, s.substr(0, s.size() - 1), why);
      if (!lo) return std::nullopt;
      Range r{*lo, *lo};
      for (std::size_t i = s.size() - 1; i < 16; ++i) r.hi.d[i] = 0xff;
      return r;
    }
  }
  auto c = parse_constant(t, width, v, why);
  if (!c) return std::nullopt;
  return Range{*c, *c};
}

}  // namespace dpi::nft
