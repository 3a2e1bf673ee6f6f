// Turns one iptables-nft compat expression (name, revision, kernel struct) into the model's
// statements, so rules written by iptables-nft evaluate like native ones.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "backends/nftables/model.h"
#include "backends/nftables/xt/ipsets.h"
#include "backends/nftables/xt/xt_payloads.h"

namespace dpi::nft {

struct XtContext {
  Ruleset& rs;                 // anonymous sets built for a match are added to rs.sets
  const IpsetCatalog* ipsets;  // null: "-m set" cannot be decoded
  const std::string& family;   // the rule's table family: "ip" or "ip6"
  const std::string& table;
};

struct XtDecoded {
  std::vector<Stmt> stmts;  // all must hold (AND), in order; a target's effect comes last
  std::string comment;      // text of an xt "comment" match
};

// nullopt, with *why naming the match/target and revision, when the expression is not
// understood; the caller then keeps an UnknownStmt.
std::optional<XtDecoded> decode_xt(const XtExpr& x, XtContext& ctx, std::string* why);

}  // namespace dpi::nft
