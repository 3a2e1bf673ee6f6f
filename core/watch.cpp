#include "core/watch.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

#include "core/dataplane.h"
#include "core/report_json.h"

namespace dpi {

namespace {

using nlohmann::json;

// The kernel drop reasons a filtering decision gives (netfilter's drop verdict, a tc program's
// drop): the evaluator can explain these. NOT_SPECIFIED is any kfree_skb() without a reason
// (sockets, neighbour discovery...), not a verdict.
bool policy_drop_reason(const std::string& r) {
  return r == "NETFILTER_DROP" || r == "TC_INGRESS" || r == "TC_EGRESS";
}

std::string cache_key(const Flow& f) {
  return fmt::format("{}|{}|{}|{}", describe(f), f.iif, f.oif, f.ct == CtState::new_);
}

std::string iface_name(const std::optional<NodeInfo>& node, int index) {
  if (index == 0) return "";
  if (node)
    for (const auto& i : node->interfaces)
      if (i.index == index) return i.name;
  return fmt::format("ifindex {}", index);
}

std::string clock_text(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms.count() % 1000);
}

// "end of tier default (egress)", "policy np/client/deny-x rule 1 (egress, tier default)".
std::string decision_text(const Report& r) {
  const Decision& d = r.decided_by;
  std::string where;
  if (!d.direction.empty()) where = d.direction;
  if (!d.endpoint.empty()) where += (where.empty() ? "" : " of ") + d.endpoint;
  std::string s;
  switch (d.kind) {
    case DecisionKind::policy_rule:
    case DecisionKind::profile_rule:
      s = fmt::format("{} {}", d.kind == DecisionKind::policy_rule ? "policy" : "profile",
                      d.policy ? d.policy->display() : "?");
      if (d.rule_index)
        s += fmt::format(" rule {}{}", *d.rule_index, d.rule_index_exact ? "" : " (estimated)");
      if (!d.tier.empty()) where += (where.empty() ? "tier " : ", tier ") + d.tier;
      break;
    case DecisionKind::end_of_tier_deny: s = "end of tier " + d.tier; break;
    case DecisionKind::no_profile_matched: s = "no profile matched"; break;
    case DecisionKind::ct_invalid:
    case DecisionKind::ct_established:
    case DecisionKind::unknown_interface:
    case DecisionKind::admin_down:
    case DecisionKind::encap_from_workload:
    case DecisionKind::rpf_failure:
    case DecisionKind::default_endpoint_to_host:
    case DecisionKind::service_loop_prevention:
    case DecisionKind::failsafe:
    case DecisionKind::calico_rule:
    case DecisionKind::non_calico:
    case DecisionKind::chain_policy:
    case DecisionKind::unknown: s = d.summary.empty() ? "no deciding rule" : d.summary; break;
  }
  return where.empty() ? s : fmt::format("{} ({})", s, where);
}

std::string line_verdict(const WatchLine& l) {
  if (l.event.source == "kfree_skb") return "drop";
  if (l.prefix) return l.prefix->action;
  return "log";
}

// What the summary counts an event under.
std::string reason_of(const WatchLine& l) {
  if (l.report)
    return fmt::format("{} by {}", verdict_name(l.report->verdict), decision_text(*l.report));
  if (!l.event.drop_reason.empty()) return "kernel drop reason " + l.event.drop_reason;
  if (!l.event.prefix.empty()) return "log prefix " + l.event.prefix;
  return "unexplained";
}

json watch_flow_json(const Flow& f) {
  json j = {{"src", f.src.str()}, {"dst", f.dst.str()}, {"proto", l4proto_name(f.l4proto)}};
  if (f.sport) j["sport"] = *f.sport;
  if (f.dport) j["dport"] = *f.dport;
  if (f.icmp_type) j["icmp_type"] = *f.icmp_type;
  if (f.icmp_code) j["icmp_code"] = *f.icmp_code;
  return j;
}

json or_null(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

}  // namespace

bool is_denial(const WatchEvent& e) {
  if (e.source != "nflog") return true;
  auto p = calico::parse_nflog_prefix(e.prefix);
  return !p || p->action == "deny";
}

WatchExplainer::WatchExplainer(const LoadedDataplane& dp) : dp_(dp) {}

WatchLine WatchExplainer::explain(const WatchEvent& e) {
  WatchLine l;
  l.event = e;
  l.iif = iface_name(dp_.node(), e.in_ifindex);
  l.oif = iface_name(dp_.node(), e.out_ifindex);
  if (!e.prefix.empty()) l.prefix = calico::parse_nflog_prefix(e.prefix);
  if (!e.flow) {
    l.error = "packet not decoded: " + e.undecoded;
    return l;
  }
  if (e.source == "kfree_skb" && !policy_drop_reason(e.drop_reason)) {
    l.error = "kernel drop reason " + e.drop_reason + ": not a policy drop";
    return l;
  }
  Flow f = *e.flow;
  // NFLOG names the packet's interfaces at the hook that logged it; a freed skb's device is
  // either side, so its flow takes them from the routes.
  if (e.source == "nflog") {
    if (e.in_ifindex && l.iif.rfind("ifindex ", 0) != 0) f.iif = l.iif;
    if (e.out_ifindex && l.oif.rfind("ifindex ", 0) != 0) f.oif = l.oif;
  }
  if (auto st = normalize(f); !st) {
    l.error = st.error().message;
    return l;
  }
  const std::string key = cache_key(f);
  auto it = cache_.find(key);
  if (it == cache_.end()) {
    // A bounded cache: a flood of distinct flows costs evaluations, not memory.
    if (cache_.size() >= 4096) cache_.clear();
    it = cache_.emplace(key, dp_.inspect(f)).first;
  }
  if (!it->second) {
    l.error = it->second.error().message;
    return l;
  }
  l.report = *it->second;
  if (l.prefix && l.prefix->action == "deny") {
    const Decision& d = l.report->decided_by;
    bool same = l.report->verdict == Verdict::deny;
    if (same && l.prefix->end_of_tier() && !l.prefix->hashed) same = d.tier == l.prefix->id;
    l.agrees = same;
  } else if (e.source == "kfree_skb") {
    // An undecided explanation does not agree with the drop, as for a logged deny above.
    l.agrees = l.report->verdict == Verdict::deny;
  }
  return l;
}

std::string watch_line_text(const WatchLine& l) {
  const WatchEvent& e = l.event;
  std::string s = fmt::format("{} {} {}", clock_text(e.time), e.source, line_verdict(l));
  s += " " + (e.flow ? describe(*e.flow) : std::string("?"));
  if (!l.iif.empty()) s += " iif " + l.iif;
  if (!l.oif.empty()) s += " oif " + l.oif;
  if (l.report)
    s += fmt::format(": {} by {}", verdict_name(l.report->verdict), decision_text(*l.report));
  else
    s += ": " + l.error;
  if (!e.prefix.empty()) s += fmt::format(" [log \"{}\" group {}]", e.prefix, e.group.value_or(0));
  if (!e.drop_reason.empty() && l.report) s += " [kernel drop reason " + e.drop_reason + "]";
  if (l.agrees == false)
    s += e.source == "nflog" ? " DISAGREES with the log prefix" : " DISAGREES with the kernel drop";
  return s;
}

json watch_line_json(const WatchLine& l) {
  const WatchEvent& e = l.event;
  json j = {
      {"schema", kWatchSchema},     {"type", "event"},
      {"time", clock_text(e.time)}, {"source", e.source},
      {"verdict", line_verdict(l)}, {"flow", e.flow ? watch_flow_json(*e.flow) : json(nullptr)},
      {"iif", or_null(l.iif)},      {"oif", or_null(l.oif)}};
  if (e.source == "nflog") {
    json p = nullptr;
    if (l.prefix)
      p = {{"action", l.prefix->action},
           {"owner", l.prefix->owner},
           {"direction", l.prefix->direction},
           {"rule_index", l.prefix->rule_index ? json(*l.prefix->rule_index) : json(nullptr)},
           {"id", l.prefix->id},
           {"hashed", l.prefix->hashed}};
    j["nflog"] = {
        {"group", e.group ? json(*e.group) : json(nullptr)}, {"prefix", e.prefix}, {"parsed", p}};
  }
  if (e.source == "kfree_skb")
    j["drop_reason"] = {{"name", e.drop_reason},
                        {"code", e.drop_reason_code ? json(*e.drop_reason_code) : json(nullptr)}};
  if (l.report) {
    const Decision& d = l.report->decided_by;
    j["explanation"] = {
        {"verdict", verdict_name(l.report->verdict)},
        {"kind", decision_kind_name(d.kind)},
        {"summary", decision_text(*l.report)},
        {"tier", or_null(d.tier)},
        {"policy", d.policy ? json(d.policy->display()) : json(nullptr)},
        {"rule_index", d.rule_index ? json(*d.rule_index) : json(nullptr)},
        {"direction", or_null(d.direction)},
        {"endpoint", or_null(d.endpoint)},
        {"rule", d.rule ? to_json(*d.rule) : json(nullptr)},
    };
    j["error"] = nullptr;
  } else {
    j["explanation"] = nullptr;
    j["error"] = l.error;
  }
  j["agrees"] = l.agrees ? json(*l.agrees) : json(nullptr);
  return j;
}

bool WatchRateLimit::admit(std::chrono::steady_clock::time_point now) {
  if (now - window_ >= std::chrono::seconds(1)) {
    window_ = now;
    in_window_ = 0;
  }
  if (in_window_ < per_second_) {
    ++in_window_;
    return true;
  }
  ++suppressed_;
  return false;
}

uint64_t WatchRateLimit::take_suppressed() {
  return std::exchange(suppressed_, 0);
}

void WatchSummary::add(const WatchLine& l) {
  ++events_;
  ++by_source_[l.event.source];
  ++by_reason_[reason_of(l)];
}

std::vector<std::pair<std::string, uint64_t>> WatchSummary::ranked(std::size_t top) const {
  std::vector<std::pair<std::string, uint64_t>> v(by_reason_.begin(), by_reason_.end());
  std::stable_sort(v.begin(), v.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  if (v.size() > top) v.resize(top);
  return v;
}

std::string WatchSummary::text(std::size_t top) const {
  std::string s = fmt::format("summary: {} event(s) shown", events_);
  for (const auto& [src, n] : by_source_) s += fmt::format(", {} from {}", n, src);
  s += "\n";
  if (suppressed_) s += fmt::format("  {} more not shown (rate limit)\n", suppressed_);
  for (const auto& [src, n] : lost_)
    if (n) s += fmt::format("  {} lost by {} (the kernel could not hand them over)\n", n, src);
  for (const auto& [reason, n] : ranked(top)) s += fmt::format("  {:>6}  {}\n", n, reason);
  return s;
}

json WatchSummary::as_json(std::size_t top) const {
  nlohmann::json reasons = nlohmann::json::array();
  for (const auto& [reason, n] : ranked(top)) reasons.push_back({{"reason", reason}, {"count", n}});
  return {{"schema", kWatchSchema},  {"type", "summary"},         {"events", events_},
          {"by_source", by_source_}, {"suppressed", suppressed_}, {"lost", lost_},
          {"top", reasons}};
}

}  // namespace dpi
