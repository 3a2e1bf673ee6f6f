#include "core/report_text.h"

#include <fmt/format.h>

#include "core/overloaded.h"

namespace dpi {

std::string rule_location(const RuleRef& r) {
  return std::visit(Overloaded{
                        [](const NftRuleLocation& n) {
                          std::string s = fmt::format("{} {} {}", n.family, n.table, n.chain);
                          if (n.handle) s += fmt::format(" handle {}", *n.handle);
                          return s;
                        },
                        [](const BpfLocation& b) {
                          std::string s =
                              fmt::format("bpf prog {} {} ({})", b.prog_id, b.prog_name, b.attach);
                          if (b.insn_offset) s += fmt::format(" insn {}", *b.insn_offset);
                          if (!b.calico_rule_id.empty()) s += " rule " + b.calico_rule_id;
                          return s;
                        },
                    },
                    r.location);
}

namespace {

// A rule's location, then its text and comment on lines of their own.
std::string rule_block(const RuleRef& r) {
  std::string out = rule_location(r) + "\n";
  if (!r.text.empty()) out += fmt::format("          {}\n", r.text);
  if (!r.comment.empty()) out += fmt::format("          comment \"{}\"\n", r.comment);
  return out;
}

// No location at all: nothing decided at a rule (an nftables reference without a chain).
bool no_location(const RuleRef& r) {
  return !r.bpf() && r.nft().chain.empty();
}

// "dnat to 10.0.0.5:80, masquerade": one outcome's translations on its line.
std::string translations(const std::vector<NatStep>& steps) {
  std::string s;
  for (const auto& n : steps) {
    if (!s.empty()) s += ", ";
    s += n.to.empty() ? n.kind : fmt::format("{} to {}", n.kind, n.to);
  }
  return s;
}

std::string headline(Verdict v) {
  switch (v) {
    case Verdict::allow: return "ALLOWED";
    case Verdict::deny: return "DENIED";
    case Verdict::indeterminate: return "INDETERMINATE";
  }
  return "?";
}

}  // namespace

std::string render_text(const Report& r, const TextOptions& opts) {
  std::string out = fmt::format("{}  {}\n", headline(r.verdict), describe(r.flow));
  if (!r.src_name.empty() || !r.dst_name.empty())
    out += fmt::format("  names:  {} -> {}\n", r.src_name.empty() ? "?" : r.src_name,
                       r.dst_name.empty() ? "?" : r.dst_name);
  const Decision& d = r.decided_by;
  if (r.verdict == Verdict::indeterminate && r.indeterminate_reason) {
    const auto& ir = *r.indeterminate_reason;
    if (no_location(ir.rule))
      out += fmt::format("  why:    cannot decide: {}\n", ir.why);
    else
      out += fmt::format("  why:    cannot decide at {}: {}\n", rule_location(ir.rule), ir.why);
    if (!ir.expression.empty()) out += fmt::format("          expression: {}\n", ir.expression);
  } else if (!d.summary.empty()) {
    out += fmt::format("  why:    {}\n", d.summary);
  }
  // The Calico rules that decided come first; the kernel's final verdict rule, when it is
  // another (the generic accept at the end of filter-FORWARD), follows as the evidence.
  const char* label = "  rule:   ";
  bool verdict_shown = false;
  for (const auto& cr : d.calico_rules) {
    out += label + rule_block(cr);
    label = "          ";
    verdict_shown = verdict_shown || (d.rule && rule_location(cr) == rule_location(*d.rule));
  }
  if (d.rule && !verdict_shown)
    out += (d.calico_rules.empty() ? "  rule:   " : "  final:  ") + rule_block(*d.rule);
  for (const auto& n : d.notes) out += fmt::format("  note:   {}\n", n);
  if (!r.outcomes.empty()) {
    out += "  outcomes (the ruleset chooses at random):\n";
    for (const auto& o : r.outcomes) {
      out += fmt::format("    {:<13} {}", verdict_name(o.verdict), o.choice);
      // Where this outcome sent the flow: the endpoint is the point of a service's outcomes.
      if (!o.nat.empty()) out += "  " + translations(o.nat);
      out += fmt::format("  {}\n", o.summary);
    }
  }
  if (!r.stages.empty()) {
    out += "  stages:\n";
    for (const auto& s : r.stages)
      out += s.workload.empty()
                 ? fmt::format("    {:<28} {:<16} {}\n", s.role, s.endpoint, s.outcome)
                 : fmt::format("    {:<28} {:<16} {:<5} {}\n", s.role, s.endpoint, s.outcome,
                               s.workload);
  }
  if (!r.nat.empty()) {
    out += "  nat:\n";
    for (const auto& n : r.nat)
      out += fmt::format("    {} {} to {} ({})\n", n.hook, n.kind, n.to.empty() ? "-" : n.to,
                         rule_location(n.rule));
  }
  if (!r.path.empty()) {
    // Other hooks only matter where they decided or translated; -v shows everything.
    const std::string& policy_hook = r.policy_hook;
    out += opts.verbose
               ? "  path:\n"
               : fmt::format("  path ({} hook; -v for every hook and rule):\n", policy_hook);
    std::string hook;
    for (const auto& p : r.path) {
      const std::string& a = p.facts.action;
      bool verdict = a == "accept" || a == "drop" || a == "reject";
      bool marks = p.facts.log_prefix || p.facts.sets_mark_bits;
      bool shown = opts.verbose || (p.hook == policy_hook && (a != "continue" || marks)) || verdict;
      if (!shown) continue;
      if (p.hook != hook) {
        hook = p.hook;
        out += fmt::format("    [{}]\n", hook);
      }
      std::string act = p.facts.target.empty() ? a : a + " " + p.facts.target;
      if (a == "continue" && p.facts.sets_mark_bits)
        act = fmt::format("mark |= 0x{:x}", *p.facts.sets_mark_bits);
      if (a == "continue" && p.facts.log_prefix)
        act = fmt::format("log \"{}\"", *p.facts.log_prefix);
      out += fmt::format("      {:<52} {}\n", rule_location(p.rule), act);
    }
  }
  if (!r.assumptions.empty()) {
    out += "  assumptions:\n";
    for (const auto& a : r.assumptions) out += fmt::format("    - {}\n", a);
  }
  for (const auto& w : r.warnings) out += fmt::format("  warning: {}\n", w);
  if (r.counters) {
    const CounterDelta& c = *r.counters;
    if (c.packets_before && c.packets_after && *c.packets_after >= *c.packets_before &&
        c.bytes_after.value_or(0) >= c.bytes_before.value_or(0)) {
      // A dataplane that counts packets only (eBPF rule counters) has no bytes to show.
      std::string bytes = c.bytes_before && c.bytes_after
                              ? fmt::format(", +{} bytes", *c.bytes_after - *c.bytes_before)
                              : "";
      out += fmt::format("  counter:  +{} packets{} in {:g} s ({}; now {} packets)\n",
                         *c.packets_after - *c.packets_before, bytes, c.interval_s,
                         rule_location(c.rule), *c.packets_after);
    } else {
      out += fmt::format("  counter:  {} ({})\n", c.note, rule_location(c.rule));
    }
    for (const auto& rel : c.related)
      if (rel.before && rel.after && *rel.after >= *rel.before)
        out += fmt::format("            {} +{} (now {})\n", rel.name, *rel.after - *rel.before,
                           *rel.after);
    if (!c.related_note.empty()) out += fmt::format("            {}\n", c.related_note);
  }
  if (!r.layers.empty()) {
    out += "  layers (packet order):\n";
    for (const auto& l : r.layers)
      out +=
          fmt::format("    {:<24} {:<14} {:<8} {}\n", fmt::format("{} ({})", l.dataplane, l.layer),
                      l.applies ? verdict_name(l.verdict) : "does not apply",
                      l.decided ? "decides" : "", l.why);
  }
  out += fmt::format("  dataplane: {} ({})\n", r.dataplane.kind, r.dataplane.source);
  return out;
}

}  // namespace dpi
