// Comparing two dataplanes flow by flow: does every flow keep its verdict, and its Calico
// meaning (which stage, tier, policy and rule decided), across a migration or an upgrade?
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/report.h"

namespace dpi {

enum class Change {
  same,           // same verdict, same Calico meaning
  meaning,        // same verdict, decided differently (another tier, policy, rule or stage)
  verdict,        // allowed on one side, denied on the other
  indeterminate,  // either side could not be decided
};
std::string_view change_name(Change c);

// What a report means in Calico's terms, without rule handles, chain names or mark values (which
// differ between dataplanes that implement the same policy): per endpoint stage its role,
// endpoint, outcome, decision kind, tier, policy and rule index; without stages the decision kind.
std::string meaning_of(const Report& r);

struct FlowComparison {
  Report before, after;
  Change change = Change::same;
};

// How a flow is counted and coloured in the Markdown and HTML renderings: a `same` flow split by
// the verdict both sides agree on, the other changes as they are.
enum class FlowOutcome { same_allow, same_deny, verdict, meaning, indeterminate };
inline constexpr FlowOutcome kFlowOutcomes[] = {FlowOutcome::same_allow, FlowOutcome::same_deny,
                                                FlowOutcome::verdict, FlowOutcome::meaning,
                                                FlowOutcome::indeterminate};
FlowOutcome outcome_of(const FlowComparison& f);
// "same-allow", "same-deny", "verdict", "meaning", "indeterminate" (HTML's data-outcome).
std::string_view outcome_name(FlowOutcome o);
// For people: "same verdict, allowed", ..., "verdict changed".
std::string_view outcome_label(FlowOutcome o);

// One side's explanation as the text rendering prints it: "allowed: <summary>", or
// "indeterminate: <reason>".
std::string explain(const Report& r);
// The tag the text and Markdown renderings give a flow: VERDICT, MEANING, UNKNOWN or same.
std::string_view change_tag(Change c);

struct Comparison {
  std::string before_source, after_source;
  std::vector<FlowComparison> flows;
  // Where the flows' pod and service names came from (compare --k8s), or "" without names.
  std::string names_source;
  std::size_t count(Change c) const;
  std::size_t count(FlowOutcome o) const;
};

Change compare_reports(const Report& before, const Report& after);

// "dpinspect.compare/v1": sources, counts, and per flow the change and both sides' verdict,
// decision kind, summary and deciding rule.
nlohmann::json to_json(const Comparison& c);
// Counts, then every flow that is not `same` with both explanations (all flows with `all`).
std::string render_text(const Comparison& c, bool all);

}  // namespace dpi
