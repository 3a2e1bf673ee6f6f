// Which Calico layouts a ruleset holds, and the version clues it shows.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "backends/nftables/model.h"

namespace dpi::nft {

struct Detection {
  bool native_calico = false;    // table ip/ip6 calico
  bool iptables_calico = false;  // cali-* chains in an iptables-nft table
  bool kube_proxy_nft = false;
  bool kube_proxy_iptables = false;
  std::size_t xt_expressions = 0;
  std::set<int> nflog_groups;  // the groups of log rules in Calico chains (flow logs)
  std::size_t tables = 0, chains = 0, rules = 0, sets = 0;
  std::vector<std::string> clues;

  std::string kind() const;  // nftables, iptables-nft, nftables+iptables-nft, none
  std::vector<std::string> layouts() const;
  std::string version_hint;
};

Detection detect(const Ruleset& rs);

}  // namespace dpi::nft
