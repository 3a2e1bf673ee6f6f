// cali_v4_ct3/ct4 and v6 twins: reference §1.5, felix/bpf-gpl/conntrack_types.h.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "backends/ebpf/bytes.h"
#include "core/ip.h"
#include "core/result.h"

namespace dpi::ebpf {

struct CtKey {
  uint8_t proto = 0;  // stored as a LE u32
  IpAddr addr_a, addr_b;
  uint16_t port_a = 0, port_b = 0;
  bool operator==(const CtKey&) const = default;
};

// The key Calico builds for a packet src:sport -> dst:dport: A is the endpoint that compares
// smaller the way conntrack.h does it (v4: the raw network-order u32 compared as a native,
// little-endian u32; v6: the four such words in order; ties broken by port). src_is_a says which
// leg the packet travels (a_to_b when true).
CtKey make_ct_key(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                  uint16_t dport, bool* src_is_a = nullptr);

enum class CtType : uint8_t { normal = 0, nat_fwd = 1, nat_rev = 2 };
const char* ct_type_name(CtType t);

struct CtLeg {
  uint64_t bytes = 0;
  uint32_t packets = 0;
  uint32_t seqno = 0;
  uint32_t bits = 0;  // raw bitfield word
  uint32_t ifindex = 0;
  bool syn_seen() const { return bits & 0x1; }
  bool ack_seen() const { return bits & 0x2; }
  bool fin_seen() const { return bits & 0x4; }
  bool rst_seen() const { return bits & 0x8; }
  bool approved() const { return bits & 0x10; }
  bool opener() const { return bits & 0x20; }
  bool workload() const { return bits & 0x40; }
};

struct CtValue {
  uint64_t first_word = 0;  // `created` up to v3.29, `rst_seen` from v3.30 (reference §8)
  uint64_t last_seen = 0;
  CtType type = CtType::normal;
  uint32_t flags = 0;  // flags | flags2 << 8 | flags3 << 16 | flags4 << 24 (flags3/4: v3.32+)
  // normal and NAT_REV entries
  CtLeg a_to_b, b_to_a;
  IpAddr tun_ip, orig_ip, orig_sip;
  uint16_t orig_port = 0, orig_sport = 0;
  // NAT_FWD entries: the key of the NAT_REV entry
  std::optional<CtKey> nat_rev_key;
  uint16_t nat_sport = 0;

  bool both_approved() const { return a_to_b.approved() && b_to_a.approved(); }
};

Result<CtKey> decode_ct_key(Bytes key, int family);
std::vector<uint8_t> encode_ct_key(const CtKey& k);
Result<CtValue> decode_ct_value(Bytes value, int family);

}  // namespace dpi::ebpf
