#include "core/compare.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/report_json.h"

namespace dpi {

using nlohmann::json;

std::string_view change_name(Change c) {
  switch (c) {
    case Change::same: return "same";
    case Change::meaning: return "meaning";
    case Change::verdict: return "verdict";
    case Change::indeterminate: return "indeterminate";
  }
  return "same";
}

namespace {

std::string decision_meaning(const Decision& d) {
  std::string s{decision_kind_name(d.kind)};
  if (!d.tier.empty()) s += " tier " + d.tier;
  if (d.policy) s += " policy " + (d.policy->ns.empty() ? "" : d.policy->ns + "/") + d.policy->name;
  if (d.rule_index) s += fmt::format(" rule {}", *d.rule_index);
  return s;
}

std::string verdict_word(const Report& r) {
  switch (r.verdict) {
    case Verdict::allow: return "allowed";
    case Verdict::deny: return "denied";
    default: return "indeterminate";
  }
}

json side(const Report& r) {
  json j = {{"verdict", verdict_name(r.verdict)},
            {"kind", decision_kind_name(r.decided_by.kind)},
            {"summary", r.decided_by.summary},
            {"rule", r.decided_by.rule ? to_json(*r.decided_by.rule) : json(nullptr)},
            {"meaning", meaning_of(r)}};
  if (r.indeterminate_reason) j["indeterminate_reason"] = r.indeterminate_reason->why;
  return j;
}

}  // namespace

std::string explain(const Report& r) {
  std::string s = verdict_word(r);
  if (r.verdict == Verdict::indeterminate && r.indeterminate_reason)
    s += ": " + r.indeterminate_reason->why;
  else if (!r.decided_by.summary.empty())
    s += ": " + r.decided_by.summary;
  return s;
}

std::string_view change_tag(Change c) {
  switch (c) {
    case Change::same: return "same";
    case Change::meaning: return "MEANING";
    case Change::verdict: return "VERDICT";
    case Change::indeterminate: return "UNKNOWN";
  }
  return "same";
}

FlowOutcome outcome_of(const FlowComparison& f) {
  switch (f.change) {
    case Change::same:
      return f.before.verdict == Verdict::allow ? FlowOutcome::same_allow : FlowOutcome::same_deny;
    case Change::meaning: return FlowOutcome::meaning;
    case Change::verdict: return FlowOutcome::verdict;
    case Change::indeterminate: return FlowOutcome::indeterminate;
  }
  return FlowOutcome::indeterminate;
}

std::string_view outcome_name(FlowOutcome o) {
  switch (o) {
    case FlowOutcome::same_allow: return "same-allow";
    case FlowOutcome::same_deny: return "same-deny";
    case FlowOutcome::verdict: return "verdict";
    case FlowOutcome::meaning: return "meaning";
    case FlowOutcome::indeterminate: return "indeterminate";
  }
  return "indeterminate";
}

std::string_view outcome_label(FlowOutcome o) {
  switch (o) {
    case FlowOutcome::same_allow: return "same verdict, allowed";
    case FlowOutcome::same_deny: return "same verdict, denied";
    case FlowOutcome::verdict: return "verdict changed";
    case FlowOutcome::meaning: return "same verdict, decided differently";
    case FlowOutcome::indeterminate: return "indeterminate";
  }
  return "indeterminate";
}

std::string meaning_of(const Report& r) {
  std::string s{verdict_name(r.verdict)};
  if (r.stages.empty()) return s + "; " + std::string(decision_kind_name(r.decided_by.kind));
  for (const auto& st : r.stages)
    s += fmt::format("; {} {} {}: {}", st.role, st.endpoint, st.outcome,
                     decision_meaning(st.decision));
  return s;
}

Change compare_reports(const Report& before, const Report& after) {
  if (before.verdict == Verdict::indeterminate || after.verdict == Verdict::indeterminate)
    return Change::indeterminate;
  if (before.verdict != after.verdict) return Change::verdict;
  return meaning_of(before) == meaning_of(after) ? Change::same : Change::meaning;
}

std::size_t Comparison::count(Change c) const {
  std::size_t n = 0;
  for (const auto& f : flows) n += f.change == c;
  return n;
}

std::size_t Comparison::count(FlowOutcome o) const {
  std::size_t n = 0;
  for (const auto& f : flows) n += outcome_of(f) == o;
  return n;
}

json to_json(const Comparison& c) {
  json flows = json::array();
  for (const auto& f : c.flows) {
    const Flow& fl = f.before.flow;
    json flow = {{"src", fl.src.str()},
                 {"dst", fl.dst.str()},
                 {"proto", l4proto_name(fl.l4proto)},
                 {"sport", fl.sport ? json(*fl.sport) : json(nullptr)},
                 {"dport", fl.dport ? json(*fl.dport) : json(nullptr)}};
    // Additive, as in the report: only when names are known.
    if (!f.before.src_name.empty()) flow["src_name"] = f.before.src_name;
    if (!f.before.dst_name.empty()) flow["dst_name"] = f.before.dst_name;
    flows.push_back({{"flow", flow},
                     {"change", change_name(f.change)},
                     {"before", side(f.before)},
                     {"after", side(f.after)}});
  }
  json counts = json::object();
  for (Change ch : {Change::same, Change::meaning, Change::verdict, Change::indeterminate})
    counts[std::string(change_name(ch))] = c.count(ch);
  json out = {{"schema", "dpinspect.compare/v1"},
              {"before", {{"source", c.before_source}}},
              {"after", {{"source", c.after_source}}},
              {"counts", counts},
              {"flows", flows}};
  if (!c.names_source.empty()) out["names_source"] = c.names_source;
  return out;
}

std::string render_text(const Comparison& c, bool all) {
  std::string out = fmt::format("before: {}\nafter:  {}\n", c.before_source, c.after_source);
  if (!c.names_source.empty()) out += fmt::format("names:  {}\n", c.names_source);
  out += fmt::format(
      "{} flows: {} same, {} verdict changed, {} same verdict decided differently, {} "
      "indeterminate\n",
      c.flows.size(), c.count(Change::same), c.count(Change::verdict), c.count(Change::meaning),
      c.count(Change::indeterminate));
  for (const auto& f : c.flows) {
    if (f.change == Change::same && !all) continue;
    out += fmt::format("\n{:<8} {}\n  before: {}\n  after:  {}\n", change_tag(f.change),
                       describe(f.before.flow), explain(f.before), explain(f.after));
    if (!f.before.src_name.empty() || !f.before.dst_name.empty())
      out.insert(
          out.rfind("\n  before: "),
          fmt::format("\n  names:  {} -> {}", f.before.src_name.empty() ? "?" : f.before.src_name,
                      f.before.dst_name.empty() ? "?" : f.before.dst_name));
  }
  return out;
}

}  // namespace dpi
