#include "backends/nftables/model.h"

#include <algorithm>

namespace dpi::nft {

std::string_view hook_name(Hook h) {
  switch (h) {
    case Hook::prerouting: return "prerouting";
    case Hook::input: return "input";
    case Hook::forward: return "forward";
    case Hook::output: return "output";
    case Hook::postrouting: return "postrouting";
    case Hook::other: return "other";
  }
  return "?";
}

std::string_view verdict_kind_name(VerdictKind k) {
  switch (k) {
    case VerdictKind::none: return "";
    case VerdictKind::accept: return "accept";
    case VerdictKind::drop: return "drop";
    case VerdictKind::cont: return "continue";
    case VerdictKind::ret: return "return";
    case VerdictKind::jump: return "jump";
    case VerdictKind::go_to: return "goto";
    case VerdictKind::queue: return "queue";
  }
  return "?";
}

void SetDef::build_index() {
  exact.clear();
  spans.clear();
  linear = false;
  bool all_exact = std::all_of(elems.begin(), elems.end(), [](const SetElem& e) {
    return std::all_of(e.key.begin(), e.key.end(), [](const Range& r) { return r.lo == r.hi; });
  });
  if (all_exact) {
    for (std::size_t i = 0; i < elems.size(); ++i) {
      Bytes k;
      for (const auto& r : elems[i].key) k.append(r.lo);
      exact.emplace(k, i);  // the first element wins, as a duplicate is rejected by nft anyway
    }
    return;
  }
  if (key_types.size() != 1) {
    linear = true;
    return;
  }
  for (std::size_t i = 0; i < elems.size(); ++i)
    spans.push_back({elems[i].key[0].lo, elems[i].key[0].hi, i});
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.lo.compare(b.lo) < 0; });
  for (std::size_t i = 1; i < spans.size(); ++i)
    if (spans[i].lo.compare(spans[i - 1].hi) <= 0) linear = true;  // overlap: binary search unsafe
}

const SetElem* SetDef::find(const Bytes& key) const {
  if (!exact.empty() || (spans.empty() && !linear)) {
    auto it = exact.find(key);
    return it == exact.end() ? nullptr : &elems[it->second];
  }
  if (!linear) {
    auto it = std::upper_bound(spans.begin(), spans.end(), key,
                               [](const Bytes& k, const Span& s) { return k.compare(s.lo) < 0; });
    if (it == spans.begin()) return nullptr;
    --it;
    return key.compare(it->hi) <= 0 ? &elems[it->elem] : nullptr;
  }
  for (const auto& e : elems) {
    std::size_t off = 0;
    bool ok = true;
    for (std::size_t i = 0; i < e.key.size() && ok; ++i) {
      Bytes part;
      part.len = key_widths[i];
      std::copy_n(key.d.begin() + off, part.len, part.d.begin());
      off += part.len;
      ok = e.key[i].contains(part);
    }
    if (ok) return &e;
  }
  return nullptr;
}

const Chain* Ruleset::find_chain(const std::string& family, const std::string& table,
                                 const std::string& name) const {
  for (const auto& c : chains)
    if (c.family == family && c.table == table && c.name == name) return &c;
  return nullptr;
}

bool Ruleset::has_family(const std::string& family) const {
  return std::any_of(tables.begin(), tables.end(),
                     [&](const Table& t) { return t.family == family; });
}

}  // namespace dpi::nft
