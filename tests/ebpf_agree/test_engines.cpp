// inspect's --engine on a seed-shaped node (the client's egress policy, v3.30 and v3.32 debug
// JSON): the kernel engine answers as the interpreter does, `both` reports their agreement, and a
// program that behaves differently in the two engines (it reads skb->len, which the kernel's test
// run sets and the interpreter's context leaves 0) makes the report indeterminate with both
// answers.
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "backends/ebpf/inspect.h"
#include "backends/ebpf/ip_sets.h"
#include "backends/ebpf/prog_tag.h"
#include "backends/ebpf/routes.h"

namespace e = dpi::ebpf;
using dpi::IpAddr;
using dpi::Verdict;

namespace {

IpAddr ip(const char* s) {
  return *IpAddr::parse(s);
}

dpi::Flow tcp_flow(const char* dst, uint16_t dport) {
  dpi::Flow f;
  f.src = ip("10.65.0.2");
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

// Four instructions put before the program (no jump reaches back to them, so the program's own
// offsets hold): when skb->len is not 0 (the kernel's test run: 64 bytes of packet), cb[0], the
// slot calico_tc_main gives for "allowed", is pointed at the drop program. The interpreter's
// context has len 0 and runs the program unchanged.
nlohmann::json skb_len_prologue() {
  auto insn = [](std::vector<int> b) { return nlohmann::json{{"inst", b}}; };
  return nlohmann::json::array({
      insn({0x61, 0x12, 0, 0, 0, 0, 0, 0}),   // r2 = *(u32 *)(r1 + 0)  skb->len
      insn({0x15, 0x02, 2, 0, 0, 0, 0, 0}),   // if r2 == 0 goto +2
      insn({0xb7, 0x02, 0, 0, 1, 0, 0, 0}),   // r2 = 1 (the drop program's slot)
      insn({0x63, 0x21, 48, 0, 0, 0, 0, 0}),  // *(u32 *)(r1 + 48) = r2  cb[0]
  });
}

// The seed's client workload (ifindex 5, policy index 3 on the tc ingress hook), the stars pods
// behind an IP set, as a node of `release` pins them (tests/ebpf_backend builds the same node).
e::NodeState seed_node(e::Release release, int minor, bool skb_len_trap) {
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
  std::vector<uint8_t> ifv = le32(0x3);  // WEP | IPv4Ready
  std::string name = "cali0client001";
  for (std::size_t i = 0; i < 16; ++i) ifv.push_back(i < name.size() ? name[i] : 0);
  auto push_idx = [&](int32_t v) {
    auto b = le32(static_cast<uint32_t>(v));
    ifv.insert(ifv.end(), b.begin(), b.end());
  };
  push_idx(-1);
  push_idx(3);
  for (int i = 0; i < 6; ++i) push_idx(-1);
  n.entries["ifstate"].push_back({le32(5), ifv});
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
  std::string text = slurp(std::string(DPI_EBPF_BACKEND_FIXTURES) + "/cali0client001_egress_v4.v" +
                           std::to_string(minor) + ".json");
  if (skb_len_trap) {
    auto doc = nlohmann::json::parse(text);
    auto& info = doc["policyInfo"];
    auto pro = skb_len_prologue();
    info.insert(info.begin(), pro.begin(), pro.end());
    text = doc.dump();
  }
  n.debug_json[file] = text;
  auto prog = e::parse_debug_json(text, file);
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

std::string rule_id_of(const dpi::Report& r) {
  if (!r.decided_by.rule || !r.decided_by.rule->bpf()) return "";
  return r.decided_by.rule->bpf()->calico_rule_id;
}

struct FlowCase {
  const char* dst;
  uint16_t dport;
  Verdict verdict;
};

const FlowCase kFlows[] = {
    {"10.65.0.3", 80, Verdict::allow},
    {"10.65.0.3", 6379, Verdict::allow},
    {"10.65.0.3", 9001, Verdict::deny},
    {"10.65.0.9", 80, Verdict::deny},
};

}  // namespace

TEST_CASE("the kernel engine and both engines answer as the interpreter on the seed node",
          "[privileged]") {
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    e::NodeModel interp(seed_node(release, minor, false));
    e::NodeModel kernel(seed_node(release, minor, false));
    e::NodeModel both(seed_node(release, minor, false));
    REQUIRE(kernel.set_engine(e::Engine::kernel));
    REQUIRE(both.set_engine(e::Engine::both));
    for (const FlowCase& c : kFlows) {
      CAPTURE(minor, c.dst, c.dport);
      auto ri = interp.inspect(tcp_flow(c.dst, c.dport));
      auto rk = kernel.inspect(tcp_flow(c.dst, c.dport));
      auto rb = both.inspect(tcp_flow(c.dst, c.dport));
      REQUIRE(ri);
      REQUIRE(rk);
      REQUIRE(rb);
      INFO((rb->indeterminate_reason ? rb->indeterminate_reason->why : ""));
      CHECK(ri->verdict == c.verdict);
      CHECK(rk->verdict == c.verdict);
      CHECK(rb->verdict == c.verdict);
      CHECK_FALSE(rule_id_of(*ri).empty());
      CHECK(rule_id_of(*rk) == rule_id_of(*ri));
      CHECK(rule_id_of(*rb) == rule_id_of(*ri));
      CHECK(ri->evidence["ebpf"]["engine"] == "interp");
      CHECK(rk->evidence["ebpf"]["engine"] == "kernel");
      CHECK(rk->evidence["ebpf"]["stages"][0]["engine"] == "kernel");
      CHECK(rb->evidence["ebpf"]["engine"] == "both");
      CHECK(rb->evidence["ebpf"]["engines_agree"] == true);
      const auto& eng = rb->evidence["ebpf"]["stages"][0]["engines"];
      CHECK(eng["agree"] == true);
      CHECK(eng["interp"]["answer"] == eng["kernel"]["answer"]);
      CHECK(eng["interp"]["rule_ids"] == eng["kernel"]["rule_ids"]);
      CHECK(eng["interp"]["rules_hit"] == eng["kernel"]["rules_hit"]);
    }
  }
}

TEST_CASE("engines that disagree make the report indeterminate with both answers", "[privileged]") {
  for (auto [release, minor] : {std::pair{e::Release::v3_30, 30}, {e::Release::v3_32_1, 32}}) {
    e::NodeModel interp(seed_node(release, minor, true));
    e::NodeModel both(seed_node(release, minor, true));
    REQUIRE(both.set_engine(e::Engine::both));
    CAPTURE(minor);
    // Allowed by the policy: the interpreter reaches the allow program, the kernel (skb->len 64)
    // the drop program it was pointed at.
    auto ri = interp.inspect(tcp_flow("10.65.0.3", 80));
    REQUIRE(ri);
    CHECK(ri->verdict == Verdict::allow);
    auto rb = both.inspect(tcp_flow("10.65.0.3", 80));
    REQUIRE(rb);
    REQUIRE(rb->verdict == Verdict::indeterminate);
    REQUIRE(rb->indeterminate_reason);
    const std::string& why = rb->indeterminate_reason->why;
    CHECK(rb->indeterminate_reason->expression == "policy engines");
    CHECK(why.find("the engines disagree") != std::string::npos);
    CHECK(why.find("interpreter: allow") != std::string::npos);
    CHECK(why.find("kernel: deny") != std::string::npos);
    CHECK(rb->evidence["ebpf"]["engines_agree"] == false);
    const auto& eng = rb->evidence["ebpf"]["stages"][0]["engines"];
    CHECK(eng["agree"] == false);
    CHECK(eng["interp"]["answer"] == "allow");
    CHECK(eng["kernel"]["answer"] == "deny");
    // The same rule matched in both: only where it sent the packet differs.
    CHECK(eng["interp"]["rule_ids"] == eng["kernel"]["rule_ids"]);
    // Denied by the policy: both reach the drop program; they agree.
    auto rd = both.inspect(tcp_flow("10.65.0.3", 9001));
    REQUIRE(rd);
    CHECK(rd->verdict == Verdict::deny);
    CHECK(rd->evidence["ebpf"]["engines_agree"] == true);
  }
}
