// Reads `nft -j list ruleset` output into the compiled Ruleset.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "backends/nftables/model.h"
#include "backends/nftables/xt/xt_payloads.h"
#include "core/result.h"

namespace dpi::nft {

struct IpsetCatalog;

struct LoadOptions {
  std::size_t max_bytes = std::size_t{256} << 20;
  // iptables-nft compat payloads read over netlink (nft's JSON only names them) and the ipsets
  // "-m set" refers to. Without them, xt expressions stay indeterminate.
  const XtPayloads* xt = nullptr;
  const IpsetCatalog* ipsets = nullptr;
};

// origin names the input in error messages ("node.json", "live netns node1").
Result<std::unique_ptr<Ruleset>> load_ruleset_json(std::string_view text, const std::string& origin,
                                                   const LoadOptions& opts = {});
// A parsed document, e.g. the "ruleset" member of a snapshot.
Result<std::unique_ptr<Ruleset>> load_ruleset_doc(const nlohmann::json& doc,
                                                  const std::string& origin,
                                                  const LoadOptions& opts = {});
// What every loader does once all chains and rules are in: rejects jump loops, derives the rules'
// Calico facts, lists base chains per hook in effective priority order, prepares the evaluator's
// integer forms. Shared by the nft JSON loader and the iptables-save parser.
Status finalize_ruleset(Ruleset& rs);
// Reads and parses a JSON file ("-" for stdin) with errors that name file, line and column.
Result<nlohmann::json> read_json_file(const std::string& path, const LoadOptions& opts = {});

}  // namespace dpi::nft
