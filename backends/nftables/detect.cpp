#include "backends/nftables/detect.h"

#include <fmt/format.h>

namespace dpi::nft {

std::string Detection::kind() const {
  if (native_calico && iptables_calico) return "nftables+iptables-nft";
  if (native_calico) return "nftables";
  if (iptables_calico) return "iptables-nft";
  return "none";
}

std::vector<std::string> Detection::layouts() const {
  std::vector<std::string> l;
  if (native_calico) l.push_back("nftables (table ip calico)");
  if (iptables_calico) l.push_back("iptables-nft (table ip filter, cali-* chains)");
  return l;
}

Detection detect(const Ruleset& rs) {
  Detection d;
  d.tables = rs.tables.size();
  d.chains = rs.chains.size();
  d.rules = rs.rule_count;
  for (const auto& s : rs.sets)
    if (!s.name.empty()) ++d.sets;
  bool nflog = false, kind_names = false, tier_names = false;
  for (const auto& c : rs.chains) {
    bool cali = c.name.rfind("cali-", 0) == 0 || c.name.find("-cali-") != std::string::npos;
    if (c.table == "calico" && cali) d.native_calico = true;
    if (c.table != "calico" && c.name.rfind("cali-", 0) == 0) d.iptables_calico = true;
    if (c.table == "kube-proxy") d.kube_proxy_nft = true;
    if (c.table == "nat" && c.name == "KUBE-SERVICES") d.kube_proxy_iptables = true;
    auto pi = c.name.find("cali-pi-");
    if (pi == std::string::npos) pi = c.name.find("cali-po-");
    if (pi != std::string::npos && c.name.size() > pi + 8 && c.name[pi + 8] != '_') {
      auto suffix = c.name.substr(pi + 8);
      auto kind = suffix.substr(0, suffix.find('/'));
      if (kind == "np" || kind == "gnp" || kind == "knp" || kind == "kcnp" || kind == "snp" ||
          kind == "sgnp")
        kind_names = true;
      else if (suffix.find('/') != std::string::npos)
        tier_names = true;
    }
    for (const auto& r : c.rules) {
      if (!cali) continue;
      if (r.facts.log_group) {
        nflog = true;
        d.nflog_groups.insert(*r.facts.log_group);
      }
      for (const auto& st : r.stmts)
        if (auto* u = std::get_if<UnknownStmt>(&st); u && u->expression.rfind("xt ", 0) == 0)
          ++d.xt_expressions;
    }
  }
  if (d.native_calico)
    d.clues.push_back(
        "table calico with layer-prefixed cali chains: Calico's native nftables mode (v3.29+)");
  if (d.iptables_calico)
    d.clues.push_back(
        "cali-* chains in iptables tables: Calico's iptables dataplane through iptables-nft");
  if (rs.marks.drop_read)
    d.clues.push_back(fmt::format("drop mark 0x{:x} in use: Calico v3.30+ mark layout ({})",
                                  rs.marks.bits.drop, rs.marks.text()));
  else if (!rs.marks.is_default())
    d.clues.push_back(
        fmt::format("Calico mark bits {}: not the default mask 0xffff0000", rs.marks.text()));
  if (nflog)
    d.clues.push_back("NFLOG (log group) rules in Calico chains: flow logs are on (v3.30+)");
  if (kind_names) d.clues.push_back("policy chains named kind/[ns/]name: Calico v3.32+ naming");
  if (tier_names) d.clues.push_back("policy chains named tier/name: Calico v3.29-v3.31 naming");
  if (d.xt_expressions)
    d.clues.push_back(
        fmt::format("{} iptables-nft compat (xt) expressions in Calico chains: flows reaching them "
                    "are indeterminate until decoded",
                    d.xt_expressions));
  if (d.kube_proxy_nft) d.clues.push_back("table kube-proxy: kube-proxy in nftables mode");
  if (d.kube_proxy_iptables)
    d.clues.push_back("KUBE-SERVICES in table nat: kube-proxy in iptables mode");
  if (kind_names)
    d.version_hint = "v3.32+";
  else if (rs.marks.drop_read || nflog)
    d.version_hint = "v3.30+";
  else if (tier_names || d.native_calico)
    // Each clue's version is a lower bound; the native nftables mode itself came with v3.29.
    d.version_hint = "v3.29+";
  return d;
}

}  // namespace dpi::nft
