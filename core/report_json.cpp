#include "core/report_json.h"

#include "core/overloaded.h"

namespace dpi {

using nlohmann::json;

namespace {

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

json str_or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

json flow_json(const Flow& f) {
  return {{"family", f.src.is_v4() ? "ipv4" : "ipv6"},
          {"src", f.src.str()},
          {"dst", f.dst.str()},
          {"proto", l4proto_name(f.l4proto)},
          {"sport", opt(f.sport)},
          {"dport", opt(f.dport)},
          {"icmp_type", opt(f.icmp_type)},
          {"icmp_code", opt(f.icmp_code)},
          {"iif", str_or_null(f.iif)},
          {"oif", str_or_null(f.oif)},
          {"ct_state", std::string(ct_state_name(f.ct))},
          {"mark", f.mark}};
}

json decision_json(const Decision& d) {
  json j = {{"kind", std::string(decision_kind_name(d.kind))},
            {"summary", d.summary},
            {"action", str_or_null(d.action)},
            {"direction", str_or_null(d.direction)},
            {"endpoint", str_or_null(d.endpoint)},
            {"tier", str_or_null(d.tier)},
            {"policy", nullptr},
            {"rule_index", opt(d.rule_index)},
            {"rule_index_exact", d.rule_index_exact},
            {"rule_id", str_or_null(d.rule_id)},
            {"nflog", nullptr},
            {"rule", d.rule ? to_json(*d.rule) : json(nullptr)},
            {"calico_rules", json::array()},
            {"notes", d.notes}};
  for (const auto& r : d.calico_rules) j["calico_rules"].push_back(to_json(r));
  if (d.policy)
    j["policy"] = {{"kind", str_or_null(d.policy->kind)},
                   {"namespace", str_or_null(d.policy->ns)},
                   {"name", d.policy->recovered ? json(d.policy->name) : json(nullptr)},
                   {"chain", d.policy->chain},
                   {"recovered", d.policy->recovered}};
  if (!d.nflog_prefix.empty())
    j["nflog"] = {{"group", opt(d.nflog_group)}, {"prefix", d.nflog_prefix}};
  return j;
}

json nat_json(const std::vector<NatStep>& steps) {
  json out = json::array();
  for (const auto& n : steps)
    out.push_back(
        {{"kind", n.kind}, {"hook", n.hook}, {"to", str_or_null(n.to)}, {"rule", to_json(n.rule)}});
  return out;
}

json layers_json(const std::vector<LayerVerdict>& layers) {
  json out = json::array();
  for (const auto& l : layers)
    out.push_back({{"dataplane", l.dataplane},
                   {"layer", l.layer},
                   {"verdict", std::string(verdict_name(l.verdict))},
                   {"applies", l.applies},
                   {"decided", l.decided},
                   {"why", l.why}});
  return out;
}

}  // namespace

json to_json(const RuleRef& r) {
  json j = std::visit(Overloaded{
                          [](const NftRuleLocation& n) -> json {
                            return {{"kind", "nftables"},
                                    {"family", n.family},
                                    {"table", n.table},
                                    {"chain", n.chain},
                                    {"handle", opt(n.handle)}};
                          },
                          [](const BpfLocation& b) -> json {
                            return {{"kind", "bpf"},
                                    {"prog_id", b.prog_id},
                                    {"prog_name", b.prog_name},
                                    {"tag", b.tag},
                                    {"attach", b.attach},
                                    {"insn_offset", opt(b.insn_offset)},
                                    {"calico_rule_id", str_or_null(b.calico_rule_id)},
                                    {"debug_comment", str_or_null(b.debug_comment)}};
                          },
                      },
                      r.location);
  j["text"] = r.text;
  j["comment"] = str_or_null(r.comment);
  j["counter"] =
      r.packets ? json{{"packets", *r.packets}, {"bytes", r.bytes.value_or(0)}} : json(nullptr);
  return j;
}

json related_json(const std::vector<CounterDelta::Related>& related) {
  json out = json::array();
  auto num = [](const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); };
  for (const auto& r : related)
    out.push_back(
        {{"counter", r.name},
         {"before", num(r.before)},
         {"after", num(r.after)},
         {"delta", r.before && r.after && *r.after >= *r.before ? json(*r.after - *r.before)
                                                                : json(nullptr)}});
  return out;
}

// "counters" only with `inspect --counters`: other reports are unchanged.
json counters_json(const CounterDelta& c) {
  auto delta = [](const std::optional<uint64_t>& before, const std::optional<uint64_t>& after) {
    // A counter reset (the rule replaced by one with the same handle cannot happen; a `reset
    // counters` can) shows as null rather than a wrapped-around difference.
    return before && after && *after >= *before ? json(*after - *before) : json(nullptr);
  };
  // bytes null: the dataplane counts packets only (eBPF rule counters).
  auto bytes = [](const std::optional<uint64_t>& b) { return b ? json(*b) : json(nullptr); };
  return {{"rule", to_json(c.rule)},
          {"interval_s", c.interval_s},
          {"before", c.packets_before
                         ? json{{"packets", *c.packets_before}, {"bytes", bytes(c.bytes_before)}}
                         : json(nullptr)},
          {"after", c.packets_after
                        ? json{{"packets", *c.packets_after}, {"bytes", bytes(c.bytes_after)}}
                        : json(nullptr)},
          {"delta", c.packets_before && c.packets_after
                        ? json{{"packets", delta(c.packets_before, c.packets_after)},
                               {"bytes", delta(c.bytes_before, c.bytes_after)}}
                        : json(nullptr)},
          {"note", c.note.empty() ? json(nullptr) : json(c.note)},
          {"related", related_json(c.related)},
          {"related_note", c.related_note.empty() ? json(nullptr) : json(c.related_note)}};
}

json to_json(const Report& r) {
  if (r.counters) {
    Report rest = r;
    rest.counters.reset();
    json j = to_json(rest);
    j["counters"] = counters_json(*r.counters);
    return j;
  }
  // "layers" only when more than one layer was evaluated: a single layer's report is unchanged.
  if (!r.layers.empty()) {
    Report one = r;
    one.layers.clear();
    json j = to_json(one);
    j["layers"] = layers_json(r.layers);
    return j;
  }
  json stages = json::array();
  for (const auto& s : r.stages) {
    stages.push_back({{"role", s.role},
                      {"endpoint", s.endpoint},
                      {"chain", s.chain},
                      {"outcome", s.outcome},
                      {"decision", decision_json(s.decision)}});
    // Additive: only when names are known, so reports without them are unchanged.
    if (!s.workload.empty()) stages.back()["workload"] = s.workload;
  }
  json flow = flow_json(r.flow);
  if (!r.src_name.empty()) flow["src_name"] = r.src_name;
  if (!r.dst_name.empty()) flow["dst_name"] = r.dst_name;
  json path = json::array();
  for (const auto& p : r.path) {
    json step = to_json(p.rule);
    step["hook"] = p.hook;
    step["action"] = p.facts.action;
    step["target"] = str_or_null(p.facts.target);
    path.push_back(step);
  }
  json outcomes = json::array();
  for (const auto& o : r.outcomes)
    outcomes.push_back({{"choice", o.choice},
                        {"verdict", std::string(verdict_name(o.verdict))},
                        {"rule", o.rule ? to_json(*o.rule) : json(nullptr)},
                        {"summary", o.summary},
                        {"nat", nat_json(o.nat)}});
  json ir = nullptr;
  if (r.indeterminate_reason)
    ir = {{"rule", to_json(r.indeterminate_reason->rule)},
          {"expression", r.indeterminate_reason->expression},
          {"why", r.indeterminate_reason->why}};
  return {{"schema", kReportSchema},
          {"flow", flow},
          {"assumptions", r.assumptions},
          {"dataplane",
           {{"kind", r.dataplane.kind},
            {"source", r.dataplane.source},
            {"calico_layouts", r.dataplane.calico_layouts},
            {"calico_version_hint", str_or_null(r.dataplane.calico_version_hint)}}},
          {"verdict", std::string(verdict_name(r.verdict))},
          {"decided_by", decision_json(r.decided_by)},
          {"indeterminate_reason", ir},
          {"stages", stages},
          {"path", path},
          {"nat", nat_json(r.nat)},
          {"outcomes", outcomes},
          {"warnings", r.warnings},
          {"evidence", r.evidence}};
}

}  // namespace dpi
