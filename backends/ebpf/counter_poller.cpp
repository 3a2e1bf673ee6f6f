#include "backends/ebpf/counter_poller.h"

#include <fmt/format.h>

namespace dpi::ebpf {

namespace {

std::string_view watched_map_what(WatchedMap m) {
  switch (m) {
    case WatchedMap::rule_counters: return "rule counters map";
    case WatchedMap::hook_counters: return "hook counters map";
  }
  return "";
}

uint64_t reason_sum(const std::vector<uint64_t>& sums, uint32_t reason) {
  return reason < sums.size() ? sums[reason] : 0;
}

WatchNotice counters_notice(std::string kind, std::string map, std::string message) {
  WatchNotice n;
  n.source = "counters";
  n.kind = std::move(kind);
  n.time = std::chrono::system_clock::now();
  n.map = std::move(map);
  n.message = std::move(message);
  return n;
}

}  // namespace

void CounterPoller::say(const std::string& topic, WatchNotice n, CounterPoll& out) {
  std::string& last = said_[topic];
  if (last == n.message) return;
  last = n.message;
  out.notices.push_back(std::move(n));
}

void CounterPoller::check_pin(WatchedMap m, CounterPoll& out) {
  const std::string path = maps_.path(m);
  const std::string_view what = watched_map_what(m);
  const std::string topic = "pin " + path;
  const std::optional<uint32_t> held = maps_.held_id(m);
  auto pinned = maps_.pinned_id(m);
  if (!pinned) {
    auto n = counters_notice(
        "read_failed", path,
        held ? fmt::format("{} {} cannot be checked ({}): still reading map id {}, which Felix may "
                           "no longer update",
                           what, path, pinned.error().message, *held)
             : fmt::format("{} unavailable: {}", what, pinned.error().message));
    n.old_id = held;
    say(topic, std::move(n), out);
    return;
  }
  if (held && *held == *pinned) {
    clear(topic);
    return;
  }
  if (auto st = maps_.reopen(m); !st) {
    auto n = counters_notice(
        "read_failed", path,
        held ? fmt::format("{} {} is map id {} now (was {}), which cannot be opened ({}): its "
                           "counts are not read",
                           what, path, *pinned, *held, st.error().message)
             : fmt::format("{} unavailable: {}", what, st.error().message));
    n.old_id = held;
    n.new_id = *pinned;
    say(topic, std::move(n), out);
    return;
  }
  clear(topic);
  // Whatever the old map counted since the last poll, and the new one before this read, is not
  // known: the new map's counts are the baseline, never a delta against the old map's.
  if (m == WatchedMap::rule_counters)
    deltas_ = CounterDeltas{};
  else
    hook_last_.clear();
  if (!held) return;  // opened for the first time: nothing was re-created
  const std::optional<uint32_t> now = maps_.held_id(m);
  auto n = counters_notice(
      "map_recreated", path,
      fmt::format("map re-created: baseline reset: {} {} is map id {} now (was {}; Felix "
                  "re-created it): what was counted between the last read and this one is not "
                  "known, deltas count from this read",
                  what, path, now.value_or(*pinned), *held));
  n.old_id = held;
  n.new_id = now.value_or(*pinned);
  out.notices.push_back(std::move(n));
  out.recreated = true;
}

void CounterPoller::read_hooks(const std::map<HookKey, std::string>& hooks, CounterPoll& out) {
  if (!maps_.held_id(WatchedMap::hook_counters)) return;
  for (const auto& [key, name] : hooks) {
    const std::string topic =
        fmt::format("hook {} {}", key.first, static_cast<uint32_t>(key.second));
    auto v = maps_.read_hook(key);
    if (!v) {
      say(topic,
          counters_notice(
              "read_failed", maps_.path(WatchedMap::hook_counters),
              fmt::format("hook counters of {} could not be read: {}", name, v.error().message)),
          out);
      hook_last_.erase(key);  // the next successful read is a baseline
      continue;
    }
    clear(topic);
    // No entry: the hook's program has counted nothing yet.
    std::vector<uint64_t> sums = *v ? std::move(**v) : std::vector<uint64_t>{};
    auto last = hook_last_.find(key);
    if (last != hook_last_.end()) {
      bool down = false;
      for (uint32_t reason : {kDroppedByPolicy, kAcceptedByPolicy})
        down = down || reason_sum(sums, reason) < reason_sum(last->second, reason);
      // Counters that went down were reset: this read is the hook's baseline, no delta.
      if (!down)
        for (uint32_t reason : {kDroppedByPolicy, kAcceptedByPolicy})
          out.hooks[key].emplace_back(reason,
                                      reason_sum(sums, reason) - reason_sum(last->second, reason));
    }
    hook_last_[key] = std::move(sums);
  }
}

Result<CounterPoll> CounterPoller::poll(const std::map<HookKey, std::string>& hooks) {
  CounterPoll out;
  check_pin(WatchedMap::rule_counters, out);
  check_pin(WatchedMap::hook_counters, out);
  if (!maps_.held_id(WatchedMap::rule_counters))
    return make_error(ErrorCode::not_found,
                      fmt::format("watch: counters: no rule counters map held ({})",
                                  maps_.path(WatchedMap::rule_counters)));
  auto all = maps_.read_rules();
  if (!all) return make_error(all.error().code, "watch: counters: " + all.error().message);
  std::vector<CounterReading> now;
  now.reserve(all->size());
  for (const auto& [id, packets] : *all)
    now.push_back(CounterReading{fmt::format("{:#x}", id), packets, std::nullopt});
  out.changes = deltas_.update(now);
  read_hooks(hooks, out);
  return out;
}

}  // namespace dpi::ebpf
