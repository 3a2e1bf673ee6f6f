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
  exact_int.clear();
  lo_int.clear();
  hi_int.clear();
  span_elem.clear();
  linear = false;
  int_index = false;
  std::size_t total = 0;
  for (auto w : key_widths) total += w;
  key_bytes = static_cast<uint8_t>(std::min<std::size_t>(total, 255));
  bool all_exact = std::all_of(elems.begin(), elems.end(), [](const SetElem& e) {
    return std::all_of(e.key.begin(), e.key.end(), [](const Range& r) { return r.lo == r.hi; });
  });
  // Elements whose parts do not have the set's widths keep the generic Bytes index.
  bool widths_ok = total <= 16 && std::all_of(elems.begin(), elems.end(), [&](const SetElem& e) {
                     if (e.key.size() != key_widths.size()) return false;
                     for (std::size_t i = 0; i < e.key.size(); ++i)
                       if (e.key[i].lo.len != key_widths[i] || e.key[i].hi.len != key_widths[i])
                         return false;
                     return true;
                   });
  if (all_exact) {
    if (widths_ok) int_index = true;
    if (int_index) exact_int.reserve(elems.size());
    for (std::size_t i = 0; i < elems.size(); ++i) {
      Bytes k;
      for (const auto& r : elems[i].key) k.append(r.lo);
      // The first element wins, as a duplicate is rejected by nft anyway.
      if (int_index)
        exact_int.emplace(to_u128(k), static_cast<uint32_t>(i));
      else
        exact.emplace(k, i);
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
  if (!linear && widths_ok) {
    int_index = true;
    lo_int.reserve(spans.size());
    hi_int.reserve(spans.size());
    span_elem.reserve(spans.size());
    for (const auto& sp : spans) {
      lo_int.push_back(to_u128(sp.lo));
      hi_int.push_back(to_u128(sp.hi));
      span_elem.push_back(static_cast<uint32_t>(sp.elem));
    }
    spans.clear();
    spans.shrink_to_fit();
  }
}

const SetElem* SetDef::find_int(U128 key) const {
  if (!exact_int.empty() || lo_int.empty()) {
    auto it = exact_int.find(key);
    return it == exact_int.end() ? nullptr : &elems[it->second];
  }
  auto it = std::upper_bound(lo_int.begin(), lo_int.end(), key);
  if (it == lo_int.begin()) return nullptr;
  std::size_t i = static_cast<std::size_t>(it - lo_int.begin()) - 1;
  return key <= hi_int[i] ? &elems[span_elem[i]] : nullptr;
}

const SetElem* SetDef::find(const Bytes& key) const {
  if (int_index) return key.len == key_bytes ? find_int(to_u128(key)) : nullptr;
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

std::size_t key_read_width(Key k) {
  switch (k) {
    case Key::meta_mark:
    case Key::ct_state:
    case Key::ct_status:
    case Key::ct_mark:
    case Key::fib_daddr_type:
    case Key::fib_saddr_type:
    case Key::numgen:
    case Key::meta_random: return 4;
    case Key::meta_l4proto:
    case Key::ct_protocol:
    case Key::meta_nfproto:
    case Key::ct_l3proto:
    case Key::meta_pkttype:
    case Key::ct_direction:
    case Key::ip_protocol:
    case Key::ip6_nexthdr:
    case Key::tcp_flags:
    case Key::icmp_type:
    case Key::icmp_code:
    case Key::icmpv6_type:
    case Key::icmpv6_code: return 1;
    case Key::meta_iifname:
    case Key::meta_iif:
    case Key::meta_oifname:
    case Key::meta_oif:
    case Key::fib_saddr_iif_oif:
    case Key::fib_saddr_mark_iif_oif:
    case Key::fib_daddr_oif:
    case Key::ip6_saddr:
    case Key::ip6_daddr: return 16;
    case Key::ip_saddr:
    case Key::ip_daddr: return 4;
    case Key::th_sport:
    case Key::th_dport:
    case Key::tcp_sport:
    case Key::tcp_dport:
    case Key::udp_sport:
    case Key::udp_dport:
    case Key::sctp_sport:
    case Key::sctp_dport: return 2;
    // Not read by the evaluator: a rule testing them is indeterminate.
    case Key::meta_protocol:
    case Key::meta_iiftype:
    case Key::meta_oiftype:
    case Key::meta_length: return 0;
  }
  return 0;
}

namespace {

// Folds the byte-wise binops the evaluator applies (over the first min(width, constant) bytes)
// into one and/xor pair over width bytes.
void prepare_operand(Operand& o) {
  std::size_t w = key_read_width(o.key);
  o.read_width = 0;
  if (w == 0) return;
  uint8_t a[16], x[16];
  std::fill_n(a, 16, 0xff);
  std::fill_n(x, 16, 0);
  for (const auto& [op, c] : o.binops)
    for (std::size_t i = 0; i < w && i < c.len; ++i) {
      if (op == '&') {
        a[i] &= c.d[i];
        x[i] &= c.d[i];
      } else if (op == '|') {
        a[i] &= static_cast<uint8_t>(~c.d[i]);
        x[i] |= c.d[i];
      } else {
        x[i] ^= c.d[i];
      }
    }
  U128 am = 0, xm = 0;
  for (std::size_t i = 0; i < w; ++i) {
    am = (am << 8) | a[i];
    xm = (xm << 8) | x[i];
  }
  o.and_mask = am;
  o.xor_mask = xm;
  o.read_width = static_cast<uint8_t>(w);
}

void prepare_match(MatchStmt& m) {
  m.fast = MatchStmt::Fast::none;
  std::size_t total = 0;
  for (auto& p : m.lhs.parts) {
    prepare_operand(p);
    if (p.read_width == 0) return;
    total += p.read_width;
  }
  if (m.lhs.parts.empty() || total > 16) return;
  m.lhs_width = static_cast<uint8_t>(total);
  switch (m.rhs_kind) {
    case MatchStmt::RhsKind::set:
      if (m.set && m.set->int_index && m.set->key_bytes == total) m.fast = MatchStmt::Fast::set;
      return;
    case MatchStmt::RhsKind::flags:
      if (m.flags.len != total) return;
      m.lo_int = to_u128(m.flags);
      m.fast = MatchStmt::Fast::flags;
      return;
    case MatchStmt::RhsKind::range:
      if (m.range.lo.len != total || m.range.hi.len != total) return;
      m.lo_int = to_u128(m.range.lo);
      m.hi_int = to_u128(m.range.hi);
      m.fast = MatchStmt::Fast::range;
      return;
  }
}

// Keys whose read never fails, needs no routes and makes no random choice.
bool plain_key(Key k) {
  switch (k) {
    case Key::fib_daddr_type:
    case Key::fib_saddr_type:
    case Key::fib_saddr_iif_oif:
    case Key::fib_saddr_mark_iif_oif:
    case Key::fib_daddr_oif:
    case Key::numgen:
    case Key::meta_random: return false;
    case Key::meta_mark:
    case Key::meta_l4proto:
    case Key::meta_nfproto:
    case Key::meta_protocol:
    case Key::meta_iifname:
    case Key::meta_oifname:
    case Key::meta_iif:
    case Key::meta_oif:
    case Key::meta_iiftype:
    case Key::meta_oiftype:
    case Key::meta_pkttype:
    case Key::meta_length:
    case Key::ct_state:
    case Key::ct_status:
    case Key::ct_mark:
    case Key::ct_direction:
    case Key::ct_l3proto:
    case Key::ct_protocol:
    case Key::ip_saddr:
    case Key::ip_daddr:
    case Key::ip_protocol:
    case Key::ip6_saddr:
    case Key::ip6_daddr:
    case Key::ip6_nexthdr:
    case Key::th_sport:
    case Key::th_dport:
    case Key::tcp_sport:
    case Key::tcp_dport:
    case Key::tcp_flags:
    case Key::udp_sport:
    case Key::udp_dport:
    case Key::sctp_sport:
    case Key::sctp_dport:
    case Key::icmp_type:
    case Key::icmp_code:
    case Key::icmpv6_type:
    case Key::icmpv6_code: return key_read_width(k) != 0;
  }
  return false;
}

// The compact form of one rule, or false when a statement has none.
bool compact_rule(const Rule& r, std::vector<FastOp>& ops) {
  for (const auto& st : r.stmts) {
    FastOp op{};
    if (auto* m = std::get_if<MatchStmt>(&st)) {
      if (m->fast == MatchStmt::Fast::none || m->lhs.parts.size() != 1 ||
          !plain_key(m->lhs.parts[0].key))
        return false;
      const Operand& o = m->lhs.parts[0];
      op.kind = m->fast == MatchStmt::Fast::set     ? FastOp::Kind::set
                : m->fast == MatchStmt::Fast::flags ? FastOp::Kind::flags
                                                    : FastOp::Kind::match;
      op.key = o.key;
      op.op = m->op;
      op.invert = m->invert;
      op.ptr = m->set;
      op.a = o.and_mask;
      op.b = o.xor_mask;
      op.lo = m->lo_int;
      op.hi = m->hi_int;
    } else if (auto* v = std::get_if<VerdictStmt>(&st)) {
      op.kind = FastOp::Kind::verdict;
      op.verdict = v->kind;
      op.ptr = v->target;
    } else if (std::holds_alternative<CounterStmt>(st) || std::holds_alternative<LogStmt>(st) ||
               std::holds_alternative<NoopStmt>(st)) {
      continue;
    } else if (auto* ms = std::get_if<MangleStmt>(&st)) {
      if (ms->target != MangleStmt::Target::meta_mark) return false;
      if (ms->constant) {
        op.kind = FastOp::Kind::mark_const;
        op.a = static_cast<uint32_t>(ms->constant->as_uint());
      } else {
        if (ms->value.key != Key::meta_mark || ms->value.read_width != 4) return false;
        op.kind = FastOp::Kind::mark_op;
        op.a = ms->value.and_mask;
        op.b = ms->value.xor_mask;
      }
    } else {
      return false;
    }
    ops.push_back(op);
    if (op.kind == FastOp::Kind::verdict) break;  // nothing after a verdict runs
  }
  return true;
}

}  // namespace

void Ruleset::prepare() {
  fast_rules.clear();
  fast_ops.clear();
  for (auto& c : chains) {
    for (auto& r : c.rules)
      for (auto& st : r.stmts) {
        if (auto* m = std::get_if<MatchStmt>(&st)) prepare_match(*m);
        if (auto* ms = std::get_if<MangleStmt>(&st)) prepare_operand(ms->value);
        if (auto* vm = std::get_if<VmapStmt>(&st))
          for (auto& p : vm->key.parts) prepare_operand(p);
      }
    c.fast_first = static_cast<uint32_t>(fast_rules.size());
    for (auto& r : c.rules) {
      FastRule fr;
      fr.rule = &r;
      fr.first = static_cast<uint32_t>(fast_ops.size());
      std::size_t mark = fast_ops.size();
      fr.slow = !compact_rule(r, fast_ops);
      if (fr.slow) fast_ops.resize(mark);
      fr.count = static_cast<uint32_t>(fast_ops.size() - mark);
      fast_rules.push_back(fr);
    }
    c.fast_count = static_cast<uint32_t>(c.rules.size());
  }
  fast_rules.shrink_to_fit();
  fast_ops.shrink_to_fit();
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
