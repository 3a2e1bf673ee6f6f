#include "backends/ebpf/conntrack.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

namespace {

// <0, 0, >0 as Calico orders two addresses of one family.
int calico_addr_cmp(const IpAddr& x, const IpAddr& y) {
  Bytes xb(x.bytes.data(), x.size()), yb(y.bytes.data(), y.size());
  for (std::size_t off = 0; off < x.size(); off += 4) {
    uint32_t a = le32(xb, off), b = le32(yb, off);
    if (a != b) return a < b ? -1 : 1;
  }
  return 0;
}

CtLeg leg_at(Bytes v, std::size_t off) {
  CtLeg l;
  l.bytes = le64(v, off);
  l.packets = le32(v, off + 8);
  l.seqno = le32(v, off + 12);
  l.bits = le32(v, off + 16);
  l.ifindex = le32(v, off + 20);
  return l;
}

}  // namespace

CtKey make_ct_key(uint8_t proto, const IpAddr& src, uint16_t sport, const IpAddr& dst,
                  uint16_t dport, bool* src_is_a) {
  int c = calico_addr_cmp(src, dst);
  bool src_lt = c < 0 || (c == 0 && sport < dport);
  if (src_is_a) *src_is_a = src_lt;
  if (src_lt) return CtKey{proto, src, dst, sport, dport};
  return CtKey{proto, dst, src, dport, sport};
}

const char* ct_type_name(CtType t) {
  switch (t) {
    case CtType::normal: return "normal";
    case CtType::nat_fwd: return "nat-forward";
    case CtType::nat_rev: return "nat-reverse";
  }
  return "unknown";
}

Result<CtKey> decode_ct_key(Bytes key, int family) {
  std::size_t n = addr_len(family);
  if (key.size() != 4 + 2 * n + 4)
    return size_error(MapRole::conntrack, family, Part::key, key.size());
  uint32_t proto = le32(key, 0);
  if (proto > 255)
    return make_error(ErrorCode::bad_input, fmt::format("conntrack key: protocol {}", proto));
  CtKey k;
  k.proto = static_cast<uint8_t>(proto);
  k.addr_a = addr_from(key, 4, family);
  k.addr_b = addr_from(key, 4 + n, family);
  k.port_a = le16(key, 4 + 2 * n);
  k.port_b = le16(key, 6 + 2 * n);
  return k;
}

std::vector<uint8_t> encode_ct_key(const CtKey& k) {
  std::size_t n = k.addr_a.size();
  std::vector<uint8_t> out(8 + 2 * n);
  put_le32(out, 0, k.proto);
  std::copy_n(k.addr_a.bytes.begin(), n, out.begin() + 4);
  std::copy_n(k.addr_b.bytes.begin(), n, out.begin() + 4 + n);
  put_le16(out, 4 + 2 * n, k.port_a);
  put_le16(out, 6 + 2 * n, k.port_b);
  return out;
}

Result<CtValue> decode_ct_value(Bytes v, int family) {
  std::size_t want = family == 4 ? 88 : 128;
  if (v.size() != want) return size_error(MapRole::conntrack, family, Part::value, v.size());
  CtValue c;
  c.first_word = le64(v, 0);
  c.last_seen = le64(v, 8);
  if (v[16] > 2)
    return make_error(ErrorCode::bad_input, fmt::format("conntrack value: type {}", v[16]));
  c.type = static_cast<CtType>(v[16]);
  c.flags = v[17] | (v[23] << 8) | (v[18] << 16) | (static_cast<uint32_t>(v[19]) << 24);
  std::size_t n = addr_len(family);
  switch (c.type) {
    case CtType::normal:
    case CtType::nat_rev:
      c.a_to_b = leg_at(v, 24);
      c.b_to_a = leg_at(v, 48);
      c.tun_ip = addr_from(v, 72, family);
      c.orig_ip = addr_from(v, 72 + n, family);
      c.orig_port = le16(v, 72 + 2 * n);
      c.orig_sport = le16(v, 74 + 2 * n);
      c.orig_sip = addr_from(v, 76 + 2 * n, family);
      break;
    case CtType::nat_fwd: {
      auto k = decode_ct_key(v.subspan(24, 8 + 2 * n), family);
      if (!k) return k.error();
      c.nat_rev_key = *k;
      c.nat_sport = le16(v, 32 + 2 * n);
      break;
    }
  }
  return c;
}

}  // namespace dpi::ebpf
