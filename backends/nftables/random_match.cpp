#include "backends/nftables/random_match.h"

#include <algorithm>
#include <bit>

#include <fmt/format.h>

namespace dpi::nft {

namespace {

// The values (r & and_mask) ^ xor_mask takes over every 32-bit r, in increasing order: bits
// outside and_mask are fixed, the bits inside it count through every combination. value(k)
// deposits k's low bits into those free bits (lowest first), so it grows with k.
struct Reachable {
  uint32_t free = 0, fixed = 0;
  int free_bits = 0;

  uint64_t total() const { return uint64_t{1} << free_bits; }
  uint64_t value(uint64_t k) const {
    uint64_t v = fixed;
    int i = 0;
    for (int bit = 0; bit < 32; ++bit)
      if (free >> bit & 1u) v |= ((k >> i++) & 1u) << bit;
    return v;
  }
  // How many reachable values are below c (c up to 2^32).
  uint64_t below(uint64_t c) const {
    uint64_t lo = 0, hi = total();  // the first k with value(k) >= c is in [lo, hi]
    while (lo < hi) {
      uint64_t mid = lo + (hi - lo) / 2;
      if (value(mid) < c)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
  // Reachable values in [lo, hi].
  uint64_t within(uint64_t lo, uint64_t hi) const {
    return hi < lo ? 0 : below(hi + 1) - below(lo);
  }
};

std::optional<Reachable> reachable(const Operand& o, std::string* why) {
  uint32_t a = 0xffffffffu, x = 0;
  for (const auto& [op, c] : o.binops) {
    if (c.len != 4) {
      *why = fmt::format("meta random {} with a {}-byte constant", op, c.len);
      return std::nullopt;
    }
    auto k = static_cast<uint32_t>(c.as_uint());
    if (op == '&') {
      a &= k;
      x &= k;
    } else if (op == '|') {
      a &= ~k;
      x |= k;
    } else {
      x ^= k;
    }
  }
  Reachable r;
  r.free = a;
  r.fixed = x & ~a;
  r.free_bits = std::popcount(a);
  return r;
}

uint64_t as_u32(const Bytes& b) {
  return b.as_uint();
}

}  // namespace

std::optional<RandomStmt> random_sides(const MatchStmt& m, std::string* why) {
  if (m.lhs.parts.size() != 1) {
    *why = "meta random in a concatenation: which values it can take is not worked out";
    return std::nullopt;
  }
  const Operand& o = m.lhs.parts[0];
  if (o.width != 4) {
    *why = fmt::format("meta random read as {} bytes", o.width);
    return std::nullopt;
  }
  auto r = reachable(o, why);
  if (!r) return std::nullopt;
  // How many of the equally likely values satisfy the comparison.
  uint64_t hits = 0;
  switch (m.rhs_kind) {
    case MatchStmt::RhsKind::flags: *why = "meta random tested for flags"; return std::nullopt;
    case MatchStmt::RhsKind::set:
      if (!m.set || m.set->key_widths.size() != 1 || m.set->key_widths[0] != 4) {
        *why = "meta random looked up in a set whose keys are not 32-bit values";
        return std::nullopt;
      }
      // nftables keeps a set's elements and intervals disjoint, so their counts add up.
      for (const auto& e : m.set->elems) {
        if (e.key.size() != 1) {
          *why = "meta random looked up in a set with concatenated keys";
          return std::nullopt;
        }
        hits += r->within(as_u32(e.key[0].lo), as_u32(e.key[0].hi));
      }
      if (m.op == Op::ne) hits = r->total() - std::min(hits, r->total());
      break;
    case MatchStmt::RhsKind::range: {
      if (m.range.lo.len != 4 || m.range.hi.len != 4) {
        *why = "meta random compared with a value that is not 32 bits wide";
        return std::nullopt;
      }
      uint64_t lo = as_u32(m.range.lo), hi = as_u32(m.range.hi);
      switch (m.op) {
        case Op::eq: hits = r->within(lo, hi); break;
        case Op::ne: hits = r->total() - r->within(lo, hi); break;
        case Op::lt: hits = r->below(lo); break;
        case Op::le: hits = r->below(lo + 1); break;
        case Op::gt: hits = r->total() - r->below(lo + 1); break;
        case Op::ge: hits = r->total() - r->below(lo); break;
        case Op::flags_any: *why = "meta random tested for flags"; return std::nullopt;
      }
      break;
    }
  }
  if (m.invert) hits = r->total() - hits;
  RandomStmt out;
  out.can_match = hits > 0;
  out.can_miss = hits < r->total();
  return out;
}

}  // namespace dpi::nft
