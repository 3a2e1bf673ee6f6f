#include "backends/ebpf/watch_counters.h"

#include <map>
#include <optional>

#include <fmt/format.h>

#include "backends/ebpf/counter_poller.h"
#include "backends/ebpf/counters.h"
#include "backends/ebpf/inspect.h"
#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_rule_counters.h"
#include "backends/ebpf/node_state.h"
#include "core/calico/attribution.h"

namespace dpi::ebpf {

namespace {

using Clock = std::chrono::steady_clock;

// A policy reprogrammed while watching brings new rule ids: the node is read again for them,
// but not more often than this.
constexpr std::chrono::seconds kReloadEvery{2};

// What a rule id is, kept after the id leaves the map (a vanished counter is still named).
struct Attribution {
  Decision rule;
  std::string hook;                 // empty when several programs record the id
  std::optional<HookKey> counters;  // the hook's Calico counters, with hook
};

// The node's pinned rule counters and hook counters maps, each re-opened at its pin on demand.
class LiveCounterMaps final : public CounterMaps {
 public:
  LiveCounterMaps(std::string bpffs, const MapSpec& rules, std::optional<MapSpec> hooks)
      : bpffs_(std::move(bpffs)), rules_spec_(rules), hooks_spec_(hooks) {}
  void set_release(Release r) { release_ = r; }

  std::string path(WatchedMap m) const override {
    switch (m) {
      case WatchedMap::rule_counters: return bpffs_ + "/" + std::string(rules_spec_.pin_name);
      case WatchedMap::hook_counters:
        return hooks_spec_ ? bpffs_ + "/" + std::string(hooks_spec_->pin_name) : bpffs_;
    }
    return bpffs_;
  }
  std::optional<uint32_t> held_id(WatchedMap m) const override {
    switch (m) {
      case WatchedMap::rule_counters: return rules_ ? std::optional(rules_->id()) : std::nullopt;
      case WatchedMap::hook_counters:
        return hooks_ ? std::optional(hooks_->info().id) : std::nullopt;
    }
    return std::nullopt;
  }
  Result<uint32_t> pinned_id(WatchedMap m) const override {
    if (m == WatchedMap::hook_counters && !hooks_spec_)
      return make_error(ErrorCode::not_found,
                        "the node's Calico layout has no hook counters map (cali_counters)");
    return pinned_map_id(path(m));
  }
  Status reopen(WatchedMap m) override {
    switch (m) {
      case WatchedMap::rule_counters: {
        auto r = LiveRuleCounters::open(bpffs_, rules_spec_);
        if (!r) return r.error();
        rules_ = std::move(*r);
        return Ok{};
      }
      case WatchedMap::hook_counters: {
        if (!hooks_spec_) return make_error(ErrorCode::not_found, "no hook counters map");
        auto h = PinnedMap::open(bpffs_, hooks_spec_->pin_name);
        if (!h) return h.error();
        hooks_ = std::move(*h);
        return Ok{};
      }
    }
    return Ok{};
  }
  Result<std::vector<std::pair<uint64_t, uint64_t>>> read_rules() const override {
    return rules_->read_all();
  }
  Result<std::optional<std::vector<uint64_t>>> read_hook(const HookKey& k) const override {
    if (!release_) return make_error(ErrorCode::bad_input, "the node's release is not known");
    auto v = hooks_->lookup(encode_counters_key({k.first, k.second}));
    if (!v) return v.error();
    if (!*v) return std::optional<std::vector<uint64_t>>{};
    auto sums = decode_counters_value(**v, hooks_->info().value_size, hooks_->cpus(), *release_);
    if (!sums)
      return make_error(sums.error().code,
                        fmt::format("{}: {}", hooks_->path(), sums.error().message));
    return std::optional<std::vector<uint64_t>>{std::move(*sums)};
  }

 private:
  std::string bpffs_;
  MapSpec rules_spec_;
  std::optional<MapSpec> hooks_spec_;
  std::optional<Release> release_;
  std::optional<LiveRuleCounters> rules_;
  std::optional<PinnedMap> hooks_;
};

class CountersSource final : public WatchSource {
 public:
  CountersSource(std::string bpffs, std::string debug_dir, std::chrono::milliseconds interval)
      : bpffs_(std::move(bpffs)), debug_dir_(std::move(debug_dir)), interval_(interval) {}

  std::string_view name() const override { return "counters"; }
  int fd() const override { return -1; }
  std::optional<std::chrono::milliseconds> poll_interval() const override { return interval_; }
  uint64_t lost() const override { return 0; }
  Status read(std::vector<WatchEvent>& out) override;
  void take_notices(std::vector<WatchNotice>& out) override {
    for (auto& n : notices_) out.push_back(std::move(n));
    notices_.clear();
  }

  // Reads the node and opens its counters maps; the first poll (the baseline).
  Status start();

 private:
  Status load_node();
  Result<CounterPoll> poll();
  const Attribution* attribution(uint64_t id);

  std::string bpffs_, debug_dir_;
  std::chrono::milliseconds interval_;
  std::optional<NodeModel> model_;
  std::unique_ptr<LiveCounterMaps> maps_;
  std::unique_ptr<CounterPoller> poller_;
  std::map<uint64_t, Attribution> known_;
  std::vector<WatchNotice> notices_;
  Clock::time_point next_poll_{}, loaded_at_{};
};

Status CountersSource::load_node() {
  auto n = read_live_node(bpffs_, debug_dir_);
  if (!n)
    return make_error(n.error().code, fmt::format("watch: ebpf: {} (Calico's pinned maps: --bpffs "
                                                  "DIR)",
                                                  n.error().message));
  const MapSpec* spec = n->spec(MapRole::rule_counters);
  if (!spec)
    return make_error(ErrorCode::bad_input,
                      fmt::format("watch: {}: no known Calico layout, so no known rule counters "
                                  "map ({})",
                                  n->bpffs, n->layout_error));
  if (!maps_) {
    const MapSpec* hooks = n->spec(MapRole::counters);
    maps_ = std::make_unique<LiveCounterMaps>(n->bpffs, *spec,
                                              hooks ? std::optional(*hooks) : std::nullopt);
    if (auto st = maps_->reopen(WatchedMap::rule_counters); !st)
      return make_error(st.error().code, "watch: counters: " + st.error().message);
    // The hooks' counters only add to the rules': the poller opens them, or says why not.
    poller_ = std::make_unique<CounterPoller>(*maps_);
  }
  if (n->release) maps_->set_release(n->release->releases.first);
  model_.emplace(std::move(*n));
  loaded_at_ = Clock::now();
  for (const auto& [id, place] : model_->rule_places()) {
    Attribution a;
    a.rule = calico::explain_stage_position(place.at);
    if (place.programs > 1) {
      a.rule.notes.push_back(fmt::format(
          "{} policy programs record this rule id: the counter sums them; the first is named",
          place.programs));
    } else {
      a.hook = fmt::format("{} {}", place.at.endpoint.chain, place.at.endpoint.iface);
      auto ifindex = model_->ifindex_of(place.at.endpoint.iface);
      if (ifindex)
        a.counters =
            HookKey{*ifindex, place.at.endpoint.chain == "tc egress" ? CounterHook::tc_egress
                                                                     : CounterHook::tc_ingress};
    }
    known_[id] = std::move(a);
  }
  return Ok{};
}

Result<CounterPoll> CountersSource::poll() {
  std::map<HookKey, std::string> hooks;
  for (const auto& [id, a] : known_)
    if (a.counters) hooks.emplace(*a.counters, a.hook);
  auto p = poller_->poll(hooks);
  if (!p) return p;
  for (auto& n : p->notices) notices_.push_back(std::move(n));
  p->notices.clear();
  return p;
}

const Attribution* CountersSource::attribution(uint64_t id) {
  auto it = known_.find(id);
  if (it != known_.end()) return &it->second;
  return nullptr;
}

Status CountersSource::start() {
  if (auto st = load_node(); !st) return st;
  auto baseline = poll();
  if (!baseline) return baseline.error();
  next_poll_ = Clock::now() + interval_;
  return Ok{};
}

Status CountersSource::read(std::vector<WatchEvent>& out) {
  // The loop also wakes for other sources and its housekeeping: poll on this source's clock.
  const auto t = Clock::now();
  if (t < next_poll_) return Ok{};
  next_poll_ = t + interval_;
  auto p = poll();
  if (!p) return p.error();
  // A re-created map means Felix restarted or rebuilt its maps: its programs (and their rule
  // ids' places) are read again. Failing that, the ids keep the places read before, said once.
  if (p->recreated)
    if (auto st = load_node(); !st) {
      WatchNotice n;
      n.source = "counters";
      n.kind = "read_failed";
      n.time = std::chrono::system_clock::now();
      n.message = "the node could not be read again after a map was re-created (" +
                  st.error().message + "): rule ids keep the places read before";
      notices_.push_back(std::move(n));
    }
  auto& changes = p->changes;
  const auto& hooks = p->hooks;
  if (changes.empty()) return Ok{};
  // New rule ids no program explained at the last read: the policy was reprogrammed since.
  bool unknown = false;
  for (const auto& c : changes)
    if (auto id = parse_rule_id(c.rule_id); id && !known_.count(*id)) unknown = true;
  // Reading the node is costly: at most every kReloadEvery. An id met before that stays unnamed
  // for this event and says why, rather than claiming no program records it.
  const bool reread_skipped = unknown && Clock::now() - loaded_at_ < kReloadEvery;
  if (unknown && !reread_skipped)
    if (auto st = load_node(); !st) return st;
  const auto when = std::chrono::system_clock::now();
  const Release release =
      model_->state().release ? model_->state().release->releases.first : Release{};
  for (auto& c : changes) {
    WatchEvent e;
    e.source = "counters";
    e.time = when;
    const auto id = parse_rule_id(c.rule_id);
    if (const Attribution* a = id ? attribution(*id) : nullptr) {
      e.rule = a->rule;
      e.hook = a->hook;
      if (a->counters)
        if (auto h = hooks.find(*a->counters); h != hooks.end())
          for (const auto& [reason, n] : h->second)
            e.hook_counters.emplace_back(
                fmt::format("{} {}", a->hook, counter_name(release, reason)), n);
    } else if (reread_skipped) {
      e.unattributed =
          "not in the policy programs read less than 2 s ago (a policy programmed since; the node "
          "is read again when this rule's counter next moves)";
    } else {
      e.unattributed =
          "in no live policy program's debug JSON (a removed policy's id, or a program whose "
          "debug JSON is missing or stale)";
    }
    e.counter = std::move(c);
    out.push_back(std::move(e));
  }
  return Ok{};
}

}  // namespace

Result<std::unique_ptr<WatchSource>> open_counters_source(const std::string& bpffs,
                                                          const std::string& policy_debug_dir,
                                                          std::chrono::milliseconds interval) {
  auto s = std::make_unique<CountersSource>(bpffs, policy_debug_dir, interval);
  if (auto st = s->start(); !st) return st.error();
  return std::unique_ptr<WatchSource>(std::move(s));
}

}  // namespace dpi::ebpf
