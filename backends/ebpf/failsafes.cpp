#include "backends/ebpf/failsafes.h"

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/size_error.h"
#include "core/flow.h"

namespace dpi::ebpf {

std::string FailsafeKey::str() const {
  return fmt::format("{} {}:{} {} {}/{}", outbound ? "outbound" : "inbound", l4proto_name(proto),
                     port, outbound ? "to" : "from", addr.str(), cidr_len());
}

Result<FailsafeKey> decode_failsafe_key(Bytes key, int family) {
  const std::size_t want = family == 4 ? 12 : 24;
  if (key.size() != want) return size_error(MapRole::failsafes, family, Part::key, key.size());
  FailsafeKey k;
  k.prefixlen = le32(key, 0);
  const uint32_t max = family == 4 ? 64 : 160;
  if (k.prefixlen > max)
    return make_error(ErrorCode::bad_input,
                      fmt::format("failsafes map key: prefix length {} > {}", k.prefixlen, max));
  k.port = le16(key, 4);
  k.proto = key[6];
  k.outbound = (key[7] & 1) != 0;
  k.addr = addr_from(key, 8, family);
  return k;
}

std::vector<uint8_t> encode_failsafe_key(const FailsafeKey& k) {
  std::vector<uint8_t> out(8 + k.addr.size());
  put_le32(out, 0, k.prefixlen);
  put_le16(out, 4, k.port);
  out[6] = k.proto;
  out[7] = k.outbound ? 1 : 0;
  for (std::size_t i = 0; i < k.addr.size(); ++i) out[8 + i] = k.addr.bytes[i];
  return out;
}

std::optional<FailsafeKey> find_failsafe(
    const std::vector<std::pair<std::vector<uint8_t>, std::vector<uint8_t>>>& entries, int family,
    uint8_t proto, uint16_t port, const IpAddr& addr, bool outbound) {
  // The lookup key's bytes after prefixlen; an entry matches when its first prefixlen bits agree.
  FailsafeKey want{0, port, proto, outbound, addr};
  const std::vector<uint8_t> lk = encode_failsafe_key(want);
  std::optional<FailsafeKey> best;
  for (const auto& [kb, vb] : entries) {
    auto k = decode_failsafe_key(kb, family);
    if (!k) continue;
    bool match = true;
    for (uint32_t bit = 0; bit < k->prefixlen && match; ++bit) {
      const std::size_t byte = 4 + bit / 8;
      const auto mask = static_cast<uint8_t>(0x80 >> (bit % 8));
      match = (kb[byte] & mask) == (lk[byte] & mask);
    }
    if (match && (!best || k->prefixlen > best->prefixlen)) best = *k;
  }
  return best;
}

}  // namespace dpi::ebpf
