// The nftables section of a snapshot (core/snapshot.h, docs/snapshot.md): the nft JSON ruleset,
// the iptables-nft compat payloads and ipsets that JSON leaves out, and the node's routes. Lets a
// laptop answer exactly as the node would. In a version 1 snapshot these were the document's own
// members.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "backends/nftables/source.h"

namespace dpi::nft {

// The section's name: the backend's (NftablesDataplane::name()).
inline constexpr const char* kSnapshotSection = "nftables";

struct SnapshotParts {
  nlohmann::json ruleset;  // {"nftables": [...]}
  const XtPayloads* xt = nullptr;
  const IpsetCatalog* ipsets = nullptr;
  const NodeInfo* node = nullptr;
};

// The section: {"ruleset", "xt", "ipsets", "node"}.
nlohmann::json make_snapshot(const SnapshotParts& parts);

struct SnapshotData {
  const nlohmann::json* ruleset = nullptr;  // {"nftables": [...]}, in the document read
  XtPayloads xt;
  IpsetCatalog ipsets;
  std::optional<NodeInfo> node;
};

// Whether j is a snapshot document (dpi::is_snapshot), rather than `nft -j` output.
bool is_snapshot(const nlohmann::json& j);
// The nftables section of the snapshot document j (version 2, or a version 1 document's top
// level). not_found when the snapshot has no nftables section. data.ruleset points into j.
Result<SnapshotData> read_snapshot(const nlohmann::json& j, const std::string& origin);

}  // namespace dpi::nft
