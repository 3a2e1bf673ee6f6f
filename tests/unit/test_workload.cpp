// Pods by name: SHA-1 (FIPS 180 test vectors) and Calico's workload interface names, checked
// against the interfaces the lab created for examples/seed (tests/lab hashes with Python's
// hashlib).
#include <fstream>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/calico/workload.h"
#include "core/sha1.h"
#include "fixture_paths.h"

using namespace dpi;

TEST_CASE("sha1 test vectors", "[unit]") {
  CHECK(sha1_hex("") == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  CHECK(sha1_hex("abc") == "a9993e364706816aba3e25717850c26c9cd0d89d");
  CHECK(sha1_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  CHECK(sha1_hex(std::string(1000000, 'a')) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  // 55 and 56 bytes: the length field fits the last block, or needs one more.
  CHECK(sha1_hex(std::string(55, 'a')) == "c1c8bbdc22796e28c0e15163d20899b65621d65a");
  CHECK(sha1_hex(std::string(56, 'a')) == "c2db330f6083854c99d4b5bfb6e8f29f201be699");
}

TEST_CASE("workload interface names are the lab's (and Felix's)", "[unit]") {
  std::ifstream in(test::source_path("examples/seed/topology.json"));
  auto topo = nlohmann::json::parse(in);
  REQUIRE(topo["pods"].size() >= 4);
  for (const auto& p : topo["pods"]) {
    calico::PodRef ref{p["namespace"], p["name"]};
    CHECK(calico::workload_iface(ref) == p["iface"].get<std::string>());
  }
  CHECK(calico::workload_iface({"client", "client"}, "azv") == "azv0de30c97d63");
}

TEST_CASE("workload interface names of a real node", "[unit]") {
  // The one (pod, interface) pair published from a real Calico node (GKE, 2019): the pod and its
  // cali* interface as `iptables-save` and `kubectl get pods` printed them there
  // (shared/fixtures/real-world, "real": true). The others are synthetic and not checked.
  auto meta = nlohmann::json::parse(
      test::slurp(test::shared_path("fixtures/real-world/kubelab-gke-allow.meta.json")));
  std::size_t real = 0;
  for (const auto& w : meta["topology"]["workloads"]) {
    if (!w.value("real", false)) continue;
    auto pod = calico::parse_pod_ref(w["pod"].get<std::string>());
    REQUIRE(pod);
    CHECK(calico::workload_iface(*pod) == w["iface"].get<std::string>());
    ++real;
  }
  CHECK(real == 1);
  CHECK(calico::workload_iface({"alpha", "nginx-dbddb74b8-z9dpn"}) == "cali92d634f8f03");
}

TEST_CASE("pod references and addresses", "[unit]") {
  CHECK(calico::parse_pod_ref("client/client-7d9")->name == "client-7d9");
  CHECK_FALSE(calico::parse_pod_ref("10.65.0.2"));
  CHECK_FALSE(calico::parse_pod_ref("Client/x"));
  CHECK_FALSE(calico::parse_pod_ref("a/b/c"));
  CHECK_FALSE(calico::parse_pod_ref("/x"));
  CHECK_FALSE(calico::parse_pod_ref("ns/-x"));

  NodeInfo n;
  n.interfaces.push_back({7, "cali0de30c97d63", true, {}});
  Route v6;
  v6.dst = *IpPrefix::parse("fd00::2/128");
  v6.dev = "cali0de30c97d63";
  Route v4 = v6;
  v4.dst = *IpPrefix::parse("10.65.0.2/32");
  n.routes = {v6, v4};
  auto a = calico::pod_address(n, {"client", "client"}, "cali");
  REQUIRE(a.ok());
  CHECK(a->addr.str() == "10.65.0.2");
  CHECK(a->iface == "cali0de30c97d63");
  CHECK(calico::pod_address(n, {"client", "client"}, "cali", 6)->addr.str() == "fd00::2");
  auto missing = calico::pod_address(n, {"client", "other"}, "cali");
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("no interface cali"));
  n.routes.clear();
  auto no_route = calico::pod_address(n, {"client", "client"}, "cali");
  REQUIRE_FALSE(no_route.ok());
  CHECK_THAT(no_route.error().message, Catch::Contains("no host route"));
}
