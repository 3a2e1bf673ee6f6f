#include "backends/nftables/mark_bits.h"

#include <bit>
#include <map>

#include <fmt/format.h>

#include "backends/nftables/model.h"
#include "core/calico/names.h"

namespace dpi::nft {

namespace {

using calico::ChainKind;

bool single_bit(const std::optional<uint32_t>& m) {
  return m && std::has_single_bit(*m);
}

bool is_policy_like(ChainKind k) {
  return k == ChainKind::policy_ingress || k == ChainKind::policy_egress ||
         k == ChainKind::profile_ingress || k == ChainKind::profile_egress;
}

// Votes for one bit; the chain names behind each value, for the conflict message.
struct Ballot {
  std::map<uint32_t, std::vector<std::string>> votes;
  void add(uint32_t bit, const Chain& c) {
    auto& v = votes[bit];
    if (v.empty() || v.back() != c.name) v.push_back(c.name);
  }
  // The value most chains show; others become conflicts.
  bool decide(uint32_t& out, const char* what, std::vector<std::string>& conflicts) const {
    if (votes.empty()) return false;
    auto best = votes.begin();
    for (auto it = votes.begin(); it != votes.end(); ++it)
      if (it->second.size() > best->second.size()) best = it;
    out = best->first;
    for (const auto& [bit, chains] : votes)
      if (bit != best->first)
        conflicts.push_back(fmt::format(
            "{} bit 0x{:x} in {}{}, not 0x{:x}", what, bit, chains.front(),
            chains.size() > 1 ? fmt::format(" and {} more chains", chains.size() - 1) : "", out));
    return true;
  }
};

}  // namespace

bool MarkLayout::is_default() const {
  calico::MarkBits d;
  return bits.accept == d.accept && bits.pass == d.pass && bits.drop == d.drop;
}

std::string MarkLayout::text() const {
  std::string s = fmt::format("accept 0x{:x}, pass 0x{:x}", bits.accept, bits.pass);
  if (drop_read) s += fmt::format(", drop 0x{:x}", bits.drop);
  return s;
}

MarkLayout infer_mark_bits(const Ruleset& rs) {
  Ballot accept, pass, drop;
  for (const auto& c : rs.chains) {
    const ChainKind kind = calico::classify_chain(c.table, c.name).kind;
    const bool endpoint = calico::is_endpoint(kind);
    if (!endpoint && !is_policy_like(kind)) continue;
    for (const auto& r : c.rules) {
      const RuleFacts& f = r.facts;
      if (endpoint && f.action == "return" && single_bit(f.tests_mark_set))
        accept.add(*f.tests_mark_set, c);
      if (endpoint && single_bit(f.tests_mark_clear)) {
        bool to_policy = (f.action == "jump" || f.action == "goto") &&
                         is_policy_like(calico::classify_chain(c.table, f.target).kind);
        if (to_policy || f.action == "drop") pass.add(*f.tests_mark_clear, c);
      }
      if (is_policy_like(kind) && (f.action == "drop" || f.action == "reject") &&
          single_bit(f.tests_mark_set))
        drop.add(*f.tests_mark_set, c);
    }
  }
  MarkLayout m;
  m.accept_read = accept.decide(m.bits.accept, "accept", m.conflicts);
  m.pass_read = pass.decide(m.bits.pass, "pass", m.conflicts);
  m.drop_read = drop.decide(m.bits.drop, "drop", m.conflicts);
  return m;
}

}  // namespace dpi::nft
