#include "core/flow.h"

#include <charconv>

#include <fmt/format.h>

namespace dpi {

std::string_view ct_state_name(CtState s) {
  switch (s) {
    case CtState::new_: return "new";
    case CtState::established: return "established";
    case CtState::related: return "related";
    case CtState::invalid: return "invalid";
    case CtState::untracked: return "untracked";
  }
  return "?";
}

std::optional<CtState> parse_ct_state(std::string_view s) {
  for (auto c : {CtState::new_, CtState::established, CtState::related, CtState::invalid,
                 CtState::untracked})
    if (ct_state_name(c) == s) return c;
  return std::nullopt;
}

std::optional<uint8_t> parse_l4proto(std::string_view s) {
  if (s == "tcp") return 6;
  if (s == "udp") return 17;
  if (s == "sctp") return 132;
  if (s == "icmp") return 1;
  if (s == "icmpv6" || s == "ipv6-icmp") return 58;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 255) return std::nullopt;
  return static_cast<uint8_t>(v);
}

std::string l4proto_name(uint8_t p) {
  switch (p) {
    case 6: return "tcp";
    case 17: return "udp";
    case 132: return "sctp";
    case 1: return "icmp";
    case 58: return "icmpv6";
  }
  return std::to_string(p);
}

Status normalize(Flow& f) {
  if (f.src.empty() || f.dst.empty())
    return make_error(ErrorCode::bad_input, "--src and --dst are required");
  if (f.src.family != f.dst.family)
    return make_error(ErrorCode::bad_input,
                      fmt::format("--src {} and --dst {} are of different address families",
                                  f.src.str(), f.dst.str()));
  if (f.l4proto == 1 && f.family() == 10)
    return make_error(ErrorCode::bad_input, "--proto icmp with IPv6 addresses: use --proto icmpv6");
  if (f.l4proto == 58 && f.family() == 2)
    return make_error(ErrorCode::bad_input, "--proto icmpv6 with IPv4 addresses: use --proto icmp");
  if (f.has_ports()) {
    if (!f.dport)
      return make_error(ErrorCode::bad_input,
                        fmt::format("--proto {} needs --dport", l4proto_name(f.l4proto)));
    if (!f.sport) {
      f.sport = kDefaultSourcePort;
      f.sport_defaulted = true;
    }
  } else if (f.sport || f.dport) {
    return make_error(
        ErrorCode::bad_input,
        fmt::format("--sport/--dport make no sense with --proto {}", l4proto_name(f.l4proto)));
  }
  if (f.is_icmp()) {
    if (!f.icmp_type) f.icmp_type = f.l4proto == 1 ? 8 : 128;  // echo request
    if (!f.icmp_code) f.icmp_code = 0;
  } else if (f.icmp_type || f.icmp_code) {
    return make_error(ErrorCode::bad_input, "--icmp-type/--icmp-code need --proto icmp or icmpv6");
  }
  return Ok{};
}

std::string describe(const Flow& f) {
  std::string s = fmt::format("{} {} -> {}", l4proto_name(f.l4proto),
                              f.sport ? addr_port(f.src, *f.sport) : f.src.str(),
                              f.dport ? addr_port(f.dst, *f.dport) : f.dst.str());
  if (f.icmp_type) s += fmt::format(" type {} code {}", *f.icmp_type, f.icmp_code.value_or(0));
  return s;
}

}  // namespace dpi
