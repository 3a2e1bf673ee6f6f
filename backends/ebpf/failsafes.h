// cali_v4_fsafes2 / cali_v6_fsafes2 (LPM trie): the failsafe ports a host endpoint lets through
// before its policy program (felix/bpf-gpl/failsafe.h, felix/bpf/failsafes/failsafes_map.go).
// Key: prefixlen (LE u32: 32 bits of port, protocol and flags, then the CIDR's bits), port (LE
// u16), protocol (u8), flags (u8, 1 = outbound), address (BE). Value: unused u32.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

struct FailsafeKey {
  uint32_t prefixlen = 0;
  uint16_t port = 0;
  uint8_t proto = 0;
  bool outbound = false;
  IpAddr addr;  // the remote side's CIDR (source inbound, destination outbound)

  // The CIDR part of the match (prefixlen minus port, protocol and flags).
  int cidr_len() const { return prefixlen >= 32 ? static_cast<int>(prefixlen) - 32 : 0; }
  // "inbound tcp:22 from 0.0.0.0/0"
  std::string str() const;
};

Result<FailsafeKey> decode_failsafe_key(Bytes key, int family);
std::vector<uint8_t> encode_failsafe_key(const FailsafeKey& k);

// The entry is_failsafe_in / is_failsafe_out would find: an LPM lookup with the full key (protocol,
// post-NAT destination port, and the source address inbound or the destination outbound).
// Undecodable entries are skipped.
std::optional<FailsafeKey> find_failsafe(
    const std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>& entries, int family,
    uint8_t proto, uint16_t port, const IpAddr& addr, bool outbound);

}  // namespace dpi::ebpf
