#include "core/ip.h"

#include <arpa/inet.h>
#include <charconv>

#include <fmt/format.h>

namespace dpi {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET;
    return a;
  }
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) {
    a.family = AF_INET6;
    return a;
  }
  return std::nullopt;
}

std::string IpAddr::str() const {
  if (empty()) return "";
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(family, bytes.data(), buf, sizeof buf);
  return buf;
}

bool IpPrefix::contains(const IpAddr& a) const {
  if (a.family != addr.family) return false;
  int full = len / 8, rest = len % 8;
  for (int i = 0; i < full; ++i)
    if (a.bytes[i] != addr.bytes[i]) return false;
  if (rest) {
    uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
    if ((a.bytes[full] & mask) != (addr.bytes[full] & mask)) return false;
  }
  return true;
}

std::optional<IpPrefix> IpPrefix::parse(std::string_view text) {
  auto slash = text.find('/');
  auto addr = IpAddr::parse(text.substr(0, slash));
  if (!addr) return std::nullopt;
  int max = addr->is_v4() ? 32 : 128;
  int len = max;
  if (slash != std::string_view::npos) {
    auto tail = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(tail.data(), tail.data() + tail.size(), len);
    if (ec != std::errc() || p != tail.data() + tail.size() || len < 0 || len > max)
      return std::nullopt;
  }
  return IpPrefix{*addr, len};
}

std::string IpPrefix::str() const {
  return addr.str() + "/" + std::to_string(len);
}

std::string addr_port(const IpAddr& a, uint16_t port) {
  return a.is_v6() ? fmt::format("[{}]:{}", a.str(), port) : fmt::format("{}:{}", a.str(), port);
}

}  // namespace dpi
