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
std::string decision_text(const Decision& d) {
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

std::string line_action(const WatchEvent& e) {
  return e.rule && !e.rule->action.empty() ? e.rule->action : "?";
}

std::string line_verdict(const WatchLine& l) {
  if (l.event.source == "kfree_skb") return "drop";
  if (l.event.counter) return line_action(l.event);
  if (l.prefix) return l.prefix->action;
  return "log";
}

// A rule counter's rule: "deny by end of tier default (egress of cali1)", or why it is unknown.
std::string counter_reason(const WatchEvent& e) {
  if (e.rule) return fmt::format("{} by {}", line_action(e), decision_text(*e.rule));
  return fmt::format("rule id {}: {}", e.counter ? e.counter->rule_id : "?", e.unattributed);
}

// What the summary counts an event under.
std::string reason_of(const WatchLine& l) {
  if (l.event.counter) return counter_reason(l.event);
  if (l.report)
    return fmt::format("{} by {}", verdict_name(l.report->verdict),
                       decision_text(l.report->decided_by));
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

// The text after a counter line's explanation: what the counter did.
std::string counter_text(const CounterChange& c, const WatchEvent& e) {
  std::string where = e.hook.empty() ? "" : e.hook + "; ";
  std::string hooks;
  for (const auto& [name, n] : e.hook_counters) hooks += fmt::format("; {} +{}", name, n);
  switch (c.kind) {
    case CounterChange::Kind::moved:
      return fmt::format("[{}now {} packets{}]", where, c.now, hooks);
    case CounterChange::Kind::reset:
      return fmt::format(
          "[{}the counter went down from {} to {} packets: reset (Felix restarted or emptied the "
          "map); no delta]",
          where, c.before, c.now);
    case CounterChange::Kind::vanished:
      return fmt::format(
          "[{}the rule id left the rule counters map (policy reprogrammed or removed) at {} "
          "packets]",
          where, c.before);
  }
  return "";
}

json counter_json(const WatchEvent& e) {
  const CounterChange& c = *e.counter;
  auto opt = [](const std::optional<uint64_t>& v) { return v ? json(*v) : json(nullptr); };
  const bool moved = c.kind == CounterChange::Kind::moved;
  json related = json::array();
  for (const auto& [name, n] : e.hook_counters)
    related.push_back({{"counter", name}, {"delta", n}});
  return {{"rule_id", c.rule_id},
          {"change", counter_change_name(c.kind)},
          {"packets", moved ? json(c.packets()) : json(nullptr)},
          {"bytes", opt(c.bytes())},
          {"before", c.before},
          {"now", c.kind == CounterChange::Kind::vanished ? json(nullptr) : json(c.now)},
          {"hook", or_null(e.hook)},
          {"hook_counters", related}};
}

json explanation_json(const Decision& d, const std::string& verdict) {
  return {
      {"verdict", verdict},
      {"kind", decision_kind_name(d.kind)},
      {"summary", decision_text(d)},
      {"tier", or_null(d.tier)},
      {"policy", d.policy ? json(d.policy->display()) : json(nullptr)},
      {"rule_index", d.rule_index ? json(*d.rule_index) : json(nullptr)},
      {"direction", or_null(d.direction)},
      {"endpoint", or_null(d.endpoint)},
      {"rule", d.rule ? to_json(*d.rule) : json(nullptr)},
  };
}

}  // namespace

std::optional<uint64_t> CounterChange::bytes() const {
  if (kind != Kind::moved || !bytes_before || !bytes_now || *bytes_now < *bytes_before)
    return std::nullopt;
  return *bytes_now - *bytes_before;
}

std::string_view counter_change_name(CounterChange::Kind k) {
  switch (k) {
    case CounterChange::Kind::moved: return "moved";
    case CounterChange::Kind::reset: return "reset";
    case CounterChange::Kind::vanished: return "vanished";
  }
  return "";
}

std::vector<CounterChange> CounterDeltas::update(const std::vector<CounterReading>& now) {
  std::map<std::string, CounterReading> next;
  for (const auto& r : now) next[r.rule_id] = r;
  std::vector<CounterChange> out;
  if (!last_) {
    last_ = std::move(next);
    return out;
  }
  for (const auto& [id, r] : next) {
    CounterChange c;
    c.rule_id = id;
    c.now = r.packets;
    c.bytes_now = r.bytes;
    auto it = last_->find(id);
    if (it != last_->end()) {
      c.before = it->second.packets;
      c.bytes_before = it->second.bytes;
    } else if (r.bytes) {
      c.bytes_before = 0;  // a new entry counted everything since the last poll
    }
    if (c.now == c.before && c.bytes_now == c.bytes_before) continue;
    const bool down =
        c.now < c.before || (c.bytes_now && c.bytes_before && *c.bytes_now < *c.bytes_before);
    c.kind = down ? CounterChange::Kind::reset : CounterChange::Kind::moved;
    // Bytes moving alone is no packet: only packets make an event.
    if (c.kind == CounterChange::Kind::moved && c.now == c.before) continue;
    out.push_back(std::move(c));
  }
  for (const auto& [id, r] : *last_)
    if (!next.count(id)) {
      CounterChange c;
      c.kind = CounterChange::Kind::vanished;
      c.rule_id = id;
      c.before = r.packets;
      c.bytes_before = r.bytes;
      out.push_back(std::move(c));
    }
  std::stable_sort(out.begin(), out.end(), [](const CounterChange& a, const CounterChange& b) {
    return a.rule_id < b.rule_id;
  });
  last_ = std::move(next);
  return out;
}

bool is_denial(const WatchEvent& e) {
  if (e.counter) {
    // A rule whose meaning is unknown is never hidden.
    if (!e.rule) return true;
    return e.rule->action != "allow" && e.rule->action != "pass";
  }
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
  // A rule counter has no packet to evaluate: the backend attributed its rule id.
  if (e.counter) {
    if (!e.rule) l.error = e.unattributed;
    return l;
  }
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
  if (e.counter) {
    const CounterChange& c = *e.counter;
    if (c.kind == CounterChange::Kind::moved) {
      s += fmt::format(" +{} packets", c.packets());
      if (auto b = c.bytes()) s += fmt::format(" +{} bytes", *b);
    } else {
      s += fmt::format(" {}", counter_change_name(c.kind));
    }
    s += fmt::format(
        " rule id {}: {} {}", c.rule_id,
        e.rule ? (e.rule->summary.empty() ? decision_text(*e.rule) : e.rule->summary) : l.error,
        counter_text(c, e));
    return s;
  }
  s += " " + (e.flow ? describe(*e.flow) : std::string("?"));
  if (!l.iif.empty()) s += " iif " + l.iif;
  if (!l.oif.empty()) s += " oif " + l.oif;
  if (l.report)
    s += fmt::format(": {} by {}", verdict_name(l.report->verdict),
                     decision_text(l.report->decided_by));
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
  if (e.counter) {
    j["counter"] = counter_json(e);
    j["explanation"] = e.rule ? explanation_json(*e.rule, line_action(e)) : json(nullptr);
    j["error"] = e.rule ? json(nullptr) : json(l.error);
    j["agrees"] = nullptr;
    return j;
  }
  if (e.source == "kfree_skb")
    j["drop_reason"] = {{"name", e.drop_reason},
                        {"code", e.drop_reason_code ? json(*e.drop_reason_code) : json(nullptr)}};
  if (l.report) {
    j["explanation"] =
        explanation_json(l.report->decided_by, std::string(verdict_name(l.report->verdict)));
    j["error"] = nullptr;
  } else {
    j["explanation"] = nullptr;
    j["error"] = l.error;
  }
  j["agrees"] = l.agrees ? json(*l.agrees) : json(nullptr);
  return j;
}

std::string watch_notice_text(const WatchNotice& n) {
  return fmt::format("# {} {} {}", clock_text(n.time), n.source, n.message);
}

namespace {

json notice_fields(const WatchNotice& n) {
  auto id = [](const std::optional<uint32_t>& v) { return v ? json(*v) : json(nullptr); };
  return {{"source", n.source},    {"kind", n.kind},         {"time", clock_text(n.time)},
          {"map", or_null(n.map)}, {"old_id", id(n.old_id)}, {"new_id", id(n.new_id)},
          {"message", n.message}};
}

}  // namespace

json watch_notice_json(const WatchNotice& n) {
  json j = {{"schema", kWatchSchema}, {"type", "notice"}};
  j.update(notice_fields(n));
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
  if (l.event.counter && l.event.counter->kind == CounterChange::Kind::moved)
    packets_by_reason_[reason_of(l)] += l.event.counter->packets();
}

void WatchSummary::add_notice(const WatchNotice& n) {
  ++notices_total_;
  if (notices_.size() < kMaxNotices) notices_.push_back(n);
}

std::vector<std::pair<std::string, uint64_t>> WatchSummary::ranked(
    const std::map<std::string, uint64_t>& by, std::size_t top) {
  std::vector<std::pair<std::string, uint64_t>> v(by.begin(), by.end());
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
  for (const auto& n : notices_) s += fmt::format("  {}: {}\n", n.source, n.message);
  if (notices_total_ > notices_.size())
    s += fmt::format("  {} more notice(s)\n", notices_total_ - notices_.size());
  for (const auto& [reason, n] : ranked(by_reason_, top))
    s += fmt::format("  {:>6}  {}\n", n, reason);
  if (!packets_by_reason_.empty()) {
    s += "  packets counted by the rule counters:\n";
    for (const auto& [reason, n] : ranked(packets_by_reason_, top))
      s += fmt::format("  {:>6}  {}\n", n, reason);
  }
  return s;
}

json WatchSummary::as_json(std::size_t top) const {
  nlohmann::json reasons = nlohmann::json::array();
  for (const auto& [reason, n] : ranked(by_reason_, top))
    reasons.push_back({{"reason", reason}, {"count", n}});
  nlohmann::json counted = nlohmann::json::array();
  for (const auto& [reason, n] : ranked(packets_by_reason_, top))
    counted.push_back({{"reason", reason}, {"packets", n}});
  nlohmann::json notices = nlohmann::json::array();
  for (const auto& n : notices_) notices.push_back(notice_fields(n));
  return {{"schema", kWatchSchema},
          {"type", "summary"},
          {"events", events_},
          {"by_source", by_source_},
          {"suppressed", suppressed_},
          {"lost", lost_},
          {"top", reasons},
          {"top_counted", counted},
          {"notices", notices},
          {"notices_total", notices_total_}};
}

}  // namespace dpi
