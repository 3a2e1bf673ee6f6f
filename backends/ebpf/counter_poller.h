// The polling half of `watch --source counters`: each poll checks that the pins still name the
// maps held (Felix re-creates a map at the same pin on a restart or a resize; an fd opened
// earlier then reads a map nothing updates any more), re-opens them and takes the baseline again
// when not, and turns the readings into deltas. The maps are behind CounterMaps so that the
// logic is tested without a kernel; watch_counters.cpp holds the pinned ones.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/ebpf/counters.h"
#include "core/result.h"
#include "core/watch.h"

namespace dpi::ebpf {

// A policy hook of one interface, as cali_counters* keys it.
using HookKey = std::pair<uint32_t, CounterHook>;

// enum calico_reason: the same indices in every release (counters.h).
inline constexpr uint32_t kDroppedByPolicy = 4, kAcceptedByPolicy = 2;

enum class WatchedMap { rule_counters, hook_counters };

class CounterMaps {
 public:
  virtual ~CounterMaps() = default;
  // The pin's path, for messages.
  virtual std::string path(WatchedMap m) const = 0;
  // The kernel's id of the map held; nullopt when none is (not opened yet, or it failed).
  virtual std::optional<uint32_t> held_id(WatchedMap m) const = 0;
  // The id of the map pinned at the path now; not_found when nothing is pinned there.
  virtual Result<uint32_t> pinned_id(WatchedMap m) const = 0;
  // Holds the map pinned now instead of the one held (kept when this fails).
  virtual Status reopen(WatchedMap m) = 0;
  // Every (rule id, packets) of the rule counters map held.
  virtual Result<std::vector<std::pair<uint64_t, uint64_t>>> read_rules() const = 0;
  // A hook's counters summed over the CPUs, by enum calico_reason; nullopt when it has no entry.
  virtual Result<std::optional<std::vector<uint64_t>>> read_hook(const HookKey& k) const = 0;
};

struct CounterPoll {
  std::vector<CounterChange> changes;  // none on a baseline
  // The deltas of (kDroppedByPolicy, kAcceptedByPolicy) by hook since the last poll; a hook
  // without a baseline yet (first read, re-created map, counters that went down) has none.
  std::map<HookKey, std::vector<std::pair<uint32_t, uint64_t>>> hooks;
  std::vector<WatchNotice> notices;
  bool recreated = false;  // a map was re-created: the node's programs are worth reading again
};

class CounterPoller {
 public:
  explicit CounterPoller(CounterMaps& maps) : maps_(maps) {}
  // The first call takes the baseline. A rule counters map that cannot be read is the error;
  // the hooks' counters only add to it: their failures are notices, each said once.
  // hooks: the hooks to read, each with its name for messages ("tc ingress cali1").
  Result<CounterPoll> poll(const std::map<HookKey, std::string>& hooks);

 private:
  void check_pin(WatchedMap m, CounterPoll& out);
  void read_hooks(const std::map<HookKey, std::string>& hooks, CounterPoll& out);
  // Appends the notice unless the last one said for `topic` was the same.
  void say(const std::string& topic, WatchNotice n, CounterPoll& out);
  void clear(const std::string& topic) { said_.erase(topic); }

  CounterMaps& maps_;
  CounterDeltas deltas_;
  std::map<HookKey, std::vector<uint64_t>> hook_last_;
  std::map<std::string, std::string> said_;  // topic -> the message said last
};

}  // namespace dpi::ebpf
