// "-m NAME ..." matches (and the implicit -p tcp/udp/sctp/icmp ones) from iptables-save text,
// built with the same helpers the iptables-nft payload decoders use (xt/decoders.h), so a rule
// read from text evaluates exactly like the same rule read from the kernel.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>

#include <fmt/format.h>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/xt_addrtype.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_multiport.h>
#include <linux/netfilter/xt_rpfilter.h>

#include "backends/nftables/datatype.h"
#include "backends/nftables/iptables_save/internal.h"
#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::ipt {

namespace {

using Specs = std::map<std::string, OptSpec, std::less<>>;

// Per match: every option iptables knows for it (aliases point to the canonical name), with its
// argument count. Options known but not modelled still parse; the match then becomes unknown.
const std::map<std::string, Specs, std::less<>>& match_specs() {
  static const std::map<std::string, Specs, std::less<>> k = {
      {"comment", {{"--comment", {"--comment", 1}}}},
      {"tcp",
       {{"--sport", {"--sport", 1}},
        {"--source-port", {"--sport", 1}},
        {"--dport", {"--dport", 1}},
        {"--destination-port", {"--dport", 1}},
        {"--tcp-flags", {"--tcp-flags", 2}},
        {"--syn", {"--syn", 0}},
        {"--tcp-option", {"--tcp-option", 1}}}},
      {"udp",
       {{"--sport", {"--sport", 1}},
        {"--source-port", {"--sport", 1}},
        {"--dport", {"--dport", 1}},
        {"--destination-port", {"--dport", 1}}}},
      {"sctp",
       {{"--sport", {"--sport", 1}},
        {"--source-port", {"--sport", 1}},
        {"--dport", {"--dport", 1}},
        {"--destination-port", {"--dport", 1}},
        {"--chunk-types", {"--chunk-types", 2}}}},
      {"icmp", {{"--icmp-type", {"--icmp-type", 1}}}},
      {"icmp6", {{"--icmpv6-type", {"--icmpv6-type", 1}}}},
      {"mark", {{"--mark", {"--mark", 1}}}},
      {"conntrack",
       {{"--ctstate", {"--ctstate", 1}},
        {"--ctstatus", {"--ctstatus", 1}},
        {"--ctproto", {"--ctproto", 1}},
        {"--ctorigsrc", {"--ctorigsrc", 1}},
        {"--ctorigdst", {"--ctorigdst", 1}},
        {"--ctreplsrc", {"--ctreplsrc", 1}},
        {"--ctrepldst", {"--ctrepldst", 1}},
        {"--ctorigsrcport", {"--ctorigsrcport", 1}},
        {"--ctorigdstport", {"--ctorigdstport", 1}},
        {"--ctreplsrcport", {"--ctreplsrcport", 1}},
        {"--ctrepldstport", {"--ctrepldstport", 1}},
        {"--ctexpire", {"--ctexpire", 1}},
        {"--ctdir", {"--ctdir", 1}}}},
      {"state", {{"--state", {"--state", 1}}}},
      {"set",
       {{"--match-set", {"--match-set", 2}},
        {"--set", {"--match-set", 2}},
        {"--return-nomatch", {"--return-nomatch", 0}},
        {"--update-counters", {"--update-counters", 0}},
        {"--update-subcounters", {"--update-subcounters", 0}},
        {"--packets-eq", {"--packets-eq", 1}},
        {"--packets-lt", {"--packets-lt", 1}},
        {"--packets-gt", {"--packets-gt", 1}},
        {"--bytes-eq", {"--bytes-eq", 1}},
        {"--bytes-lt", {"--bytes-lt", 1}},
        {"--bytes-gt", {"--bytes-gt", 1}}}},
      {"multiport",
       {{"--sports", {"--sports", 1}},
        {"--source-ports", {"--sports", 1}},
        {"--dports", {"--dports", 1}},
        {"--destination-ports", {"--dports", 1}},
        {"--ports", {"--ports", 1}}}},
      {"addrtype",
       {{"--src-type", {"--src-type", 1}},
        {"--dst-type", {"--dst-type", 1}},
        {"--limit-iface-in", {"--limit-iface-in", 0}},
        {"--limit-iface-out", {"--limit-iface-out", 0}}}},
      {"rpfilter",
       {{"--loose", {"--loose", 0}},
        {"--validmark", {"--validmark", 0}},
        {"--accept-local", {"--accept-local", 0}},
        {"--invert", {"--invert", 0}}}},
      {"limit", {{"--limit", {"--limit", 1}}, {"--limit-burst", {"--limit-burst", 1}}}},
      {"statistic",
       {{"--mode", {"--mode", 1}},
        {"--probability", {"--probability", 1}},
        {"--every", {"--every", 1}},
        {"--packet", {"--packet", 1}}}},
      {"connlimit",
       {{"--connlimit-upto", {"--connlimit-upto", 1}},
        {"--connlimit-above", {"--connlimit-above", 1}},
        {"--connlimit-mask", {"--connlimit-mask", 1}},
        {"--connlimit-saddr", {"--connlimit-saddr", 0}},
        {"--connlimit-daddr", {"--connlimit-daddr", 0}}}},
  };
  return k;
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    auto p = s.find(sep, start);
    out.emplace_back(
        s.substr(start, p == std::string_view::npos ? std::string_view::npos : p - start));
    if (p == std::string_view::npos) break;
    start = p + 1;
  }
  return out;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// "80", "http", "80:90", ":90", "80:".
std::optional<std::pair<uint16_t, uint16_t>> parse_port_range(std::string_view s,
                                                              std::string* why) {
  auto one = [&](std::string_view p, uint16_t dflt) -> std::optional<uint16_t> {
    if (p.empty()) return dflt;
    auto b = parse_constant(Type::inet_service, 2, nlohmann::json(std::string(p)), why);
    if (!b) {
      *why = fmt::format("'{}' is not a port", p);
      return std::nullopt;
    }
    return static_cast<uint16_t>(b->as_uint());
  };
  auto c = s.find(':');
  auto lo = one(s.substr(0, c), 0);
  if (!lo) return std::nullopt;
  if (c == std::string_view::npos) return std::pair{*lo, *lo};
  auto hi = one(s.substr(c + 1), 0xffff);
  if (!hi) return std::nullopt;
  if (*lo > *hi) {
    *why = fmt::format("port range '{}' runs backwards", s);
    return std::nullopt;
  }
  return std::pair{*lo, *hi};
}

std::optional<std::pair<uint8_t, uint8_t>> parse_tcp_flags(std::string_view s, std::string* why) {
  static const std::map<std::string, uint8_t> kFlags = {
      {"FIN", 0x01}, {"SYN", 0x02}, {"RST", 0x04}, {"PSH", 0x08}, {"ACK", 0x10},
      {"URG", 0x20}, {"ECE", 0x40}, {"CWR", 0x80}, {"ALL", 0xff}, {"NONE", 0x00}};
  uint8_t v = 0;
  for (const auto& f : split(s, ',')) {
    auto it = kFlags.find(upper(f));
    if (it == kFlags.end()) {
      *why = fmt::format("'{}' is not a TCP flag", f);
      return std::nullopt;
    }
    v |= it->second;
  }
  return std::pair{v, v};
}

// ICMP type[/code] by number or iptables name; type only: every code.
struct IcmpType {
  uint8_t type, lo, hi;
};
std::optional<IcmpType> parse_icmp(std::string_view s, bool v6, std::string* why) {
  static const std::map<std::string, std::pair<int, int>> k4 = {
      {"any", {0xff, -1}},
      {"echo-reply", {0, -1}},
      {"pong", {0, -1}},
      {"destination-unreachable", {3, -1}},
      {"network-unreachable", {3, 0}},
      {"host-unreachable", {3, 1}},
      {"protocol-unreachable", {3, 2}},
      {"port-unreachable", {3, 3}},
      {"fragmentation-needed", {3, 4}},
      {"source-route-failed", {3, 5}},
      {"network-unknown", {3, 6}},
      {"host-unknown", {3, 7}},
      {"network-prohibited", {3, 9}},
      {"host-prohibited", {3, 10}},
      {"TOS-network-unreachable", {3, 11}},
      {"TOS-host-unreachable", {3, 12}},
      {"communication-prohibited", {3, 13}},
      {"host-precedence-violation", {3, 14}},
      {"precedence-cutoff", {3, 15}},
      {"source-quench", {4, -1}},
      {"redirect", {5, -1}},
      {"network-redirect", {5, 0}},
      {"host-redirect", {5, 1}},
      {"TOS-network-redirect", {5, 2}},
      {"TOS-host-redirect", {5, 3}},
      {"echo-request", {8, -1}},
      {"ping", {8, -1}},
      {"router-advertisement", {9, -1}},
      {"router-solicitation", {10, -1}},
      {"time-exceeded", {11, -1}},
      {"ttl-exceeded", {11, -1}},
      {"ttl-zero-during-transit", {11, 0}},
      {"ttl-zero-during-reassembly", {11, 1}},
      {"parameter-problem", {12, -1}},
      {"ip-header-bad", {12, 0}},
      {"required-option-missing", {12, 1}},
      {"timestamp-request", {13, -1}},
      {"timestamp-reply", {14, -1}},
      {"address-mask-request", {17, -1}},
      {"address-mask-reply", {18, -1}}};
  static const std::map<std::string, std::pair<int, int>> k6 = {
      {"destination-unreachable", {1, -1}},
      {"no-route", {1, 0}},
      {"communication-prohibited", {1, 1}},
      {"beyond-scope", {1, 2}},
      {"address-unreachable", {1, 3}},
      {"port-unreachable", {1, 4}},
      {"failed-policy", {1, 5}},
      {"reject-route", {1, 6}},
      {"packet-too-big", {2, -1}},
      {"time-exceeded", {3, -1}},
      {"ttl-exceeded", {3, -1}},
      {"ttl-zero-during-transit", {3, 0}},
      {"ttl-zero-during-reassembly", {3, 1}},
      {"parameter-problem", {4, -1}},
      {"bad-header", {4, 0}},
      {"unknown-header-type", {4, 1}},
      {"unknown-option", {4, 2}},
      {"echo-request", {128, -1}},
      {"ping", {128, -1}},
      {"echo-reply", {129, -1}},
      {"pong", {129, -1}},
      {"router-solicitation", {133, -1}},
      {"router-advertisement", {134, -1}},
      {"neighbour-solicitation", {135, -1}},
      {"neighbor-solicitation", {135, -1}},
      {"neighbour-advertisement", {136, -1}},
      {"neighbor-advertisement", {136, -1}},
      {"redirect", {137, -1}}};
  const auto& names = v6 ? k6 : k4;
  if (auto it = names.find(std::string(s)); it != names.end()) {
    auto [t, c] = it->second;
    return c < 0 ? IcmpType{uint8_t(t), 0, 0xff} : IcmpType{uint8_t(t), uint8_t(c), uint8_t(c)};
  }
  auto parts = split(s, '/');
  if (parts.size() > 2) {
    *why = fmt::format("'{}' is not an ICMP type", s);
    return std::nullopt;
  }
  auto t = parse_u32(parts[0], why);
  if (!t || *t > 255) {
    *why = fmt::format("'{}' is not an ICMP type (a name or 0-255[/code])", s);
    return std::nullopt;
  }
  if (parts.size() == 1) return IcmpType{uint8_t(*t), 0, 0xff};
  auto c = parse_u32(parts[1], why);
  if (!c || *c > 255) {
    *why = fmt::format("'{}' is not an ICMP code", parts[1]);
    return std::nullopt;
  }
  return IcmpType{uint8_t(*t), uint8_t(*c), uint8_t(*c)};
}

Key port_key(const std::string& module, bool dport) {
  if (module == "udp") return dport ? Key::udp_dport : Key::udp_sport;
  if (module == "sctp") return dport ? Key::sctp_dport : Key::sctp_sport;
  return dport ? Key::tcp_dport : Key::tcp_sport;
}

std::optional<uint16_t> ct_state_bits(std::string_view list, std::string* why) {
  static const std::map<std::string, uint16_t> k = {
      {"INVALID", XT_CONNTRACK_STATE_INVALID},
      {"ESTABLISHED", XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED)},
      {"RELATED", XT_CONNTRACK_STATE_BIT(IP_CT_RELATED)},
      {"NEW", XT_CONNTRACK_STATE_BIT(IP_CT_NEW)},
      {"UNTRACKED", XT_CONNTRACK_STATE_UNTRACKED},
      {"SNAT", XT_CONNTRACK_STATE_SNAT},
      {"DNAT", XT_CONNTRACK_STATE_DNAT}};
  uint16_t v = 0;
  for (const auto& s : split(list, ',')) {
    auto it = k.find(upper(s));
    if (it == k.end()) {
      *why = fmt::format(
          "'{}' is not a conntrack state (INVALID, ESTABLISHED, RELATED, NEW, UNTRACKED, SNAT, "
          "DNAT)",
          s);
      return std::nullopt;
    }
    v |= it->second;
  }
  return v;
}

std::optional<uint16_t> ct_status_bits(std::string_view list, std::string* why) {
  static const std::map<std::string, uint16_t> k = {{"NONE", 0},
                                                    {"EXPECTED", IPS_EXPECTED},
                                                    {"SEEN_REPLY", IPS_SEEN_REPLY},
                                                    {"ASSURED", IPS_ASSURED},
                                                    {"CONFIRMED", IPS_CONFIRMED}};
  uint16_t v = 0;
  for (const auto& s : split(list, ',')) {
    auto it = k.find(upper(s));
    if (it == k.end()) {
      *why = fmt::format(
          "'{}' is not a conntrack status (NONE, EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED)", s);
      return std::nullopt;
    }
    v |= it->second;
  }
  return v;
}

std::optional<uint16_t> addrtypes(std::string_view list, std::string* why) {
  static const char* kNames[] = {"UNSPEC",   "UNICAST",   "LOCAL",     "BROADCAST",
                                 "ANYCAST",  "MULTICAST", "BLACKHOLE", "UNREACHABLE",
                                 "PROHIBIT", "THROW",     "NAT",       "XRESOLVE"};
  uint16_t v = 0;
  for (const auto& s : split(list, ',')) {
    auto it = std::find(std::begin(kNames), std::end(kNames), upper(s));
    if (it == std::end(kNames)) {
      *why = fmt::format("'{}' is not an address type", s);
      return std::nullopt;
    }
    v |= uint16_t(1u << (it - std::begin(kNames)));
  }
  return v;
}

}  // namespace

std::optional<uint32_t> parse_u32(std::string_view s, std::string* why) {
  std::string str(s);
  if (str.empty() || str[0] == '-' || str[0] == '+') {
    *why = fmt::format("'{}' is not a number", s);
    return std::nullopt;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(str.c_str(), &end, 0);
  if (errno || *end || v > 0xffffffffull) {
    *why = fmt::format("'{}' is not a 32-bit number", s);
    return std::nullopt;
  }
  return static_cast<uint32_t>(v);
}

std::optional<std::pair<uint32_t, uint32_t>> parse_value_mask(std::string_view s,
                                                              std::string* why) {
  auto slash = s.find('/');
  auto v = parse_u32(s.substr(0, slash), why);
  if (!v) return std::nullopt;
  if (slash == std::string_view::npos) return std::pair{*v, 0xffffffffu};
  auto m = parse_u32(s.substr(slash + 1), why);
  if (!m) return std::nullopt;
  return std::pair{*v, *m};
}

std::optional<Range> parse_addr(std::string_view s, bool v6, std::string* why) {
  Type t = v6 ? Type::ipv6 : Type::ipv4;
  std::size_t width = v6 ? 16 : 4;
  auto slash = s.find('/');
  std::string addr(s.substr(0, slash));
  if (addr.find(',') != std::string::npos) {
    *why = fmt::format("'{}': several addresses in one rule are not iptables-save output", s);
    return std::nullopt;
  }
  if (slash == std::string_view::npos) {
    auto b = parse_constant(t, width, nlohmann::json(addr), why);
    if (!b) return std::nullopt;
    return Range{*b, *b};
  }
  std::string mask(s.substr(slash + 1));
  int len = -1;
  if (mask.find_first_not_of("0123456789") == std::string::npos && !mask.empty() &&
      mask.size() <= 3) {
    len = std::stoi(mask);
  } else {
    // A dotted (or IPv6) netmask: contiguous ones only.
    auto m = parse_constant(t, width, nlohmann::json(mask), why);
    if (!m) return std::nullopt;
    int ones = 0;
    bool zero_seen = false, contiguous = true;
    for (std::size_t i = 0; i < m->len; ++i)
      for (int b = 7; b >= 0; --b) {
        bool one = m->d[i] >> b & 1;
        if (one && zero_seen) contiguous = false;
        if (one)
          ++ones;
        else
          zero_seen = true;
      }
    if (!contiguous) {
      *why = fmt::format("netmask '{}' is not contiguous", mask);
      return std::nullopt;
    }
    len = ones;
  }
  if (len < 0 || len > int(width * 8)) {
    *why = fmt::format("prefix length '{}' is out of range", mask);
    return std::nullopt;
  }
  return parse_range(t, width, nlohmann::json{{"prefix", {{"addr", addr}, {"len", len}}}}, why);
}

std::optional<Range> parse_iface(std::string_view s, std::string* why) {
  std::string n(s);
  // iptables' "cali+" is nft's "cali*".
  if (!n.empty() && n.back() == '+') n.back() = '*';
  return parse_range(Type::ifname, 16, nlohmann::json(n), why);
}

std::optional<uint8_t> parse_proto(std::string_view s, std::string* why) {
  std::string p(s);
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p == "icmpv6" || p == "ipv6-icmp") p = "ipv6-icmp";
  auto b = parse_constant(Type::inet_proto, 1, nlohmann::json(p), why);
  if (!b) {
    if (auto n = parse_u32(p, why); n && *n <= 255) return static_cast<uint8_t>(*n);
    *why = fmt::format("'{}' is not a protocol", s);
    return std::nullopt;
  }
  return static_cast<uint8_t>(b->as_uint());
}

bool match_known(std::string_view module) {
  return match_specs().count(module) != 0;
}

std::optional<OptSpec> match_option(std::string_view module, std::string_view opt) {
  auto m = match_specs().find(module);
  if (m == match_specs().end()) return std::nullopt;
  auto o = m->second.find(opt);
  if (o == m->second.end()) return std::nullopt;
  return o->second;
}

Status compile_match(const Module& m, RuleCtx& ctx, std::vector<Stmt>& out, std::string* comment) {
  std::string why;
  auto unknown = [&](const std::string& reason) {
    out.push_back(UnknownStmt{m.text, reason});
    return Status{Ok{}};
  };
  auto fail = [&](const Opt& o) {
    return bad(ctx, fmt::format("-m {} {} {}: {}", m.name, o.name, fmt::join(o.args, " "), why));
  };
  const std::string& n = m.name;
  if (n == "comment") {
    for (const auto& o : m.opts) *comment += (comment->empty() ? "" : "; ") + o.args[0];
    return Ok{};
  }
  if (n == "tcp" || n == "udp" || n == "sctp") {
    XtDecoded d;
    for (const auto& o : m.opts) {
      if (o.name == "--sport" || o.name == "--dport") {
        auto r = parse_port_range(o.args[0], &why);
        if (!r) return fail(o);
        uint16_t pts[2] = {r->first, r->second};
        xt::add_port_range(d, port_key(n, o.name == "--dport"), pts, o.invert);
      } else if (o.name == "--tcp-flags" || o.name == "--syn") {
        std::pair<uint8_t, uint8_t> mask{0x17, 0x17},
            cmp{0x02, 0x02};  // --syn: SYN,RST,ACK,FIN SYN
        if (o.name == "--tcp-flags") {
          auto a = parse_tcp_flags(o.args[0], &why);
          auto b = a ? parse_tcp_flags(o.args[1], &why) : std::nullopt;
          if (!a || !b) return fail(o);
          mask = *a;
          cmp = *b;
        }
        d.stmts.push_back(xt::tcp_flags_match(mask.first, cmp.first, o.invert));
      } else {
        return unknown(fmt::format("-m {} option {} is not modelled", n, o.name));
      }
    }
    if (d.stmts.empty()) {
      uint8_t p = n == "tcp" ? 6 : n == "udp" ? 17 : 132;
      d.stmts.push_back(xt::match_range(xt::operand(Key::meta_l4proto, Type::inet_proto), p, p));
    }
    append(out, std::move(d));
    return Ok{};
  }
  if (n == "icmp" || n == "icmp6") {
    for (const auto& o : m.opts) {
      auto t = parse_icmp(o.args[0], n == "icmp6", &why);
      if (!t) return fail(o);
      out.push_back(xt::icmp_match(ctx.xt, n == "icmp6", t->type, t->lo, t->hi, o.invert));
    }
    return Ok{};
  }
  if (n == "mark") {
    for (const auto& o : m.opts) {
      auto vm = parse_value_mask(o.args[0], &why);
      if (!vm) return fail(o);
      out.push_back(xt::mark_match(vm->first, vm->second, o.invert));
    }
    return Ok{};
  }
  if (n == "conntrack" || n == "state") {
    uint16_t mflags = 0, inv = 0, state = 0, status = 0, proto = 0;
    static const std::map<std::string, uint16_t> kUnmodelled = {
        {"--ctorigsrc", XT_CONNTRACK_ORIGSRC},
        {"--ctorigdst", XT_CONNTRACK_ORIGDST},
        {"--ctreplsrc", XT_CONNTRACK_REPLSRC},
        {"--ctrepldst", XT_CONNTRACK_REPLDST},
        {"--ctexpire", XT_CONNTRACK_EXPIRES},
        {"--ctorigsrcport", XT_CONNTRACK_ORIGSRC_PORT},
        {"--ctorigdstport", XT_CONNTRACK_ORIGDST_PORT},
        {"--ctreplsrcport", XT_CONNTRACK_REPLSRC_PORT},
        {"--ctrepldstport", XT_CONNTRACK_REPLDST_PORT},
        {"--ctdir", XT_CONNTRACK_DIRECTION}};
    for (const auto& o : m.opts) {
      uint16_t bit = 0;
      if (o.name == "--ctstate" || o.name == "--state") {
        auto s = ct_state_bits(o.args[0], &why);
        if (!s) return fail(o);
        state = *s;
        bit = XT_CONNTRACK_STATE;
      } else if (o.name == "--ctstatus") {
        auto s = ct_status_bits(o.args[0], &why);
        if (!s) return fail(o);
        status = *s;
        bit = XT_CONNTRACK_STATUS;
      } else if (o.name == "--ctproto") {
        auto p = parse_proto(o.args[0], &why);
        if (!p) return fail(o);
        proto = *p;
        bit = XT_CONNTRACK_PROTO;
      } else {
        bit = kUnmodelled.at(o.name);
      }
      mflags |= bit;
      if (o.invert) inv |= bit;
    }
    auto d = xt::conntrack_stmts(mflags, inv, state, status, proto, &why);
    if (!d) return unknown(fmt::format("-m {}: {}", n, why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "set") {
    const Opt* ms = m.find("--match-set");
    if (!ms) return bad(ctx, "-m set without --match-set NAME src|dst[,...]");
    for (const auto& o : m.opts)
      if (o.name.rfind("--packets-", 0) == 0 || o.name.rfind("--bytes-", 0) == 0)
        return unknown(fmt::format("-m set {}: counter conditions are not modelled", o.name));
    xt::SetOpts so;
    so.invert = ms->invert;
    so.return_nomatch = m.find("--return-nomatch") != nullptr;
    for (const auto& dir : split(ms->args[1], ',')) {
      if (so.dim >= 6 || (dir != "src" && dir != "dst"))
        return bad(ctx, fmt::format("-m set --match-set {} {}: expected src|dst[,src|dst...]",
                                    ms->args[0], ms->args[1]));
      ++so.dim;
      if (dir == "src") so.dir_flags |= uint8_t(1u << so.dim);
    }
    const std::string& name = ms->args[0];
    if (!ctx.xt.ipsets)
      return unknown(fmt::format("ipset {}: no ipsets were given (--ipset-save FILE)", name));
    const Ipset* s = ctx.xt.ipsets->by_name(name);
    if (!s) return unknown(fmt::format("ipset {} is not in the ipsets given (--ipset-save)", name));
    auto d = xt::set_lookup(ctx.xt, *s, so, &why);
    if (!d) return unknown(fmt::format("-m set --match-set {}: {}", name, why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "multiport") {
    for (const auto& o : m.opts) {
      std::vector<Range> ranges;
      for (const auto& p : split(o.args[0], ',')) {
        auto r = parse_port_range(p, &why);
        if (!r) return fail(o);
        ranges.push_back(Range{Bytes::from_uint(r->first, 2), Bytes::from_uint(r->second, 2)});
      }
      uint8_t flags = o.name == "--sports"   ? XT_MULTIPORT_SOURCE
                      : o.name == "--dports" ? XT_MULTIPORT_DESTINATION
                                             : XT_MULTIPORT_EITHER;
      auto d = xt::multiport_stmts(ctx.xt, flags, ranges, o.invert, &why);
      if (!d) return fail(o);
      append(out, std::move(*d));
    }
    return Ok{};
  }
  if (n == "addrtype") {
    uint16_t src = 0, dst = 0;
    uint32_t flags = 0;
    for (const auto& o : m.opts) {
      if (o.name == "--limit-iface-in") flags |= XT_ADDRTYPE_LIMIT_IFACE_IN;
      if (o.name == "--limit-iface-out") flags |= XT_ADDRTYPE_LIMIT_IFACE_OUT;
      if (o.name != "--src-type" && o.name != "--dst-type") continue;
      auto t = addrtypes(o.args[0], &why);
      if (!t) return fail(o);
      (o.name == "--src-type" ? src : dst) = *t;
      if (o.invert)
        flags |= o.name == "--src-type" ? XT_ADDRTYPE_INVERT_SOURCE : XT_ADDRTYPE_INVERT_DEST;
    }
    auto d = xt::addrtype_stmts(ctx.xt, src, dst, flags, &why);
    if (!d) return unknown(fmt::format("-m addrtype: {}", why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "rpfilter") {
    uint8_t flags = 0;
    for (const auto& o : m.opts)
      flags |= o.name == "--loose"          ? XT_RPFILTER_LOOSE
               : o.name == "--validmark"    ? XT_RPFILTER_VALID_MARK
               : o.name == "--accept-local" ? XT_RPFILTER_ACCEPT_LOCAL
                                            : XT_RPFILTER_INVERT;
    auto d = xt::rpfilter_stmts(ctx.xt, flags, &why);
    if (!d) return unknown(fmt::format("-m rpfilter: {}", why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "limit") {
    out.push_back(AssumeStmt{fmt::format("rate limit `{}` not exceeded", m.text), true});
    return Ok{};
  }
  if (n == "connlimit") {
    const Opt* above = m.find("--connlimit-above");
    const Opt* upto = m.find("--connlimit-upto");
    if (!above && !upto)
      return bad(ctx, "-m connlimit needs --connlimit-above or --connlimit-upto");
    // Matches when (connections > limit) XOR upto: assumed not exceeded.
    bool matches = upto ? !upto->invert : above->invert;
    out.push_back(AssumeStmt{fmt::format("connection count `{}` not exceeded", m.text), matches});
    return Ok{};
  }
  if (n == "statistic") {
    const Opt* mode = m.find("--mode");
    if (!mode) return bad(ctx, "-m statistic without --mode random|nth");
    if (mode->args[0] == "random") {
      const Opt* p = m.find("--probability");
      if (!p) return bad(ctx, "-m statistic --mode random without --probability P");
      char* end = nullptr;
      double prob = std::strtod(p->args[0].c_str(), &end);
      if (*end || !(prob >= 0.0 && prob <= 1.0))
        return bad(ctx, fmt::format("-m statistic --probability {}: expected 0.0-1.0", p->args[0]));
      uint32_t fixed = static_cast<uint32_t>(std::lround(0x80000000u * prob));
      append(out, xt::statistic_stmts(true, fixed, p->invert));
    } else if (mode->args[0] == "nth") {
      const Opt* every = m.find("--every");
      if (!every) return bad(ctx, "-m statistic --mode nth without --every N");
      append(out, xt::statistic_stmts(false, 0, every->invert));
    } else {
      return bad(ctx, fmt::format("-m statistic --mode {}: expected random or nth", mode->args[0]));
    }
    return Ok{};
  }
  return unknown(fmt::format("match \"{}\" is not modelled", n));
}

Error bad(const RuleCtx& ctx, const std::string& what) {
  return make_error(ErrorCode::bad_input, fmt::format("{}: {}", ctx.where, what));
}

void append(std::vector<Stmt>& out, XtDecoded&& d) {
  for (auto& s : d.stmts) out.push_back(std::move(s));
}

}  // namespace dpi::nft::ipt
