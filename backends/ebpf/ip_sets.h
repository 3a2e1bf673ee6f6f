// cali_v4_ip_sets / cali_v6_ip_sets (LPM trie, packed key): reference §1.3.
// mask = LPM prefix length over the bits after it: 64 (set id) + address prefix, or the full
// 120 (v6 216) for named-port members, 128 (v6 224) for the program's lookups.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

struct IpSetKey {
  uint32_t mask = 0;
  uint64_t set_id = 0;  // as Felix prints it: the BE bytes read as a number
  IpAddr addr;
  uint16_t port = 0;
  uint8_t proto = 0;

  // The member's address prefix length (mask - 64, capped at the address width), or -1 when the
  // mask does not even cover the set id.
  int addr_prefix_len() const;
  bool named_port() const;  // the mask covers port and protocol
};

Result<IpSetKey> decode_ip_set_key(Bytes key, int family);
std::vector<uint8_t> encode_ip_set_key(const IpSetKey& k);
Result<uint32_t> decode_ip_set_value(Bytes value);

}  // namespace dpi::ebpf
