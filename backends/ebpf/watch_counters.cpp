#include "backends/ebpf/watch_counters.h"

#include <map>
#include <optional>

#include <fmt/format.h>

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

// A policy hook of one interface, as cali_counters* keys it.
using HookKey = std::pair<uint32_t, CounterHook>;

// What a rule id is, kept after the id leaves the map (a vanished counter is still named).
struct Attribution {
  Decision rule;
  std::string hook;                 // empty when several programs record the id
  std::optional<HookKey> counters;  // the hook's Calico counters, with hook
};

// enum calico_reason: the same indices in every release (counters.h).
constexpr uint32_t kDroppedByPolicy = 4, kAcceptedByPolicy = 2;

class CountersSource final : public WatchSource {
 public:
  CountersSource(std::string bpffs, std::string debug_dir, std::chrono::milliseconds interval)
      : bpffs_(std::move(bpffs)), debug_dir_(std::move(debug_dir)), interval_(interval) {}

  std::string_view name() const override { return "counters"; }
  int fd() const override { return -1; }
  std::optional<std::chrono::milliseconds> poll_interval() const override { return interval_; }
  uint64_t lost() const override { return 0; }
  Status read(std::vector<WatchEvent>& out) override;

  // Reads the node and its rule counters map; the first poll (the baseline).
  Status start();

 private:
  Status load_node();
  Result<std::vector<CounterReading>> poll();
  // Reads the policy verdict counters of every hook a rule is attributed to; the deltas of
  // this poll by hook (a hook first read now has none).
  std::map<HookKey, std::vector<std::pair<std::string, uint64_t>>> poll_hooks();
  const Attribution* attribution(uint64_t id);

  std::string bpffs_, debug_dir_;
  std::chrono::milliseconds interval_;
  std::optional<NodeModel> model_;
  std::optional<LiveRuleCounters> map_;
  std::optional<PinnedMap> hook_map_;  // cali_counters*, when the layout has it
  std::map<HookKey, std::vector<uint64_t>> hook_last_;
  CounterDeltas deltas_;
  std::map<uint64_t, Attribution> known_;
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
  if (!map_) {
    auto m = LiveRuleCounters::open(n->bpffs, *spec);
    if (!m) return make_error(m.error().code, "watch: counters: " + m.error().message);
    map_ = std::move(*m);
  }
  // The hooks' counters only add to the rules': a node without them still has its rule counters.
  if (const MapSpec* hooks = n->spec(MapRole::counters); hooks && !hook_map_)
    if (auto m = PinnedMap::open(n->bpffs, hooks->pin_name)) hook_map_ = std::move(*m);
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

Result<std::vector<CounterReading>> CountersSource::poll() {
  auto all = map_->read_all();
  if (!all) return make_error(all.error().code, "watch: counters: " + all.error().message);
  std::vector<CounterReading> now;
  now.reserve(all->size());
  for (const auto& [id, packets] : *all)
    now.push_back(CounterReading{fmt::format("{:#x}", id), packets, std::nullopt});
  return now;
}

std::map<HookKey, std::vector<std::pair<std::string, uint64_t>>> CountersSource::poll_hooks() {
  std::map<HookKey, std::vector<std::pair<std::string, uint64_t>>> out;
  const NodeState& n = model_->state();
  if (!hook_map_ || !n.release) return out;
  std::map<HookKey, std::string> hooks;
  for (const auto& [id, a] : known_)
    if (a.counters) hooks.emplace(*a.counters, a.hook);
  for (const auto& [key, name] : hooks) {
    auto v = hook_map_->lookup(encode_counters_key({key.first, key.second}));
    if (!v || !*v) continue;  // unreadable, or no entry: no delta to say
    auto sums = decode_counters_value(**v, hook_map_->info().value_size, hook_map_->cpus(),
                                      n.release->releases.first);
    if (!sums) continue;
    auto last = hook_last_.find(key);
    if (last != hook_last_.end())
      for (uint32_t reason : {kDroppedByPolicy, kAcceptedByPolicy})
        if ((*sums)[reason] >= last->second[reason])
          out[key].emplace_back(
              fmt::format("{} {}", name, counter_name(n.release->releases.first, reason)),
              (*sums)[reason] - last->second[reason]);
    hook_last_[key] = std::move(*sums);
  }
  return out;
}

const Attribution* CountersSource::attribution(uint64_t id) {
  auto it = known_.find(id);
  if (it != known_.end()) return &it->second;
  return nullptr;
}

Status CountersSource::start() {
  if (auto st = load_node(); !st) return st;
  auto now = poll();
  if (!now) return now.error();
  deltas_.update(*now);
  poll_hooks();
  next_poll_ = Clock::now() + interval_;
  return Ok{};
}

Status CountersSource::read(std::vector<WatchEvent>& out) {
  // The loop also wakes for other sources and its housekeeping: poll on this source's clock.
  const auto t = Clock::now();
  if (t < next_poll_) return Ok{};
  next_poll_ = t + interval_;
  auto now = poll();
  if (!now) return now.error();
  auto changes = deltas_.update(*now);
  auto hooks = poll_hooks();
  if (changes.empty()) return Ok{};
  // New rule ids no program explained at the last read: the policy was reprogrammed since.
  bool unknown = false;
  for (const auto& c : changes)
    if (auto id = parse_rule_id(c.rule_id); id && !known_.count(*id)) unknown = true;
  // Reading the node is costly: at most every kReloadEvery. An id met before that stays unnamed
  // for this event and says why, rather than claiming no program records it.
  const bool reread_skipped = unknown && t - loaded_at_ < kReloadEvery;
  if (unknown && !reread_skipped)
    if (auto st = load_node(); !st) return st;
  const auto when = std::chrono::system_clock::now();
  for (auto& c : changes) {
    WatchEvent e;
    e.source = "counters";
    e.time = when;
    const auto id = parse_rule_id(c.rule_id);
    if (const Attribution* a = id ? attribution(*id) : nullptr) {
      e.rule = a->rule;
      e.hook = a->hook;
      if (a->counters)
        if (auto h = hooks.find(*a->counters); h != hooks.end()) e.hook_counters = h->second;
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
