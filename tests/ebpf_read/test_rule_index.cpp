// Rule attribution from the three comment dialects (fixtures/make_fixtures.py writes the inputs;
// the meanings below are written by hand from the builder's comment formats).
#include <array>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/ebpf/rule_index.h"

using namespace dpi::ebpf;

namespace {

struct ExpectSite {
  SiteKind kind;
  std::size_t first, end;
  std::string tier, policy_kind, policy_ns, policy_name, profile;
  int rule_index;
  std::string action;
  uint64_t id;
  std::size_t record;
};

struct ExpectMap {
  int32_t fd;
  MapFdRole role;
  std::size_t first_use;
};

struct Case {
  const char* file;
  std::vector<ExpectSite> sites;
  std::vector<ExpectMap> maps;
  std::vector<std::pair<std::size_t, std::size_t>> subprograms;  // first, count
};

const SiteKind R = SiteKind::rule, T = SiteKind::end_of_tier, N = SiteKind::no_profile;

std::vector<ExpectSite> legacy_sites(uint64_t end_of_tier_id) {
  return {
      {R, 10, 24, "default", "NetworkPolicy", "prod", "allow-dns", "", 0, "allow", 1234567890123,
       19},
      {R, 24, 42, "default", "NetworkPolicy", "prod", "allow-dns", "", 1, "deny", 42, 37},
      {T, 42, 54, "default", "", "", "", "", -1, "deny", end_of_tier_id, 49},
      {R, 54, 66, "", "", "", "", "", 0, "allow", 77, 61},
      {N, 66, 77, "", "", "", "", "", -1, "deny", 0, 73},
  };
}

std::string fixture(const char* name) {
  return std::string(DPI_EBPF_FIXTURES) + "/" + name;
}

}  // namespace

TEST_CASE("rule index: every dialect", "[unit]") {
  const std::vector<ExpectMap> legacy_maps = {
      {5, MapFdRole::state, 5}, {6, MapFdRole::ip_sets, 24}, {7, MapFdRole::static_progs, 81}};
  const Case cases[] = {
      {"cali12345678901_egress_v4.v3_28.json", legacy_sites(0), legacy_maps, {{0, 98}}},
      {"cali12345678901_egress_v4.v3_30.json",
       legacy_sites(0xfedcba9876543210),
       legacy_maps,
       {{0, 98}}},
      {"cali12345678901_egress_v4.v3_32.json",
       {
           {R, 10, 24, "default", "NetworkPolicy", "prod", "allow-dns", "", 0, "allow",
            1234567890123, 19},
           {R, 47, 65, "default", "NetworkPolicy", "prod", "allow-dns", "", 1, "deny", 42, 60},
           {T, 65, 77, "default", "", "", "", "", -1, "deny", 0xfedcba9876543210, 72},
           {R, 77, 89, "", "", "", "", "kns.prod", 0, "allow", 77, 84},
           {N, 89, 100, "", "", "", "", "", -1, "deny", 0, 96},
       },
       {{5, MapFdRole::state, 5},
        {8, MapFdRole::policy_jump, 27},
        {6, MapFdRole::ip_sets, 47},
        {7, MapFdRole::static_progs, 104}},
       {{0, 33}, {33, 88}}},
  };
  for (const Case& c : cases) {
    SECTION(c.file) {
      auto prog = load_debug_json(fixture(c.file));
      REQUIRE(prog.ok());
      CHECK(prog->iface == "cali12345678901");
      CHECK(prog->hook == "tc ingress");
      REQUIRE(prog->subprograms.size() == c.subprograms.size());
      for (std::size_t k = 0; k < c.subprograms.size(); ++k) {
        CHECK(prog->subprograms[k].k == k);
        CHECK(prog->subprograms[k].first == c.subprograms[k].first);
        CHECK(prog->subprograms[k].count == c.subprograms[k].second);
      }
      auto idx = build_rule_index(*prog);
      INFO((idx.ok() ? std::string() : idx.error().message));
      REQUIRE(idx.ok());
      REQUIRE(idx->sites.size() == c.sites.size());
      for (std::size_t i = 0; i < c.sites.size(); ++i) {
        const ExpectSite& e = c.sites[i];
        const RuleSite& s = idx->sites[i];
        INFO("site " << i);
        CHECK(s.kind == e.kind);
        CHECK(s.first == e.first);
        CHECK(s.end == e.end);
        CHECK(s.tier == e.tier);
        CHECK(s.policy.has_value() == !e.policy_name.empty());
        if (s.policy) {
          CHECK(s.policy->kind == e.policy_kind);
          CHECK(s.policy->ns == e.policy_ns);
          CHECK(s.policy->name == e.policy_name);
        }
        CHECK(s.profile == e.profile);
        CHECK(s.rule_index == e.rule_index);
        CHECK(s.action == e.action);
        REQUIRE(s.match_id.has_value());
        CHECK(*s.match_id == e.id);
        REQUIRE(s.record.has_value());
        CHECK(*s.record == e.record);
      }
      REQUIRE(idx->maps.size() == c.maps.size());
      for (std::size_t i = 0; i < c.maps.size(); ++i) {
        CHECK(idx->maps[i].fd == c.maps[i].fd);
        CHECK(idx->maps[i].role == c.maps[i].role);
        CHECK(idx->maps[i].first_use == c.maps[i].first_use);
      }
      REQUIRE(idx->ip_sets.size() == 1);
      CHECK(idx->ip_sets[0].name == "s:abc");
      CHECK(idx->ip_sets[0].id == 0x1a2b3c4d5e6f7081);
      CHECK(idx->fd_for(MapFdRole::state) == 5);
      auto by_id = idx->find_id(42);
      REQUIRE(by_id.size() == 1);
      CHECK(by_id[0]->rule_index == 1);
      CHECK(idx->site_at(c.sites[1].record) == by_id[0]);
    }
  }
}

TEST_CASE("rule index: legacy policy names", "[unit]") {
  struct Row {
    const char* raw;
    const char* tier;
    const char* kind;
    const char* ns;
    const char* name;
  };
  const Row rows[] = {
      {"prod/default.allow-dns", "default", "NetworkPolicy", "prod", "allow-dns"},
      {"default.global-deny", "default", "GlobalNetworkPolicy", "", "global-deny"},
      {"prod/knp.default.web", "default", "KubernetesNetworkPolicy", "prod", "web"},
      {"security.block", "security", "GlobalNetworkPolicy", "", "block"},
      {"prod/other.x", "default", "", "prod", "other.x"},
  };
  for (const Row& r : rows) {
    PolicyName p = parse_legacy_policy_name(r.raw, r.tier);
    INFO(r.raw);
    CHECK(p.kind == r.kind);
    CHECK(p.ns == r.ns);
    CHECK(p.name == r.name);
    CHECK(p.raw == r.raw);
  }
}

TEST_CASE("rule index: rule text actions", "[unit]") {
  CHECK(rule_text_action(R"(action:"allow"  protocol:{name:"tcp"})") == "allow");
  CHECK(rule_text_action(R"(action:"Deny")") == "deny");
  CHECK(rule_text_action(R"(action:"next-tier")") == "pass");
  CHECK(rule_text_action(R"(action:"log" )") == "log");
  CHECK(rule_text_action(R"(protocol:{name:"tcp"})") == "");
}

namespace {

// A minimal program: one instruction per comment list, code "exit".
std::string program_with_comments(const std::vector<std::vector<std::string>>& comments) {
  std::string items;
  for (const auto& cs : comments) {
    std::string list;
    for (const auto& c : cs) list += (list.empty() ? "" : ",") + ("\"" + c + "\"");
    items += (items.empty() ? "" : ",") +
             ("{\"inst\":[149,0,0,0,0,0,0,0],\"labels\":null,\"comments\":[" + list +
              "],\"annotation\":\"\"}");
  }
  return "{\"ifacename\":\"cali1\",\"hook\":\"tc egress\",\"policyInfo\":[" + items +
         "],\"error\":\"\"}";
}

}  // namespace

TEST_CASE("rule index: bad comment structure is an error naming the instruction", "[unit]") {
  struct Row {
    std::vector<std::vector<std::string>> comments;
    const char* message;
  };
  const Row rows[] = {
      {{{"Rule MatchID: 5"}}, "t.json: policyInfo[0]: \"Rule MatchID: 5\" outside a rule"},
      {{{"Start of tier a", "Start of policy ns/a.p", "Start of rule action:\\\"allow\\\"",
         "Rule MatchID: x1"}},
       "t.json: policyInfo[0]: bad rule id in \"Rule MatchID: x1\""},
      {{{"Start of something odd"}},
       "t.json: policyInfo[0]: unknown comment shape \"Start of something odd\""},
      {{{"Start of tier a"}, {"End of tier a: maybe"}},
       "t.json: policyInfo[1]: unknown end-of-tier action in \"End of tier a: maybe\""},
      {{{"Start of tier a"}, {"Start of rule action:\\\"allow\\\""}},
       "t.json: policyInfo[1]: rule outside a policy in tier a"},
  };
  for (const Row& r : rows) {
    auto prog = parse_debug_json(program_with_comments(r.comments), "t.json");
    REQUIRE(prog.ok());
    auto idx = build_rule_index(*prog);
    REQUIRE_FALSE(idx.ok());
    CHECK(idx.error().message == r.message);
  }
}

namespace {

struct Slot {
  std::vector<std::string> labels, comments;
  std::array<int, 8> inst = {149, 0, 0, 0, 0, 0, 0, 0};
};

// writeRecordRuleID's instructions for a 32-bit id, the first carrying labels and comments.
std::vector<Slot> record(uint32_t id, std::vector<std::string> labels = {},
                         std::vector<std::string> comments = {}) {
  auto b = [](uint32_t v) { return static_cast<int>(v & 0xff); };
  return {
      {labels, comments, {113, 145, 108, 0, 0, 0, 0, 0}},
      {{}, {}, {53, 1, 8, 0, 32, 0, 0, 0}},
      {{}, {}, {191, 18, 0, 0, 0, 0, 0, 0}},
      {{}, {}, {7, 2, 0, 0, 1, 0, 0, 0}},
      {{}, {}, {115, 41, 108, 0, 0, 0, 0, 0}},
      {{}, {}, {103, 1, 0, 0, 3, 0, 0, 0}},
      {{}, {}, {7, 1, 0, 0, 112, 0, 0, 0}},
      {{}, {}, {24, 2, 0, 0, b(id), b(id >> 8), b(id >> 16), b(id >> 24)}},
      {{}, {}, {0, 0, 0, 0, 0, 0, 0, 0}},
      {{}, {}, {15, 145, 0, 0, 0, 0, 0, 0}},
      {{}, {}, {123, 33, 0, 0, 0, 0, 0, 0}},
  };
}

std::string program_json(const std::vector<Slot>& slots) {
  auto list = [](const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) out += (out.empty() ? "\"" : ",\"") + s + "\"";
    return "[" + out + "]";
  };
  std::string items;
  for (const Slot& s : slots) {
    std::string inst;
    for (int b : s.inst) inst += (inst.empty() ? "" : ",") + std::to_string(b);
    items += (items.empty() ? "" : ",") + ("{\"inst\":[" + inst + "],\"labels\":" + list(s.labels) +
                                           ",\"comments\":" + list(s.comments) + "}");
  }
  return R"({"ifacename":"eth0","hook":"tc ingress","policyInfo":[)" + items + "]}";
}

}  // namespace

TEST_CASE("rule index: an unreachable end-of-tier rule and a pass tier", "[unit]") {
  // Tier a ends in a rule that matches everything, so its end-of-tier rule has no code and its
  // comment lands on the end_of_tier_0 label, the first instruction of tier b.
  const std::vector<Slot> slots = {
      {{"policy"},
       {"Start of tier a", "Start of policy ns/a.p", "Start of rule action:\\\"deny\\\"",
        "Rule MatchID: 5"}},
      {{"end_of_tier_0"},
       {"End of rule r1", "End of policy ns/a.p", "End of tier a: deny", "Start of tier b",
        "Start of policy b.q", "Start of rule action:\\\"allow\\\"", "Rule MatchID: 6"}},
      {{}, {"End of rule r2", "End of policy b.q", "End of tier b: pass"}},
      {{}, {}},
      {{"end_of_tier_1", "deny"}, {}},
  };
  auto prog = parse_debug_json(program_json(slots), "eth0_ingress_v4.json");
  REQUIRE(prog.ok());
  auto idx = build_rule_index(*prog);
  INFO((idx.ok() ? std::string() : idx.error().message));
  REQUIRE(idx.ok());
  REQUIRE(idx->sites.size() == 4);
  const auto& s = idx->sites;
  CHECK((s[0].kind == SiteKind::rule && s[0].first == 0 && s[0].end == 1 && s[0].tier == "a"));
  CHECK((s[0].policy->kind == "NetworkPolicy" && s[0].policy->name == "p"));
  CHECK(s[0].match_id == 5u);
  CHECK((s[1].kind == SiteKind::end_of_tier && s[1].tier == "a" && s[1].first == 1));
  CHECK(s[1].end == 1);  // no code: unreachable
  CHECK_FALSE(s[1].match_id);
  CHECK((s[2].kind == SiteKind::rule && s[2].tier == "b" && s[2].first == 1 && s[2].end == 2));
  CHECK((s[2].policy->kind == "GlobalNetworkPolicy" && s[2].policy->name == "q"));
  CHECK(s[2].action == "allow");
  CHECK((s[3].kind == SiteKind::end_of_tier && s[3].tier == "b" && s[3].action == "pass"));
  CHECK((s[3].first == 2 && s[3].end == 4));
  CHECK(idx->site_at(3) == &s[3]);
  CHECK(idx->site_at(4) == nullptr);
}

TEST_CASE("rule index: a workload program's host no-profile rule", "[unit]") {
  // Felix gives a workload's program a "normal host policy" section: with no host tiers or
  // profiles it is just the no-profile rule, before allowed_by_host_policy.
  std::vector<Slot> slots = {{{"start"}, {}}, {{}, {}, {5, 0, 12, 0, 0, 0, 0, 0}}};
  for (auto& r : record(0, {"to_or_from_host"})) slots.push_back(r);  // 2..12
  slots.push_back({{}, {}, {5, 0, 20, 0, 0, 0, 0, 0}});               // 13: ja deny
  for (auto& r : record(9, {"allowed_by_host_policy"},
                        {"Start of tier default", "Start of NetworkPolicy ns/p 0",
                         "Start of rule ns/p action:\\\"allow\\\"", "Rule MatchID: 9"}))
    slots.push_back(r);  // 14..24
  slots.push_back(
      {{}, {"End of rule ns/p r", "End of NetworkPolicy ns/p 0", "End of tier default: deny"}});
  slots.push_back({{"end_of_tier_0"}, {}});      // 26
  for (auto& r : record(0)) slots.push_back(r);  // 27..37
  slots.push_back({{"deny"}, {}});               // 38
  auto prog = parse_debug_json(program_json(slots), "cali1_egress_v4.json");
  INFO((prog.ok() ? std::string() : prog.error().message));
  REQUIRE(prog.ok());
  auto idx = build_rule_index(*prog);
  INFO((idx.ok() ? std::string() : idx.error().message));
  REQUIRE(idx.ok());
  const auto& s = idx->sites;
  REQUIRE(s.size() == 4);
  CHECK((s[0].kind == SiteKind::no_profile && s[0].first == 2 && s[0].end == 13));
  CHECK((s[0].host && s[0].match_id == 0u && s[0].record == 9u));
  CHECK((s[1].kind == SiteKind::rule && s[1].first == 14 && s[1].end == 25 && !s[1].host));
  CHECK((s[1].match_id == 9u && s[1].record == 21u && s[1].policy->name == "p"));
  CHECK((s[2].kind == SiteKind::end_of_tier && s[2].first == 25 && s[2].end == 26));
  CHECK_FALSE(s[2].match_id);  // no code between the comment and the label: unreachable
  CHECK((s[3].kind == SiteKind::no_profile && s[3].first == 26 && s[3].end == 38));
  CHECK((!s[3].host && s[3].record == 34u));
}

TEST_CASE("rule index: rules spanning program splits", "[unit]") {
  // Made by the lab's Felix-shaped generator (tests/lab/ebpf/polprog.py) with a jump limit of 6:
  // four sub-programs, each with its own footer and landing pads; rule 0 of "block" begins in
  // sub-program 0 and records its id in sub-program 1, the pass rule in sub-program 2. The
  // pass rule matches everything, so tier security's end-of-tier rule is unreachable; the
  // default tier's end is a deny, so the profile after it has no code.
  auto prog = load_debug_json(fixture("cali1_egress_v4.split.v3_32.json"));
  REQUIRE(prog.ok());
  REQUIRE(prog->subprograms.size() == 4);
  CHECK(prog->subprograms[1].first == 33);
  CHECK(prog->subprograms[2].first == 81);
  CHECK(prog->subprograms[3].first == 161);
  auto idx = build_rule_index(*prog);
  INFO((idx.ok() ? std::string() : idx.error().message));
  REQUIRE(idx.ok());
  struct Row {
    SiteKind kind;
    std::size_t first, end;
    const char* tier;
    const char* policy;
    int rule_index;
    const char* action;
    std::optional<uint64_t> id;
    std::optional<std::size_t> record;
  };
  const Row rows[] = {
      {R, 14, 62, "security", "block", 0, "deny", 11, 57},
      {R, 62, 106, "security", "block", 1, "pass", 12, 101},
      {T, 106, 106, "security", "", -1, "deny", std::nullopt, std::nullopt},
      {R, 106, 138, "default", "allow", 0, "allow", 21, 133},
      {T, 138, 186, "default", "", -1, "deny", 98, 181},
      {R, 186, 186, "", "", 0, "allow", 31, std::nullopt},
  };
  REQUIRE(idx->sites.size() == std::size(rows));
  for (std::size_t i = 0; i < std::size(rows); ++i) {
    const Row& r = rows[i];
    const RuleSite& s = idx->sites[i];
    INFO("site " << i);
    CHECK(s.kind == r.kind);
    CHECK(s.first == r.first);
    CHECK(s.end == r.end);
    CHECK(s.tier == r.tier);
    CHECK((s.policy ? s.policy->name : std::string()) == r.policy);
    CHECK(s.rule_index == r.rule_index);
    CHECK(s.action == r.action);
    CHECK(s.match_id == r.id);
    CHECK(s.record == r.record);
  }
  CHECK(idx->sites[0].policy->kind == "GlobalNetworkPolicy");
  CHECK(idx->sites[3].policy->ns == "prod");
  CHECK(idx->sites[5].profile == "kns.prod");
  CHECK(idx->fd_for(MapFdRole::state) == 3);
  CHECK(idx->fd_for(MapFdRole::policy_jump) == 6);
  CHECK(idx->fd_for(MapFdRole::static_progs) == 5);
  CHECK(idx->fd_for(MapFdRole::ip_sets) == 4);
  // An instruction in sub-program 1 still belongs to rule 0.
  CHECK(idx->site_at(57) == &idx->site_at(14)[0]);
}
