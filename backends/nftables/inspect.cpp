#include "backends/nftables/inspect.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "backends/nftables/calico_positions.h"
#include "backends/nftables/detect.h"
#include "backends/nftables/evaluator.h"
#include "core/report_assembly.h"

namespace dpi::nft {

namespace {

std::optional<RuleRef> deciding_rule(const RunResult& r) {
  if (r.deciding_step) return r.path[*r.deciding_step].rule;
  return r.deciding_policy;
}

void fill_from_run(Report& rep, const RunResult& run, const MarkLayout& marks) {
  rep.verdict = run.verdict;
  rep.path = run.path;
  rep.policy_hook = run.policy_hook;
  rep.nat = run.nat;
  rep.indeterminate_reason = run.indeterminate;
  for (const auto& a : run.assumptions) rep.assumptions.push_back(a);
  rep.decided_by = Decision{};
  rep.decided_by.rule = deciding_rule(run);
  if (!run.no_route.empty()) {
    // Dropped before any Calico chain: the route lookup decided.
    calico::Located at;
    at.position.kind = calico::PositionKind::no_route;
    at.position.action = calico::Action::deny;
    at.position.why = run.no_route;
    at.rule = rep.decided_by.rule;
    calico::explain(rep, at);
    return;
  }
  attribute(rep, run.deciding_step, marks.bits);
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
  add_flow_assumptions(rep, flow, true);
  for (const auto& n : fp->notes) rep.assumptions.push_back(n);
  add_routing_assumptions(rep, node);
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
    std::vector<Alternative> alts;
    alts.reserve(runs.size());
    for (const auto& r : runs) {
      Alternative a{r.choice, Report{}};
      a.report.flow = flow;
      fill_from_run(a.report, r, rs.marks);
      alts.push_back(std::move(a));
    }
    bool same = add_outcomes(rep, alts);
    bool capped = runs.size() >= EvalLimits{}.max_outcomes;
    // What chose: "numgen", "meta random" or both, in the order first met.
    std::vector<std::string> kinds;
    for (const auto& r : runs)
      for (const auto& k : r.choice_kinds)
        if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
    if (!same || capped)
      depends_on_choice(
          rep, fmt::format("{}", fmt::join(kinds, ", ")),
          capped ? fmt::format("the ruleset chooses at random among more than {} outcomes; only "
                               "the first {} were explored",
                               runs.size(), runs.size())
                 : "the verdict depends on a random choice (load balancing); see outcomes",
          "depends on which branch the random choice picks: see outcomes");
  }
  const RunResult& first = runs.front();
  RouteChoice route;
  route.ip_rule = first.route_rule;
  route.local = first.local_delivery;
  route.local_given = fp->forced_local == std::optional<bool>(true);
  route.oif = first.oif;
  route.oif_given = !flow.oif.empty();
  route.translated = !first.nat.empty();
  add_route_assumptions(rep, route);
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
