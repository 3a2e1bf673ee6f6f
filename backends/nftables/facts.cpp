#include "backends/nftables/facts.h"

namespace dpi::nft {

namespace {

std::optional<uint32_t> mark_and_mask(const MatchStmt& m) {
  if (m.lhs.parts.size() != 1) return std::nullopt;
  const Operand& o = m.lhs.parts[0];
  if (o.key != Key::meta_mark || o.binops.size() != 1 || o.binops[0].first != '&')
    return std::nullopt;
  return static_cast<uint32_t>(o.binops[0].second.as_uint());
}

void match_facts(const MatchStmt& m, RuleFacts& f) {
  if (m.invert) return;  // "! --ctstate INVALID" must not read as a test for INVALID
  if (auto mask = mark_and_mask(m);
      mask && m.rhs_kind == MatchStmt::RhsKind::range && m.range.lo == m.range.hi) {
    auto v = static_cast<uint32_t>(m.range.lo.as_uint());
    if (m.op == Op::eq && v == 0) f.tests_mark_clear = *mask;
    if (m.op == Op::eq && v == *mask) f.tests_mark_set = *mask;
    if (m.op == Op::ne && v == 0) f.tests_mark_set = *mask;
  }
  if (m.lhs.parts.size() == 1 && m.lhs.parts[0].key == Key::ct_state &&
      m.lhs.parts[0].binops.empty()) {
    auto bit_of = [&](uint64_t bits) {
      if (m.rhs_kind == MatchStmt::RhsKind::range && m.op == Op::eq)
        return m.range.lo.as_uint() == bits;
      if (m.rhs_kind == MatchStmt::RhsKind::flags) return (m.flags.as_uint() & bits) != 0;
      if (m.rhs_kind == MatchStmt::RhsKind::set && m.op == Op::eq)
        return m.set->find(Bytes::from_uint(bits, 4)) != nullptr;
      return false;
    };
    f.tests_ct_invalid = bit_of(1);
    f.tests_ct_established = bit_of(2);
  }
}

void mangle_facts(const MangleStmt& ms, RuleFacts& f) {
  if (ms.target != MangleStmt::Target::meta_mark || ms.constant || ms.value.key != Key::meta_mark ||
      ms.value.binops.size() != 1)
    return;
  auto [op, c] = ms.value.binops[0];
  auto v = static_cast<uint32_t>(c.as_uint());
  if (op == '|') f.sets_mark_bits = v;
  if (op == '&') f.clears_mark_bits = ~v;
}

}  // namespace

void derive_chain_facts(Chain& chain, uint32_t action_bits) {
  int ordinal = 0;
  for (std::size_t i = 0; i < chain.rules.size(); ++i) {
    Rule& r = chain.rules[i];
    RuleFacts f;
    f.position = static_cast<int>(i);
    bool has_match = false;
    for (const auto& st : r.stmts) {
      if (auto* m = std::get_if<MatchStmt>(&st)) {
        has_match = true;
        match_facts(*m, f);
      } else if (auto* v = std::get_if<VerdictStmt>(&st)) {
        f.action = std::string(verdict_kind_name(v->kind));
        if (v->target) f.target = v->target->name;
      } else if (std::holds_alternative<VmapStmt>(st)) {
        has_match = true;
        f.action = "vmap";
      } else if (auto* l = std::get_if<LogStmt>(&st)) {
        f.log_prefix = l->prefix;
        f.log_group = l->group;
      } else if (auto* rj = std::get_if<RejectStmt>(&st)) {
        f.action = "reject";
        f.reject_with = rj->with;
      } else if (auto* ms = std::get_if<MangleStmt>(&st)) {
        mangle_facts(*ms, f);
      } else if (std::holds_alternative<UnknownStmt>(st) ||
                 std::holds_alternative<AssumeStmt>(st) || std::holds_alternative<RandomStmt>(st)) {
        has_match = true;
      }
    }
    f.unconditional = !has_match;
    bool is_action = (f.sets_mark_bits && (*f.sets_mark_bits & action_bits)) ||
                     (f.action == "drop" && has_match && !f.tests_mark_set && !f.tests_mark_clear);
    f.action_ordinal = is_action ? ordinal++ : -1;
    r.facts = f;
    if (i == 0) chain.first_comment = r.comment;
  }
}

}  // namespace dpi::nft
