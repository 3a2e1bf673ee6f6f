// Resolving ipset nomatch entries into the plain intervals a SetDef can hold.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "backends/nftables/xt/ipset_internal.h"

namespace dpi::nft::xt {

namespace {

// b + 1; false when b was all ones.
bool inc(Bytes& b) {
  for (int i = b.len - 1; i >= 0; --i)
    if (++b.d[i] != 0) return true;
  return false;
}

// b - 1 (b is not all zeros).
Bytes dec(Bytes b) {
  for (int i = b.len - 1; i >= 0; --i)
    if (b.d[i]-- != 0) break;
  return b;
}

struct Iv {
  Range r;
  bool counts;
};

// Laminar intervals (nested or disjoint) to disjoint spans where the innermost interval counts.
std::optional<std::vector<Range>> innermost(std::vector<Iv> ivs, std::string* why) {
  std::sort(ivs.begin(), ivs.end(), [](const Iv& a, const Iv& b) {
    int c = a.r.lo.compare(b.r.lo);
    return c != 0 ? c < 0 : b.r.hi.compare(a.r.hi) < 0;
  });
  std::vector<Range> out;
  auto emit = [&](const Bytes& lo, const Bytes& hi, bool counts) {
    if (!counts || hi.compare(lo) < 0) return;
    if (!out.empty()) {
      Bytes next = out.back().hi;
      if (inc(next) && next == lo) {
        out.back().hi = hi;
        return;
      }
    }
    out.push_back(Range{lo, hi});
  };
  std::vector<Iv> stack;
  Bytes cur;
  bool past_end = false;  // cur went beyond the largest value
  auto close_top = [&] {
    Iv top = stack.back();
    stack.pop_back();
    if (!past_end && cur.compare(top.r.hi) <= 0) {
      emit(cur, top.r.hi, top.counts);
      cur = top.r.hi;
      past_end = !inc(cur);
    }
  };
  for (const auto& iv : ivs) {
    while (!stack.empty() && stack.back().r.hi.compare(iv.r.lo) < 0) close_top();
    if (!stack.empty()) {
      if (iv.r.hi.compare(stack.back().r.hi) > 0) {
        *why = fmt::format("nomatch resolution: ranges {}-{} and {}-{} overlap without nesting",
                           stack.back().r.lo.hex(), stack.back().r.hi.hex(), iv.r.lo.hex(),
                           iv.r.hi.hex());
        return std::nullopt;
      }
      if (!past_end && cur.compare(iv.r.lo) < 0) emit(cur, dec(iv.r.lo), stack.back().counts);
    }
    stack.push_back(iv);
    cur = iv.r.lo;
    past_end = false;
  }
  while (!stack.empty()) close_top();
  return out;
}

}  // namespace

std::optional<std::vector<SetElem>> resolve_members(const Ipset& s, bool return_nomatch,
                                                    std::string* why) {
  std::vector<SetElem> out;
  bool any_nomatch = std::any_of(s.members.begin(), s.members.end(),
                                 [](const IpsetMember& m) { return m.nomatch; });
  if (!any_nomatch) {
    if (return_nomatch) return out;  // every hit is turned into a miss
    for (const auto& m : s.members) out.push_back(SetElem{m.key, {}, std::nullopt});
    return out;
  }
  std::vector<std::size_t> ranged;
  for (std::size_t c = 0; c < s.key_types.size(); ++c)
    if (std::any_of(s.members.begin(), s.members.end(),
                    [&](const IpsetMember& m) { return !(m.key[c].lo == m.key[c].hi); }))
      ranged.push_back(c);
  if (ranged.size() > 1) {
    *why = fmt::format(
        "ipset {} ({}) has nomatch entries and more than one ranged key part, which is not "
        "modelled",
        s.name, s.type);
    return std::nullopt;
  }
  if (ranged.empty()) {  // exact keys cannot shadow each other
    for (const auto& m : s.members)
      if (m.nomatch == return_nomatch) out.push_back(SetElem{m.key, {}, std::nullopt});
    return out;
  }
  std::size_t rc = ranged[0];
  // Entries compete only when their exact parts are equal.
  std::map<std::vector<uint8_t>, std::pair<std::vector<Range>, std::vector<Iv>>> groups;
  for (const auto& m : s.members) {
    std::vector<uint8_t> k;
    for (std::size_t c = 0; c < m.key.size(); ++c)
      if (c != rc)
        k.insert(k.end(), m.key[c].lo.d.begin(), m.key[c].lo.d.begin() + m.key[c].lo.len);
    auto& g = groups[k];
    if (g.first.empty()) g.first = m.key;
    g.second.push_back(Iv{m.key[rc], m.nomatch == return_nomatch});
  }
  for (auto& [k, g] : groups) {
    auto spans = innermost(std::move(g.second), why);
    if (!spans) {
      *why = fmt::format("ipset {}: {}", s.name, *why);
      return std::nullopt;
    }
    for (const auto& r : *spans) {
      SetElem e;
      e.key = g.first;
      e.key[rc] = r;
      out.push_back(std::move(e));
    }
  }
  return out;
}

}  // namespace dpi::nft::xt
