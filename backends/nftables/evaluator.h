// Runs one flow through the compiled ruleset the way the kernel would: every base chain of
// every hook on the flow's path, in priority order, exploring each branch of a random choice.
#pragma once

#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "backends/nftables/model.h"
#include "core/node_info.h"
#include "core/report.h"
#include "core/route_index.h"

namespace dpi::nft {

// How the flow crosses the node; derived from routes (node info) or given by the user.
struct FlowPath {
  bool from_host = false;  // the node itself sends it (output hook)
  std::string iif;         // ingress interface when not from the host
  // Filled by the evaluator after prerouting NAT, unless forced by the user.
  std::optional<std::string> forced_oif;
  std::optional<bool> forced_local;  // destination is this node
  std::vector<std::string> notes;    // how iif/oif were decided, for the report's assumptions
};

struct RunResult {
  Verdict verdict = Verdict::indeterminate;
  std::optional<std::size_t> deciding_step;  // index into path
  std::optional<RuleRef> deciding_policy;    // when a base chain policy decided
  std::string policy_hook;                   // forward, input or output
  std::vector<PathStep> path;
  std::vector<NatStep> nat;
  std::vector<std::string> assumptions;
  std::optional<IndeterminateReason> indeterminate;
  std::string choice;  // e.g. "numgen mod 2 = 1", "meta random & 0x7fffffff < 0x40000000 matched"
  std::vector<std::string> choice_kinds;  // "numgen", "meta random": what made the choices
  std::string oif;
  bool local_delivery = false;
  std::string no_route;    // set when the kernel would have no route
  std::string route_rule;  // the ip rule that chose the route, when not a default one
};

struct EvalLimits {
  std::size_t max_outcomes = 64;
  std::size_t max_steps = 1'000'000;
};

// The verdict only, for bulk runs (compare, matrices): no path, no strings, and no allocation
// per flow once the scratch buffers have grown. Same rules as evaluate().
struct FastVerdict {
  Verdict verdict = Verdict::indeterminate;
  // The deciding rule and its chain; rule is null when a base chain's policy decided (chain is
  // then that base chain) or nothing did. For an indeterminate verdict: where evaluation stopped.
  const Chain* chain = nullptr;
  const Rule* rule = nullptr;
  // Random-choice outcomes explored; when they disagree the verdict is indeterminate and
  // chain/rule describe the first outcome.
  uint32_t outcomes = 1;
  uint32_t rules = 0;  // rules evaluated, over all outcomes
};

// Reusable buffers for Evaluator::verdict; one per thread.
struct EvalScratch {
  std::vector<uint32_t> forced, arity, next;
};

class Evaluator {
 public:
  // node may be null (offline file without --node): fib and routing then need user input.
  Evaluator(const Ruleset& rs, const NodeInfo* node, EvalLimits limits = {})
      : rs_(rs), node_(node), limits_(limits) {
    if (node_) routes_ = RouteIndex(*node_);
  }

  // Derives the flow's path from the node's routes, or from --iif/--oif.
  Result<FlowPath> plan(const Flow& flow) const;
  // One result per possible outcome (several only when the ruleset chooses at random).
  std::vector<RunResult> evaluate(const Flow& flow, const FlowPath& fp) const;
  // Verdict-only mode; thread-safe with one scratch per thread.
  FastVerdict verdict(const Flow& flow, const FlowPath& fp, EvalScratch& sc) const;

 private:
  const Ruleset& rs_;
  const NodeInfo* node_;
  EvalLimits limits_;
  RouteIndex routes_;
};

}  // namespace dpi::nft
