#include "core/trace.h"

#include <fmt/format.h>

#include "core/report_json.h"

namespace dpi {

namespace {

std::string at_text(const NftRuleLocation& at) {
  std::string s = fmt::format("{} {} {}", at.family, at.table, at.chain);
  if (at.handle) s += fmt::format(" handle {}", *at.handle);
  return s;
}

bool same_rule(const NftRuleLocation& a, const NftRuleLocation& b) {
  return a.family == b.family && a.table == b.table && a.chain == b.chain && a.handle == b.handle;
}

std::string verdict_upper(Verdict v) {
  switch (v) {
    case Verdict::allow: return "ALLOWED";
    case Verdict::deny: return "DENIED";
    case Verdict::indeterminate: return "INDETERMINATE";
  }
  return "INDETERMINATE";
}

}  // namespace

std::vector<std::string> trace_differences(const Report& predicted, const KernelPath& kernel) {
  std::vector<std::string> out;
  if (!kernel.seen) return out;
  if (predicted.verdict != kernel.verdict)
    out.push_back(fmt::format("verdict: kernel {}, prediction {}", verdict_name(kernel.verdict),
                              verdict_name(predicted.verdict)));
  const auto& rule = predicted.decided_by.rule;
  if (!rule || rule->bpf()) return out;
  const NftRuleLocation& want = rule->nft();
  if (!want.handle) {
    // A base chain's policy: the kernel reports it as a policy event of that chain.
    bool met = false;
    for (const auto& e : kernel.events)
      met = met || (e.kind == "policy" && e.at.family == want.family && e.at.table == want.table &&
                    e.at.chain == want.chain);
    if (!met)
      out.push_back(fmt::format("the kernel never applied the policy of chain {} (predicted)",
                                at_text(want)));
    return out;
  }
  bool met = false;
  for (const auto& e : kernel.events) met = met || (e.kind == "rule" && same_rule(e.at, want));
  if (!met)
    out.push_back(
        fmt::format("the packet never matched the predicted deciding rule {}", at_text(want)));
  return out;
}

std::string render_trace_text(const Report& predicted, const KernelPath& kernel,
                              const std::vector<std::string>& differences) {
  std::string out = fmt::format("TRACE  {}  ({})\n", describe(predicted.flow), kernel.source);
  if (!kernel.seen) {
    out += "  kernel:     no packet of this flow was seen before the timeout\n";
  } else {
    std::string by;
    if (kernel.deciding) {
      const TraceEvent& e = kernel.events[*kernel.deciding];
      by = fmt::format(" by {} ({} {})", at_text(e.at), e.kind, e.verdict);
    }
    out += fmt::format("  kernel:     {}{}\n", verdict_upper(kernel.verdict), by);
  }
  std::string pred_by;
  if (predicted.decided_by.rule && !predicted.decided_by.rule->bpf())
    pred_by = " by " + at_text(predicted.decided_by.rule->nft());
  out += fmt::format("  prediction: {}{}\n", verdict_upper(predicted.verdict), pred_by);
  if (!predicted.decided_by.summary.empty())
    out += fmt::format("              {}\n", predicted.decided_by.summary);
  if (kernel.seen) {
    if (differences.empty()) out += "  agreement:  the kernel's path agrees with the prediction\n";
    for (const auto& d : differences) out += fmt::format("  DIFFERENCE: {}\n", d);
    out += "  kernel path:\n";
    for (const auto& e : kernel.events) {
      std::string act = e.target.empty() ? e.verdict : e.verdict + " " + e.target;
      // A rule event without a handle is the kernel reaching the end of a chain (implicit
      // return to the caller, or on to the base chain's policy).
      std::string kind = e.kind == "rule" && !e.at.handle ? "end" : e.kind;
      out += fmt::format("    {:<60} {:<7} {}\n", at_text(e.at), kind, act);
    }
  }
  for (const auto& n : kernel.notes) out += fmt::format("  note:       {}\n", n);
  return out;
}

nlohmann::json trace_json(const Report& predicted, const KernelPath& kernel,
                          const std::vector<std::string>& differences) {
  using nlohmann::json;
  json events = json::array();
  for (const auto& e : kernel.events)
    events.push_back({{"kind", e.kind},
                      {"family", e.at.family},
                      {"table", e.at.table},
                      {"chain", e.at.chain},
                      {"handle", e.at.handle ? json(*e.at.handle) : json(nullptr)},
                      {"verdict", e.verdict},
                      {"target", e.target.empty() ? json(nullptr) : json(e.target)},
                      {"iif", e.iif.empty() ? json(nullptr) : json(e.iif)},
                      {"oif", e.oif.empty() ? json(nullptr) : json(e.oif)}});
  return {
      {"schema", kTraceSchema},
      {"source", kernel.source},
      {"kernel",
       {{"seen", kernel.seen},
        {"verdict", kernel.seen ? json(std::string(verdict_name(kernel.verdict))) : json(nullptr)},
        {"deciding_event", kernel.deciding ? json(*kernel.deciding) : json(nullptr)},
        {"events", events},
        {"notes", kernel.notes}}},
      {"prediction", to_json(predicted)},
      {"agrees", kernel.seen && differences.empty()},
      {"differences", differences}};
}

}  // namespace dpi
