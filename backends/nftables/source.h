// Where a ruleset and the node's routes come from: a live network namespace or files.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "backends/nftables/json_loader.h"
#include "backends/nftables/model.h"
#include "backends/nftables/xt/ipsets.h"
#include "backends/nftables/xt/xt_payloads.h"
#include "core/node_info.h"
#include "core/result.h"

namespace dpi::nft {

struct SourceSpec {
  std::string ruleset_file;        // nft -j list ruleset output; "-" for stdin; empty = live
  std::string node_file;           // NodeInfo JSON for offline use
  std::string iptables_save_file;  // iptables-save / ip6tables-save text; "-" for stdin
  std::string ipset_save_file;     // `ipset save` text for its "-m set" matches
  std::string netns;               // empty = the current namespace
  LoadOptions load;
};

struct Loaded {
  std::unique_ptr<Ruleset> ruleset;
  std::optional<NodeInfo> node;
  std::string description;  // "live netns node1", "file node.json"
  std::optional<uint32_t> generation;
  // Set for a live read: the namespace it came from ("" = the caller's), where live counters
  // are read again (inspect --counters).
  std::optional<std::string> live_netns;
  // Kept with the ruleset: decoded xt matches point into them.
  std::shared_ptr<XtPayloads> xt;
  std::shared_ptr<IpsetCatalog> ipsets;
  // A snapshot's `snapshot --k8s` names (LoadedDataplane::snapshot_k8s).
  std::optional<nlohmann::json> k8s;
};

Result<Loaded> load_source(const SourceSpec& spec);
// A --node file (interfaces, routes, ip rules), plain or wrapped as {"node": ...}.
Result<NodeInfo> read_node_file(const std::string& path, const LoadOptions& load);
// The live dataplane of spec.netns as the nftables section of a snapshot (snapshot.h).
Result<nlohmann::json> snapshot_live(const SourceSpec& spec);

}  // namespace dpi::nft
