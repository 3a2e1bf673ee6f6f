#include "backends/ebpf/inspect.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "backends/ebpf/conntrack.h"
#include "backends/ebpf/failsafes.h"
#include "backends/ebpf/nat.h"
#include "backends/ebpf/policy_abi.h"
#include "backends/ebpf/prog_tag.h"
#include "core/calico/attribution.h"
#include "core/layers.h"
#include "core/report_assembly.h"

namespace dpi::ebpf {

namespace {

std::string hex_id(uint64_t id) {
  return fmt::format("{:#x}", id);
}

// Calico's short kind names, as the nftables chains and the report use them.
std::string short_kind(const std::string& kind) {
  static const std::pair<const char*, const char*> kinds[] = {
      {"NetworkPolicy", "np"},
      {"GlobalNetworkPolicy", "gnp"},
      {"KubernetesNetworkPolicy", "knp"},
      {"KubernetesClusterNetworkPolicy", "kcnp"},
      {"StagedNetworkPolicy", "snp"},
      {"StagedGlobalNetworkPolicy", "sgnp"},
      {"StagedKubernetesNetworkPolicy", "sknp"},
  };
  for (auto [l, s] : kinds)
    if (kind == l || kind == s) return s;
  return kind;
}

// Before v3.32 Felix names policies `ns/tier.name` (the comment and the nftables chain alike), and
// the nftables backend reports that name as written; v3.32 names them `Kind ns/name`.
bool legacy_names(const NodeState& n) {
  return n.release && n.release->releases.last <= Release::v3_31;
}

dpi::PolicyName report_policy_name(const PolicyName& p, bool legacy) {
  dpi::PolicyName pn;
  pn.recovered = true;
  if (legacy && !p.raw.empty()) {
    auto slash = p.raw.find('/');
    pn.ns = slash == std::string::npos ? "" : p.raw.substr(0, slash);
    pn.name = slash == std::string::npos ? p.raw : p.raw.substr(slash + 1);
    return pn;
  }
  pn.kind = short_kind(p.kind);
  pn.ns = p.ns;
  pn.name = p.name;
  return pn;
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// v3.30/v3.31 programs do not name profiles. Their rule id is FNV-1a64 of the NFLOG prefix
// `<A|D>R<I|E><index>|<profile>` (flow logs off), so a candidate profile name is proven by its
// hash: the candidates are Calico's namespace profiles (kns.<word>) for the words of the node's
// debug JSON (namespace selectors name them). No match: the name stays unrecovered.
std::string recover_profile(const NodeState& n, uint64_t id, const std::string& action,
                            const std::string& direction, int index) {
  if (index < 0 || id == 0) return "";
  std::string head = fmt::format("{}R{}{}|", action == "allow" ? 'A' : 'D',
                                 direction == "ingress" ? 'I' : 'E', index);
  std::set<std::string> words;
  for (const auto& [f, text] : n.debug_json) {
    std::string w;
    for (char c : text) {
      bool word =
          (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
      if (word) {
        w += c;
      } else {
        if (!w.empty() && w.size() < 60) words.insert(w);
        w.clear();
      }
    }
  }
  // Namespaces every Kubernetes cluster has, whether or not a policy names them.
  for (const char* w : {"default", "kube-system", "kube-public", "kube-node-lease"})
    words.insert(w);
  for (const auto& w : words)
    for (const std::string& cand : {w, "kns." + w})
      if (fnv1a64(head + cand) == id) return cand;
  return "";
}

// The tier in force where a profile rule sits: the last tier the program opened before it (same
// host/workload part). nftables names it the same way (the last "Start of tier" before the
// profile chain's rule), so a profile reached after a tier passed reads tier <that tier> on both.
std::string tier_before(const RuleIndex& idx, const RuleSite& at) {
  std::string tier;
  for (const RuleSite& s : idx.sites) {
    if (&s == &at) break;
    if (s.host != at.host) continue;
    if ((s.kind == SiteKind::rule && s.policy) || s.kind == SiteKind::end_of_tier)
      if (!s.tier.empty()) tier = s.tier;
  }
  return tier;
}

// Where the deciding rule sits, for the report.
struct Located {
  const RuleSite* site = nullptr;
  std::size_t sites = 0;  // more than 1: several sites record the same id, none is preferred
};

// path: where the flow went in a host program whose normal host policy starts at instruction
// path->first (label to_or_from_host): past it when path->second (to or from the host), before it
// when forwarded. An apply-on-forward policy sits in both parts with the same rule ids, as does
// the end of a tier of both: the part the flow took is the one that decided.
Located locate(const RuleIndex& idx, uint64_t id, bool allowed,
               std::optional<std::pair<std::size_t, bool>> path = std::nullopt) {
  Located out;
  auto all = idx.find_id(id);
  std::vector<const RuleSite*> fit;
  for (const RuleSite* s : all) {
    bool allows = s->kind == SiteKind::rule && s->action == "allow";
    if (allows == allowed) fit.push_back(s);
  }
  if (fit.size() > 1 && path) {
    std::vector<const RuleSite*> on_path;
    for (const RuleSite* s : fit)
      if ((s->first >= path->first) == path->second) on_path.push_back(s);
    if (!on_path.empty()) fit = std::move(on_path);
  }
  if (fit.empty()) return out;
  out.site = fit.back();
  out.sites = fit.size();
  return out;
}

// A host endpoint's program allowed without an allow rule: it records ids (policy debug on) but
// none, or only pass positions (a pre-DNAT tier's end, a tier that passed).
bool host_policy_passed(const RuleIndex& idx, const std::vector<uint64_t>& ids) {
  if (ids.empty())
    return std::any_of(idx.sites.begin(), idx.sites.end(),
                       [](const RuleSite& s) { return s.record.has_value(); });
  auto sites = idx.find_id(ids.back());
  return !sites.empty() && std::all_of(sites.begin(), sites.end(), [](const RuleSite* s) {
    return s->action == "pass" || s->action == "next-tier";
  });
}

}  // namespace

NodeModel::NodeModel(NodeState n) : n_(std::move(n)) {
  auto interp = PolicyEngines::create(Engine::interp, {});  // needs nothing: cannot fail
  engines_ = std::move(*interp);
  for (int family : {4, 6}) {
    auto rit = n_.entries.find(fmt::format("routes{}", family));
    if (rit == n_.entries.end()) continue;
    for (const auto& [k, v] : rit->second) {
      auto p = decode_route_key(k, family);
      auto rv = decode_route_value(v, family);
      if (p && rv) routes_.emplace_back(*p, *rv);
    }
  }
  auto iit = n_.entries.find("ifstate");
  if (iit != n_.entries.end())
    for (const auto& [k, v] : iit->second) {
      auto idx = decode_ifstate_key(k);
      auto st = decode_ifstate_value(v);
      if (idx && st) ifaces_[*idx] = *st;
    }
  static const std::vector<RawEntry> none;
  for (int family : {4, 6}) {
    auto sit = n_.entries.find(fmt::format("ip_sets{}", family));
    auto ips = build_ip_sets(sit == n_.entries.end() ? none : sit->second, family == 4 ? 20 : 32);
    const int f = family == 4 ? 0 : 1;
    if (ips)
      ip_sets_[f] = std::move(*ips);
    else
      ip_sets_error_[f] = ips.error().message;
  }
}

Status NodeModel::set_engine(Engine e) {
  auto sit = n_.entries.find("ip_sets4");
  static const std::vector<RawEntry> none;
  auto engines = PolicyEngines::create(e, sit == n_.entries.end() ? none : sit->second);
  if (!engines) return engines.error();
  engines_ = std::move(*engines);
  programs_.clear();
  return Ok{};
}

std::optional<RouteValue> NodeModel::route(const IpAddr& a) const {
  const std::pair<IpPrefix, RouteValue>* best = nullptr;
  for (const auto& r : routes_)
    if (r.first.addr.family == a.family && r.first.contains(a) &&
        (!best || r.first.len > best->first.len))
      best = &r;
  if (!best) return std::nullopt;
  return best->second;
}

const IfState* NodeModel::iface(uint32_t ifindex) const {
  auto it = ifaces_.find(ifindex);
  return it == ifaces_.end() ? nullptr : &it->second;
}

std::vector<uint32_t> NodeModel::host_interfaces() const {
  // Felix flags its data interfaces HEP (bonds Bond); tunnel, WireGuard and L3 devices, workloads
  // and interfaces it ignores (NotManaged) are no host endpoints.
  std::vector<uint32_t> out;
  for (const auto& [ifindex, st] : ifaces_)
    if ((st.flags & (ifstate_flag::hep | ifstate_flag::bond)) &&
        !(st.flags & (ifstate_flag::wep | ifstate_flag::not_managed)))
      out.push_back(ifindex);
  return out;
}

std::optional<uint32_t> NodeModel::ifindex_of(const std::string& name) const {
  for (const auto& [ifindex, st] : ifaces_)
    if (st.name == name) return ifindex;
  return std::nullopt;
}

const NodeModel::PolicyFile& NodeModel::policy_file(const std::string& name) const {
  auto it = files_.find(name);
  if (it != files_.end()) return it->second;
  PolicyFile f;
  f.file = name;
  auto t = n_.debug_json.find(name);
  if (t == n_.debug_json.end()) {
    auto e = n_.debug_json_errors.find(name);
    f.error = e != n_.debug_json_errors.end()
                  ? e->second
                  : fmt::format("no policy-debug JSON {} in {}", name, n_.policy_debug_dir);
  } else if (auto p = parse_debug_json(t->second, name); !p) {
    f.error = p.error().message;
  } else if (auto r = build_rule_index(*p); !r) {
    f.error = r.error().message;
  } else {
    f.prog = std::move(*p);
    f.rules = std::move(*r);
  }
  return files_.emplace(name, std::move(f)).first->second;
}

namespace {

// "np/ns/name" (v3.32), "ns/tier.name" (before: as Felix wrote it).
std::string policy_text(const dpi::PolicyName& p) {
  std::string out;
  for (const std::string* part : {&p.kind, &p.ns})
    if (!part->empty()) out += *part + "/";
  return out + p.name;
}

// What a rule site is in Calico's terms, for a rule id's counter. dir: the policy direction.
std::string site_meaning(const NodeState& n, const RuleIndex& idx, const RuleSite& s, uint64_t id,
                         const std::string& dir) {
  switch (s.kind) {
    case SiteKind::rule: {
      std::string index = s.rule_index >= 0 ? fmt::format(" rule {}", s.rule_index) : "";
      std::string action = s.action.empty() ? "" : " " + s.action;
      if (s.policy)
        return fmt::format("tier {} policy {}{}{}", s.tier,
                           policy_text(report_policy_name(*s.policy, legacy_names(n))), index,
                           action);
      std::string profile =
          s.profile.empty() ? recover_profile(n, id, s.action, dir, s.rule_index) : s.profile;
      std::string tier = tier_before(idx, s);
      return fmt::format("{}profile {}{}{}", tier.empty() ? "" : "tier " + tier + " ",
                         profile.empty() ? "(name not recoverable)" : profile, index, action);
    }
    case SiteKind::end_of_tier:
      return fmt::format("end of tier {}{}", s.tier, s.action.empty() ? "" : ": " + s.action);
    case SiteKind::no_profile: return "no profile matched";
  }
  return "?";
}

// A rule site's place in Calico's terms: kind, tier, owner, rule index. allowed: whether the
// site's verdict allows (a profile's name is recovered from the id with it).
void fill_site_position(calico::Position& d, const NodeState& n, const RuleIndex& rules,
                        const RuleSite& s, uint64_t id, bool allowed, bool pol_egress,
                        const std::string& prog_name) {
  switch (s.kind) {
    case SiteKind::rule:
      d.kind = s.policy ? calico::PositionKind::policy_rule : calico::PositionKind::profile_rule;
      d.tier = s.policy ? s.tier : tier_before(rules, s);
      if (s.policy) {
        d.owner = report_policy_name(*s.policy, legacy_names(n));
      } else {
        dpi::PolicyName pn;
        pn.kind = "profile";
        pn.name = s.profile.empty()
                      ? recover_profile(n, id, allowed ? "allow" : "deny",
                                        pol_egress ? "egress" : "ingress", s.rule_index)
                      : s.profile;
        pn.recovered = !pn.name.empty();
        if (!pn.recovered) pn.chain = prog_name;
        d.owner = pn;
      }
      if (s.rule_index >= 0) {
        d.rule_index = s.rule_index;
        d.rule_index_exact = true;
      }
      break;
    case SiteKind::end_of_tier:
      d.kind = calico::PositionKind::end_of_tier;
      d.tier = s.tier;
      break;
    case SiteKind::no_profile: d.kind = calico::PositionKind::no_profile; break;
  }
}

// The action a rule site takes, from its comment: end-of-tier and no-profile sites deny unless
// the comment says pass (a tier whose default action is Pass).
calico::Action site_action(const RuleSite& s) {
  if (s.action == "allow") return calico::Action::allow;
  if (s.action == "pass") return calico::Action::pass;
  if (s.action == "deny" || s.kind != SiteKind::rule) return calico::Action::deny;
  return calico::Action::none;  // log, or a rule whose comment names no action
}

calico::StageOutcome outcome_of(calico::Action a) {
  switch (a) {
    case calico::Action::allow: return calico::StageOutcome::allow;
    case calico::Action::deny: return calico::StageOutcome::deny;
    case calico::Action::pass: return calico::StageOutcome::pass;
    case calico::Action::none: return calico::StageOutcome::unknown;
  }
  return calico::StageOutcome::unknown;
}

}  // namespace

namespace {

// Where a rule site of a live policy program is, for the report's rule reference.
BpfLocation site_location(const ProgInfo& prog, const RuleSite& s, std::string attach,
                          uint64_t id) {
  BpfLocation at;
  at.prog_id = prog.id;
  at.prog_name = prog.name;
  at.tag = tag_hex(prog.tag);
  at.attach = std::move(attach);
  at.insn_offset = static_cast<uint32_t>(s.record ? *s.record : s.first);
  at.calico_rule_id = hex_id(id);
  at.debug_comment = s.comment;
  return at;
}

}  // namespace

const std::map<uint64_t, NodeModel::RulePlace>& NodeModel::rule_places() const {
  rule_refs();
  return *rule_places_;
}

const std::map<uint64_t, RuleRef>& NodeModel::rule_refs() const {
  if (rule_refs_) return *rule_refs_;
  std::map<uint64_t, RuleRef> refs;
  std::map<uint64_t, RulePlace> places;
  std::map<uint64_t, std::size_t> programs;  // how many programs record each id
  for (const auto& [ifindex, ifs] : ifaces_) {
    for (AttachHook hook : {AttachHook::tc_ingress, AttachHook::tc_egress}) {
      const bool tc_ingress = hook == AttachHook::tc_ingress;
      // A workload's tc ingress hook runs its egress policy; a host endpoint's its ingress policy.
      const bool pol_egress = (ifs.flags & ifstate_flag::wep) ? tc_ingress : !tc_ingress;
      const MapSpec* jm = n_.spec(MapRole::jump);
      if (!jm) jm = n_.spec(tc_ingress ? MapRole::jump_ing : MapRole::jump_egr);
      for (int family : {4, 6}) {
        if (family == 6 && !ifs.dual_stack_layout) continue;
        PolicyIndex idx = ifs.index_for(hook, family);
        const JumpSlot* slot = jm && idx ? n_.slot(std::string(jm->pin_name), *idx) : nullptr;
        if (!slot || !slot->prog) continue;
        const std::string dir = pol_egress ? "egress" : "ingress";
        const auto& pf = policy_file(debug_file_name(
            {ifs.name, pol_egress ? PolicyDir::egress : PolicyDir::ingress, family}));
        if (!pf.prog || !pf.rules) continue;
        // A stale JSON would name the wrong rules: only what runs is attributed.
        bool live = true;
        for (std::size_t k = 0; k < pf.prog->subprograms.size() && live; ++k) {
          uint32_t si = *idx + pf.prog->subprograms[k].k * policy_abi::kSubProgStride;
          const JumpSlot* sub = n_.slot(std::string(jm->pin_name), si);
          live = sub && sub->prog && tag_matches(pf.prog->program(k), sub->prog->tag);
        }
        if (!live) continue;
        const ProgInfo& prog = *slot->prog;
        std::set<uint64_t> here;
        for (const RuleSite& s : pf.rules->sites) {
          if (!s.match_id) continue;
          const uint64_t id = *s.match_id;
          if (here.insert(id).second) ++programs[id];
          if (refs.count(id)) continue;
          std::size_t insn = s.record ? *s.record : s.first;
          const SubProgram* sp = pf.prog->subprogram_of(insn);
          BpfLocation at =
              site_location(prog, s, fmt::format("{} {}", attach_hook_name(hook), ifs.name), id);
          std::string text = fmt::format(
              "rule id {}: {} (prog {} {} tag {} insn {}{})", hex_id(id),
              site_meaning(n_, *pf.rules, s, id, dir), prog.id, prog.name, tag_hex(prog.tag), insn,
              sp && sp->k ? fmt::format(" (sub-program {})", sp->k) : "");
          RulePlace& place = places[id];
          place.at.endpoint.role = (ifs.flags & ifstate_flag::wep)
                                       ? calico::EndpointRole::workload
                                       : calico::EndpointRole::host_endpoint;
          place.at.endpoint.direction =
              pol_egress ? calico::Direction::egress : calico::Direction::ingress;
          place.at.endpoint.iface = ifs.name;
          place.at.endpoint.chain = attach_hook_name(hook);
          place.at.at.action = site_action(s);
          place.at.outcome = outcome_of(place.at.at.action);
          place.at.at.rule_id = std::to_string(id);
          fill_site_position(place.at.at, n_, *pf.rules, s, id,
                             place.at.at.action == calico::Action::allow, pol_egress, prog.name);
          refs.emplace(id, RuleRef(std::move(at), std::move(text), s.comment));
        }
      }
    }
  }
  // The counter is per id: one shared by several endpoints' programs counts all of them.
  for (auto& [id, ref] : refs)
    if (programs[id] > 1) ref.text += fmt::format("; recorded by {} policy programs", programs[id]);
  for (auto& [id, place] : places) {
    place.programs = programs[id];
    place.at.at.rule = refs.at(id);
  }
  rule_places_ = std::move(places);
  rule_refs_ = std::move(refs);
  return *rule_refs_;
}

// One flow (one post-NAT destination) through the node.
class FlowRun {
 public:
  FlowRun(const NodeModel& m, const Flow& f, Report& rep) : m_(m), f_(f), rep_(rep) {}

  // Fills rep_.stages / verdict / decided_by. dst, dport: after NAT.
  void run(const IpAddr& dst, uint16_t dport);

 private:
  enum class Hook { ingress, egress };  // tc hook of the interface
  // Sets rep_.verdict and locates the Calico positions that decided it (located_).
  void find_positions(const IpAddr& dst, uint16_t dport);
  // Runs the policy of the endpoint at ifindex on the hook; appends a stage position. false: stop.
  // A host endpoint without a policy program for the hook adds no stage (tc.c: "HEP with no
  // policy, allow").
  bool stage(uint32_t ifindex, Hook hook, const PolicyState& ps,
             calico::EndpointRole role = calico::EndpointRole::workload);
  // The policy program slot of an interface's hook, or nullptr (no index, empty slot).
  const JumpSlot* policy_slot(const IfState& ifs, Hook hook) const;
  // The host endpoint a flow enters (in) or leaves (out) through: the interface named by
  // --iif/--oif, else the one host interface of the node with a policy program for the hook.
  // nullopt with no reason: none applies; with a reason: the flow is indeterminate.
  struct HepChoice {
    std::optional<uint32_t> ifindex;
    std::string why_not;
    std::string note;  // an assumption the report prints
  };
  HepChoice host_endpoint(bool in) const;
  // tc.c's failsafe check on a host endpoint (inbound to the host, outbound from it): a matching
  // cali_v<N>_fsafes2 entry skips policy (the stage is appended). unknown: the map was not read
  // (the flow is then indeterminate).
  enum class Failsafe { none, hit, unknown };
  Failsafe failsafe(uint32_t ifindex, bool in, const PolicyState& ps);
  // A host endpoint's stage: failsafe first for traffic to / from the host itself, then the
  // program. false: stop.
  bool hep_stage(uint32_t ifindex, bool in, bool host_side, const PolicyState& ps);
  // The stage just appended denied: it decides.
  bool denied_by_last_stage() {
    rep_.verdict = Verdict::deny;
    located_.by = calico::Located::By::stage;
    located_.stage = located_.stages.size() - 1;
    located_.rule = located_.stages.back().at.rule;
    return false;
  }
  void indeterminate(const std::string& expr, const std::string& why) {
    rep_.verdict = Verdict::indeterminate;
    rep_.indeterminate_reason = IndeterminateReason{RuleRef{}, expr, why};
  }

  const NodeModel& m_;
  const Flow& f_;
  Report& rep_;
  calico::Located located_;
};

const JumpSlot* FlowRun::policy_slot(const IfState& ifs, Hook hook) const {
  const NodeState& n = m_.state();
  const int family = f_.src.is_v4() ? 4 : 6;
  if (family == 6 && !ifs.dual_stack_layout) return nullptr;
  const bool tc_ingress = hook == Hook::ingress;
  PolicyIndex idx =
      ifs.index_for(tc_ingress ? AttachHook::tc_ingress : AttachHook::tc_egress, family);
  const MapSpec* jm = n.spec(MapRole::jump);
  if (!jm) jm = n.spec(tc_ingress ? MapRole::jump_ing : MapRole::jump_egr);
  if (!idx || !jm) return nullptr;
  const JumpSlot* slot = n.slot(std::string(jm->pin_name), *idx);
  return slot && slot->prog ? slot : nullptr;
}

FlowRun::HepChoice FlowRun::host_endpoint(bool in) const {
  HepChoice out;
  const Hook hook = in ? Hook::ingress : Hook::egress;
  const std::string& named = in ? f_.iif : f_.oif;
  if (!named.empty()) {
    // The interface the user named: a host endpoint only when Felix manages it as one.
    auto idx = m_.ifindex_of(named);
    // Said in the report either way: a typo would otherwise skip the real host endpoint's
    // policy without a word.
    const auto data = m_.host_interfaces();
    if (idx && std::find(data.begin(), data.end(), *idx) != data.end()) {
      out.ifindex = idx;
    } else {
      out.note = fmt::format(
          "{} {} is {} (Calico's ifstate map): no host endpoint policy runs "
          "there",
          in ? "--iif" : "--oif", named,
          idx ? "not a host endpoint" : "not an interface Calico manages");
    }
    return out;
  }
  std::vector<uint32_t> with_policy;
  std::vector<std::string> names;
  for (uint32_t i : m_.host_interfaces()) {
    const IfState* ifs = m_.iface(i);
    if (ifs && policy_slot(*ifs, hook)) {
      with_policy.push_back(i);
      names.push_back(ifs->name);
    }
  }
  if (with_policy.size() == 1) {
    out.ifindex = with_policy.front();
  } else if (with_policy.size() > 1) {
    out.why_not = fmt::format(
        "the flow {} the node through one of the host endpoints {}, each with a policy program "
        "for the tc {} hook: name the interface with {}",
        in ? "enters" : "leaves", fmt::join(names, ", "), in ? "ingress" : "egress",
        in ? "--iif" : "--oif");
  }
  return out;
}

bool FlowRun::stage(uint32_t ifindex, Hook hook, const PolicyState& ps,
                    calico::EndpointRole ep_role) {
  const NodeState& n = m_.state();
  const int family = f_.src.is_v4() ? 4 : 6;
  const IfState* ifs = m_.iface(ifindex);
  const bool hep = ep_role == calico::EndpointRole::host_endpoint;
  const bool tc_ingress = hook == Hook::ingress;
  // The policy direction: a workload's tc ingress hook runs its egress policy (packets from the
  // pod); a host endpoint's tc ingress hook its ingress policy (packets into the host).
  const bool pol_egress = hep ? !tc_ingress : tc_ingress;
  calico::StagePosition st;
  st.endpoint.role = ep_role;
  st.endpoint.direction = pol_egress ? calico::Direction::egress : calico::Direction::ingress;
  calico::Position& d = st.at;
  const std::string role = fmt::format("{} of {}", pol_egress ? "egress" : "ingress",
                                       hep ? "host endpoint" : "workload");
  auto deny_with = [&](calico::PositionKind k) {
    st.outcome = calico::StageOutcome::deny;
    d.kind = k;
    d.action = calico::Action::deny;
    located_.stages.push_back(st);
    return denied_by_last_stage();
  };
  if (!ifs) {
    // No ifstate entry: Felix has not set the interface up, so no Calico program judges it.
    st.endpoint.iface = fmt::format("ifindex {}", ifindex);
    d.ifindex = ifindex;
    return deny_with(calico::PositionKind::no_interface_state);
  }
  st.endpoint.iface = ifs->name;
  st.endpoint.chain = tc_ingress ? "tc ingress" : "tc egress";
  if (family == 6 && !ifs->dual_stack_layout) {
    indeterminate("ifstate", "this release's interface state has no IPv6 policy indices");
    return false;
  }
  const uint32_t ready = family == 4 ? ifstate_flag::v4_ready : ifstate_flag::v6_ready;
  // XDP runs before tc and may drop what tc would allow, with or without a tc program.
  if (hep && tc_ingress && ifs->index_for(AttachHook::xdp, family)) {
    indeterminate("XDP program",
                  fmt::format("host endpoint {} has an XDP policy program (untracked, doNotTrack "
                              "policy) that runs before tc: the eBPF backend does not evaluate it",
                              ifs->name));
    return false;
  }
  if (hep && !policy_slot(*ifs, hook)) return true;  // tc.c: "HEP with no policy, allow"
  if (!(ifs->flags & ready)) {
    if (hep) {
      indeterminate("ifstate", fmt::format("host endpoint {} is not IPv{}Ready (flags {:#x})",
                                           ifs->name, family, ifs->flags));
      return false;
    }
    d.iface_flags = ifs->flags;
    d.ip_family = family;
    return deny_with(calico::PositionKind::endpoint_not_ready);
  }
  PolicyIndex idx =
      ifs->index_for(tc_ingress ? AttachHook::tc_ingress : AttachHook::tc_egress, family);
  if (!idx) return deny_with(calico::PositionKind::no_policy_program);
  const MapSpec* jm = n.spec(MapRole::jump);
  if (!jm) jm = n.spec(tc_ingress ? MapRole::jump_ing : MapRole::jump_egr);
  if (!jm) {
    indeterminate("jump map", "the layout has no policy jump map for this hook");
    return false;
  }
  const JumpSlot* slot = n.slot(std::string(jm->pin_name), *idx);
  if (!slot || !slot->prog) {
    d.policy_slot = fmt::format("{}[{}]", jm->pin_name, *idx);
    return deny_with(calico::PositionKind::empty_policy_slot);
  }
  const ProgInfo& prog = *slot->prog;
  std::string file =
      debug_file_name({ifs->name, pol_egress ? PolicyDir::egress : PolicyDir::ingress, family});
  const auto& pf = m_.policy_file(file);
  const std::string& hook_name = st.endpoint.chain;
  nlohmann::json ev = {{"prog_id", prog.id}, {"prog_name", prog.name},   {"tag", tag_hex(prog.tag)},
                       {"hook", hook_name},  {"jump_map", jm->pin_name}, {"index", *idx},
                       {"debug_json", file}};
  if (!pf.prog) {
    ev["tag_check"] = "no debug JSON";
    rep_.evidence["ebpf"]["stages"].push_back(ev);
    indeterminate("policy-debug JSON",
                  fmt::format("{}: {} (program {} {} tag {} cannot be run without its "
                              "instructions)",
                              role + " on " + st.endpoint.iface, pf.error, prog.id, prog.name,
                              tag_hex(prog.tag)));
    return false;
  }
  // The JSON must hold what runs: each sub-program's tag against the live program in its slot.
  for (std::size_t k = 0; k < pf.prog->subprograms.size(); ++k) {
    uint32_t si = *idx + pf.prog->subprograms[k].k * policy_abi::kSubProgStride;
    const JumpSlot* s = n.slot(std::string(jm->pin_name), si);
    auto insns = pf.prog->program(k);
    if (!s || !s->prog || !tag_matches(insns, s->prog->tag)) {
      ev["tag_check"] = "stale";
      rep_.evidence["ebpf"]["stages"].push_back(ev);
      indeterminate(
          "policy-debug JSON",
          fmt::format("{} is stale: sub-program {} of {} does not match the program in {}[{}] "
                      "({}), so its instructions are not what runs",
                      file, k, file, jm->pin_name, si,
                      s && s->prog
                          ? fmt::format("prog {} tag {}", s->prog->id, tag_hex(s->prog->tag))
                          : "empty slot"));
      return false;
    }
  }
  ev["tag_check"] = "match";
  const StateLayout* layout =
      state_layout(n.spec(MapRole::state) ? n.spec(MapRole::state)->value_size : 0);
  if (!layout) {
    indeterminate("state map", "no known per-CPU state layout for this release");
    return false;
  }
  auto& cache = m_.programs_[file];
  if (!cache) {
    auto loaded = m_.engines_->load(*pf.prog, *pf.rules, *layout,
                                    m_.ip_sets_[family == 4 ? 0 : 1].get(), *idx);
    if (!loaded) {
      rep_.evidence["ebpf"]["stages"].push_back(ev);
      indeterminate("policy program", loaded.error().message);
      return false;
    }
    cache = std::move(*loaded);
  }
  EngineRuns runs = cache->run(ps);
  const PolicyRun& r = runs.answer();
  ev["engine"] = runs.interp ? "interp" : "kernel";
  if (runs.interp) ev["executed"] = r.executed;
  if (runs.interp && runs.kernel) {
    ev["engine"] = "both";
    ev["engines"] = runs.evidence();
    auto& agree = rep_.evidence["ebpf"]["engines_agree"];
    agree = runs.disagreement.empty() && (agree.is_null() || agree.get<bool>());
  }
  if (!runs.disagreement.empty()) {
    // Neither engine is believed over the other (principle 2).
    rep_.evidence["ebpf"]["stages"].push_back(ev);
    indeterminate("policy engines", fmt::format("{} on {}: {} ({}): {}", role, st.endpoint.iface,
                                                prog.name, file, runs.disagreement));
    return false;
  }
  if (r.answer == PolicyAnswer::cannot_run) {
    rep_.evidence["ebpf"]["stages"].push_back(ev);
    indeterminate("policy program", fmt::format("{} ({}): {}", prog.name, file, r.why));
    return false;
  }
  const bool allowed = r.answer == PolicyAnswer::allow;
  auto ids = r.after.recorded_ids();
  std::vector<std::string> id_texts;
  id_texts.reserve(ids.size());
  for (auto i : ids) id_texts.push_back(hex_id(i));
  ev["rule_ids"] = id_texts;
  ev["pol_rc"] = r.after.pol_rc;
  rep_.evidence["ebpf"]["stages"].push_back(ev);
  st.outcome = allowed ? calico::StageOutcome::allow : calico::StageOutcome::deny;
  d.action = allowed ? calico::Action::allow : calico::Action::deny;
  if (hep && allowed && host_policy_passed(*pf.rules, ids)) {
    // Nothing of the host endpoint's policy applied: the program jumped to its allow label
    // past every tier (no apply-on-forward policy for forwarded traffic, or tiers that passed).
    d.kind = calico::PositionKind::no_host_policy;
    BpfLocation at;
    at.prog_id = prog.id;
    at.prog_name = prog.name;
    at.tag = tag_hex(prog.tag);
    at.attach = st.endpoint.chain + " " + st.endpoint.iface;
    at.debug_comment = "allowed_by_host_policy";
    d.rule = RuleRef(std::move(at),
                     fmt::format("prog {} {} tag {}: no host endpoint policy applies", prog.id,
                                 prog.name, tag_hex(prog.tag)),
                     "");
  } else if (ids.empty()) {
    d.kind = calico::PositionKind::no_rule_id;
  } else {
    std::optional<std::pair<std::size_t, bool>> path;
    if (hep)
      for (std::size_t i = 0; i < pf.prog->insns.size() && !path; ++i) {
        const auto& labels = pf.prog->insns[i].labels;
        if (std::find(labels.begin(), labels.end(), "to_or_from_host") != labels.end())
          path.emplace(i, (ps.flags & (state_flag::dest_is_host | state_flag::src_is_host)) != 0);
      }
    Located loc = locate(*pf.rules, ids.back(), allowed, path);
    d.recorded_id = hex_id(ids.back());
    if (!loc.site) {
      d.kind = calico::PositionKind::rule_id_not_found;
      d.program_file = file;
    } else {
      const RuleSite& s = *loc.site;
      d.same_id_sites = static_cast<int>(loc.sites);
      d.rule_id = std::to_string(ids.back());
      fill_site_position(d, n, *pf.rules, s, ids.back(), allowed, pol_egress, prog.name);
      std::size_t insn = s.record ? *s.record : s.first;
      const SubProgram* sp = pf.prog->subprogram_of(insn);
      BpfLocation at =
          site_location(prog, s, st.endpoint.chain + " " + st.endpoint.iface, ids.back());
      RuleRef rr(std::move(at),
                 fmt::format("prog {} {} tag {} insn {}{} rule id {}", prog.id, prog.name,
                             tag_hex(prog.tag), insn,
                             sp && sp->k ? fmt::format(" (sub-program {})", sp->k) : "",
                             hex_id(ids.back())),
                 s.comment);
      d.rule = rr;
      ev["insn"] = insn;
      ev["rule_id"] = hex_id(ids.back());
      ev["comment"] = s.comment;
      rep_.evidence["ebpf"]["stages"].back() = ev;
    }
  }
  located_.stages.push_back(st);
  if (!allowed) return denied_by_last_stage();
  return true;
}

PolicyState build_policy_state(const Flow& f, const IpAddr& dst, uint16_t dport,
                               const std::optional<RouteValue>& src_route,
                               const std::optional<RouteValue>& dst_route) {
  PolicyState ps;
  ps.ip_src = f.src;
  ps.ip_dst = dst;
  ps.pre_nat_ip_dst = f.dst;
  ps.post_nat_ip_dst = dst;
  ps.ip_proto = f.l4proto;
  if (f.has_ports()) {
    ps.sport = f.sport.value_or(0);
    ps.dport = dport;
    ps.pre_nat_dport = f.dport.value_or(0);
    ps.post_nat_dport = dport;
  } else if (f.is_icmp()) {
    ps.set_icmp(f.icmp_type.value_or(0), f.icmp_code.value_or(0));
    ps.pre_nat_dport = ps.dport;
    ps.post_nat_dport = ps.dport;
  }
  // tc.c: DEST_IS_HOST when the post-NAT destination is a local host address; SRC_IS_HOST when
  // the source is (the packet is not forwarded then).
  if (dst_route && dst_route->local_host()) ps.flags |= state_flag::dest_is_host;
  if (src_route && src_route->local_host()) ps.flags |= state_flag::src_is_host;
  return ps;
}

void FlowRun::run(const IpAddr& dst, uint16_t dport) {
  find_positions(dst, dport);
  calico::explain(rep_, located_);
}

FlowRun::Failsafe FlowRun::failsafe(uint32_t ifindex, bool in, const PolicyState& ps) {
  const int family = f_.src.is_v4() ? 4 : 6;
  auto it = m_.state().entries.find(fmt::format("failsafes{}", family));
  if (it == m_.state().entries.end()) {
    indeterminate(fmt::format("cali_v{}_fsafes2", family),
                  "the failsafe ports were not read (map not pinned, or a snapshot without "
                  "them): whether a failsafe lets the flow past the host endpoint's policy is "
                  "unknown");
    return Failsafe::unknown;
  }
  // tc.c: inbound with the source address, outbound with the post-NAT destination; both with the
  // post-NAT destination port.
  auto hit = find_failsafe(it->second, family, ps.ip_proto, ps.post_nat_dport,
                           in ? ps.ip_src : ps.post_nat_ip_dst, !in);
  if (!hit) return Failsafe::none;
  const IfState* ifs = m_.iface(ifindex);
  calico::StagePosition st;
  st.endpoint.role = calico::EndpointRole::host_endpoint;
  st.endpoint.direction = in ? calico::Direction::ingress : calico::Direction::egress;
  st.endpoint.iface = ifs ? ifs->name : fmt::format("ifindex {}", ifindex);
  st.endpoint.chain = in ? "tc ingress" : "tc egress";
  st.outcome = calico::StageOutcome::allow;
  st.at.kind = calico::PositionKind::failsafe;
  st.at.action = calico::Action::allow;
  st.at.comment_text = hit->str();
  BpfLocation at;
  at.attach = st.endpoint.chain + " " + st.endpoint.iface;
  at.debug_comment = "failsafe " + hit->str();
  st.at.rule = RuleRef(
      std::move(at),
      fmt::format("cali_v{}_fsafes2 entry {}: calico_tc_main skips policy", family, hit->str()),
      "");
  rep_.evidence["ebpf"]["failsafe"] = hit->str();
  located_.stages.push_back(std::move(st));
  return Failsafe::hit;
}

bool FlowRun::hep_stage(uint32_t ifindex, bool in, bool host_side, const PolicyState& ps) {
  const Hook hook = in ? Hook::ingress : Hook::egress;
  const IfState* ifs = m_.iface(ifindex);
  // No program for the hook: no policy and no failsafe check matters (tc.c allows either way).
  if (ifs && !policy_slot(*ifs, hook)) return true;
  if (host_side) {
    switch (failsafe(ifindex, in, ps)) {
      case Failsafe::hit: return true;
      case Failsafe::unknown: return false;
      case Failsafe::none: break;
    }
  }
  return stage(ifindex, hook, ps, calico::EndpointRole::host_endpoint);
}

void FlowRun::find_positions(const IpAddr& dst, uint16_t dport) {
  auto src_rt = m_.route(f_.src);
  auto dst_rt = m_.route(dst);
  PolicyState ps = build_policy_state(f_, dst, dport, src_rt, dst_rt);
  const bool src_wep = src_rt && src_rt->local_workload();
  const bool dst_wep = dst_rt && dst_rt->local_workload();
  const bool src_host = src_rt && src_rt->local_host();
  const bool dst_host = dst_rt && dst_rt->local_host();
  // Host endpoints: a flow from outside the node enters through one (its tc ingress hook: the
  // endpoint's ingress policy), a flow to outside leaves through one (tc egress: egress policy).
  // A remote workload behind a tunnel (IPIP/VXLAN route) is reached through the tunnel device,
  // which is no host endpoint: its packets cross the data interface encapsulated.
  auto tunneled = [](const std::optional<RouteValue>& r) {
    return r && r->remote_workload() && (r->flags & (route_flag::tunneled | route_flag::vxlan));
  };
  HepChoice in, out;
  if (!src_wep && !src_host && (!tunneled(src_rt) || !f_.iif.empty())) in = host_endpoint(true);
  if (!dst_wep && !dst_host && (!tunneled(dst_rt) || !f_.oif.empty())) out = host_endpoint(false);
  for (const HepChoice* c : {&in, &out}) {
    if (!c->why_not.empty()) {
      indeterminate("host endpoint", c->why_not);
      return;
    }
    if (!c->note.empty()) rep_.assumptions.push_back(c->note);
  }
  if (!src_wep && !dst_wep && !in.ifindex && !out.ifindex) {
    indeterminate("route",
                  // kOutsideLayerScope: how --dataplane auto knows this layer does not judge
                  // the flow (core/layers.h).
                  fmt::format("neither {} nor {} is a local workload in cali_v{}_routes and no "
                              "host endpoint with a policy program is on its path: the flow {}",
                              f_.src.str(), dst.str(), f_.src.is_v4() ? 4 : 6, kOutsideLayerScope));
    return;
  }
  if (!src_wep && dst_wep && (ps.flags & state_flag::src_is_host)) {
    // tc.c: traffic from the host itself to a local workload is allowed on the workload's tc
    // egress hook before any policy program runs (and before the interface's state is read).
    rep_.verdict = Verdict::allow;
    located_.position.kind = calico::PositionKind::host_to_workload;
    located_.position.action = calico::Action::allow;
    return;
  }
  if (out.ifindex && src_wep && (src_rt->flags & route_flag::nat_out) &&
      !(dst_rt && (dst_rt->flags & route_flag::in_pool))) {
    // Felix masquerades it in netfilter before the tc egress hook: the host endpoint's program
    // sees the node's address as the source, which this model does not build.
    indeterminate("host endpoint",
                  fmt::format("{} is in a nat-outgoing pool: the egress program of the host "
                              "endpoint sees the flow after SNAT, which the eBPF backend does not "
                              "model",
                              f_.src.str()));
    return;
  }
  if (!dst_wep && !dst_rt && !out.ifindex)
    rep_.assumptions.push_back(fmt::format(
        "{} is not in cali_v{}_routes: after the source's policy the kernel's routing decides",
        dst.str(), f_.src.is_v4() ? 4 : 6));
  for (const HepChoice* c : {&in, &out})
    if (c->ifindex && (c == &in ? f_.iif : f_.oif).empty())
      rep_.assumptions.push_back(fmt::format(
          "the flow {} through {}, the node's only host endpoint with a policy program for that "
          "hook (name another interface with {})",
          c == &in ? "enters" : "leaves", m_.iface(*c->ifindex)->name,
          c == &in ? "--iif" : "--oif"));
  if (src_wep && !stage(src_rt->ifindex, Hook::ingress, ps)) return;
  if (in.ifindex && !hep_stage(*in.ifindex, true, dst_host, ps)) return;
  if (dst_wep && !stage(dst_rt->ifindex, Hook::egress, ps)) return;
  if (out.ifindex && !hep_stage(*out.ifindex, false, src_host, ps)) return;
  if (located_.stages.empty()) {
    // Only host endpoints without a policy program (named by --iif/--oif) on the path.
    indeterminate("route", fmt::format("no policy program judges {} -> {}: the flow {}",
                                       f_.src.str(), dst.str(), kOutsideLayerScope));
    return;
  }
  rep_.verdict = Verdict::allow;
  located_.by = calico::Located::By::stages;
  located_.rule = located_.stages.back().at.rule;
}

Result<Report> NodeModel::inspect(const Flow& flow) const {
  Report rep;
  rep.flow = flow;
  rep.dataplane.kind = "ebpf";
  rep.dataplane.source = n_.source;
  if (n_.release) {
    rep.dataplane.calico_layouts = {
        fmt::format("eBPF maps of Calico {}", n_.release->releases.str())};
    rep.dataplane.calico_version_hint = n_.release->releases.str();
  }
  for (const auto& w : n_.warnings) rep.warnings.push_back(w);
  add_flow_assumptions(rep, flow, false);
  rep.assumptions.push_back(engine_assumption(engines_->engine()));
  rep.evidence["ebpf"]["engine"] = engine_name(engines_->engine());
  if (!n_.release) {
    rep.verdict = Verdict::indeterminate;
    rep.indeterminate_reason = IndeterminateReason{RuleRef{}, "map layout", n_.layout_error};
    return rep;
  }
  // IPv6 flows read the v6 twins (cali_v6_*) and the `_v6.json` programs; ifstate is shared.
  const int family = flow.src.is_v4() ? 4 : 6;
  const std::string fam = std::to_string(family);
  if (family == 6 && !n_.entries.contains("routes6")) {
    rep.verdict = Verdict::indeterminate;
    rep.indeterminate_reason = IndeterminateReason{
        RuleRef{}, "cali_v6_routes",
        "IPv6 flow, but the node has no cali_v6_routes map: Felix runs without IPv6"};
    return rep;
  }
  if (const std::string& e = ip_sets_error_[family == 4 ? 0 : 1]; !e.empty()) {
    rep.verdict = Verdict::indeterminate;
    rep.indeterminate_reason =
        IndeterminateReason{RuleRef{}, "cali_v" + fam + "_ip_sets", "IP sets: " + e};
    return rep;
  }

  // Conntrack: an approved entry skips policy (except a TCP SYN, which re-runs it: tc.c).
  if (flow.ct == CtState::established) {
    auto cit = n_.entries.find("conntrack" + fam);
    if (cit != n_.entries.end())
      for (const auto& [k, v] : cit->second) {
        auto key = decode_ct_key(k, family);
        auto val = decode_ct_value(v, family);
        if (!key || !val || key->proto != flow.l4proto) continue;
        bool ab = key->addr_a == flow.src && key->addr_b == flow.dst &&
                  key->port_a == flow.sport.value_or(0) && key->port_b == flow.dport.value_or(0);
        bool ba = key->addr_b == flow.src && key->addr_a == flow.dst &&
                  key->port_b == flow.sport.value_or(0) && key->port_a == flow.dport.value_or(0);
        if ((ab || ba) && val->both_approved()) {
          rep.verdict = Verdict::allow;
          calico::Located at;
          at.position.kind = calico::PositionKind::ct_established;
          at.position.action = calico::Action::allow;
          at.position.conntrack_entry =
              fmt::format("{} <-> {}", addr_port(key->addr_a, key->port_a),
                          addr_port(key->addr_b, key->port_b));
          calico::explain(rep, at);
          return rep;
        }
      }
  }

  // NAT: a service frontend sends the flow to one of its backends; each is explored.
  struct Target {
    IpAddr addr;
    uint16_t port;
    std::string choice;
  };
  std::vector<Target> targets;
  auto fit = n_.entries.find("nat_fe" + fam);
  auto bit = n_.entries.find(family == 4 ? "nat_be" : "nat_be6");
  if (fit != n_.entries.end() && flow.has_ports()) {
    for (const auto& [k, v] : fit->second) {
      auto key = decode_nat_frontend_key(k, family);
      auto val = decode_nat_frontend_value(v);
      if (!key || !val) continue;
      if (!(key->addr == flow.dst) || key->port != flow.dport.value_or(0) ||
          key->proto != flow.l4proto)
        continue;
      int spl = key->src_prefix_len();
      if (spl > 0 && !IpPrefix{key->saddr, spl}.contains(flow.src)) continue;
      if (val->drop() || val->count == 0) {
        rep.verdict = Verdict::deny;
        calico::Located at;
        at.position.kind = calico::PositionKind::service_without_backends;
        at.position.action = calico::Action::deny;
        at.position.service = addr_port(flow.dst, flow.dport.value_or(0));
        at.position.frontend_id = val->id;
        calico::explain(rep, at);
        return rep;
      }
      for (uint32_t o = 0; o < val->count; ++o) {
        if (bit == n_.entries.end()) break;
        for (const auto& [bk, bv] : bit->second) {
          auto bkey = decode_nat_backend_key(bk);
          auto bval = decode_nat_backend_value(bv, family);
          if (!bkey || !bval || bkey->id != val->id || bkey->ordinal != o) continue;
          targets.push_back({bval->addr, bval->port,
                             fmt::format("service backend {} of {}: {}", o + 1, val->count,
                                         addr_port(bval->addr, bval->port))});
        }
      }
      if (targets.size() != val->count) {
        rep.verdict = Verdict::indeterminate;
        rep.indeterminate_reason = IndeterminateReason{
            RuleRef{}, "cali_v" + fam + "_nat_be",
            fmt::format("service {} lists {} backends but {} are in the backend map",
                        addr_port(flow.dst, flow.dport.value_or(0)), val->count, targets.size())};
        return rep;
      }
      break;
    }
  }
  if (targets.empty()) {
    FlowRun(*this, flow, rep).run(flow.dst, flow.dport.value_or(0));
    return rep;
  }
  auto dnat_to = [&](const Target& t) {
    NatStep ns;
    ns.kind = "dnat";
    ns.hook = "tc ingress";
    ns.rule.text = "NAT frontend " + addr_port(flow.dst, flow.dport.value_or(0));
    ns.to = addr_port(t.addr, t.port);
    return ns;
  };
  if (targets.size() == 1) {
    rep.nat.push_back(dnat_to(targets[0]));
    FlowRun(*this, flow, rep).run(targets[0].addr, targets[0].port);
    return rep;
  }
  // Several backends: like nftables' random choices, one outcome per backend, each with its own
  // translation; the report's own nat is the first outcome's, as for nftables.
  std::vector<Alternative> alts;
  alts.reserve(targets.size());
  for (const auto& t : targets) {
    Alternative alt{t.choice, rep};
    alt.report.nat.push_back(dnat_to(t));
    FlowRun(*this, flow, alt.report).run(t.addr, t.port);
    alts.push_back(std::move(alt));
  }
  rep.nat = alts.front().report.nat;
  if (add_outcomes(rep, alts)) {
    Report first = alts.front().report;
    first.outcomes = rep.outcomes;
    return first;
  }
  depends_on_choice(
      rep, "NAT backend",
      "the verdict depends on which service backend the NAT frontend picks; see outcomes", "");
  return rep;
}

}  // namespace dpi::ebpf
