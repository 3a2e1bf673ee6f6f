#include "backends/ebpf/nat.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

namespace {

// dst addr + port + proto, in bits: the part of the frontend key before the source address.
uint32_t fe_dst_bits(std::size_t alen) {
  return static_cast<uint32_t>(8 * (alen + 3));
}

}  // namespace

int NatFrontendKey::src_prefix_len() const {
  uint32_t dst = fe_dst_bits(addr.size());
  if (prefixlen < dst) return -1;
  return static_cast<int>(prefixlen - dst);
}

Result<NatFrontendKey> decode_nat_frontend_key(Bytes key, int family) {
  std::size_t n = addr_len(family);
  if (key.size() != 8 + 2 * n) return size_error(MapRole::nat_fe, family, Part::key, key.size());
  NatFrontendKey k;
  k.prefixlen = le32(key, 0);
  uint32_t max = fe_dst_bits(n) + static_cast<uint32_t>(8 * n);
  if (k.prefixlen > max)
    return make_error(ErrorCode::bad_input,
                      fmt::format("NAT frontend key: prefix length {} > {}", k.prefixlen, max));
  k.addr = addr_from(key, 4, family);
  k.port = le16(key, 4 + n);
  k.proto = key[6 + n];
  k.saddr = addr_from(key, 7 + n, family);
  return k;
}

std::vector<uint8_t> encode_nat_frontend_key(const NatFrontendKey& k) {
  std::size_t n = k.addr.size();
  std::vector<uint8_t> out(8 + 2 * n);
  put_le32(out, 0, k.prefixlen);
  std::copy_n(k.addr.bytes.begin(), n, out.begin() + 4);
  put_le16(out, 4 + n, k.port);
  out[6 + n] = k.proto;
  if (k.saddr.size() == n) std::copy_n(k.saddr.bytes.begin(), n, out.begin() + 7 + n);
  return out;
}

Result<NatFrontendValue> decode_nat_frontend_value(Bytes v) {
  if (v.size() != 20) return size_error(MapRole::nat_fe, 4, Part::value, v.size());
  return NatFrontendValue{le32(v, 0), le32(v, 4), le32(v, 8), le32(v, 12), le32(v, 16)};
}

Result<NatBackendKey> decode_nat_backend_key(Bytes key) {
  if (key.size() != 8) return size_error(MapRole::nat_be, 4, Part::key, key.size());
  return NatBackendKey{le32(key, 0), le32(key, 4)};
}

std::vector<uint8_t> encode_nat_backend_key(const NatBackendKey& k) {
  std::vector<uint8_t> out(8);
  put_le32(out, 0, k.id);
  put_le32(out, 4, k.ordinal);
  return out;
}

Result<NatBackendValue> decode_nat_backend_value(Bytes v, int family) {
  std::size_t n = addr_len(family);
  if (v.size() != n + 4) return size_error(MapRole::nat_be, family, Part::value, v.size());
  return NatBackendValue{addr_from(v, 0, family), le16(v, n)};
}

Result<NatAffinityKey> decode_nat_affinity_key(Bytes key, int family) {
  std::size_t n = addr_len(family);
  // struct calico_nat {addr, port, proto} padded to 4, then client_ip and 4 bytes of padding.
  if (key.size() != 2 * n + 8) return size_error(MapRole::nat_aff, family, Part::key, key.size());
  NatAffinityKey k;
  k.addr = addr_from(key, 0, family);
  k.port = le16(key, n);
  k.proto = key[n + 2];
  k.client = addr_from(key, n + 4, family);
  return k;
}

Result<NatAffinityValue> decode_nat_affinity_value(Bytes v, int family) {
  // v4: dest(8) ts(8); v6: dest(20) pad(4) ts(8).
  std::size_t want = family == 4 ? 16 : 32;
  if (v.size() != want) return size_error(MapRole::nat_aff, family, Part::value, v.size());
  std::size_t n = addr_len(family);
  NatAffinityValue a;
  a.backend = NatBackendValue{addr_from(v, 0, family), le16(v, n)};
  a.ts = le64(v, want - 8);
  return a;
}

}  // namespace dpi::ebpf
