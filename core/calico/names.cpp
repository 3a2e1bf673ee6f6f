#include "core/calico/names.h"

#include <array>

namespace dpi::calico {

namespace {

bool starts(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

constexpr std::array<std::string_view, 4> kLayers = {"filter-", "raw-", "mangle-", "nat-"};

// Calico's short policy kinds (types/policy_id.go) and the long names used in comments.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> kKinds = {{
    {"np", "NetworkPolicy"},
    {"gnp", "GlobalNetworkPolicy"},
    {"snp", "StagedNetworkPolicy"},
    {"sgnp", "StagedGlobalNetworkPolicy"},
    {"sknp", "StagedKubernetesNetworkPolicy"},
    {"knp", "KubernetesNetworkPolicy"},
    {"kcnp", "KubernetesClusterNetworkPolicy"},
}};

bool namespaced(std::string_view kind) {
  return kind == "np" || kind == "snp" || kind == "knp" || kind == "sknp";
}

}  // namespace

ChainInfo classify_chain(std::string_view table, std::string_view chain) {
  ChainInfo ci;
  std::string_view bare = chain;
  if (table == "calico") {
    for (auto l : kLayers)
      if (starts(chain, l)) {
        ci.layer = std::string(l.substr(0, l.size() - 1));
        bare = chain.substr(l.size());
        break;
      }
  }
  ci.bare = std::string(bare);
  if (!starts(bare, "cali-")) {
    ci.kind = table == "calico" ? ChainKind::other_calico : ChainKind::not_calico;
    return ci;
  }
  struct P {
    std::string_view prefix;
    ChainKind kind;
  };
  static constexpr P kPrefixes[] = {
      {"cali-fw-", ChainKind::from_workload},
      {"cali-tw-", ChainKind::to_workload},
      {"cali-fhfw-", ChainKind::from_host_endpoint},
      {"cali-thfw-", ChainKind::to_host_endpoint},
      {"cali-fh-", ChainKind::from_host_endpoint},
      {"cali-th-", ChainKind::to_host_endpoint},
      {"cali-pi-", ChainKind::policy_ingress},
      {"cali-po-", ChainKind::policy_egress},
      {"cali-gi-", ChainKind::group_ingress},
      {"cali-go-", ChainKind::group_egress},
      {"cali-pri-", ChainKind::profile_ingress},
      {"cali-pro-", ChainKind::profile_egress},
      {"cali-from-wl-dispatch", ChainKind::wl_dispatch},
      {"cali-to-wl-dispatch", ChainKind::wl_dispatch},
      {"cali-from-host-endpoint", ChainKind::hep_dispatch},
      {"cali-to-host-endpoint", ChainKind::hep_dispatch},
      {"cali-from-hep-forward", ChainKind::hep_dispatch},
      {"cali-to-hep-forward", ChainKind::hep_dispatch},
      {"cali-wl-to-host", ChainKind::wl_to_host},
      {"cali-cidr-block", ChainKind::cidr_block},
      {"cali-INPUT", ChainKind::input},
      {"cali-OUTPUT", ChainKind::output},
      {"cali-FORWARD", ChainKind::forward},
  };
  for (const auto& p : kPrefixes)
    if (starts(bare, p.prefix)) {
      ci.kind = p.kind;
      ci.suffix = std::string(bare.substr(p.prefix.size()));
      if (ci.kind == ChainKind::wl_dispatch || ci.kind == ChainKind::hep_dispatch)
        ci.suffix.clear();
      return ci;
    }
  if (bare == "cali-PREROUTING" && (ci.layer == "raw" || table == "raw"))
    ci.kind = ChainKind::raw_prerouting;
  else
    ci.kind = ChainKind::other_calico;
  return ci;
}

bool is_endpoint(ChainKind k) {
  return k == ChainKind::from_workload || k == ChainKind::to_workload ||
         k == ChainKind::from_host_endpoint || k == ChainKind::to_host_endpoint;
}

CommentParts split_comment(std::string_view c) {
  CommentParts p;
  if (starts(c, "cali:")) {
    auto semi = c.find(';');
    p.rule_id = std::string(c.substr(0, semi));
    if (semi == std::string_view::npos) return p;
    c.remove_prefix(semi + 1);
  }
  while (!c.empty() && c.front() == ' ') c.remove_prefix(1);
  p.text = std::string(c);
  return p;
}

PolicyName policy_from_chain(const ChainInfo& chain, std::string_view first_comment) {
  PolicyName pn;
  pn.chain = chain.bare;
  std::string_view s = chain.suffix;
  if (!s.empty() && s[0] != '_') {
    // v3.32+: kind/[ns/]name; v3.30/31: tier/name where name may be ns/tier.name.
    auto slash = s.find('/');
    std::string_view first = s.substr(0, slash);
    std::string_view rest = slash == std::string_view::npos ? "" : s.substr(slash + 1);
    bool is_kind = false;
    for (auto& [k, _] : kKinds) is_kind = is_kind || k == first;
    if (is_kind && !rest.empty()) {
      pn.kind = std::string(first);
      auto s2 = rest.find('/');
      if (namespaced(first) && s2 != std::string_view::npos) {
        pn.ns = std::string(rest.substr(0, s2));
        pn.name = std::string(rest.substr(s2 + 1));
      } else {
        pn.name = std::string(rest);
      }
    } else {
      pn.name = std::string(rest.empty() ? s : rest);
      auto s2 = pn.name.find('/');
      if (s2 != std::string::npos) {
        pn.ns = pn.name.substr(0, s2);
        pn.name = pn.name.substr(s2 + 1);
      }
    }
    pn.recovered = true;
    return pn;
  }
  // Hashed chain name: the first rule's comment may still carry the name.
  std::string text = split_comment(first_comment).text;
  for (const char* dir : {" ingress", " egress"}) {
    auto pos = text.rfind(dir);
    if (pos == std::string::npos || pos + std::string_view(dir).size() != text.size()) continue;
    std::string head = text.substr(0, pos);
    auto sp = head.find(' ');
    if (sp == std::string::npos) continue;
    std::string word = head.substr(0, sp), name = head.substr(sp + 1);
    if (word == "Policy") {
      pn.name = name;
    } else {
      for (auto& [k, longname] : kKinds)
        if (longname == word) pn.kind = std::string(k);
      if (pn.kind.empty()) continue;
      pn.name = name;
    }
    auto s2 = pn.name.find('/');
    if (s2 != std::string::npos) {
      pn.ns = pn.name.substr(0, s2);
      pn.name = pn.name.substr(s2 + 1);
    }
    pn.recovered = true;
    return pn;
  }
  return pn;
}

std::optional<std::string> tier_from_comment(std::string_view text) {
  // Calico before OSS tiers: every policy sat in the implicit tier "default".
  if (text == "Start of policies") return "default";
  for (std::string_view p : {"Start of tier ", "End of tier "}) {
    auto pos = text.find(p);
    if (pos == std::string_view::npos) continue;
    auto rest = text.substr(pos + p.size());
    auto end = rest.find_first_of(". ");
    // Tier names cannot contain '.', so the first dot ends the name.
    return std::string(rest.substr(0, end));
  }
  return std::nullopt;
}

}  // namespace dpi::calico
