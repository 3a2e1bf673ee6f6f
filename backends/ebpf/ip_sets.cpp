#include "backends/ebpf/ip_sets.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

int IpSetKey::addr_prefix_len() const {
  int bits = addr.is_v4() ? 32 : 128;
  if (mask < 64) return -1;
  return std::min(static_cast<int>(mask) - 64, bits);
}

bool IpSetKey::named_port() const {
  uint32_t full = addr.is_v4() ? 64 + 32 + 16 + 8 : 64 + 128 + 16 + 8;
  return mask >= full;
}

Result<IpSetKey> decode_ip_set_key(Bytes key, int family) {
  std::size_t alen = addr_len(family);
  if (key.size() != 16 + alen) return size_error(MapRole::ip_sets, family, Part::key, key.size());
  IpSetKey k;
  k.mask = le32(key, 0);
  uint32_t max = static_cast<uint32_t>(8 * (key.size() - 4));
  if (k.mask > max)
    return make_error(ErrorCode::bad_input,
                      fmt::format("IP sets map key: mask {} > {} bits", k.mask, max));
  k.set_id = be64(key, 4);
  k.addr.family = family == 4 ? 2 : 10;
  std::copy_n(key.begin() + 12, alen, k.addr.bytes.begin());
  k.port = le16(key, 12 + alen);
  k.proto = key[14 + alen];
  return k;
}

std::vector<uint8_t> encode_ip_set_key(const IpSetKey& k) {
  std::size_t alen = k.addr.size();
  std::vector<uint8_t> out(16 + alen);
  put_le32(out, 0, k.mask);
  put_be64(out, 4, k.set_id);
  std::copy_n(k.addr.bytes.begin(), alen, out.begin() + 12);
  put_le16(out, 12 + alen, k.port);
  out[14 + alen] = k.proto;
  return out;
}

Result<uint32_t> decode_ip_set_value(Bytes value) {
  if (value.size() != 4) return size_error(MapRole::ip_sets, 4, Part::value, value.size());
  return le32(value, 0);
}

}  // namespace dpi::ebpf
