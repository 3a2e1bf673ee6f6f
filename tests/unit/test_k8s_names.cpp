// Names from Kubernetes (--k8s) and the container runtime (crictl): the recorded kubectl List and
// crictl output for examples/seed, malformed documents, and what a report gains from the names.
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "core/cri_names.h"
#include "core/k8s_names.h"
#include "core/node_info.h"
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

TEST_CASE("k8s names: a stage or an address is named by the pod that hashes to its interface",
          "[unit]") {
  // Names without addresses (a pod the runtime lists, inspectp failed): Felix's interface name
  // ties them to the path; the node's host route ties them to the flow's addresses.
  K8sNames n;
  n.pods.push_back({"client", "client", "", {}, false, true});
  n.pods.push_back({"stars", "frontend", "", {}, false, true});
  CHECK(n.pod_by_iface("cali0de30c97d63", "cali")->str() == "client/client");
  CHECK(n.pod_by_iface("calif881a007510", "cali")->str() == "stars/frontend");
  CHECK_FALSE(n.pod_by_iface("cali0de30c97d64", "cali"));
  CHECK_FALSE(n.pod_by_iface("eth0", "cali"));
  NodeInfo node;
  Route to_client;
  to_client.dst = *IpPrefix::parse("10.65.0.2/32");
  to_client.dev = "cali0de30c97d63";
  Route pool;  // a block route through the same interface names nothing
  pool.dst = *IpPrefix::parse("10.65.0.0/26");
  pool.dev = "calif881a007510";
  node.routes = {to_client, pool};
  Report r;
  r.flow.src = *IpAddr::parse("10.65.0.2");
  r.flow.dst = *IpAddr::parse("10.65.0.3");
  r.stages.push_back({"ingress of workload", "calif881a007510", "", "allow", {}, ""});
  apply_k8s_names(r, n, "the container runtime (crictl, 2 pods on this node)", "cali", &node);
  CHECK(r.src_name == "client/client");
  CHECK(r.dst_name.empty());
  CHECK(r.stages[0].workload == "stars/frontend");
  REQUIRE(r.assumptions.size() == 1);
  CHECK(r.assumptions[0] == "pod names from the container runtime (crictl, 2 pods on this node)");
}

TEST_CASE("crictl: the recorded pods and inspectp of the seed's node1", "[unit]") {
  auto pods = parse_crictl_pods(
      nlohmann::json::parse(test::slurp(test::source_path("tests/fixtures/crictl/pods.json"))));
  REQUIRE(pods);
  // Six sandboxes listed, one a stopped earlier attempt of client/client.
  REQUIRE(pods->size() == 5);
  CHECK(pods->at(1).ns == "client");
  CHECK(pods->at(1).id.rfind("2b1f0e7c9a4d", 0) == 0);
  const auto status =
      nlohmann::json::parse(test::slurp(test::source_path("tests/fixtures/crictl/inspectp.json")));
  auto n = cri_names(*pods, &status);
  REQUIRE(n);
  CHECK(n->pods.size() == 5);
  CHECK(n->services.empty());
  for (const auto& p : n->pods) CHECK(p.on_this_node);
  CHECK(n->name_of(*IpAddr::parse("10.65.0.2")) == "client/client");
  CHECK(n->name_of(*IpAddr::parse("10.65.0.5")) == "management-ui/management-ui");
  // calico-node runs in the node's network namespace: the node's address does not name it.
  const auto* node = n->find_pod("calico-system", "calico-node-x7kq2");
  REQUIRE(node);
  CHECK(node->host_network);
  CHECK(n->name_of(*IpAddr::parse("172.18.0.2")).empty());
  // One inspectp object (crictl prints no array for one id) and none at all.
  auto one = cri_names(*pods, &status[1]);
  REQUIRE(one);
  CHECK(one->pods[1].ips.size() == 1);
  CHECK(one->pods[0].ips.empty());
  auto bare = cri_names(*pods, nullptr);
  REQUIRE(bare);
  CHECK(bare->pods[2].str() == "management-ui/management-ui");
  CHECK(bare->pods[2].ips.empty());

  struct Bad {
    const char* text;
    const char* says;
  };
  for (const auto& c : std::initializer_list<Bad>{
           {R"([])", "crictl pods -o json"},
           {R"({"items":[{"id":"a"}]})", "items[0]: a pod without metadata"},
           {R"({"items":[{"metadata":{"name":"x"}}]})", "without an id"},
       }) {
    INFO(c.text);
    auto r = parse_crictl_pods(nlohmann::json::parse(c.text));
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains(c.says));
  }
  auto bad_ip = nlohmann::json::parse(R"({"status":{"id":")" + pods->at(0).id +
                                      R"(","network":{"ip":"10.65.0"}}})");
  auto bad = cri_names(*pods, &bad_ip);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("10.65.0 is not an address"));
}

TEST_CASE("k8s names: two sources merged, the first winning", "[unit]") {
  K8sNames k8s = seed_names();
  K8sNames rt;
  rt.pods.push_back({"client", "client", "", {*IpAddr::parse("10.65.0.99")}, false, true});
  rt.pods.push_back({"stars", "pending", "", {*IpAddr::parse("10.65.0.7")}, false, true});
  rt.pods.push_back({"stars", "batch", "", {*IpAddr::parse("10.65.0.8")}, false, true});
  merge_k8s_names(k8s, rt);
  CHECK(k8s.pods.size() == 8);
  // --k8s's address stays; a pod --k8s has without one takes the runtime's; a new one is added.
  CHECK(k8s.name_of(*IpAddr::parse("10.65.0.2")) == "client/client");
  CHECK(k8s.name_of(*IpAddr::parse("10.65.0.99")).empty());
  CHECK_FALSE(k8s.find_pod("client", "client")->on_this_node);
  CHECK(k8s.name_of(*IpAddr::parse("10.65.0.7")) == "stars/pending");
  CHECK(k8s.find_pod("stars", "pending")->on_this_node);
  CHECK(k8s.name_of(*IpAddr::parse("10.65.0.8")) == "stars/batch");
  CHECK(k8s.services.size() == 5);
}
