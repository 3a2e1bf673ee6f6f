// Addresses and prefixes for both families, stored as network-order bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dpi {

struct IpAddr {
  int family = 0;  // AF_INET (2) or AF_INET6 (10); 0 = unset
  std::array<uint8_t, 16> bytes{};

  bool is_v4() const { return family == 2; }
  bool is_v6() const { return family == 10; }
  bool empty() const { return family == 0; }
  std::size_t size() const { return is_v4() ? 4 : 16; }
  bool operator==(const IpAddr&) const = default;

  static std::optional<IpAddr> parse(std::string_view text);
  std::string str() const;
};

struct IpPrefix {
  IpAddr addr;
  int len = 0;

  bool contains(const IpAddr& a) const;
  bool operator==(const IpPrefix&) const = default;

  // "10.0.0.0/8", or a bare address meaning a host prefix.
  static std::optional<IpPrefix> parse(std::string_view text);
  std::string str() const;
};

// An address with a port as every report, error and comparison prints it: "10.0.0.1:80", and
// "[fd00::1]:80" for IPv6, whose colons would otherwise run into the port's.
std::string addr_port(const IpAddr& a, uint16_t port);

}  // namespace dpi
