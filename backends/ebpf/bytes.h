// Fixed-width reads and writes on map bytes. Calico's dataplane is little-endian only, so host
// order fields are LE here; network-order fields are read as BE explicitly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace dpi::ebpf {

using Bytes = std::span<const uint8_t>;

inline uint16_t le16(Bytes b, std::size_t off) {
  return static_cast<uint16_t>(b[off] | (b[off + 1] << 8));
}
inline uint32_t le32(Bytes b, std::size_t off) {
  return static_cast<uint32_t>(b[off]) | (static_cast<uint32_t>(b[off + 1]) << 8) |
         (static_cast<uint32_t>(b[off + 2]) << 16) | (static_cast<uint32_t>(b[off + 3]) << 24);
}
inline uint64_t le64(Bytes b, std::size_t off) {
  return static_cast<uint64_t>(le32(b, off)) | (static_cast<uint64_t>(le32(b, off + 4)) << 32);
}
inline uint64_t be64(Bytes b, std::size_t off) {
  uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | b[off + i];
  return v;
}

inline void put_le16(std::span<uint8_t> b, std::size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v);
  b[off + 1] = static_cast<uint8_t>(v >> 8);
}
inline void put_le32(std::span<uint8_t> b, std::size_t off, uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_le64(std::span<uint8_t> b, std::size_t off, uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void put_be64(std::span<uint8_t> b, std::size_t off, uint64_t v) {
  for (std::size_t i = 0; i < 8; ++i) b[off + i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}

}  // namespace dpi::ebpf
