#include "core/layers.h"

#include <optional>

namespace dpi {

std::string_view layer_name(Layer l) {
  switch (l) {
    case Layer::tc: return "tc";
    case Layer::netfilter: return "netfilter";
  }
  return "?";
}

bool layer_applies(const Report& r) {
  return !(r.verdict == Verdict::indeterminate && r.indeterminate_reason &&
           r.indeterminate_reason->why.find(kOutsideLayerScope) != std::string::npos);
}

namespace {

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

std::string one_line_why(const Report& r) {
  if (r.verdict == Verdict::indeterminate && r.indeterminate_reason)
    return first_line(r.indeterminate_reason->why);
  return first_line(r.decided_by.summary);
}

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// Where a denial happened relative to the others, a packet crossing the node: a tc ingress hook
// runs before netfilter, netfilter's hooks, then a tc egress hook. nullopt: cannot say (the
// report does not show the hook).
std::optional<int> deny_position(const LayerAnswer& a) {
  switch (a.layer) {
    case Layer::netfilter: return 1;
    case Layer::tc: break;
  }
  std::string hook;
  if (const BpfLocation* at = a.report.decided_by.rule ? a.report.decided_by.rule->bpf() : nullptr)
    hook = at->attach;
  else if (!a.report.stages.empty())
    hook = a.report.stages.back().chain;
  if (starts_with(hook, "tc ingress")) return 0;
  if (starts_with(hook, "tc egress")) return 2;
  return std::nullopt;
}

// The deniers that decided: the first in packet order when every position is known and one is
// first, else all of them.
std::vector<std::size_t> first_deniers(const std::vector<LayerAnswer>& answers,
                                       const std::vector<std::size_t>& deniers) {
  std::optional<std::size_t> first;
  bool tie = false;
  int first_pos = 0;
  for (std::size_t i : deniers) {
    auto pos = deny_position(answers[i]);
    if (!pos) return deniers;
    if (!first || *pos < first_pos) {
      first = i;
      first_pos = *pos;
      tie = false;
    } else if (*pos == first_pos) {
      tie = true;
    }
  }
  if (tie) return deniers;
  return {*first};
}

}  // namespace

Report combine_layers(std::vector<LayerAnswer> answers) {
  if (answers.size() == 1) return std::move(answers.front().report);
  std::vector<std::size_t> applying, deniers, unknown;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const Report& r = answers[i].report;
    if (!layer_applies(r)) continue;
    applying.push_back(i);
    switch (r.verdict) {
      case Verdict::deny: deniers.push_back(i); break;
      case Verdict::indeterminate: unknown.push_back(i); break;
      case Verdict::allow: break;
    }
  }
  // The packet passes every layer that applies: allowed only when all allow, denied when one
  // denies, indeterminate when one cannot tell and none denies.
  std::vector<std::size_t> decided;
  if (!deniers.empty())
    decided = first_deniers(answers, deniers);
  else if (!unknown.empty())
    decided = unknown;
  else
    decided = applying;
  // No layer judges the flow: the first one's answer (indeterminate), no layer decided.
  const std::size_t body = decided.empty() ? 0 : decided.front();
  std::vector<LayerVerdict> layers;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const LayerAnswer& a = answers[i];
    LayerVerdict v;
    v.dataplane = a.dataplane;
    v.layer = std::string(layer_name(a.layer));
    v.verdict = a.report.verdict;
    v.applies = layer_applies(a.report);
    for (std::size_t d : decided) v.decided = v.decided || d == i;
    v.why = one_line_why(a.report);
    layers.push_back(std::move(v));
  }
  Report out = std::move(answers[body].report);
  out.layers = std::move(layers);
  return out;
}

}  // namespace dpi
