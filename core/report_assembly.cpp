#include "core/report_assembly.h"

#include <fmt/format.h>

namespace dpi {

void add_flow_assumptions(Report& rep, const Flow& flow, bool tcp_flags) {
  rep.assumptions.push_back(fmt::format("conntrack state {} (--ct)", ct_state_name(flow.ct)));
  if (flow.has_ports() && flow.sport && flow.sport_defaulted)
    rep.assumptions.push_back(
        fmt::format("source port {} (any ephemeral port; pass --sport to choose)", *flow.sport));
  if (tcp_flags && flow.l4proto == 6)
    rep.assumptions.push_back(flow.ct == CtState::new_ ? "TCP flags: SYN" : "TCP flags: ACK");
}

void add_routing_assumptions(Report& rep, const NodeInfo* node) {
  if (node && node->rules_read)
    rep.assumptions.push_back(
        "routing: the node's ip rules by priority (with the packet's mark and input interface), "
        "longest prefix within a table");
  else if (node)
    rep.assumptions.push_back(
        "routing: no ip rules in the node information, so the kernel's default ones are assumed "
        "(local, then main, then default table; other tables after them)");
  if (!node)
    rep.assumptions.push_back(
        "no node routes or addresses (ruleset file without --node or --netns)");
}

void add_route_assumptions(Report& rep, const RouteChoice& route) {
  if (!route.ip_rule.empty())
    rep.assumptions.push_back(fmt::format("routed by ip rule {}", route.ip_rule));
  if (route.local && !route.local_given)
    rep.assumptions.push_back("the destination is this node: delivered locally (input hook)");
  else if (!route.oif.empty() && !route.oif_given)
    rep.assumptions.push_back(
        fmt::format("output interface {} (the node's route to the {}destination)", route.oif,
                    route.translated ? "translated " : ""));
}

bool add_outcomes(Report& rep, const std::vector<Alternative>& alternatives) {
  bool same = true;
  for (const auto& a : alternatives) {
    const Report& r = a.report;
    rep.outcomes.push_back(
        Outcome{a.choice, r.verdict, r.decided_by.rule, r.decided_by.summary, r.nat});
    same = same && r.verdict == alternatives.front().report.verdict;
  }
  return same;
}

void depends_on_choice(Report& rep, std::string expression, std::string why, std::string summary) {
  rep.verdict = Verdict::indeterminate;
  rep.indeterminate_reason = IndeterminateReason{RuleRef{}, std::move(expression), std::move(why)};
  rep.decided_by = Decision{};
  rep.decided_by.summary = std::move(summary);
}

}  // namespace dpi
