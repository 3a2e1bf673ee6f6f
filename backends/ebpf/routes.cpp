#include "backends/ebpf/routes.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

std::vector<std::string> route_flag_names(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {route_flag::in_pool, "in-pool"},
      {route_flag::nat_out, "nat-out"},
      {route_flag::workload, "workload"},
      {route_flag::local, "local"},
      {route_flag::host, "host"},
      {route_flag::same_subnet, "same-subnet"},
      {route_flag::tunneled, "tunneled"},
      {route_flag::no_dsr, "no-dsr"},
      {route_flag::blackhole_drop, "blackhole-drop"},
      {route_flag::blackhole_reject, "blackhole-reject"},
      {route_flag::vxlan, "vxlan"},
      {route_flag::skip_ingress_redirect, "skip-ingress-redirect"},
  };
  std::vector<std::string> out;
  uint32_t known = 0;
  for (auto [bit, name] : kNames) {
    known |= bit;
    if (flags & bit) out.emplace_back(name);
  }
  if (flags & ~known) out.push_back(fmt::format("{:#x}", flags & ~known));
  return out;
}

Result<IpPrefix> decode_route_key(Bytes key, int family) {
  std::size_t want = family == 4 ? 8 : 20;
  if (key.size() != want) return size_error(MapRole::routes, family, Part::key, key.size());
  uint32_t len = le32(key, 0);
  uint32_t max = family == 4 ? 32 : 128;
  if (len > max)
    return make_error(ErrorCode::bad_input,
                      fmt::format("routes map key: prefix length {} > {}", len, max));
  return IpPrefix{addr_from(key, 4, family), static_cast<int>(len)};
}

Result<RouteValue> decode_route_value(Bytes value, int family) {
  std::size_t want = family == 4 ? 8 : 20;
  if (value.size() != want) return size_error(MapRole::routes, family, Part::value, value.size());
  RouteValue r;
  r.flags = le32(value, 0);
  r.next_hop = addr_from(value, 4, family);
  r.ifindex = le32(value, 4);
  return r;
}

std::vector<uint8_t> encode_route_key(const IpPrefix& p) {
  std::vector<uint8_t> k(4 + p.addr.size());
  put_le32(k, 0, static_cast<uint32_t>(p.len));
  std::copy_n(p.addr.bytes.begin(), p.addr.size(), k.begin() + 4);
  return k;
}

}  // namespace dpi::ebpf
