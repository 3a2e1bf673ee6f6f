// watch --source counters: the maps Felix re-creates at the same pin, and the hook counters that
// cannot be read, through a fake CounterMaps (no kernel).
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/ebpf/counter_poller.h"

namespace e = dpi::ebpf;
using dpi::CounterChange;
using e::WatchedMap;

namespace {

// Maps by id (what the kernel holds) and the id each pin names; a reader holds one id per role.
struct FakeMaps final : e::CounterMaps {
  struct Map {
    std::map<uint64_t, uint64_t> rules;                 // rule id -> packets
    std::map<e::HookKey, std::vector<uint64_t>> hooks;  // by enum calico_reason
    bool openable = true;                               // false: a layout we refuse
  };
  std::map<uint32_t, Map> kernel;
  std::map<WatchedMap, std::optional<uint32_t>> pins, held;  // nullopt pin: nothing pinned
  std::optional<std::string> hook_read_error;

  std::string path(WatchedMap m) const override {
    return m == WatchedMap::rule_counters ? "/bpffs/cali_rule_ctrs2" : "/bpffs/cali_counters4";
  }
  std::optional<uint32_t> held_id(WatchedMap m) const override {
    auto it = held.find(m);
    return it == held.end() ? std::nullopt : it->second;
  }
  dpi::Result<uint32_t> pinned_id(WatchedMap m) const override {
    auto it = pins.find(m);
    if (it == pins.end() || !it->second)
      return dpi::make_error(dpi::ErrorCode::not_found, path(m) + ": No such file or directory");
    return *it->second;
  }
  dpi::Status reopen(WatchedMap m) override {
    auto id = pinned_id(m);
    if (!id) return id.error();
    if (!kernel.at(*id).openable)
      return dpi::make_error(dpi::ErrorCode::bad_input, path(m) + ": type 1 key/value 4/4 bytes");
    held[m] = *id;
    return dpi::Ok{};
  }
  dpi::Result<std::vector<std::pair<uint64_t, uint64_t>>> read_rules() const override {
    const Map& map = kernel.at(*held.at(WatchedMap::rule_counters));
    return std::vector<std::pair<uint64_t, uint64_t>>(map.rules.begin(), map.rules.end());
  }
  dpi::Result<std::optional<std::vector<uint64_t>>> read_hook(const e::HookKey& k) const override {
    if (hook_read_error) return dpi::make_error(dpi::ErrorCode::system, *hook_read_error);
    const Map& map = kernel.at(*held.at(WatchedMap::hook_counters));
    auto it = map.hooks.find(k);
    if (it == map.hooks.end()) return std::optional<std::vector<uint64_t>>{};
    return std::optional<std::vector<uint64_t>>{it->second};
  }

  Map& rules_map() { return kernel.at(*pins.at(WatchedMap::rule_counters)); }
  Map& hooks_map() { return kernel.at(*pins.at(WatchedMap::hook_counters)); }
  // Felix pins a new map (new id) at the role's path; the old one lives on while held.
  Map& recreate(WatchedMap m, uint32_t id) {
    pins[m] = id;
    return kernel[id];
  }
};

const e::HookKey kFakeHook{7, dpi::ebpf::CounterHook::tc_ingress};

std::vector<uint64_t> fake_hook_sums(uint64_t dropped, uint64_t accepted) {
  std::vector<uint64_t> v(8, 0);
  v[e::kDroppedByPolicy] = dropped;
  v[e::kAcceptedByPolicy] = accepted;
  return v;
}

// What one poll must give: "moved 0x1 +3", "reset 0x1", ...; notices as "kind old->new";
// the hook's (dropped, accepted) deltas, nullopt for none.
struct PollExpect {
  std::vector<std::string> changes;
  std::vector<std::string> notices;
  std::optional<std::pair<uint64_t, uint64_t>> hook;
};

std::string poll_change_text(const CounterChange& c) {
  return fmt::format("{} {} +{}", dpi::counter_change_name(c.kind), c.rule_id, c.packets());
}

std::string poll_notice_text(const dpi::WatchNotice& n) {
  auto id = [](const std::optional<uint32_t>& v) { return v ? std::to_string(*v) : "-"; };
  return fmt::format("{} {}->{}", n.kind, id(n.old_id), id(n.new_id));
}

struct PollStep {
  std::function<void(FakeMaps&)> change;
  PollExpect expect;
};

struct PollCase {
  const char* name;
  std::function<void(FakeMaps&)> setup;  // before the baseline
  std::vector<PollStep> steps;
};

// A node with rule counters map 10 (rule 0x1 at 5 packets) and hook counters map 20.
void fake_node(FakeMaps& f) {
  f.kernel[10].rules = {{1, 5}};
  f.kernel[20].hooks = {{kFakeHook, fake_hook_sums(3, 1)}};
  f.pins[WatchedMap::rule_counters] = 10;
  f.pins[WatchedMap::hook_counters] = 20;
  f.held[WatchedMap::rule_counters] = 10;  // the source opens the rule counters itself
}

}  // namespace

TEST_CASE("watch counters: re-created maps reopened with a new baseline, failed reads said once",
          "[unit]") {
  const std::vector<PollCase> cases = {
      {"steady: deltas of the map held, no notice",
       fake_node,
       {{[](FakeMaps& f) { f.rules_map().rules[1] = 8; }, {{"moved 0x1 +3"}, {}, {{0, 0}}}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(5, 1); },
         {{}, {}, {{2, 0}}}}}},
      {"rule counters re-created empty: said with both ids, no reset or negative delta, then "
       "deltas against the new map",
       fake_node,
       {{[](FakeMaps& f) {
           f.kernel[10].rules[1] = 9;  // the old map moved after the last read: never seen
           f.recreate(WatchedMap::rule_counters, 11).rules = {{1, 2}};
         },
         {{}, {"map_recreated 10->11"}, {{0, 0}}}},
        {[](FakeMaps& f) { f.rules_map().rules[1] = 6; }, {{"moved 0x1 +4"}, {}, {{0, 0}}}},
        // The old map moving again is not read any more.
        {[](FakeMaps& f) { f.kernel[10].rules[1] = 100; }, {{}, {}, {{0, 0}}}}}},
      {"rule counters re-created with more entries (a resize copying counts): no bogus moves",
       fake_node,
       {{[](FakeMaps& f) {
           f.recreate(WatchedMap::rule_counters, 12).rules = {{1, 50}, {2, 4}};
         },
         {{}, {"map_recreated 10->12"}, {{0, 0}}}},
        {[](FakeMaps& f) { f.rules_map().rules[2] = 5; }, {{"moved 0x2 +1"}, {}, {{0, 0}}}}}},
      {"re-created twice: each said, each a baseline",
       fake_node,
       {{[](FakeMaps& f) {
           f.recreate(WatchedMap::rule_counters, 11).rules = {{1, 1}};
         },
         {{}, {"map_recreated 10->11"}, {{0, 0}}}},
        {[](FakeMaps& f) {
           f.recreate(WatchedMap::rule_counters, 13).rules = {{1, 0}};
         },
         {{}, {"map_recreated 11->13"}, {{0, 0}}}},
        {[](FakeMaps& f) { f.rules_map().rules[1] = 2; }, {{"moved 0x1 +2"}, {}, {{0, 0}}}}}},
      {"pin gone (Felix stopped): said once, the map held is still read; back: quiet",
       fake_node,
       {{[](FakeMaps& f) {
           f.pins[WatchedMap::rule_counters] = std::nullopt;
           f.kernel[10].rules[1] = 7;
         },
         {{"moved 0x1 +2"}, {"read_failed 10->-"}, {{0, 0}}}},
        {[](FakeMaps& f) { f.kernel[10].rules[1] = 8; }, {{"moved 0x1 +1"}, {}, {{0, 0}}}},
        {[](FakeMaps& f) { f.pins[WatchedMap::rule_counters] = 10; }, {{}, {}, {{0, 0}}}}}},
      {"a re-created map that cannot be opened: said once with its id, the old one kept",
       fake_node,
       {{[](FakeMaps& f) { f.recreate(WatchedMap::rule_counters, 14).openable = false; },
         {{}, {"read_failed 10->14"}, {{0, 0}}}},
        {[](FakeMaps& f) { f.kernel[10].rules[1] = 6; }, {{"moved 0x1 +1"}, {}, {{0, 0}}}}}},
      {"hook counters re-created: their baseline reset, the rules' not",
       fake_node,
       {{[](FakeMaps& f) {
           f.rules_map().rules[1] = 6;
           f.recreate(WatchedMap::hook_counters, 21).hooks = {{kFakeHook, fake_hook_sums(0, 0)}};
         },
         {{"moved 0x1 +1"}, {"map_recreated 20->21"}, std::nullopt}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(2, 0); },
         {{}, {}, {{2, 0}}}}}},
      {"hook counters unreadable: said once, no delta; readable again: a baseline first",
       fake_node,
       {{[](FakeMaps& f) { f.hook_read_error = "/bpffs/cali_counters4: lookup: Bad address"; },
         {{}, {"read_failed -->-"}, std::nullopt}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(4, 1); },
         {{}, {}, std::nullopt}},
        {[](FakeMaps& f) { f.hook_read_error.reset(); }, {{}, {}, std::nullopt}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(6, 1); },
         {{}, {}, {{2, 0}}}}}},
      {"no hook counters map pinned: said once (at the baseline), rules still counted",
       [](FakeMaps& f) {
         fake_node(f);
         f.pins[WatchedMap::hook_counters] = std::nullopt;
       },
       {{[](FakeMaps& f) { f.rules_map().rules[1] = 9; }, {{"moved 0x1 +4"}, {}, std::nullopt}},
        {[](FakeMaps& f) { f.rules_map().rules[1] = 10; }, {{"moved 0x1 +1"}, {}, std::nullopt}}}},
      {"hook counters that went down (reset) or had no entry",
       [](FakeMaps& f) {
         fake_node(f);
         f.kernel[20].hooks.clear();  // no entry yet: nothing counted
       },
       {{[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(2, 1); },
         {{}, {}, {{2, 1}}}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(1, 1); },
         {{}, {}, std::nullopt}},
        {[](FakeMaps& f) { f.hooks_map().hooks[kFakeHook] = fake_hook_sums(4, 1); },
         {{}, {}, {{3, 0}}}}}},
  };
  const std::map<e::HookKey, std::string> hooks{{kFakeHook, "tc ingress cali1"}};
  for (const auto& c : cases) {
    SECTION(c.name) {
      FakeMaps f;
      c.setup(f);
      e::CounterPoller poller(f);
      auto baseline = poller.poll(hooks);
      REQUIRE(baseline);
      CHECK(baseline->changes.empty());
      CHECK(baseline->hooks.empty());
      // Only a missing hook counters map is said at the baseline.
      CHECK(baseline->notices.size() == (f.pins[WatchedMap::hook_counters] ? 0u : 1u));
      for (std::size_t i = 0; i < c.steps.size(); ++i) {
        INFO("step " << i);
        c.steps[i].change(f);
        auto p = poller.poll(hooks);
        REQUIRE(p);
        std::vector<std::string> changes, notices;
        for (const auto& ch : p->changes) changes.push_back(poll_change_text(ch));
        for (const auto& n : p->notices) notices.push_back(poll_notice_text(n));
        CHECK(changes == c.steps[i].expect.changes);
        CHECK(notices == c.steps[i].expect.notices);
        CHECK(p->recreated == (!notices.empty() && notices[0].rfind("map_recreated", 0) == 0));
        auto h = p->hooks.find(kFakeHook);
        std::optional<std::pair<uint64_t, uint64_t>> got;
        if (h != p->hooks.end()) {
          REQUIRE(h->second.size() == 2);
          CHECK(h->second[0].first == e::kDroppedByPolicy);
          CHECK(h->second[1].first == e::kAcceptedByPolicy);
          got = std::pair{h->second[0].second, h->second[1].second};
        }
        CHECK(got == c.steps[i].expect.hook);
      }
    }
  }
}

TEST_CASE("watch counters: the re-created notice names the map and both ids", "[unit]") {
  FakeMaps f;
  fake_node(f);
  e::CounterPoller poller(f);
  REQUIRE(poller.poll({}));
  f.recreate(WatchedMap::rule_counters, 11);
  auto p = poller.poll({});
  REQUIRE(p);
  REQUIRE(p->notices.size() == 1);
  const dpi::WatchNotice& n = p->notices[0];
  CHECK(n.source == "counters");
  CHECK(n.map == "/bpffs/cali_rule_ctrs2");
  CHECK(n.message.rfind("map re-created: baseline reset: rule counters map /bpffs/cali_rule_ctrs2 "
                        "is map id 11 now (was 10",
                        0) == 0);
  CHECK(dpi::watch_notice_text(n).find(" counters map re-created: baseline reset: ") !=
        std::string::npos);
  auto j = dpi::watch_notice_json(n);
  CHECK(j["type"] == "notice");
  CHECK(j["kind"] == "map_recreated");
  CHECK(j["old_id"] == 10);
  CHECK(j["new_id"] == 11);
  dpi::WatchSummary s;
  s.add_notice(n);
  CHECK(s.as_json()["notices"][0]["kind"] == "map_recreated");
  CHECK(s.text().find("counters: map re-created: baseline reset:") != std::string::npos);
}
