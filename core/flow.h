// The flow a user asks about, and the assumptions every answer depends on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "core/ip.h"
#include "core/result.h"

namespace dpi {

enum class CtState { new_, established, related, invalid, untracked };

std::string_view ct_state_name(CtState s);
std::optional<CtState> parse_ct_state(std::string_view s);

// The source port a flow gets when the user names none: any ephemeral port would do.
inline constexpr uint16_t kDefaultSourcePort = 40000;

struct Flow {
  IpAddr src;
  IpAddr dst;
  uint8_t l4proto = 6;  // IPPROTO_*
  std::optional<uint16_t> sport;
  bool sport_defaulted = false;  // normalize() chose kDefaultSourcePort: an assumption
  std::optional<uint16_t> dport;
  std::optional<uint8_t> icmp_type;
  std::optional<uint8_t> icmp_code;
  std::string iif;  // empty: derive from routes
  std::string oif;
  CtState ct = CtState::new_;
  uint32_t mark = 0;

  int family() const { return src.family; }
  bool has_ports() const { return l4proto == 6 || l4proto == 17 || l4proto == 132; }
  bool is_icmp() const { return l4proto == 1 || l4proto == 58; }
};

// "tcp", "udp", "sctp", "icmp", "icmpv6" or a number 0-255.
std::optional<uint8_t> parse_l4proto(std::string_view s);
std::string l4proto_name(uint8_t p);

// Fills defaults (ephemeral source port, echo-request) and rejects impossible combinations.
Status normalize(Flow& flow);

std::string describe(const Flow& flow);

}  // namespace dpi
