// A node's dataplane captured in one file ("dpinspect.snapshot/v1"): the nft JSON ruleset, the
// iptables-nft compat payloads and ipsets that JSON leaves out, and the node's routes. Lets a
// laptop answer exactly as the node would.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "backends/nftables/source.h"

namespace dpi::nft {

inline constexpr const char* kSnapshotSchema = "dpinspect.snapshot/v1";

struct SnapshotParts {
  nlohmann::json ruleset;  // {"nftables": [...]}
  const XtPayloads* xt = nullptr;
  const IpsetCatalog* ipsets = nullptr;
  const NodeInfo* node = nullptr;
  std::string source;
};

nlohmann::json make_snapshot(const SnapshotParts& parts);

struct SnapshotData {
  std::string ruleset_text;  // re-serialized {"nftables": [...]}, for the loader
  XtPayloads xt;
  IpsetCatalog ipsets;
  std::optional<NodeInfo> node;
};

bool is_snapshot(const nlohmann::json& j);
Result<SnapshotData> read_snapshot(const nlohmann::json& j, const std::string& origin);

}  // namespace dpi::nft
