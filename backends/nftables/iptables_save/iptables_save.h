// `iptables-save` / `ip6tables-save` text (also iptables-restore input, legacy or nft nodes)
// compiled into the same Ruleset the nft JSON loader builds, so the evaluator, attribution and
// reports do not know which one they read. Text carries no rule handles: each rule's handle is
// its 1-based line number in the file and its text the original "-A ..." line.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "backends/nftables/model.h"
#include "backends/nftables/xt/ipsets.h"
#include "core/result.h"

namespace dpi::nft {

struct IptablesSaveOptions {
  // The node's ipsets ("-m set --match-set NAME"): null or a missing name leaves that match
  // indeterminate (an UnknownStmt naming the set).
  const IpsetCatalog* ipsets = nullptr;
  // "ip" or "ip6"; empty: ip6 when the header says ip6tables-save or an address has a ':'.
  std::string family;
};

// origin names the input in errors and is the ruleset's origin ("file:line: ..." messages).
// Errors: bad_input, one line naming file:line and what was expected.
Result<std::unique_ptr<Ruleset>> load_iptables_save(std::string_view text,
                                                    const std::string& origin,
                                                    const IptablesSaveOptions& opts = {});

}  // namespace dpi::nft
