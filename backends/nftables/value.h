// Values as the kernel's registers hold them: fixed-width big-endian byte strings, so every
// comparison, mask, prefix, range and concatenation is plain byte arithmetic.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

namespace dpi::nft {

struct Bytes {
  static constexpr std::size_t kMax = 64;
  uint8_t len = 0;
  std::array<uint8_t, kMax> d{};

  bool operator==(const Bytes& o) const {
    return len == o.len && std::memcmp(d.data(), o.d.data(), len) == 0;
  }
  // Big-endian unsigned order over the common length (both sides share a type).
  int compare(const Bytes& o) const {
    std::size_t n = len < o.len ? len : o.len;
    int c = std::memcmp(d.data(), o.d.data(), n);
    if (c) return c;
    return int(len) - int(o.len);
  }
  bool append(const Bytes& o) {
    if (len + o.len > kMax) return false;
    std::memcpy(d.data() + len, o.d.data(), o.len);
    len = static_cast<uint8_t>(len + o.len);
    return true;
  }
  uint64_t as_uint() const {
    uint64_t v = 0;
    for (std::size_t i = 0; i < len && i < 8; ++i) v = (v << 8) | d[i];
    return v;
  }
  // v right-aligned in width bytes (at most kMax); bytes beyond the 8 of v are zero.
  static Bytes from_uint(uint64_t v, std::size_t width) {
    Bytes b;
    if (width > kMax) width = kMax;
    b.len = static_cast<uint8_t>(width);
    for (std::size_t i = 0; i < width && i < 8; ++i)
      b.d[width - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
    return b;
  }
  std::string hex() const;
};

struct BytesHash {
  std::size_t operator()(const Bytes& b) const {
    uint64_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < b.len; ++i) h = (h ^ b.d[i]) * 1099511628211ull;
    return static_cast<std::size_t>(h ^ b.len);
  }
};

// Inclusive range; an exact value is lo == hi, a prefix or wildcard becomes its span.
struct Range {
  Bytes lo, hi;
  bool contains(const Bytes& v) const { return lo.compare(v) <= 0 && v.compare(hi) <= 0; }
  bool operator==(const Range& o) const = default;
};

}  // namespace dpi::nft
