#include <algorithm>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "backends/ebpf/counters.h"
#include "backends/ebpf/failsafes.h"
#include "backends/ebpf/inspect.h"
#include "backends/ebpf/ip_sets.h"
#include "backends/ebpf/nat.h"
#include "backends/ebpf/prog_tag.h"
#include "backends/ebpf/routes.h"
#include "core/calico/attribution.h"
#include "core/layers.h"

namespace e = dpi::ebpf;
using dpi::DecisionKind;
using dpi::IpAddr;
using dpi::Verdict;

namespace {

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

dpi::Flow tcp_flow(const char* src, const char* dst, uint16_t dport) {
  dpi::Flow f;
  f.src = ip(src);
  f.dst = ip(dst);
  f.l4proto = 6;
  f.dport = dport;
  REQUIRE(dpi::normalize(f));
  return f;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<uint8_t> le32(uint32_t v) {
  return {uint8_t(v), uint8_t(v >> 8), uint8_t(v >> 16), uint8_t(v >> 24)};
}

// The seed's client workload (ifindex 5, policy index 3 on the tc ingress hook) with the stars
// pods behind an IP set, as a node of `release` would pin it.
e::NodeState seed_node(e::Release release, int minor) {
  e::NodeState n;
  n.source = "test";
  n.bpffs = "/test/tc/globals";
  n.policy_debug_dir = "/test/policy";
  const e::Layout& l = e::layout_for(release);
  for (const e::MapSpec& s : l.maps)
    n.maps.push_back({std::string(s.pin_name), static_cast<uint32_t>(s.type), s.key_size,
                      s.value_size, s.max_entries});
  e::detect_layout(n);
  REQUIRE(n.release);

  // ifstate: flags WEP|IPv4Ready, name, xdp -1, tc ingress 3, everything else -1.
  std::vector<uint8_t> ifv = le32(0x3);
  std::string name = "cali0client001";
  for (std::size_t i = 0; i < 16; ++i) ifv.push_back(i < name.size() ? name[i] : 0);
  auto push_idx = [&](int32_t v) {
    auto b = le32(static_cast<uint32_t>(v));
    ifv.insert(ifv.end(), b.begin(), b.end());
  };
  push_idx(-1);
  push_idx(3);
  for (int i = 0; i < 6; ++i) push_idx(-1);
  REQUIRE(ifv.size() == 52);
  n.entries["ifstate"].push_back({le32(5), ifv});

  // routes: the client is a local workload (0x0d, ifindex 5 LE); 10.65.0.0/24 a remote block.
  auto route = [&](const char* pfx, uint32_t flags, std::vector<uint8_t> nh) {
    auto k = e::encode_route_key(*dpi::IpPrefix::parse(pfx));
    auto v = le32(flags);
    v.insert(v.end(), nh.begin(), nh.end());
    n.entries["routes4"].push_back({k, v});
  };
  route("10.65.0.2/32", 0x0d, le32(5));
  route("10.65.0.0/24", 0x05, {172, 18, 0, 1});

  e::IpSetKey k;
  k.mask = 64 + 32;
  k.set_id = 0x1122334455667788;
  k.addr = ip("10.65.0.3");
  n.entries["ip_sets4"].push_back({e::encode_ip_set_key(k), le32(1)});

  std::string file = "cali0client001_egress_v4.json";
  n.debug_json[file] = slurp(std::string(DPI_EBPF_BACKEND_FIXTURES) +
                             "/cali0client001_egress_v4.v" + std::to_string(minor) + ".json");
  auto prog = e::parse_debug_json(n.debug_json[file], file);
  REQUIRE(prog);
  e::ProgInfo pi;
  pi.id = 42;
  pi.name = "p4E_cali0client";
  pi.tag = e::prog_tag(prog->program(0), e::TagHash::sha256);
  std::string jump = minor >= 32 ? "cali_jump_ing2" : "cali_jump3";
  n.jump_slots.push_back({jump, 3, pi});
  n.jump_slots.push_back({jump, 10003, std::nullopt});
  return n;
}

struct Case {
  const char* dst;
  uint16_t dport;
  Verdict verdict;
  DecisionKind kind;
  int rule_index;  // -1: none
};

}  // namespace

TEST_CASE("state as calico_tc_main builds it, per release (literal bytes)") {
  dpi::Flow f = tcp_flow("10.65.0.2", "10.96.0.10", 80);
  f.sport = 40000;
  e::RouteValue host;
  host.flags = 0x18;  // LOCAL|HOST
  auto ps = e::build_policy_state(f, ip("10.65.0.3"), 8080, std::nullopt, host);
  struct Layout {
    uint32_t size, src, pre, post, sport, proto, flags;
  };
  for (Layout l : {Layout{480, 0, 32, 48, 88, 96, 360}, Layout{488, 8, 40, 56, 96, 104, 368},
                   Layout{512, 8, 40, 56, 96, 104, 368}}) {
    CAPTURE(l.size);
    const e::StateLayout* sl = e::state_layout(l.size);
    REQUIRE(sl);
    auto b = e::encode_state(*sl, ps);
    REQUIRE(b.size() == l.size);
    CHECK(std::vector<uint8_t>(b.begin() + l.src, b.begin() + l.src + 4) ==
          std::vector<uint8_t>{10, 65, 0, 2});
    CHECK(std::vector<uint8_t>(b.begin() + l.pre, b.begin() + l.pre + 4) ==
          std::vector<uint8_t>{10, 96, 0, 10});
    CHECK(std::vector<uint8_t>(b.begin() + l.post, b.begin() + l.post + 4) ==
          std::vector<uint8_t>{10, 65, 0, 3});
    // sport 40000, dport 8080 (post-NAT), pre-NAT 80, post-NAT 8080: host order (LE).
    CHECK(std::vector<uint8_t>(b.begin() + l.sport, b.begin() + l.sport + 8) ==
          std::vector<uint8_t>{0x40, 0x9c, 0x90, 0x1f, 0x50, 0x00, 0x90, 0x1f});
    CHECK(b[l.proto] == 6);
    CHECK(b[l.flags] == 0x4);  // DEST_IS_HOST: the post-NAT destination's route is LOCAL|HOST
  }
  dpi::Flow icmp;
  icmp.src = ip("10.65.0.2");
  icmp.dst = ip("10.65.0.3");
  icmp.l4proto = 1;
  icmp.icmp_type = 8;
  icmp.icmp_code = 3;
  auto pi = e::build_policy_state(icmp, icmp.dst, 0, std::nullopt, std::nullopt);
  auto b = e::encode_state(*e::state_layout(512), pi);
  CHECK(b[98] == 8);
  CHECK(b[99] == 3);
  CHECK(b[368] == 0);
}

TEST_CASE("the seed client's egress policy: verdict and deciding rule from the recorded ids") {
  const Case cases[] = {
      {"10.65.0.3", 80, Verdict::allow, DecisionKind::policy_rule, 0},
      {"10.65.0.3", 6379, Verdict::allow, DecisionKind::policy_rule, 0},
      {"10.65.0.3", 9001, Verdict::deny, DecisionKind::end_of_tier_deny, -1},
      {"10.65.0.9", 80, Verdict::deny, DecisionKind::end_of_tier_deny, -1},
  };
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    e::NodeModel m(seed_node(release, minor));
    for (const Case& c : cases) {
      CAPTURE(minor, c.dst, c.dport);
      auto rep = m.inspect(tcp_flow("10.65.0.2", c.dst, c.dport));
      REQUIRE(rep);
      INFO((rep->indeterminate_reason ? rep->indeterminate_reason->why : ""));
      CHECK(rep->verdict == c.verdict);
      REQUIRE(rep->stages.size() == 1);
      const auto& st = rep->stages[0];
      CHECK(st.role == "egress of workload");
      CHECK(st.endpoint == "cali0client001");
      CHECK(rep->decided_by.kind == c.kind);
      CHECK(rep->decided_by.tier == "default");
      REQUIRE(rep->decided_by.rule);
      REQUIRE(rep->decided_by.rule->bpf());
      CHECK(rep->decided_by.rule->bpf()->prog_name == "p4E_cali0client");
      CHECK(rep->decided_by.rule->bpf()->prog_id == 42);
      // One stage: the Calico rule that decided is the kernel's verdict rule, so the text report
      // has no separate final: line (as on nftables when the drop is the deciding rule).
      REQUIRE(rep->decided_by.calico_rules.size() == 1);
      REQUIRE(rep->decided_by.calico_rules[0].bpf());
      CHECK(rep->decided_by.calico_rules[0].bpf()->insn_offset ==
            rep->decided_by.rule->bpf()->insn_offset);
      const auto& notes = rep->decided_by.notes;
      CHECK(std::count(notes.begin(), notes.end(), dpi::calico::kRuleNumbering) ==
            (c.kind == DecisionKind::policy_rule ? 1 : 0));
      if (c.kind == DecisionKind::policy_rule) {
        REQUIRE(rep->decided_by.policy);
        CHECK(rep->decided_by.policy->ns == "client");
        // As the nftables backend names them: v3.30 chains and comments say ns/tier.name.
        CHECK(rep->decided_by.policy->name ==
              (minor >= 32 ? "allow-stars" : "default.allow-stars"));
        CHECK(rep->decided_by.policy->kind == (minor >= 32 ? "np" : ""));
        CHECK(rep->decided_by.rule_index == c.rule_index);
        CHECK(rep->decided_by.action == "allow");
      } else {
        CHECK(rep->decided_by.summary ==
              "end-of-tier implicit deny in tier default, egress of workload on cali0client001");
        CHECK(rep->decided_by.action == "deny");
        CHECK(rep->decided_by.rule->comment.find("End of tier default") != std::string::npos);
      }
    }
  }
}

TEST_CASE("rule ids attributed for the rule counters: the deciding rule's program and meaning") {
  struct IdCase {
    uint16_t dport;
    const char* meaning30;  // v3.30 names policies ns/tier.name
    const char* meaning32;
  };
  const IdCase cases[] = {
      {80, "tier default policy client/default.allow-stars rule 0 allow",
       "tier default policy np/client/allow-stars rule 0 allow"},
      {9001, "end of tier default", "end of tier default"},
  };
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    e::NodeModel m(seed_node(release, minor));
    const auto& refs = m.rule_refs();
    CHECK(&refs == &m.rule_refs());  // built once
    for (const IdCase& c : cases) {
      CAPTURE(minor, c.dport);
      auto rep = m.inspect(tcp_flow("10.65.0.2", "10.65.0.3", c.dport));
      REQUIRE(rep);
      REQUIRE(rep->decided_by.rule);
      const dpi::BpfLocation* want = rep->decided_by.rule->bpf();
      REQUIRE(want);
      auto id = e::parse_rule_id(want->calico_rule_id);
      REQUIRE(id);
      auto it = refs.find(*id);
      REQUIRE(it != refs.end());
      const dpi::BpfLocation* got = it->second.bpf();
      REQUIRE(got);
      CHECK(got->calico_rule_id == want->calico_rule_id);
      CHECK(got->prog_id == 42);
      CHECK(got->attach == "tc ingress cali0client001");
      CHECK(got->insn_offset == want->insn_offset);
      CHECK(it->second.comment == rep->decided_by.rule->comment);
      const std::string meaning = minor >= 32 ? c.meaning32 : c.meaning30;
      CHECK(it->second.text.rfind("rule id " + want->calico_rule_id + ": " + meaning, 0) == 0);
      CHECK(it->second.text.find("prog 42 p4E_cali0client") != std::string::npos);
    }
  }
  // A debug JSON that is not what runs names nothing: its ids stay unattributed.
  e::NodeState stale = seed_node(e::Release::v3_32_1, 32);
  stale.jump_slots[0].prog->tag[0] ^= 0xff;
  CHECK(e::NodeModel(stale).rule_refs().empty());
}

TEST_CASE("a service with two backends: one outcome per backend, each with its own dnat") {
  e::NodeState n = seed_node(e::Release::v3_32_1, 32);
  e::NatFrontendKey fk;
  fk.prefixlen = 8 * (4 + 3);  // address, port and protocol; any source
  fk.addr = ip("10.96.0.10");
  fk.port = 80;
  fk.proto = 6;
  fk.saddr = ip("0.0.0.0");
  std::vector<uint8_t> fv;
  for (uint32_t w : {7u, 2u, 0u, 0u, 0u}) {  // id 7, two backends
    auto b = le32(w);
    fv.insert(fv.end(), b.begin(), b.end());
  }
  n.entries["nat_fe4"].push_back({e::encode_nat_frontend_key(fk), fv});
  // 10.65.0.3:80 is allowed by the client's egress policy, 10.65.0.9:80 is not.
  for (auto [ordinal, last] : {std::pair{0u, uint8_t{3}}, {1u, uint8_t{9}}})
    n.entries["nat_be"].push_back(
        {e::encode_nat_backend_key({7, ordinal}), {10, 65, 0, last, 80, 0, 0, 0}});
  auto rep = e::NodeModel(n).inspect(tcp_flow("10.65.0.2", "10.96.0.10", 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  REQUIRE(rep->outcomes.size() == 2);
  const std::pair<const char*, Verdict> want[] = {{"10.65.0.3:80", Verdict::allow},
                                                  {"10.65.0.9:80", Verdict::deny}};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& o = rep->outcomes[i];
    CAPTURE(o.choice);
    CHECK(o.verdict == want[i].second);
    REQUIRE(o.nat.size() == 1);
    CHECK(o.nat[0].kind == "dnat");
    CHECK(o.nat[0].to == want[i].first);
    CHECK(o.choice.find(want[i].first) != std::string::npos);
  }
  // As for nftables: the report's own nat is the first outcome's.
  REQUIRE(rep->nat.size() == 1);
  CHECK(rep->nat[0].to == "10.65.0.3:80");
}

TEST_CASE("a stale debug JSON, a lost policy program and an unknown layout are said") {
  e::NodeState n = seed_node(e::Release::v3_32_1, 32);
  n.jump_slots[0].prog->tag[0] ^= 0xff;
  auto rep = e::NodeModel(n).inspect(tcp_flow("10.65.0.2", "10.65.0.3", 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  REQUIRE(rep->indeterminate_reason);
  CHECK(rep->indeterminate_reason->why.find("is stale") != std::string::npos);

  n = seed_node(e::Release::v3_32_1, 32);
  n.jump_slots[0].prog.reset();
  rep = e::NodeModel(n).inspect(tcp_flow("10.65.0.2", "10.65.0.3", 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::deny);
  CHECK(rep->decided_by.summary.find("empty policy jump-map slot cali_jump_ing2[3]") !=
        std::string::npos);

  n = seed_node(e::Release::v3_32_1, 32);
  for (auto& m : n.maps)
    if (m.name == "cali_state6") m.value_size = 520;
  e::detect_layout(n);
  rep = e::NodeModel(n).inspect(tcp_flow("10.65.0.2", "10.65.0.3", 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  CHECK(rep->indeterminate_reason->why.find("cali_state6") != std::string::npos);
}

TEST_CASE("host to a local workload: allowed before any policy program, as calico_tc_main does") {
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    CAPTURE(minor);
    e::NodeState n = seed_node(release, minor);
    // 172.18.0.2 is this node's address (local|host); 172.18.0.9 another host.
    n.entries["routes4"].push_back({e::encode_route_key(*dpi::IpPrefix::parse("172.18.0.2/32")),
                                    {0x18, 0, 0, 0, 172, 18, 0, 2}});
    e::NodeModel m(n);
    auto rep = m.inspect(tcp_flow("172.18.0.2", "10.65.0.2", 80));
    REQUIRE(rep);
    CHECK(rep->verdict == Verdict::allow);
    CHECK(rep->stages.empty());
    CHECK(rep->decided_by.kind == DecisionKind::chain_policy);
    CHECK(rep->decided_by.action == "allow");
    REQUIRE(rep->decided_by.notes.size() == 1);
    CHECK(rep->decided_by.notes[0].find(dpi::calico::kHostToWorkloadUnpoliced) == 0);

    // From elsewhere the workload's ingress hook runs: it has no ingress program (index -1).
    rep = m.inspect(tcp_flow("172.18.0.9", "10.65.0.2", 80));
    REQUIRE(rep);
    CHECK(rep->verdict == Verdict::deny);
    REQUIRE(rep->stages.size() == 1);
    CHECK(rep->stages[0].role == "ingress of workload");
  }
}

TEST_CASE("offline snapshot section round trip answers the same") {
  e::NodeState n = seed_node(e::Release::v3_32_1, 32);
  auto j = e::node_state_to_json(n);
  auto back = e::node_state_from_json(nlohmann::json::parse(j.dump()), "snapshot t");
  REQUIRE(back);
  CHECK(e::node_state_to_json(*back) == j);
  for (uint16_t port : {80, 9001}) {
    auto a = e::NodeModel(n).inspect(tcp_flow("10.65.0.2", "10.65.0.3", port));
    auto b = e::NodeModel(*back).inspect(tcp_flow("10.65.0.2", "10.65.0.3", port));
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->verdict == b->verdict);
    CHECK(a->decided_by.summary == b->decided_by.summary);
    CHECK(a->decided_by.rule->text == b->decided_by.rule->text);
  }
  CHECK_FALSE(e::node_state_from_json(nlohmann::json::parse(R"({"maps": 3})"), "bad"));
}

namespace {

dpi::Flow flow6(const char* src, const char* dst, uint8_t proto, uint16_t dport) {
  dpi::Flow f;
  f.src = ip(src);
  f.dst = ip(dst);
  f.l4proto = proto;
  f.dport = dport;
  f.sport = 40000;
  REQUIRE(dpi::normalize(f));
  return f;
}

std::vector<uint8_t> hex_bytes(const char* s) {
  std::vector<uint8_t> out;
  for (const char* p = s; p[0] && p[1]; p += 2) {
    if (*p == ' ') {
      --p;
      continue;
    }
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(p, 2), nullptr, 16)));
  }
  return out;
}

// The seed's client as a dual-stack workload whose IPv6 egress program (index 3 on the tc ingress
// hook) is the only one: ifstate points at it through ingress_policy_v6, the v4 indices are -1.
// Every entry is written as the literal bytes Felix pins (reference §1.1, §1.3, §1.4).
e::NodeState seed_node_v6(e::Release release, int minor) {
  e::NodeState n;
  n.source = "test";
  n.policy_debug_dir = "/test/policy";
  for (const e::MapSpec& s : e::layout_for(release).maps)
    n.maps.push_back({std::string(s.pin_name), static_cast<uint32_t>(s.type), s.key_size,
                      s.value_size, s.max_entries});
  e::detect_layout(n);
  REQUIRE(n.release);
  // flags 0x7 (WEP|IPv4Ready|IPv6Ready), "cali0client001", xdp4 ing4 egr4 -1, xdp6 -1, ing6 3,
  // egr6 -1, filters -1.
  n.entries["ifstate"].push_back(
      {hex_bytes("05000000"),
       hex_bytes("07000000 63616c6930636c69656e7430303100 00 ffffffff ffffffff ffffffff "
                 "ffffffff 03000000 ffffffff ffffffff ffffffff")});
  // fd00:65::2/128 local workload (0x0d) on ifindex 5; fd00:65::/64 a remote block via fd00:18::1.
  n.entries["routes6"].push_back({hex_bytes("80000000 fd000065000000000000000000000002"),
                                  hex_bytes("0d000000 05000000000000000000000000000000")});
  n.entries["routes6"].push_back({hex_bytes("40000000 fd000065000000000000000000000000"),
                                  hex_bytes("05000000 fd000018000000000000000000000001")});
  // IP set 0x1122334455667788 (BE in the key): member fd00:65::3/128, mask 64+128.
  n.entries["ip_sets6"].push_back(
      {hex_bytes("c0000000 1122334455667788 fd000065000000000000000000000003 0000 00 00"),
       hex_bytes("01000000")});
  std::string file = "cali0client001_egress_v6.json";
  n.debug_json[file] = slurp(std::string(DPI_EBPF_BACKEND_FIXTURES) +
                             "/cali0client001_egress_v6.v" + std::to_string(minor) + ".json");
  auto prog = e::parse_debug_json(n.debug_json[file], file);
  REQUIRE(prog);
  e::ProgInfo pi;
  pi.id = 43;
  pi.name = "p6E_cali0client";
  pi.tag = e::prog_tag(prog->program(0), e::TagHash::sha256);
  std::string jump = minor >= 32 ? "cali_jump_ing2" : "cali_jump3";
  n.jump_slots.push_back({jump, 3, pi});
  return n;
}

}  // namespace

TEST_CASE("IPv6 maps: pin names, sizes and literal entries per release") {
  struct Want {
    e::Release release;
    const char* routes;
    const char* ip_sets;
    const char* ct;
    const char* nat_fe;
    const char* nat_be;
  };
  const Want wants[] = {
      {e::Release::v3_30, "cali_v6_routes", "cali_v6_ip_sets", "cali_v6_ct3", "cali_v6_nat_fe3",
       "cali_v6_nat_be"},
      {e::Release::v3_31, "cali_v6_routes", "cali_v6_ip_sets", "cali_v6_ct4", "cali_v6_nat_fe3",
       "cali_v6_nat_be"},
      {e::Release::v3_32_1, "cali_v6_routes", "cali_v6_ip_sets", "cali_v6_ct4", "cali_v6_nat_fe3",
       "cali_v6_nat_be"},
  };
  for (const Want& w : wants) {
    CAPTURE(e::release_name(w.release));
    const e::Layout& l = e::layout_for(w.release);
    struct Size {
      e::MapRole role;
      const char* pin;
      uint32_t key, value;
    };
    for (Size s :
         {Size{e::MapRole::routes, w.routes, 20, 20}, Size{e::MapRole::ip_sets, w.ip_sets, 32, 4},
          Size{e::MapRole::conntrack, w.ct, 40, 128}, Size{e::MapRole::nat_fe, w.nat_fe, 40, 20},
          Size{e::MapRole::nat_be, w.nat_be, 8, 20}}) {
      const e::MapSpec* m = e::find_map(l, s.role, 6);
      REQUIRE(m);
      CHECK(m->pin_name == s.pin);
      CHECK(m->key_size == s.key);
      CHECK(m->value_size == s.value);
      CHECK_FALSE(m->signature);  // an IPv4-only node need not pin them
    }
  }
  // Encoders give Felix's bytes; decoders read them back.
  auto key = e::encode_route_key(*dpi::IpPrefix::parse("fd00:65::2/128"));
  CHECK(key == hex_bytes("80000000 fd000065000000000000000000000002"));
  auto rv = e::decode_route_value(hex_bytes("0d000000 05000000000000000000000000000000"), 6);
  REQUIRE(rv);
  CHECK(rv->local_workload());
  CHECK(rv->ifindex == 5);
  CHECK_FALSE(e::decode_route_value(hex_bytes("0d000000 05000000"), 6));  // a v4-sized value
  e::IpSetKey k;
  k.mask = 64 + 128 + 16 + 8;
  k.set_id = 0x1122334455667788;
  k.addr = ip("fd00:65::3");
  k.port = 6379;
  k.proto = 6;
  CHECK(e::encode_ip_set_key(k) ==
        hex_bytes("d8000000 1122334455667788 fd000065000000000000000000000003 eb18 06 00"));
  auto back = e::decode_ip_set_key(e::encode_ip_set_key(k), 6);
  REQUIRE(back);
  CHECK(back->named_port());
  CHECK(back->addr == k.addr);
}

TEST_CASE("an IPv6 flow: the _v6.json program in the interpreter, verdict and deciding rule") {
  const struct {
    const char* dst;
    uint8_t proto;
    uint16_t dport;
    Verdict verdict;
    DecisionKind kind;
    int rule_index;
  } cases[] = {
      {"fd00:65::3", 6, 80, Verdict::allow, DecisionKind::policy_rule, 0},  // IP set member
      {"fd00:65::3", 6, 9001, Verdict::deny, DecisionKind::end_of_tier_deny, -1},
      {"fd00:65::9", 6, 80, Verdict::deny, DecisionKind::end_of_tier_deny, -1},  // not a member
      {"fd00:65::9", 17, 53, Verdict::allow, DecisionKind::policy_rule, 2},      // fd00:65::/120
      {"fd00:65::1:9", 17, 53, Verdict::deny, DecisionKind::end_of_tier_deny, -1},
      {"fd00:66::9", 17, 53, Verdict::deny, DecisionKind::end_of_tier_deny, -1},
  };
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    e::NodeModel m(seed_node_v6(release, minor));
    for (const auto& c : cases) {
      CAPTURE(minor, c.dst, c.dport);
      auto rep = m.inspect(flow6("fd00:65::2", c.dst, c.proto, c.dport));
      REQUIRE(rep);
      INFO((rep->indeterminate_reason ? rep->indeterminate_reason->why : ""));
      CHECK(rep->verdict == c.verdict);
      REQUIRE(rep->stages.size() == 1);
      CHECK(rep->stages[0].role == "egress of workload");
      CHECK(rep->stages[0].endpoint == "cali0client001");
      CHECK(rep->decided_by.kind == c.kind);
      CHECK(rep->decided_by.tier == "default");
      REQUIRE(rep->decided_by.rule);
      REQUIRE(rep->decided_by.rule->bpf());
      CHECK(rep->decided_by.rule->bpf()->prog_name == "p6E_cali0client");
      CHECK(rep->decided_by.rule->bpf()->attach == "tc ingress cali0client001");
      if (c.kind == DecisionKind::policy_rule) {
        CHECK(rep->decided_by.rule_index == c.rule_index);
        CHECK(rep->decided_by.policy->ns == "client");
      } else {
        CHECK(rep->decided_by.summary ==
              "end-of-tier implicit deny in tier default, egress of workload on cali0client001");
      }
    }
    // The v4 index is -1: an IPv4 flow from the same workload has no program (calico_tc_main
    // denies), which shows the family picks the index.
    auto v4 = m.inspect(tcp_flow("10.65.0.2", "10.65.0.3", 80));
    REQUIRE(v4);
    CHECK(v4->verdict == Verdict::indeterminate);  // no v4 route: the flow crosses no workload
  }
  // A node without the v6 maps says so instead of guessing.
  e::NodeState n = seed_node_v6(e::Release::v3_32_1, 32);
  n.entries.erase("routes6");
  auto rep = e::NodeModel(n).inspect(flow6("fd00:65::2", "fd00:65::3", 6, 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  CHECK(rep->indeterminate_reason->why.find("cali_v6_routes") != std::string::npos);
}

// core/layers.h tells from this answer that the eBPF layer does not judge the flow (so that on a
// node with nftables too, `--dataplane auto` lets netfilter decide): the wording is the contract.
TEST_CASE("a flow touching no local workload is outside the eBPF layer's scope") {
  e::NodeModel m(seed_node(e::Release::v3_32_1, 32));
  auto rep = m.inspect(tcp_flow("172.18.0.9", "8.8.8.8", 53));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  CHECK_FALSE(dpi::layer_applies(*rep));
  // A workload's flow is the layer's own, whatever the verdict.
  rep = m.inspect(tcp_flow("172.18.0.9", "10.65.0.2", 80));
  REQUIRE(rep);
  CHECK(dpi::layer_applies(*rep));
}

namespace {

// The seed node plus host endpoint eth0 (ifindex 2, HEP|IPv4Ready|IPv6Ready, tc ingress index 7,
// tc egress index 8) with the programs of fixtures/eth0_*_v4 (make_fixtures.py), the node's own
// address 172.18.0.2 and Felix's failsafes inbound tcp:22 and outbound udp:53 (any address).
// egress_fixture: the egress program's fixture name; "" leaves eth0 without egress policy.
e::NodeState hep_node(e::Release release, int minor, const std::string& egress_fixture) {
  e::NodeState n = seed_node(release, minor);
  std::vector<uint8_t> ifv = le32(0xe);
  std::string name = "eth0";
  for (std::size_t i = 0; i < 16; ++i) ifv.push_back(i < name.size() ? name[i] : 0);
  for (int32_t v : {-1, 7, egress_fixture.empty() ? -1 : 8, -1, -1, -1, -1, -1}) {
    auto b = le32(static_cast<uint32_t>(v));
    ifv.insert(ifv.end(), b.begin(), b.end());
  }
  n.entries["ifstate"].push_back({le32(2), ifv});
  auto host = e::encode_route_key(*dpi::IpPrefix::parse("172.18.0.2/32"));
  auto hv = le32(0x18);
  auto nh = le32(0);
  hv.insert(hv.end(), nh.begin(), nh.end());
  n.entries["routes4"].push_back({host, hv});
  for (auto [proto, port, out] : {std::tuple{6, 22, false}, std::tuple{17, 53, true}}) {
    e::FailsafeKey k{32, static_cast<uint16_t>(port), static_cast<uint8_t>(proto), out,
                     ip("0.0.0.0")};
    n.entries["failsafes4"].push_back({e::encode_failsafe_key(k), le32(0)});
  }
  auto load = [&](const std::string& file, const std::string& fixture, uint32_t idx,
                  const std::string& jump, const char* prog_name, uint32_t id) {
    n.debug_json[file] = slurp(std::string(DPI_EBPF_BACKEND_FIXTURES) + "/" + fixture);
    auto prog = e::parse_debug_json(n.debug_json[file], file);
    REQUIRE(prog);
    e::ProgInfo pi;
    pi.id = id;
    pi.name = prog_name;
    pi.tag = e::prog_tag(prog->program(0), e::TagHash::sha256);
    n.jump_slots.push_back({jump, idx, pi});
    n.jump_slots.push_back({jump, idx + 10000, std::nullopt});
  };
  const std::string v = ".v" + std::to_string(minor) + ".json";
  load("eth0_ingress_v4.json", "eth0_ingress_v4" + v, 7,
       minor >= 32 ? "cali_jump_ing2" : "cali_jump3", "p4I_eth0", 50);
  if (!egress_fixture.empty())
    load("eth0_egress_v4.json", egress_fixture, 8, minor >= 32 ? "cali_jump_egr2" : "cali_jump3",
         "p4E_eth0", 51);
  return n;
}

dpi::Flow l4_flow(const char* src, const char* dst, uint8_t proto, uint16_t dport) {
  dpi::Flow f = tcp_flow(src, dst, dport);
  f.l4proto = proto;
  return f;
}

struct HepCase {
  const char* src;
  const char* dst;
  uint8_t proto;
  uint16_t dport;
  Verdict verdict;
  std::vector<const char*> roles;  // the stages, in path order
  DecisionKind kind;               // of the deciding (last) stage
  const char* policy;              // "" for none
  int rule_index;                  // -1: none
};

}  // namespace

TEST_CASE(
    "host endpoint eth0: remote->host, host->remote and forwarded flows, as Felix's programs") {
  const char* in = "ingress of host endpoint";
  const char* out = "egress of host endpoint";
  const char* wl_out = "egress of workload";
  const char* wl_in = "ingress of workload";
  const HepCase cases[] = {
      // To the host: pre-DNAT tier (pass), then the normal host tier.
      {"172.18.0.9",
       "172.18.0.2",
       6,
       8080,
       Verdict::allow,
       {in},
       DecisionKind::policy_rule,
       "host-normal",
       0},
      {"172.18.0.9",
       "172.18.0.2",
       6,
       9090,
       Verdict::deny,
       {in},
       DecisionKind::policy_rule,
       "host-normal",
       1},
      {"10.9.9.9",
       "172.18.0.2",
       6,
       8080,
       Verdict::deny,
       {in},
       DecisionKind::end_of_tier_deny,
       "",
       -1},
      {"172.18.0.66",
       "172.18.0.2",
       6,
       8080,
       Verdict::deny,
       {in},
       DecisionKind::policy_rule,
       "host-prednat",
       0},
      // An apply-on-forward policy is in the normal tier too.
      {"172.18.0.9",
       "172.18.0.2",
       6,
       80,
       Verdict::allow,
       {in},
       DecisionKind::policy_rule,
       "host-forward",
       0},
      // Failsafe: calico_tc_main skips the policy program.
      {"10.9.9.9", "172.18.0.2", 6, 22, Verdict::allow, {in}, DecisionKind::failsafe, "", -1},
      // From the host.
      {"172.18.0.2",
       "172.18.0.9",
       6,
       443,
       Verdict::allow,
       {out},
       DecisionKind::policy_rule,
       "host-normal",
       0},
      {"172.18.0.2",
       "172.18.0.9",
       6,
       25,
       Verdict::deny,
       {out},
       DecisionKind::policy_rule,
       "host-normal",
       1},
      {"172.18.0.2", "172.18.0.9", 17, 53, Verdict::allow, {out}, DecisionKind::failsafe, "", -1},
      {"172.18.0.2",
       "172.18.0.9",
       17,
       54,
       Verdict::deny,
       {out},
       DecisionKind::end_of_tier_deny,
       "",
       -1},
      // Forwarded to a pod: the apply-on-forward tier, then the workload (no ingress program).
      {"172.18.0.9",
       "10.65.0.2",
       6,
       80,
       Verdict::deny,
       {in, wl_in},
       DecisionKind::calico_rule,
       "",
       -1},
      {"172.18.0.9",
       "10.65.0.2",
       6,
       8080,
       Verdict::deny,
       {in},
       DecisionKind::end_of_tier_deny,
       "",
       -1},
      {"172.18.0.66",
       "10.65.0.2",
       6,
       80,
       Verdict::deny,
       {in},
       DecisionKind::policy_rule,
       "host-prednat",
       0},
      // Forwarded from a pod: the workload's egress, then the host endpoint's forward tier.
      {"10.65.0.2",
       "10.65.0.3",
       6,
       80,
       Verdict::allow,
       {wl_out, out},
       DecisionKind::policy_rule,
       "host-forward",
       0},
      {"10.65.0.2",
       "10.65.0.3",
       6,
       6379,
       Verdict::deny,
       {wl_out, out},
       DecisionKind::end_of_tier_deny,
       "",
       -1},
      {"10.65.0.2",
       "10.65.0.9",
       6,
       443,
       Verdict::deny,
       {wl_out},
       DecisionKind::end_of_tier_deny,
       "",
       -1},
      // Through the node: in and out through eth0.
      {"172.18.0.9",
       "172.18.0.10",
       6,
       80,
       Verdict::allow,
       {in, out},
       DecisionKind::policy_rule,
       "host-forward",
       0},
  };
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    const std::string egress = "eth0_egress_v4.v" + std::to_string(minor) + ".json";
    e::NodeModel m(hep_node(release, minor, egress));
    for (const HepCase& c : cases) {
      CAPTURE(minor, c.src, c.dst, c.dport);
      auto rep = m.inspect(l4_flow(c.src, c.dst, c.proto, c.dport));
      REQUIRE(rep);
      INFO((rep->indeterminate_reason ? rep->indeterminate_reason->why : rep->decided_by.summary));
      CHECK(dpi::layer_applies(*rep));
      REQUIRE(rep->verdict == c.verdict);
      REQUIRE(rep->stages.size() == c.roles.size());
      for (std::size_t i = 0; i < c.roles.size(); ++i) CHECK(rep->stages[i].role == c.roles[i]);
      const auto& last = rep->stages.back();
      CHECK(rep->decided_by.kind == c.kind);
      if (std::string(c.roles.back()).find("host endpoint") != std::string::npos) {
        CHECK(last.endpoint == "eth0");
        REQUIRE(rep->decided_by.rule);
        REQUIRE(rep->decided_by.rule->bpf());
        CHECK(rep->decided_by.rule->bpf()->attach ==
              std::string(c.roles.back() == in ? "tc ingress" : "tc egress") + " eth0");
      }
      // host-forward is in both the apply-on-forward and the normal tier: the part the flow took
      // decides alone.
      CHECK(rep->decided_by.notes.size() ==
            (c.kind == DecisionKind::policy_rule ? 1U : 0U));  // the rule numbering note only
      if (*c.policy) {
        REQUIRE(rep->decided_by.policy);
        const std::string want = minor >= 32 ? c.policy : std::string("hosts.") + c.policy;
        CHECK(rep->decided_by.policy->name == want);
        CHECK(rep->decided_by.policy->kind == (minor >= 32 ? "gnp" : ""));
        CHECK(rep->decided_by.tier == "hosts");
        CHECK(rep->decided_by.rule_index == c.rule_index);
        CHECK(rep->decided_by.rule->bpf()->prog_name ==
              (c.roles.back() == in ? "p4I_eth0" : "p4E_eth0"));
      }
      if (c.kind == DecisionKind::end_of_tier_deny && c.roles.back() != wl_out) {
        CHECK(rep->decided_by.tier == "hosts");
        CHECK(
            rep->decided_by.summary.find(std::string("end-of-tier implicit deny in tier hosts, ") +
                                         c.roles.back() + " on eth0") != std::string::npos);
      }
      if (c.kind == DecisionKind::failsafe)
        CHECK(rep->decided_by.summary.find("by failsafe") != std::string::npos);
    }
  }
}

TEST_CASE("host endpoint eth0: no apply-on-forward policy, no policy program, several endpoints") {
  // Egress without a forward tier: forwarded traffic passes host policy (no rule applies).
  e::NodeModel m(hep_node(e::Release::v3_32_1, 32, "eth0_egress_v4.noforward.v32.json"));
  auto rep = m.inspect(tcp_flow("10.65.0.2", "10.65.0.3", 6379));
  REQUIRE(rep);
  REQUIRE(rep->verdict == Verdict::allow);
  REQUIRE(rep->stages.size() == 2);
  CHECK(rep->stages[1].role == "egress of host endpoint");
  CHECK(rep->stages[1].decision.kind == DecisionKind::calico_rule);
  CHECK(rep->decided_by.summary.find("no policy of the host endpoint applies") !=
        std::string::npos);
  // To the host it still runs the normal tier.
  rep = m.inspect(tcp_flow("172.18.0.2", "172.18.0.9", 25));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::deny);

  // No egress program on eth0 (index -1): "HEP with no policy, allow": host -> remote is outside
  // the layer, pod -> remote has the workload's stage only.
  e::NodeModel none(hep_node(e::Release::v3_32_1, 32, ""));
  rep = none.inspect(tcp_flow("172.18.0.2", "172.18.0.9", 25));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  CHECK_FALSE(dpi::layer_applies(*rep));
  rep = none.inspect(tcp_flow("10.65.0.2", "10.65.0.3", 80));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::allow);
  CHECK(rep->stages.size() == 1);

  // Two host endpoints with ingress programs: which one the flow enters through must be named.
  e::NodeState two = hep_node(e::Release::v3_32_1, 32, "");
  auto eth1 = two.entries["ifstate"].back();
  eth1.first = le32(3);
  eth1.second[4 + 3] = '1';  // "eth1"
  two.entries["ifstate"].push_back(eth1);
  e::NodeModel twom(std::move(two));
  rep = twom.inspect(tcp_flow("172.18.0.9", "172.18.0.2", 8080));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  REQUIRE(rep->indeterminate_reason);
  CHECK(rep->indeterminate_reason->why.find("--iif") != std::string::npos);
  auto f = tcp_flow("172.18.0.9", "172.18.0.2", 8080);
  f.iif = "eth0";
  rep = twom.inspect(f);
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::allow);
  // A name Calico does not manage (a typo): no host endpoint stage, and the report says so.
  f.iif = "eht0";
  rep = twom.inspect(f);
  REQUIRE(rep);
  bool said = false;
  for (const auto& a : rep->assumptions)
    said = said || a.find("--iif eht0 is not an interface Calico manages") != std::string::npos;
  CHECK(said);

  // A tunnel device is no host endpoint, even with a program in its slot; a remote workload behind
  // a tunnel route arrives through it, not through eth0.
  e::NodeState tun = hep_node(e::Release::v3_32_1, 32, "");
  auto vx = tun.entries["ifstate"].back();
  vx.first = le32(4);
  const std::string vxname = "vxlan.calico";
  for (std::size_t i = 0; i < 16; ++i)
    vx.second[4 + i] = i < vxname.size() ? static_cast<uint8_t>(vxname[i]) : 0;
  vx.second[0] = 0x42;  // VXLAN|IPv4Ready
  tun.entries["ifstate"].push_back(vx);
  auto blk = e::encode_route_key(*dpi::IpPrefix::parse("10.66.0.0/24"));
  auto bv = le32(0x45);  // IN_POOL|WORKLOAD|TUNNELED
  for (uint8_t b : {172, 18, 0, 3}) bv.push_back(b);
  tun.entries["routes4"].push_back({blk, bv});
  e::NodeModel tunm(std::move(tun));
  rep = tunm.inspect(tcp_flow("172.18.0.9", "172.18.0.2", 8080));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::allow);
  REQUIRE(rep->stages.size() == 1);
  CHECK(rep->stages[0].endpoint == "eth0");
  rep = tunm.inspect(tcp_flow("10.66.0.5", "10.65.0.2", 8080));
  REQUIRE(rep);
  REQUIRE(rep->stages.size() == 1);
  CHECK(rep->stages[0].role == "ingress of workload");
  rep = tunm.inspect(tcp_flow("172.18.0.9", "10.65.0.2", 8080));
  REQUIRE(rep);
  CHECK(rep->stages.size() == 1);  // denied by eth0's apply-on-forward tier
  CHECK(rep->stages[0].endpoint == "eth0");

  // Failsafes not read (no cali_v4_fsafes2 entries at all): to-host traffic cannot be judged;
  // forwarded traffic has no failsafe check.
  e::NodeState nofs = hep_node(e::Release::v3_32_1, 32, "eth0_egress_v4.v32.json");
  nofs.entries.erase("failsafes4");
  e::NodeModel nofsm(std::move(nofs));
  rep = nofsm.inspect(tcp_flow("172.18.0.9", "172.18.0.2", 8080));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::indeterminate);
  REQUIRE(rep->indeterminate_reason);
  CHECK(rep->indeterminate_reason->why.find("failsafe ports were not read") != std::string::npos);
  rep = nofsm.inspect(tcp_flow("172.18.0.9", "10.65.0.2", 8080));
  REQUIRE(rep);
  CHECK(rep->verdict == Verdict::deny);
}

TEST_CASE("failsafe map keys: literal bytes and LPM matching as is_failsafe_in/out") {
  // prefixlen 32+24 (LE), port 6443 (LE), tcp, inbound, 10.0.0.0
  const std::vector<uint8_t> raw = {56, 0, 0, 0, 0x2b, 0x19, 6, 0, 10, 0, 0, 0};
  auto k = e::decode_failsafe_key(raw, 4);
  REQUIRE(k);
  CHECK(k->port == 6443);
  CHECK(k->proto == 6);
  CHECK_FALSE(k->outbound);
  CHECK(k->cidr_len() == 24);
  CHECK(k->str() == "inbound tcp:6443 from 10.0.0.0/24");
  CHECK(e::encode_failsafe_key(*k) == raw);
  std::vector<e::RawEntry> entries = {{raw, le32(0)}};
  CHECK(e::find_failsafe(entries, 4, 6, 6443, ip("10.0.0.77"), false));
  CHECK_FALSE(e::find_failsafe(entries, 4, 6, 6443, ip("10.0.1.77"), false));
  CHECK_FALSE(e::find_failsafe(entries, 4, 6, 6443, ip("10.0.0.77"), true));
  CHECK_FALSE(e::find_failsafe(entries, 4, 17, 6443, ip("10.0.0.77"), false));
  CHECK_FALSE(e::find_failsafe(entries, 4, 6, 6444, ip("10.0.0.77"), false));
  CHECK_FALSE(e::decode_failsafe_key(std::vector<uint8_t>(11), 4));
}

TEST_CASE("host endpoint node: the snapshot section keeps ifstate, programs and failsafes") {
  e::NodeState n = hep_node(e::Release::v3_30, 30, "eth0_egress_v4.v30.json");
  auto j = e::node_state_to_json(n);
  auto back = e::node_state_from_json(nlohmann::json::parse(j.dump()), "snapshot t");
  REQUIRE(back);
  CHECK(back->entries.count("failsafes4") == 1);
  const dpi::Flow flows[] = {
      tcp_flow("10.9.9.9", "172.18.0.2", 22), tcp_flow("172.18.0.9", "172.18.0.2", 9090),
      tcp_flow("172.18.0.9", "10.65.0.2", 8080), tcp_flow("10.65.0.2", "10.65.0.3", 80)};
  for (const dpi::Flow& f : flows) {
    auto a = e::NodeModel(n).inspect(f);
    auto b = e::NodeModel(*back).inspect(f);
    REQUIRE(a);
    REQUIRE(b);
    CHECK(a->verdict != Verdict::indeterminate);
    CHECK(a->verdict == b->verdict);
    CHECK(a->decided_by.summary == b->decided_by.summary);
    REQUIRE(b->decided_by.rule);
    CHECK(a->decided_by.rule->text == b->decided_by.rule->text);
  }
}
