// Each expression kind against a ruleset the kernel listed back (tests/fixtures/nft/exprs.nft).
#include <catch2/catch.hpp>

#include "backends/nftables/inspect.h"
#include "fixture_paths.h"

using namespace dpi;

namespace {

const nft::Loaded& fixture() {
  static nft::Loaded loaded = [] {
    nft::SourceSpec spec;
    spec.ruleset_file = test::source_path("tests/fixtures/nft/exprs.json");
    spec.node_file = test::source_path("tests/fixtures/nft/node.json");
    auto l = nft::load_source(spec);
    if (!l) FAIL(l.error().message);
    return std::move(*l);
  }();
  return loaded;
}

Report run(const std::string& src, const std::string& dst, const std::string& proto,
           std::optional<uint16_t> dport, CtState ct = CtState::new_, std::string iif = "") {
  Flow f;
  f.src = *IpAddr::parse(src);
  f.dst = *IpAddr::parse(dst);
  f.l4proto = *parse_l4proto(proto);
  f.dport = dport;
  f.ct = ct;
  f.iif = iif;
  REQUIRE(normalize(f));
  auto r = nft::inspect(fixture(), f);
  REQUIRE(r.ok());
  return *r;
}

std::string decided(const Report& r) {
  return r.decided_by.rule ? r.decided_by.rule->comment : "";
}

}  // namespace

TEST_CASE("conntrack state sets and flags", "[unit]") {
  auto r = run("172.18.0.9", "10.1.2.3", "tcp", 5555, CtState::established);
  CHECK(r.verdict == Verdict::allow);
  CHECK(decided(r) == "ct-est");
  r = run("172.18.0.9", "10.1.2.3", "tcp", 5555, CtState::invalid);
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "ct-invalid");
}

TEST_CASE("interface wildcard", "[unit]") {
  auto r = run("192.0.2.1", "10.1.2.3", "tcp", 5555, CtState::new_, "blk0");
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "wildcard");
}

TEST_CASE("interval set with an anonymous port set and ranges", "[unit]") {
  CHECK(decided(run("10.1.9.9", "172.18.0.77", "tcp", 443)) == "set-ports");
  CHECK(decided(run("10.2.3.4", "172.18.0.77", "tcp", 1500)) == "set-ports");
  // Outside the prefix and the range: falls to the chain policy.
  auto r = run("10.2.3.5", "172.18.0.77", "tcp", 2001);
  CHECK(r.verdict == Verdict::deny);
  CHECK(r.decided_by.kind == DecisionKind::chain_policy);
  CHECK_FALSE(r.decided_by.rule->nft().handle.has_value());
}

TEST_CASE("concatenated set lookup", "[unit]") {
  CHECK(decided(run("192.0.2.1", "10.9.0.1", "tcp", 8080)) == "concat");
  CHECK(decided(run("192.0.2.1", "10.9.0.1", "udp", 53)) == "udp");  // same address, not in the set
}

TEST_CASE("verdict map with jump and drop", "[unit]") {
  auto r = run("192.0.2.1", "172.18.0.77", "tcp", 7000);
  CHECK(r.verdict == Verdict::allow);
  CHECK(decided(r) == "ports-accept");
  bool logged = false;
  for (const auto& s : r.path)
    logged = logged || (s.facts.log_prefix == std::string("P7000") && s.facts.log_group == 3);
  CHECK(logged);
  r = run("192.0.2.1", "172.18.0.77", "tcp", 7001);
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "vmap");
}

TEST_CASE("icmp type and code", "[unit]") {
  CHECK(decided(run("192.0.2.1", "172.18.0.77", "icmp", std::nullopt)) == "icmp");
}

TEST_CASE("jump, return, mark set and mark test", "[unit]") {
  auto r = run("10.5.0.1", "172.18.0.77", "tcp", 3);
  CHECK(r.verdict == Verdict::allow);
  CHECK(decided(r) == "mark-test");
  std::vector<std::string> comments;
  for (const auto& s : r.path) comments.push_back(s.rule.comment);
  CHECK(comments ==
        std::vector<std::string>{"jump-return", "ret", "jump-mark", "set-accept", "mark-test"});
}

TEST_CASE("goto does not come back to the chain that jumped", "[unit]") {
  // c_goto returns, which goes back to the base chain's caller: the policy decides.
  auto r = run("10.6.0.1", "172.18.0.77", "tcp", 3);
  CHECK(r.verdict == Verdict::deny);
  CHECK(r.decided_by.kind == DecisionKind::chain_policy);
}

TEST_CASE("an unsupported expression makes the verdict indeterminate, naming the rule", "[unit]") {
  auto r = run("10.8.0.1", "172.18.0.77", "tcp", 3);
  CHECK(r.verdict == Verdict::indeterminate);
  REQUIRE(r.indeterminate_reason);
  CHECK(r.indeterminate_reason->rule.comment == "unsupported");
  CHECK(r.indeterminate_reason->rule.nft().handle.has_value());
  CHECK(r.indeterminate_reason->expression.find("meta") != std::string::npos);
}

TEST_CASE("inequality and limit assumption", "[unit]") {
  auto r = run("192.0.2.1", "172.18.0.77", "udp", 54);
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "neq");
  r = run("192.0.2.1", "172.18.0.77", "tcp", 3);
  CHECK(r.verdict == Verdict::deny);
  CHECK(r.decided_by.kind == DecisionKind::chain_policy);
  bool assumed = false;
  for (const auto& a : r.assumptions)
    assumed = assumed || a.find("rate limit") != std::string::npos;
  CHECK(assumed);
}

TEST_CASE("dnat changes the destination and the route", "[unit]") {
  auto r = run("172.18.0.9", "10.96.0.10", "tcp", 80);
  REQUIRE(r.nat.size() == 1);
  CHECK(r.nat[0].kind == "dnat");
  CHECK(r.nat[0].to == "10.1.2.3:8080");
  CHECK(r.evidence["oif"] == "cali1111111111a");
}

TEST_CASE("numgen explores every branch", "[unit]") {
  auto r = run("172.18.0.9", "10.96.0.20", "tcp", 3);
  REQUIRE(r.outcomes.size() == 2);
  CHECK(r.outcomes[0].choice.find("numgen mod 2 = 0") != std::string::npos);
  CHECK(r.outcomes[1].choice.find("numgen mod 2 = 1") != std::string::npos);
}

TEST_CASE("fib daddr type local on the input hook", "[unit]") {
  auto r = run("172.18.0.9", "172.18.0.2", "tcp", 22);
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "fib-ssh");
  CHECK(r.evidence["policy_hook"] == "input");
  r = run("172.18.0.9", "172.18.0.2", "tcp", 23);
  CHECK(r.verdict == Verdict::allow);
  CHECK(r.decided_by.kind == DecisionKind::chain_policy);
}

TEST_CASE("the node's own traffic takes the output hook; reject is a deny", "[unit]") {
  auto r = run("172.18.0.2", "10.1.2.3", "tcp", 9999);
  CHECK(r.verdict == Verdict::deny);
  CHECK(decided(r) == "reject");
  CHECK(r.evidence["policy_hook"] == "output");
}
