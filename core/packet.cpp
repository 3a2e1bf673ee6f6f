#include "core/packet.h"

#include <fmt/format.h>

namespace dpi {

namespace {

uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

constexpr int kFamilyV4 = 2, kFamilyV6 = 10;

IpAddr addr_at(int family, const uint8_t* p) {
  IpAddr a;
  a.family = family;
  const std::size_t n = family == kFamilyV4 ? 4 : 16;
  for (std::size_t i = 0; i < n; ++i) a.bytes[i] = p[i];
  return a;
}

Error short_packet(std::size_t len, const char* what) {
  return make_error(ErrorCode::bad_input,
                    fmt::format("packet of {} bytes ends before its {}", len, what));
}

// The ports or ICMP type behind the IP header(s), at offset off.
Status decode_l4(Flow& f, const uint8_t* data, std::size_t len, std::size_t off) {
  if (f.has_ports()) {
    if (len < off + 4) return short_packet(len, "ports");
    f.sport = be16(data + off);
    f.dport = be16(data + off + 2);
  } else if (f.is_icmp()) {
    if (len < off + 2) return short_packet(len, "ICMP type");
    f.icmp_type = data[off];
    f.icmp_code = data[off + 1];
  }
  return Ok{};
}

Result<Flow> decode_v4(const uint8_t* data, std::size_t len) {
  if (len < 20) return short_packet(len, "IPv4 header");
  const std::size_t ihl = std::size_t{data[0] & 0x0fU} * 4;
  if (ihl < 20) return make_error(ErrorCode::bad_input, "IPv4 header length below 20 bytes");
  Flow f;
  f.l4proto = data[9];
  f.src = addr_at(kFamilyV4, data + 12);
  f.dst = addr_at(kFamilyV4, data + 16);
  if ((be16(data + 6) & 0x1fffU) != 0)
    return make_error(
        ErrorCode::bad_input,
        fmt::format("a later IPv4 fragment of {} -> {}: no ports", f.src.str(), f.dst.str()));
  if (auto st = decode_l4(f, data, len, ihl); !st) return st.error();
  return f;
}

Result<Flow> decode_v6(const uint8_t* data, std::size_t len) {
  if (len < 40) return short_packet(len, "IPv6 header");
  Flow f;
  f.src = addr_at(kFamilyV6, data + 8);
  f.dst = addr_at(kFamilyV6, data + 24);
  uint8_t next = data[6];
  std::size_t off = 40;
  // At most a handful of extension headers precede the transport header in real traffic.
  for (int hops = 0; hops < 8; ++hops) {
    if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
      if (len < off + 2) return short_packet(len, "IPv6 extension header");
      next = data[off];
      off += (std::size_t{data[off + 1]} + 1) * 8;
      continue;
    }
    if (next == 44) {  // fragment
      if (len < off + 8) return short_packet(len, "IPv6 fragment header");
      const bool later = (be16(data + off + 2) & 0xfff8U) != 0;
      next = data[off];
      off += 8;
      if (later)
        return make_error(
            ErrorCode::bad_input,
            fmt::format("a later IPv6 fragment of {} -> {}: no ports", f.src.str(), f.dst.str()));
      continue;
    }
    break;
  }
  f.l4proto = next;
  if (auto st = decode_l4(f, data, len, off); !st) return st.error();
  return f;
}

}  // namespace

Result<Flow> decode_ip_packet(const uint8_t* data, std::size_t len) {
  if (len < 1) return short_packet(len, "IP version");
  switch (data[0] >> 4) {
    case 4: return decode_v4(data, len);
    case 6: return decode_v6(data, len);
    default: return make_error(ErrorCode::bad_input, fmt::format("IP version {}", data[0] >> 4));
  }
}

}  // namespace dpi
