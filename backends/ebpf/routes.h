// cali_v4_routes / cali_v6_routes (LPM trie): which addresses are local workloads, hosts, pools.
// Reference §1.4 and §9 (flags are bits: test with masks).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

namespace route_flag {
inline constexpr uint32_t in_pool = 0x1;
inline constexpr uint32_t nat_out = 0x2;
inline constexpr uint32_t workload = 0x4;
inline constexpr uint32_t local = 0x8;
inline constexpr uint32_t host = 0x10;
inline constexpr uint32_t same_subnet = 0x20;
inline constexpr uint32_t tunneled = 0x40;
inline constexpr uint32_t no_dsr = 0x80;
inline constexpr uint32_t blackhole_drop = 0x100;
inline constexpr uint32_t blackhole_reject = 0x200;
inline constexpr uint32_t vxlan = 0x400;
inline constexpr uint32_t skip_ingress_redirect = 0x800;
}  // namespace route_flag

std::vector<std::string> route_flag_names(uint32_t flags);

struct RouteValue {
  uint32_t flags = 0;
  // The same 4 (v6: 16) bytes read both ways: a local workload's route holds its ifindex (LE),
  // other routes a next hop (BE address).
  IpAddr next_hop;
  uint32_t ifindex = 0;

  bool local_workload() const {
    constexpr uint32_t m = route_flag::local | route_flag::workload;
    return (flags & m) == m;
  }
  bool local_host() const {
    constexpr uint32_t m = route_flag::local | route_flag::host;
    return (flags & m) == m;
  }
  bool remote_workload() const {
    return (flags & route_flag::workload) && !(flags & route_flag::local);
  }
};

// family 4 or 6: the key size tells it too, but a caller reading cali_v6_routes must not accept
// v4-sized bytes.
Result<IpPrefix> decode_route_key(Bytes key, int family);
Result<RouteValue> decode_route_value(Bytes value, int family);
// The /32 (/128) key the dataplane looks up.
std::vector<uint8_t> encode_route_key(const IpPrefix& p);

}  // namespace dpi::ebpf
