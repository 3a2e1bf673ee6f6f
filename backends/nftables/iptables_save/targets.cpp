// "-j TARGET ..." from iptables-save text: the statements the iptables-nft payload decoders
// build for the same target (xt/decoders.h). Verdicts and chain jumps are the caller's.
#include <arpa/inet.h>
#include <map>

#include <fmt/format.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_CT.h>
#include <linux/netfilter/xt_connmark.h>

#include "backends/nftables/datatype.h"
#include "backends/nftables/iptables_save/internal.h"
#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::ipt {

namespace {

using Specs = std::map<std::string, OptSpec, std::less<>>;

const std::map<std::string, Specs, std::less<>>& target_specs() {
  static const std::map<std::string, Specs, std::less<>> k = {
      {"ACCEPT", {}},
      {"DROP", {}},
      {"RETURN", {}},
      {"NOTRACK", {}},
      {"MARK",
       {{"--set-xmark", {"--set-xmark", 1}},
        {"--set-mark", {"--set-mark", 1}},
        {"--and-mark", {"--and-mark", 1}},
        {"--or-mark", {"--or-mark", 1}},
        {"--xor-mark", {"--xor-mark", 1}}}},
      {"CONNMARK",
       {{"--set-xmark", {"--set-xmark", 1}},
        {"--set-mark", {"--set-mark", 1}},
        {"--and-mark", {"--and-mark", 1}},
        {"--or-mark", {"--or-mark", 1}},
        {"--xor-mark", {"--xor-mark", 1}},
        {"--save-mark", {"--save-mark", 0}},
        {"--restore-mark", {"--restore-mark", 0}},
        {"--nfmask", {"--nfmask", 1}},
        {"--ctmask", {"--ctmask", 1}},
        {"--mask", {"--mask", 1}}}},
      {"NFLOG",
       {{"--nflog-group", {"--nflog-group", 1}},
        {"--nflog-prefix", {"--nflog-prefix", 1}},
        {"--nflog-size", {"--nflog-size", 1}},
        {"--nflog-range", {"--nflog-range", 1}},
        {"--nflog-threshold", {"--nflog-threshold", 1}}}},
      {"LOG",
       {{"--log-prefix", {"--log-prefix", 1}},
        {"--log-level", {"--log-level", 1}},
        {"--log-tcp-sequence", {"--log-tcp-sequence", 0}},
        {"--log-tcp-options", {"--log-tcp-options", 0}},
        {"--log-ip-options", {"--log-ip-options", 0}},
        {"--log-uid", {"--log-uid", 0}},
        {"--log-macdecode", {"--log-macdecode", 0}}}},
      {"REJECT", {{"--reject-with", {"--reject-with", 1}}}},
      {"DNAT",
       {{"--to-destination", {"--to-destination", 1}},
        {"--random", {"--random", 0}},
        {"--persistent", {"--persistent", 0}}}},
      {"SNAT",
       {{"--to-source", {"--to-source", 1}},
        {"--random", {"--random", 0}},
        {"--random-fully", {"--random-fully", 0}},
        {"--persistent", {"--persistent", 0}}}},
      {"MASQUERADE",
       {{"--to-ports", {"--to-ports", 1}},
        {"--random", {"--random", 0}},
        {"--random-fully", {"--random-fully", 0}}}},
      {"REDIRECT", {{"--to-ports", {"--to-ports", 1}}, {"--random", {"--random", 0}}}},
      {"CT",
       {{"--notrack", {"--notrack", 0}},
        {"--zone", {"--zone", 1}},
        {"--zone-orig", {"--zone-orig", 1}},
        {"--zone-reply", {"--zone-reply", 1}},
        {"--helper", {"--helper", 1}},
        {"--timeout", {"--timeout", 1}},
        {"--ctevents", {"--ctevents", 1}},
        {"--expevents", {"--expevents", 1}}}},
  };
  return k;
}

std::optional<uint16_t> port(std::string_view s, std::string* why) {
  auto v = parse_u32(s, why);
  if (!v || *v > 65535) {
    *why = fmt::format("'{}' is not a port", s);
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

// "p" or "p-q" (MASQUERADE/REDIRECT --to-ports; also the port part of --to-destination).
bool parse_ports(std::string_view s, xt::NatRange& r, std::string* why) {
  auto dash = s.find('-');
  auto lo = port(s.substr(0, dash), why);
  if (!lo) return false;
  auto hi = dash == std::string_view::npos ? lo : port(s.substr(dash + 1), why);
  if (!hi) return false;
  r.min_port = *lo;
  r.max_port = *hi;
  r.flags |= NF_NAT_RANGE_PROTO_SPECIFIED;
  return true;
}

// "a[-b][:p[-q]]", IPv6 "[a][-[b]][:p[-q]]" or "a" (a bare IPv6 address has no port).
bool parse_nat_to(std::string_view s, bool v6, xt::NatRange& r, std::string* why) {
  std::string_view addrs = s, ports;
  if (v6) {
    if (!s.empty() && s[0] == '[') {
      auto close = s.rfind(']');
      if (close == std::string_view::npos) {
        *why = fmt::format("'{}': missing ']'", s);
        return false;
      }
      if (close + 1 < s.size()) {
        if (s[close + 1] != ':') {
          *why = fmt::format("'{}': expected ':' after ']'", s);
          return false;
        }
        ports = s.substr(close + 2);
      }
      addrs = s.substr(0, close + 1);
    }
  } else if (auto c = s.find(':'); c != std::string_view::npos) {
    addrs = s.substr(0, c);
    ports = s.substr(c + 1);
  }
  if (!addrs.empty()) {
    auto strip = [](std::string_view a) {
      if (a.size() >= 2 && a.front() == '[' && a.back() == ']') return a.substr(1, a.size() - 2);
      return a;
    };
    auto dash = v6 ? addrs.find("]-[") : addrs.find('-');
    std::string_view lo = addrs.substr(0, dash), hi = lo;
    if (dash != std::string_view::npos) hi = addrs.substr(dash + (v6 ? 2 : 1));
    Type t = v6 ? Type::ipv6 : Type::ipv4;
    auto a = parse_constant(t, 0, nlohmann::json(std::string(strip(lo))), why);
    auto b = a ? parse_constant(t, 0, nlohmann::json(std::string(strip(hi))), why) : std::nullopt;
    if (!a || !b) return false;
    r.min_addr = *a;
    r.max_addr = *b;
    r.flags |= NF_NAT_RANGE_MAP_IPS;
  }
  if (!ports.empty() && !parse_ports(ports, r, why)) return false;
  return true;
}

std::optional<unsigned> reject_index(std::string_view s, bool v6) {
  static const std::map<std::string, unsigned, std::less<>> k4 = {{"icmp-net-unreachable", 0},
                                                                  {"net-unreach", 0},
                                                                  {"icmp-host-unreachable", 1},
                                                                  {"host-unreach", 1},
                                                                  {"icmp-proto-unreachable", 2},
                                                                  {"proto-unreach", 2},
                                                                  {"icmp-port-unreachable", 3},
                                                                  {"port-unreach", 3},
                                                                  {"icmp-net-prohibited", 5},
                                                                  {"net-prohib", 5},
                                                                  {"icmp-host-prohibited", 6},
                                                                  {"host-prohib", 6},
                                                                  {"tcp-reset", 7},
                                                                  {"tcp-rst", 7},
                                                                  {"icmp-admin-prohibited", 8},
                                                                  {"admin-prohib", 8}};
  static const std::map<std::string, unsigned, std::less<>> k6 = {{"icmp6-no-route", 0},
                                                                  {"no-route", 0},
                                                                  {"icmp6-adm-prohibited", 1},
                                                                  {"adm-prohibited", 1},
                                                                  {"icmp6-addr-unreachable", 3},
                                                                  {"addr-unreach", 3},
                                                                  {"icmp6-port-unreachable", 4},
                                                                  {"port-unreach", 4},
                                                                  {"tcp-reset", 6},
                                                                  {"icmp6-policy-fail", 7},
                                                                  {"policy-fail", 7},
                                                                  {"icmp6-reject-route", 8},
                                                                  {"reject-route", 8}};
  const auto& k = v6 ? k6 : k4;
  auto it = k.find(s);
  if (it == k.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> log_level(std::string_view s, std::string* why) {
  static const std::map<std::string, unsigned, std::less<>> k = {
      {"emerg", 0}, {"panic", 0},   {"alert", 1},  {"crit", 2}, {"err", 3},  {"error", 3},
      {"warn", 4},  {"warning", 4}, {"notice", 5}, {"info", 6}, {"debug", 7}};
  if (auto it = k.find(s); it != k.end()) return xt::log_level_name(it->second);
  auto n = parse_u32(s, why);
  if (!n || *n > 7) {
    *why = fmt::format("'{}' is not a log level (0-7 or a name)", s);
    return std::nullopt;
  }
  return xt::log_level_name(*n);
}

}  // namespace

bool target_known(std::string_view target) {
  return target_specs().count(target) != 0;
}

std::optional<OptSpec> target_option(std::string_view target, std::string_view opt) {
  auto t = target_specs().find(target);
  if (t == target_specs().end()) return std::nullopt;
  auto o = t->second.find(opt);
  if (o == t->second.end()) return std::nullopt;
  return o->second;
}

Status compile_target(const Module& t, RuleCtx& ctx, std::vector<Stmt>& out) {
  std::string why;
  const std::string& n = t.name;
  auto fail = [&](const Opt& o) {
    return bad(ctx, fmt::format("-j {} {} {}: {}", n, o.name, fmt::join(o.args, " "), why));
  };
  auto unknown = [&](const std::string& reason) {
    out.push_back(UnknownStmt{t.text, reason});
    return Status{Ok{}};
  };
  for (const auto& o : t.opts)
    if (o.invert) return bad(ctx, fmt::format("-j {}: '!' before {} is not allowed", n, o.name));
  if (n == "MARK") {
    if (t.opts.size() != 1)
      return bad(ctx,
                 "-j MARK needs exactly one of --set-xmark, --set-mark, --and-mark, --or-mark, "
                 "--xor-mark");
    const Opt& o = t.opts[0];
    auto vm = parse_value_mask(o.args[0], &why);
    if (!vm) return fail(o);
    auto [v, m] = *vm;
    bool has_mask = o.args[0].find('/') != std::string::npos;
    if (has_mask && o.name != "--set-xmark" && o.name != "--set-mark")
      return bad(ctx, fmt::format("-j MARK {} {}: takes no mask", o.name, o.args[0]));
    uint32_t mark = v, mask = m;
    if (o.name == "--set-mark")
      mask = m | v;
    else if (o.name == "--and-mark")
      mark = 0, mask = ~v;
    else if (o.name == "--or-mark")
      mark = v, mask = v;
    else if (o.name == "--xor-mark")
      mark = v, mask = 0;
    out.push_back(xt::mark_target(mark, mask));
    return Ok{};
  }
  if (n == "CONNMARK") {
    uint8_t mode = XT_CONNMARK_SET;
    uint32_t ctmark = 0, ctmask = 0xffffffffu, nfmask = 0xffffffffu;
    int modes = 0;
    for (const auto& o : t.opts) {
      if (o.name == "--save-mark" || o.name == "--restore-mark") {
        mode = o.name == "--save-mark" ? XT_CONNMARK_SAVE : XT_CONNMARK_RESTORE;
        ++modes;
        continue;
      }
      auto vm = parse_value_mask(o.args[0], &why);
      if (!vm) return fail(o);
      auto [v, m] = *vm;
      if (o.name == "--nfmask")
        nfmask = v;
      else if (o.name == "--ctmask")
        ctmask = v;
      else if (o.name == "--mask")
        nfmask = ctmask = v;
      else {
        ++modes;
        mode = XT_CONNMARK_SET;
        if (o.name == "--set-xmark")
          ctmark = v, ctmask = m;
        else if (o.name == "--set-mark")
          ctmark = v, ctmask = m | v;
        else if (o.name == "--and-mark")
          ctmark = 0, ctmask = ~v;
        else if (o.name == "--or-mark")
          ctmark = v, ctmask = v;
        else
          ctmark = v, ctmask = 0;
      }
    }
    if (modes != 1)
      return bad(ctx,
                 "-j CONNMARK needs exactly one of --set-xmark, --set-mark, --save-mark, "
                 "--restore-mark, --and-mark, --or-mark, --xor-mark");
    auto d = xt::connmark_stmts(mode, ctmark, ctmask, nfmask, &why);
    if (!d) return unknown(fmt::format("-j CONNMARK: {}", why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "NFLOG") {
    LogStmt l;
    l.group = 0;
    for (const auto& o : t.opts) {
      if (o.name == "--nflog-prefix") {
        l.prefix = o.args[0].substr(0, 63);
        continue;
      }
      auto v = parse_u32(o.args[0], &why);
      if (!v) return fail(o);
      if (o.name == "--nflog-group") {
        if (*v > 65535)
          return bad(ctx, fmt::format("-j NFLOG --nflog-group {}: expected 0-65535", *v));
        l.group = static_cast<int>(*v);
      } else if (o.name == "--nflog-size") {
        l.snaplen = static_cast<int>(*v);
      }
      // --nflog-range sets no copy length in the kernel (XT_NFLOG_F_COPY_LEN is unset);
      // --nflog-threshold only batches.
    }
    out.push_back(std::move(l));
    return Ok{};
  }
  if (n == "LOG") {
    LogStmt l;
    l.level = xt::log_level_name(4);
    for (const auto& o : t.opts) {
      if (o.name == "--log-prefix") l.prefix = o.args[0].substr(0, 29);
      if (o.name == "--log-level") {
        auto lv = log_level(o.args[0], &why);
        if (!lv) return fail(o);
        l.level = *lv;
      }
    }
    out.push_back(std::move(l));
    return Ok{};
  }
  if (n == "REJECT") {
    unsigned with = ctx.v6 ? 4 : 3;  // port unreachable
    if (const Opt* o = t.find("--reject-with")) {
      auto w = reject_index(o->args[0], ctx.v6);
      if (!w)
        return bad(ctx, fmt::format("-j REJECT --reject-with {}: not a reject type of {}",
                                    o->args[0], ctx.v6 ? "ip6tables" : "iptables"));
      with = *w;
    }
    auto name = xt::reject_with_name(ctx.v6, with, &why);
    if (!name) return unknown(why);
    out.push_back(RejectStmt{*name});
    return Ok{};
  }
  if (n == "DNAT" || n == "SNAT" || n == "MASQUERADE" || n == "REDIRECT") {
    xt::NatRange r;
    for (const auto& o : t.opts) {
      if (o.name == "--to-destination" || o.name == "--to-source") {
        if (!parse_nat_to(o.args[0], ctx.v6, r, &why)) return fail(o);
      } else if (o.name == "--to-ports") {
        if (!parse_ports(o.args[0], r, &why)) return fail(o);
      } else if (o.name == "--random") {
        r.flags |= NF_NAT_RANGE_PROTO_RANDOM;
      } else if (o.name == "--random-fully") {
        r.flags |= NF_NAT_RANGE_PROTO_RANDOM_FULLY;
      } else if (o.name == "--persistent") {
        r.flags |= NF_NAT_RANGE_PERSISTENT;
      }
    }
    if ((n == "DNAT" && !t.find("--to-destination")) || (n == "SNAT" && !t.find("--to-source")))
      return bad(
          ctx, fmt::format("-j {} needs {}", n, n == "DNAT" ? "--to-destination" : "--to-source"));
    auto d = xt::nat_stmts(n, r, &why);
    if (!d) return unknown(fmt::format("-j {}: {}", n, why));
    append(out, std::move(*d));
    return Ok{};
  }
  if (n == "NOTRACK" || (n == "CT" && t.find("--notrack"))) {
    out.push_back(NotrackStmt{});
    return Ok{};
  }
  if (n == "CT") {
    std::string what;
    for (const auto& o : t.opts) {
      if (o.name == "--zone" || o.name == "--zone-orig" || o.name == "--zone-reply")
        what += " zone " + o.args[0];
      if (o.name == "--helper") what += " helper " + o.args[0];
      if (o.name == "--timeout") what += " timeout " + o.args[0];
      if (o.name == "--ctevents" || o.name == "--expevents") {
        if (what.find(" events") == std::string::npos) what += " events";
      }
    }
    out.push_back(xt::ct_target_assumption(what));
    return Ok{};
  }
  return unknown(fmt::format("target \"{}\" is not modelled", n));
}

}  // namespace dpi::nft::ipt
