// Service NAT maps: frontends (cali_v4_nat_fe3, LPM), backends (cali_v4_nat_be), affinity
// (cali_v4_nat_aff), and v6 twins. Layouts unchanged v3.27-v3.32: felix/bpf-gpl/nat_types.h,
// felix/bpf/nat/maps.go, maps6.go.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

struct NatFrontendKey {
  uint32_t prefixlen = 0;  // bits after the field: dst addr + port + proto, then the src prefix
  IpAddr addr;             // service IP
  uint16_t port = 0;
  uint8_t proto = 0;
  IpAddr saddr;  // source CIDR (LoadBalancerSourceRanges), 0/0 for any
  // The source prefix length (prefixlen minus the dst/port/proto bits), -1 if prefixlen is shorter.
  int src_prefix_len() const;
};

namespace nat_flag {
inline constexpr uint32_t external_local = 0x1;
inline constexpr uint32_t internal_local = 0x2;
inline constexpr uint32_t nat_exclude = 0x4;  // v3.30+
inline constexpr uint32_t maglev = 0x8;       // v3.32+
}  // namespace nat_flag

struct NatFrontendValue {
  uint32_t id = 0;
  uint32_t count = 0;  // backends; 0 with id 0xffffffff = drop at the frontend
  uint32_t local = 0;
  uint32_t affinity_timeout = 0;
  uint32_t flags = 0;
  bool drop() const { return count == 0 && id == 0xffffffff; }
};

struct NatBackendKey {
  uint32_t id = 0;
  uint32_t ordinal = 0;
};

struct NatBackendValue {
  IpAddr addr;
  uint16_t port = 0;
};

struct NatAffinityKey {
  IpAddr addr;  // frontend
  uint16_t port = 0;
  uint8_t proto = 0;
  IpAddr client;
};

struct NatAffinityValue {
  NatBackendValue backend;
  uint64_t ts = 0;  // ktime ns
};

Result<NatFrontendKey> decode_nat_frontend_key(Bytes key, int family);
std::vector<uint8_t> encode_nat_frontend_key(const NatFrontendKey& k);
Result<NatFrontendValue> decode_nat_frontend_value(Bytes value);
Result<NatBackendKey> decode_nat_backend_key(Bytes key);
std::vector<uint8_t> encode_nat_backend_key(const NatBackendKey& k);
Result<NatBackendValue> decode_nat_backend_value(Bytes value, int family);
Result<NatAffinityKey> decode_nat_affinity_key(Bytes key, int family);
Result<NatAffinityValue> decode_nat_affinity_value(Bytes value, int family);

}  // namespace dpi::ebpf
