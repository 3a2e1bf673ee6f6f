// Names from Kubernetes (--k8s): the recorded kubectl List for examples/seed, malformed documents,
// and what a report gains from the names.
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "core/k8s_names.h"
#include "core/report.h"
#include "fixture_paths.h"

using namespace dpi;

namespace {

K8sNames seed_names() {
  std::ifstream in(test::source_path("tests/fixtures/k8s/seed.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto n = parse_k8s_names(ss.str(), "seed.json");
  REQUIRE(n);
  return *n;
}

}  // namespace

TEST_CASE("k8s names: addresses of the seed's kubectl List", "[unit]") {
  const K8sNames n = seed_names();
  CHECK(n.pods.size() == 7);
  CHECK(n.services.size() == 5);  // EndpointSlices are read past
  struct Case {
    const char* addr;
    const char* name;
  };
  for (const auto& c : std::initializer_list<Case>{
           {"10.65.0.2", "client/client"},
           {"10.65.0.3", "stars/frontend"},
           {"10.65.0.5", "management-ui/management-ui"},
           {"10.65.1.7", "stars/backend-remote"},
           {"10.96.0.10", "service stars/frontend"},
           {"10.96.0.20", "service stars/multi"},
           // The host-network calico-node pod has the node's address: it does not name it.
           {"172.18.0.2", ""},
           {"10.65.9.9", ""},
       }) {
    INFO(c.addr);
    CHECK(n.name_of(*IpAddr::parse(c.addr)) == c.name);
  }
  const auto* remote = n.find_pod("stars", "backend-remote");
  REQUIRE(remote);
  CHECK(remote->node == "node2");
  const auto* pending = n.find_pod("stars", "pending");
  REQUIRE(pending);
  CHECK(pending->node.empty());
  CHECK(pending->ips.empty());
  const auto* multi = n.find_service("stars", "multi");
  REQUIRE(multi);
  REQUIRE(multi->ports.size() == 2);
  CHECK(multi->ports[1].port == 6379);
  CHECK(multi->ports[1].proto == "TCP");
  const auto* headless = n.find_service("stars", "headless");
  REQUIRE(headless);
  CHECK(headless->cluster_ips.empty());
  CHECK_FALSE(n.find_service("stars", "nope"));
}

TEST_CASE("k8s names: malformed documents say what is wrong", "[unit]") {
  struct Case {
    const char* text;
    const char* says;
  };
  for (
      const auto& c : std::initializer_list<Case>{
          {"not json", "not JSON"},
          {"[1]", "kind List"},
          {R"({"kind":"List","items":{}})", "items: expected an array"},
          {R"({"kind":"List","items":[3]})", "items[0]: expected an object"},
          {R"({"kind":"List","items":[{"metadata":{}}]})", "without a kind"},
          {R"({"kind":"List","items":[{"kind":"Pod","metadata":{}}]})", "a Pod without a name"},
          {R"({"items":[{"kind":"Pod","metadata":{"name":"a"},"status":{"podIP":"10.1"}}]})",
           "10.1 is not an address"},
          {R"({"items":[{"kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":0}]}}]})",
           "1-65535"},
      }) {
    INFO(c.text);
    auto n = parse_k8s_names(std::string_view(c.text), "f.json");
    REQUIRE_FALSE(n);
    CHECK(n.error().code == ErrorCode::bad_input);
    CHECK_THAT(n.error().message, Catch::Contains("f.json") && Catch::Contains(c.says));
  }
  // One object instead of a List is read as a List of one.
  auto one =
      parse_k8s_names(std::string_view(R"({"kind":"Pod","metadata":{"namespace":"a","name":"b"},
                          "status":{"podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}]}})"),
                      "one.json");
  REQUIRE(one);
  REQUIRE(one->pods.size() == 1);
  CHECK(one->pods[0].ips.size() == 2);
  CHECK(one->name_of(*IpAddr::parse("fd00::1")) == "a/b");
}

TEST_CASE("k8s names: a report names its flow and each stage's workload", "[unit]") {
  const K8sNames n = seed_names();
  Report r;
  r.flow.src = *IpAddr::parse("10.65.0.2");
  r.flow.dst = *IpAddr::parse("10.96.0.10");
  r.stages.push_back({"egress of workload", "cali0de30c97d63", "", "allow", {}, ""});
  r.stages.push_back({"ingress of workload", "calif881a007510", "", "allow", {}, ""});
  r.stages.push_back({"ingress of host endpoint", "eth0", "", "allow", {}, ""});
  apply_k8s_names(r, n, "--k8s seed.json");
  CHECK(r.src_name == "client/client");
  CHECK(r.dst_name == "service stars/frontend");
  CHECK(r.stages[0].workload == "client/client");
  CHECK(r.stages[1].workload == "stars/frontend");
  CHECK(r.stages[2].workload.empty());
  REQUIRE(r.assumptions.size() == 1);
  CHECK(r.assumptions[0] == "pod and service names from --k8s seed.json");
  // Another FELIX_INTERFACEPREFIX: the cali* endpoints are no longer the pods'.
  Report other;
  other.stages.push_back({"egress of workload", "cali0de30c97d63", "", "allow", {}, ""});
  apply_k8s_names(other, n, "--k8s seed.json", "azv");
  CHECK(other.stages[0].workload.empty());
}
