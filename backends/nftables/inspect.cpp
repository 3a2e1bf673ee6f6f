#include "backends/nftables/inspect.h"

#include <fmt/format.h>

#include "backends/nftables/detect.h"
#include "backends/nftables/evaluator.h"
#include "core/calico/attribution.h"

namespace dpi::nft {

namespace {

std::optional<RuleRef> deciding_rule(const RunResult& r) {
  if (r.deciding_step) return r.path[*r.deciding_step].rule;
  return r.deciding_policy;
}

void fill_from_run(Report& rep, const RunResult& run, const MarkLayout& marks) {
  rep.verdict = run.verdict;
  rep.path = run.path;
  rep.nat = run.nat;
  rep.indeterminate_reason = run.indeterminate;
  for (const auto& a : run.assumptions) rep.assumptions.push_back(a);
  rep.decided_by = Decision{};
  rep.decided_by.rule = deciding_rule(run);
  if (!run.no_route.empty()) {
    rep.decided_by.kind = DecisionKind::unknown;
    rep.decided_by.summary = fmt::format("the node cannot route the flow: {}", run.no_route);
    rep.decided_by.action = "deny";
    return;
  }
  calico::attribute(rep, run.deciding_step, marks.bits);
}

}  // namespace

Result<Report> inspect(const Loaded& src, const Flow& flow) {
  const Ruleset& rs = *src.ruleset;
  Report rep;
  rep.flow = flow;
  Detection det = detect(rs);
  rep.dataplane.kind = det.kind() == "none" ? "nftables (no Calico tables)" : det.kind();
  rep.dataplane.source = src.description;
  rep.dataplane.calico_layouts = det.layouts();
  rep.dataplane.calico_version_hint = det.version_hint;
  if (det.kind() == "none") rep.warnings.push_back("no Calico chains found in this ruleset");

  const bool v4 = flow.src.is_v4();
  if (!rs.has_family("inet") && !rs.has_family(v4 ? "ip" : "ip6") &&
      (rs.has_family("ip") || rs.has_family("ip6")))
    return make_error(
        ErrorCode::bad_input,
        fmt::format("{}: the ruleset has no {} or inet tables, so it cannot judge an {} flow",
                    rs.origin, v4 ? "ip" : "ip6", v4 ? "IPv4" : "IPv6"));

  const NodeInfo* node = src.node ? &*src.node : nullptr;
  Evaluator ev(rs, node);
  auto fp = ev.plan(flow);
  if (!fp) return fp.error();
  rep.assumptions.push_back(fmt::format("conntrack state {} (--ct)", ct_state_name(flow.ct)));
  if (flow.has_ports() && flow.sport && flow.sport_defaulted)
    rep.assumptions.push_back(
        fmt::format("source port {} (any ephemeral port; pass --sport to choose)", *flow.sport));
  if (flow.l4proto == 6)
    rep.assumptions.push_back(flow.ct == CtState::new_ ? "TCP flags: SYN" : "TCP flags: ACK");
  for (const auto& n : fp->notes) rep.assumptions.push_back(n);
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
  if (flow.ct != CtState::new_)
    rep.assumptions.push_back(
        "NAT chains are skipped: only a connection's first packet traverses them");
  if (det.kind() != "none") {
    const MarkLayout& m = rs.marks;
    if (!m.accept_read || !m.pass_read)
      rep.assumptions.push_back(fmt::format(
          "Calico mark bits {}: no endpoint chain shows the {} bit, the v3.30+ default is assumed",
          m.text(),
          !m.accept_read && !m.pass_read ? "accept and pass"
          : m.accept_read                ? "pass"
                                         : "accept"));
    else if (!m.is_default())
      rep.assumptions.push_back(fmt::format(
          "Calico mark bits {} (read from the rules; not the default mask 0xffff0000){}", m.text(),
          m.drop_read ? "" : "; no deny rule shows the drop bit"));
    for (const auto& c : m.conflicts)
      rep.warnings.push_back(fmt::format("endpoint chains disagree on Calico's mark bits: {}", c));
  }

  auto runs = ev.evaluate(flow, *fp);
  fill_from_run(rep, runs.front(), rs.marks);
  if (runs.size() > 1) {
    bool same = true;
    for (const auto& r : runs) {
      Report alt;
      alt.flow = flow;
      fill_from_run(alt, r, rs.marks);
      rep.outcomes.push_back(
          Outcome{r.choice, r.verdict, deciding_rule(r), alt.decided_by.summary});
      same = same && r.verdict == runs.front().verdict;
    }
    bool capped = runs.size() >= EvalLimits{}.max_outcomes;
    if (!same || capped) {
      // Which branch the kernel takes is random: no single verdict or rule is the answer.
      rep.verdict = Verdict::indeterminate;
      rep.indeterminate_reason = IndeterminateReason{
          RuleRef{}, "numgen",
          capped ? fmt::format("the ruleset chooses at random among more than {} outcomes; only "
                               "the first {} were explored",
                               runs.size(), runs.size())
                 : "the verdict depends on a random choice (load balancing); see outcomes"};
      rep.decided_by = Decision{};
      rep.decided_by.summary = "depends on which branch the random choice picks: see outcomes";
    }
  }
  const RunResult& first = runs.front();
  if (!first.route_rule.empty())
    rep.assumptions.push_back(fmt::format("routed by ip rule {}", first.route_rule));
  if (first.local_delivery && fp->forced_local != std::optional<bool>(true))
    rep.assumptions.push_back("the destination is this node: delivered locally (input hook)");
  else if (!first.oif.empty() && flow.oif.empty())
    rep.assumptions.push_back(
        fmt::format("output interface {} (the node's route to the {}destination)", first.oif,
                    first.nat.empty() ? "" : "translated "));
  rep.evidence = {{"backend", "nftables"},
                  {"nft_version", rs.nft_version},
                  {"ruleset_generation",
                   src.generation ? nlohmann::json(*src.generation) : nlohmann::json(nullptr)},
                  {"tables", det.tables},
                  {"chains", det.chains},
                  {"rules", det.rules},
                  {"sets", det.sets},
                  {"policy_hook", runs.front().policy_hook},
                  {"oif", runs.front().oif.empty() ? nlohmann::json(nullptr)
                                                   : nlohmann::json(runs.front().oif)},
                  {"clues", det.clues}};
  return rep;
}

}  // namespace dpi::nft
