#include <fmt/format.h>

#include "backends/nftables/xt/ipset_internal.h"

namespace dpi::nft {

const Ipset* IpsetCatalog::by_index(uint16_t index) const {
  for (const auto& s : sets)
    if (s.index == index) return &s;
  return nullptr;
}

const Ipset* IpsetCatalog::by_name(std::string_view name) const {
  for (const auto& s : sets)
    if (s.name == name) return &s;
  return nullptr;
}

std::vector<Type> ipset_key_types(std::string_view type, int family, std::string* why) {
  auto colon = type.find(':');
  if (colon == std::string_view::npos) {
    *why = fmt::format("ipset type '{}' has no method:components form", type);
    return {};
  }
  std::string_view method = type.substr(0, colon), rest = type.substr(colon + 1);
  if (method == "list" && rest == "set") return {};
  if (method != "hash" && method != "bitmap") {
    *why = fmt::format("ipset type '{}' is not known", type);
    return {};
  }
  if (type == "bitmap:port") return {Type::inet_service};
  Type addr = family == 10 ? Type::ipv6 : Type::ipv4;
  std::vector<Type> out;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view c = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (c == "ip" || c == "net")
      out.push_back(addr);
    else if (c == "port") {
      out.push_back(Type::inet_proto);
      out.push_back(Type::inet_service);
    } else if (c == "mark")
      out.push_back(Type::mark);
    else if (c == "mac")
      out.push_back(Type::ether_addr);
    else if (c == "iface")
      out.push_back(Type::ifname);
    else {
      *why = fmt::format("ipset type '{}': component '{}' is not known", type, c);
      return {};
    }
  }
  if (out.empty()) *why = fmt::format("ipset type '{}' has no components", type);
  return out;
}

namespace xt {

Range prefix_range(const Bytes& addr, int cidr) {
  Range r{addr, addr};
  int bits = addr.len * 8;
  if (cidr < 0 || cidr >= bits) return r;
  for (int i = cidr; i < bits; ++i) {
    uint8_t m = static_cast<uint8_t>(0x80 >> (i % 8));
    r.lo.d[i / 8] &= static_cast<uint8_t>(~m);
    r.hi.d[i / 8] |= m;
  }
  return r;
}

Range exact_range(const Bytes& v) {
  return Range{v, v};
}

void apply_netmask(Ipset& s) {
  if (!s.netmask || s.key_types.empty()) return;
  for (auto& m : s.members)
    if (!m.key.empty() && m.key[0].lo == m.key[0].hi)
      m.key[0] = prefix_range(m.key[0].lo, s.netmask);
}

std::optional<std::string> check_members(const Ipset& s) {
  for (const auto& m : s.members)
    if (m.key.size() != s.key_types.size())
      return fmt::format("ipset {} ({}): an element has {} key parts, the type has {}", s.name,
                         s.type, m.key.size(), s.key_types.size());
  return std::nullopt;
}

}  // namespace xt
}  // namespace dpi::nft
