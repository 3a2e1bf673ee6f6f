#include "backends/ebpf/rule_index.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

namespace dpi::ebpf {

const char* map_fd_role_name(MapFdRole r) {
  switch (r) {
    case MapFdRole::state: return "state";
    case MapFdRole::ip_sets: return "IP sets";
    case MapFdRole::static_progs: return "static programs";
    case MapFdRole::policy_jump: return "policy jump";
    case MapFdRole::unknown: return "unknown";
  }
  return "?";
}

std::vector<const RuleSite*> RuleIndex::find_id(uint64_t id) const {
  std::vector<const RuleSite*> out;
  for (const RuleSite& s : sites)
    if (s.match_id == id) out.push_back(&s);
  return out;
}

const RuleSite* RuleIndex::site_at(std::size_t insn) const {
  for (const RuleSite& s : sites)
    if (insn >= s.first && insn < s.end) return &s;
  return nullptr;
}

std::optional<int32_t> RuleIndex::fd_for(MapFdRole role) const {
  for (const MapFdRef& m : maps)
    if (m.role == role) return m.fd;
  return std::nullopt;
}

std::string rule_text_action(std::string_view text) {
  constexpr std::string_view kKey = "action:\"";
  auto at = text.find(kKey);
  if (at == std::string_view::npos) return "";
  auto start = at + kKey.size();
  auto end = text.find('"', start);
  if (end == std::string_view::npos) return "";
  std::string a(text.substr(start, end - start));
  std::transform(a.begin(), a.end(), a.begin(), [](unsigned char c) { return std::tolower(c); });
  if (a == "next-tier") a = "pass";
  return a;
}

PolicyName parse_legacy_policy_name(std::string_view raw, std::string_view tier) {
  PolicyName p;
  p.raw = std::string(raw);
  std::string_view rest = raw;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    p.ns = std::string(rest.substr(0, slash));
    rest.remove_prefix(slash + 1);
  }
  constexpr std::string_view kKnp = "knp.default.";
  if (rest.starts_with(kKnp)) {
    p.kind = "KubernetesNetworkPolicy";
    p.name = std::string(rest.substr(kKnp.size()));
  } else if (!tier.empty() && rest.size() > tier.size() + 1 && rest.starts_with(tier) &&
             rest[tier.size()] == '.') {
    p.kind = p.ns.empty() ? "GlobalNetworkPolicy" : "NetworkPolicy";
    p.name = std::string(rest.substr(tier.size() + 1));
  } else {
    p.name = std::string(rest);  // kind unknown: not tier-qualified as expected
  }
  return p;
}

namespace {

bool has_prefix_label(const DebugInsn& in, std::string_view prefix) {
  for (const std::string& l : in.labels)
    if (std::string_view(l).starts_with(prefix)) return true;
  return false;
}

bool has_label(const DebugInsn& in, std::string_view name) {
  return std::find(in.labels.begin(), in.labels.end(), name) != in.labels.end();
}

bool has_comment_prefix(const DebugInsn& in, std::string_view prefix) {
  for (const std::string& c : in.comments)
    if (std::string_view(c).starts_with(prefix)) return true;
  return false;
}

std::string trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return std::string(s);
}

bool parse_u64(std::string_view s, uint64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool is_word(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '-';
  });
}

void collect_ip_sets(std::string_view c, std::vector<IpSetRef>& out) {
  constexpr std::string_view kKey = "ipset ";
  std::size_t pos = 0;
  while ((pos = c.find(kKey, pos)) != std::string_view::npos) {
    pos += kKey.size();
    auto open = c.find(" (0x", pos);
    if (open == std::string_view::npos) return;
    auto close = c.find(')', open);
    if (close == std::string_view::npos) return;
    std::string_view name = c.substr(pos, open - pos);
    std::string_view hex = c.substr(open + 4, close - open - 4);
    uint64_t id = 0;
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), id, 16);
    if (ec == std::errc() && p == hex.data() + hex.size() && name.find(' ') == name.npos) {
      bool seen = std::any_of(out.begin(), out.end(),
                              [&](const IpSetRef& r) { return r.name == name && r.id == id; });
      if (!seen) out.push_back({std::string(name), id});
    }
    pos = close;
  }
}

// A map_lookup_elem call within the few instructions that set up its key pointer.
bool calls_lookup_soon(const std::vector<DebugInsn>& in, std::size_t from) {
  for (std::size_t j = from; j < in.size() && j < from + 4; ++j) {
    const RawInsn& x = in[j].insn;
    if (x.code() == opcode::call) return x.imm() == 1;
    if (x.code() == opcode::ld_imm64 || !in[j].labels.empty()) return false;
  }
  return false;
}

struct Walker {
  const DebugProgram& prog;
  RuleIndex idx;
  std::string tier;
  std::optional<PolicyName> policy;
  std::string profile;
  int rule_no = 0;
  std::optional<std::size_t> open;
  // Instructions of a split: the old sub-program's split code and footer, the new one's header
  // and trampoline. A rule or end-of-tier rule can span a split, so its labels (a footer's
  // allow/deny, landing pads named after pending targets) close nothing.
  std::vector<bool> in_split;

  void mark_splits();

  Error bad(std::size_t i, std::string_view what) const {
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: policyInfo[{}]: {}", prog.file, i, what));
  }
  void close(std::size_t at) {
    if (open) idx.sites[*open].end = at;
    open.reset();
  }
  void open_site(RuleSite s) {
    idx.sites.push_back(std::move(s));
    open = idx.sites.size() - 1;
  }

  Status comment(std::size_t i, const std::string& c);
  Status walk();
  Status records();
  Status map_roles();
};

Status Walker::comment(std::size_t i, const std::string& c) {
  std::string_view v = c;
  collect_ip_sets(v, idx.ip_sets);
  if (v.starts_with("Start of tier ")) {
    close(i);
    tier = trim(v.substr(14));
    policy.reset();
    profile.clear();
    return Ok{};
  }
  if (v.starts_with("End of tier ")) {
    close(i);
    std::string_view rest = v.substr(12);
    RuleSite s;
    s.kind = SiteKind::end_of_tier;
    s.comment = c;
    s.first = i;
    s.action = "deny";  // <= v3.29 prints no action; an empty one means the default, deny
    if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
      std::string a = trim(rest.substr(colon + 1));
      rest = rest.substr(0, colon);
      if (a == "pass" || a == "deny") {
        s.action = a;
      } else if (!a.empty()) {
        return bad(i, fmt::format("unknown end-of-tier action in \"{}\"", c));
      }
    }
    s.tier = trim(rest);
    if (!tier.empty() && s.tier != tier)
      return bad(i, fmt::format("\"{}\" inside tier {}", c, tier));
    policy.reset();
    profile.clear();
    rule_no = 0;
    // An unreachable end-of-tier rule emits no code: its comment lands on the tier's end label.
    if (has_prefix_label(prog.insns[i], "end_of_tier_")) {
      s.end = i;
      idx.sites.push_back(std::move(s));
    } else {
      open_site(std::move(s));
    }
    tier.clear();
    return Ok{};
  }
  if (v.starts_with("Start of policy ")) {  // <= v3.31
    close(i);
    policy = parse_legacy_policy_name(trim(v.substr(16)), tier);
    rule_no = 0;
    return Ok{};
  }
  if (v.starts_with("End of policy ")) {
    close(i);
    policy.reset();
    return Ok{};
  }
  if (v.starts_with("Start of rule ")) {
    close(i);
    std::string_view rest = v.substr(14);
    std::string owner;
    // v3.32 names the owner first ("ns/name" or a profile name); older text starts with a field.
    auto sp = rest.find(' ');
    std::string_view first = rest.substr(0, sp);
    if (!first.empty() && first.find(':') == first.npos && first.find('"') == first.npos) {
      owner = std::string(first);
      rest = sp == rest.npos ? std::string_view() : rest.substr(sp + 1);
    }
    RuleSite s;
    s.kind = SiteKind::rule;
    s.first = i;
    s.comment = c;
    s.action = rule_text_action(rest);
    if (policy) {
      s.tier = tier;
      s.policy = policy;
    } else {
      if (!tier.empty()) return bad(i, fmt::format("rule outside a policy in tier {}", tier));
      if (owner != profile) rule_no = 0;
      profile = owner;
      s.profile = owner;
    }
    s.rule_index = rule_no++;
    open_site(std::move(s));
    return Ok{};
  }
  if (v.starts_with("Rule MatchID: ")) {
    uint64_t id = 0;
    if (!parse_u64(v.substr(14), &id)) return bad(i, fmt::format("bad rule id in \"{}\"", c));
    if (!open || idx.sites[*open].kind != SiteKind::rule || idx.sites[*open].match_id)
      return bad(i, fmt::format("\"{}\" outside a rule", c));
    idx.sites[*open].match_id = id;
    return Ok{};
  }
  if (v.starts_with("End of rule")) {
    if (open && idx.sites[*open].kind == SiteKind::rule) close(i);
    return Ok{};
  }
  if (v.starts_with("Start of ") || v.starts_with("End of ")) {
    // v3.32: "Start of <Kind> [ns/]name <n>", "End of <Kind> [ns/]name <n>".
    bool start = v.starts_with("Start of ");
    std::string_view rest = v.substr(start ? 9 : 7);
    auto sp1 = rest.find(' ');
    auto sp2 = rest.rfind(' ');
    uint64_t n = 0;
    if (sp1 == rest.npos || sp2 == sp1 || !is_word(rest.substr(0, sp1)) ||
        !parse_u64(rest.substr(sp2 + 1), &n))
      return bad(i, fmt::format("unknown comment shape \"{}\"", c));
    close(i);
    if (!start) {
      policy.reset();
      return Ok{};
    }
    PolicyName p;
    p.kind = std::string(rest.substr(0, sp1));
    p.raw = trim(rest.substr(sp1 + 1, sp2 - sp1 - 1));
    std::string_view nm = p.raw;
    if (auto slash = nm.find('/'); slash != nm.npos) {
      p.ns = std::string(nm.substr(0, slash));
      nm.remove_prefix(slash + 1);
    }
    p.name = std::string(nm);
    if (p.name.empty()) return bad(i, fmt::format("unknown comment shape \"{}\"", c));
    policy = std::move(p);
    rule_no = 0;
    return Ok{};
  }
  return Ok{};  // matching detail ("If ...", "IPSets ...", header comments): no structure
}

void Walker::mark_splits() {
  const auto& in = prog.insns;
  in_split.assign(in.size(), false);
  for (std::size_t k = 1; k < prog.subprograms.size(); ++k) {
    const SubProgram& prev = prog.subprograms[k - 1];
    std::size_t start = prog.subprograms[k].first;
    std::size_t from = start;
    for (std::size_t i = prev.first; i < start; ++i)
      if (has_comment_prefix(in[i], "Splitting program after")) from = i;
    // The new sub-program: header up to "Save state pointer", then the trampoline (load pol_rc,
    // reset it, one jeq per pending target).
    std::size_t to = start;
    for (std::size_t i = start; i < in.size() && i < start + 16; ++i)
      if (has_comment_prefix(in[i], "Save state pointer")) to = i + 1;
    if (to + 2 < in.size() && in[to].insn.code() == opcode::ldx_w && in[to].insn.dst() == 0 &&
        in[to].insn.src() == 9)
      to += 3;
    while (to < in.size() && in[to].insn.code() == 0x15 && in[to].insn.dst() == 0) ++to;
    for (std::size_t i = from; i < to && i < in.size(); ++i) in_split[i] = true;
  }
}

Status Walker::walk() {
  mark_splits();
  for (std::size_t i = 0; i < prog.insns.size(); ++i) {
    const DebugInsn& in = prog.insns[i];
    if (in_split[i]) {
      for (const std::string& c : in.comments) {
        auto st = comment(i, c);
        if (!st) return st;
      }
      continue;
    }
    if (open && idx.sites[*open].kind == SiteKind::end_of_tier &&
        has_prefix_label(in, "end_of_tier_"))
      close(i);
    for (const char* footer : {"deny", "allow", "allowed_by_host_policy", "to_or_from_host"})
      if (has_label(in, footer)) close(i);
    for (const std::string& c : in.comments) {
      auto st = comment(i, c);
      if (!st) return st;
    }
  }
  close(prog.insns.size());
  return Ok{};
}

// The id a rule records: writeRecordRuleID's "r1 += off; r2 = ld_imm64 id; r1 += r9".
Status Walker::records() {
  const auto& in = prog.insns;
  std::vector<RuleSite> extra;
  for (std::size_t i = 1; i + 2 < in.size(); ++i) {
    const RawInsn& a = in[i].insn;
    if (a.code() != opcode::ld_imm64 || a.dst() != 2 || a.src() != 0) continue;
    const RawInsn& before = in[i - 1].insn;
    const RawInsn& after = in[i + 2].insn;
    if (before.code() != opcode::add64_imm || before.dst() != 1) continue;
    if (after.code() != opcode::add64_reg || after.dst() != 1 || after.src() != 9) continue;
    uint64_t id = static_cast<uint32_t>(a.imm()) |
                  (static_cast<uint64_t>(static_cast<uint32_t>(in[i + 1].insn.imm())) << 32);
    RuleSite* site = nullptr;
    for (RuleSite& s : idx.sites)
      if (i >= s.first && i < s.end) site = &s;
    if (site) {
      if (site->record) return bad(i, "a second rule-id record in one rule");
      site->record = i;
      if (!site->match_id) {
        site->match_id = id;
      } else if (*site->match_id != id) {
        return bad(i,
                   fmt::format("rule records id {} but its comment says {}", id, *site->match_id));
      }
      continue;
    }
    // Outside every commented rule: a no-profile rule (after the host profiles, which a
    // workload's program has too, or after the workload's). It starts after the last rule or
    // structural label before it.
    RuleSite s;
    s.kind = SiteKind::no_profile;
    std::size_t first = 0;
    for (const RuleSite& prev : idx.sites)
      if (prev.end <= i) first = std::max(first, prev.end);
    for (std::size_t j = i; j > first; --j) {
      const DebugInsn& d = in[j];
      if (has_label(d, "to_or_from_host") || has_label(d, "allowed_by_host_policy") ||
          has_label(d, "policy") || has_prefix_label(d, "end_of_tier_")) {
        first = j;
        break;
      }
    }
    s.first = first;
    s.end = i + 4;
    s.action = "deny";
    s.match_id = id;
    s.record = i;
    extra.push_back(std::move(s));
  }
  for (RuleSite& s : extra) idx.sites.push_back(std::move(s));
  std::stable_sort(idx.sites.begin(), idx.sites.end(),
                   [](const RuleSite& a, const RuleSite& b) { return a.first < b.first; });
  std::optional<std::size_t> host_end;
  for (std::size_t i = 0; i < in.size() && !host_end; ++i)
    if (has_label(in[i], "allowed_by_host_policy")) host_end = i;
  for (RuleSite& s : idx.sites) s.host = host_end && s.first < *host_end;
  return Ok{};
}

Status Walker::map_roles() {
  const auto& in = prog.insns;
  for (std::size_t i = 0; i < in.size(); ++i) {
    const RawInsn& a = in[i].insn;
    if (a.code() != opcode::ld_imm64 || a.src() != kPseudoMapFd) continue;
    if (i + 1 >= in.size()) return bad(i, "ld_imm64 without its second half");
    MapFdRole role = MapFdRole::unknown;
    const RawInsn* next = i + 2 < in.size() ? &in[i + 2].insn : nullptr;
    if (a.dst() == 1 && has_comment_prefix(in[i], "Load packet metadata saved by previous")) {
      role = MapFdRole::state;
    } else if (a.dst() == 1 && calls_lookup_soon(in, i + 2)) {
      role = MapFdRole::ip_sets;  // r1 = map; r2 = r10; r2 += key offset; call map_lookup_elem
    } else if (a.dst() == 2 && next && next->dst() == 3) {
      const DebugInsn& n = in[i + 2];
      bool mov = next->code() == opcode::mov64_imm || next->code() == opcode::mov32_imm;
      if (next->code() == opcode::ldx_w && next->src() == 6 &&
          (next->off() == 48 || next->off() == 52)) {
        role = MapFdRole::static_progs;  // index from skb->cb[0] / cb[1]
      } else if (mov && has_comment_prefix(n, "Tail call to policy program")) {
        role = MapFdRole::policy_jump;
      } else if (mov && (has_comment_prefix(n, "Deny jump to") ||
                         has_comment_prefix(n, "Allow jump to"))) {
        role = MapFdRole::static_progs;  // XDP: immediate indices
      }
    }
    auto it = std::find_if(idx.maps.begin(), idx.maps.end(),
                           [&](const MapFdRef& m) { return m.fd == a.imm(); });
    if (it == idx.maps.end()) {
      idx.maps.push_back({a.imm(), role, i});
    } else if (it->role == MapFdRole::unknown) {
      it->role = role;
    } else if (role != MapFdRole::unknown && role != it->role) {
      return bad(i, fmt::format("map fd {} used as {} and as {}", a.imm(),
                                map_fd_role_name(it->role), map_fd_role_name(role)));
    }
  }
  return Ok{};
}

}  // namespace

Result<RuleIndex> build_rule_index(const DebugProgram& prog) {
  Walker w{prog, {}, {}, {}, {}, 0, {}};
  if (auto st = w.walk(); !st) return st.error();
  if (auto st = w.records(); !st) return st.error();
  if (auto st = w.map_roles(); !st) return st.error();
  return std::move(w.idx);
}

}  // namespace dpi::ebpf
