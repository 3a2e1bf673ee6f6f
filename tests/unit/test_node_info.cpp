#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/node_info.h"

namespace {

using dpi::ErrorCode;
using dpi::IpAddr;
using dpi::IpPrefix;
using dpi::NodeInfo;
using dpi::Route;
using nlohmann::json;

IpAddr addr(const char* s) {
  return *IpAddr::parse(s);
}

Route route(const char* dst, const char* type, const char* dev, int oif, uint32_t table,
            uint32_t priority = 0) {
  Route r;
  r.dst = *IpPrefix::parse(dst);
  r.type = type;
  r.dev = dev;
  r.oif = oif;
  r.table = table;
  r.priority = priority;
  return r;
}

// A Calico-like node: eth0 with the host address, one workload on a cali veth.
NodeInfo sample_node() {
  NodeInfo n;
  n.interfaces.push_back({1, "lo", true, {*IpPrefix::parse("127.0.0.1/8")}});
  n.interfaces.push_back({2, "eth0", true, {*IpPrefix::parse("192.0.2.2/24")}});
  n.interfaces.push_back({5, "cali1234567890a", true, {}});
  n.routes.push_back(route("0.0.0.0/0", "unicast", "eth0", 2, 254, 100));
  n.routes.back().gateway = addr("192.0.2.1");
  n.routes.push_back(route("0.0.0.0/0", "unicast", "eth0", 2, 254, 50));
  n.routes.back().gateway = addr("192.0.2.254");
  n.routes.push_back(route("192.0.2.0/24", "unicast", "eth0", 2, 254));
  n.routes.push_back(route("10.65.0.0/16", "blackhole", "", 0, 254));
  n.routes.push_back(route("10.65.0.2/32", "unicast", "cali1234567890a", 5, 254));
  n.routes.push_back(route("127.0.0.0/8", "local", "lo", 1, 255));
  n.routes.push_back(route("192.0.2.2/32", "local", "eth0", 2, 255));
  n.routes.push_back(route("192.0.2.255/32", "broadcast", "eth0", 2, 255));
  n.routes.push_back(route("fd00::/64", "unicast", "eth0", 2, 254, 256));
  return n;
}

}  // namespace

TEST_CASE("find_interface by name and index", "[unit]") {
  NodeInfo n = sample_node();
  REQUIRE(n.find_interface("eth0"));
  CHECK(n.find_interface("eth0")->index == 2);
  REQUIRE(n.find_interface(5));
  CHECK(n.find_interface(5)->name == "cali1234567890a");
  CHECK(n.find_interface("eth9") == nullptr);
  CHECK(n.find_interface(42) == nullptr);
}

TEST_CASE("lookup: local table first, then longest prefix, then lowest priority", "[unit]") {
  NodeInfo n = sample_node();

  const Route* r = n.lookup(addr("10.65.0.2"));
  REQUIRE(r);
  CHECK(r->dev == "cali1234567890a");

  r = n.lookup(addr("10.65.0.3"));
  REQUIRE(r);
  CHECK(r->type == "blackhole");

  // Default route: the lower metric wins.
  r = n.lookup(addr("8.8.8.8"));
  REQUIRE(r);
  REQUIRE(r->gateway);
  CHECK(r->gateway->str() == "192.0.2.254");

  // The host's own address is in the local table even though main's /24 also matches.
  r = n.lookup(addr("192.0.2.2"));
  REQUIRE(r);
  CHECK(r->type == "local");
  CHECK(r->table == 255);

  r = n.lookup(addr("192.0.2.255"));
  REQUIRE(r);
  CHECK(r->type == "broadcast");

  r = n.lookup(addr("192.0.2.7"));
  REQUIRE(r);
  CHECK(r->dst.str() == "192.0.2.0/24");

  // Families never mix: no IPv6 default route.
  CHECK(n.lookup(addr("2001:db8::1")) == nullptr);
  r = n.lookup(addr("fd00::7"));
  REQUIRE(r);
  CHECK(r->dev == "eth0");
}

TEST_CASE("lookup: tables are searched in kernel rule order", "[unit]") {
  NodeInfo n;
  n.routes.push_back(route("10.0.0.0/8", "unicast", "a", 1, 100));
  n.routes.push_back(route("10.0.0.0/8", "unicast", "d", 4, 253));
  n.routes.push_back(route("10.0.0.0/16", "unicast", "b", 2, 254));
  n.routes.push_back(route("10.0.0.0/24", "unicast", "c", 3, 50));
  // Main beats the more specific route of a custom table.
  REQUIRE(n.lookup(addr("10.0.0.1")));
  CHECK(n.lookup(addr("10.0.0.1"))->dev == "b");
  // Not in main: default (253) comes next, before custom tables.
  REQUIRE(n.lookup(addr("10.1.0.1")));
  CHECK(n.lookup(addr("10.1.0.1"))->dev == "d");

  // A throw route hands the lookup on to the next table.
  n.routes.push_back(route("10.0.0.0/8", "unicast", "m", 5, 254));
  REQUIRE(n.lookup(addr("10.1.0.1")));
  CHECK(n.lookup(addr("10.1.0.1"))->dev == "m");
  n.routes.push_back(route("10.1.0.0/16", "throw", "", 0, 254));
  REQUIRE(n.lookup(addr("10.1.0.1")));
  CHECK(n.lookup(addr("10.1.0.1"))->dev == "d");
  REQUIRE(n.lookup(addr("10.2.0.1")));
  CHECK(n.lookup(addr("10.2.0.1"))->dev == "m");
  CHECK(NodeInfo{}.lookup(addr("10.0.0.1")) == nullptr);
}

TEST_CASE("is_local: local routes and interface addresses", "[unit]") {
  NodeInfo n = sample_node();
  CHECK(n.is_local(addr("192.0.2.2")));
  CHECK(n.is_local(addr("127.0.0.53")));         // covered by local 127.0.0.0/8
  CHECK_FALSE(n.is_local(addr("192.0.2.255")));  // broadcast, not local
  CHECK_FALSE(n.is_local(addr("192.0.2.3")));
  CHECK_FALSE(n.is_local(addr("10.65.0.2")));

  // Without local routes (a hand-written file), interface addresses still count; their prefix
  // does not.
  NodeInfo bare;
  bare.interfaces.push_back({2, "eth0", true, {*IpPrefix::parse("fd00::2/64")}});
  CHECK(bare.is_local(addr("fd00::2")));
  CHECK_FALSE(bare.is_local(addr("fd00::3")));
}

TEST_CASE("node info JSON round trip", "[unit]") {
  NodeInfo n = sample_node();
  json j = dpi::to_json(n);

  CHECK(j["interfaces"][0] ==
        json::parse(R"({"index":1,"name":"lo","up":true,"addrs":["127.0.0.1/8"]})"));
  CHECK(j["routes"][0] == json::parse(R"({"dst":"0.0.0.0/0","type":"unicast","dev":"eth0",
      "oif":2,"gateway":"192.0.2.1","table":254,"priority":100})"));
  CHECK_FALSE(j["routes"][2].contains("gateway"));

  auto back = dpi::node_info_from_json(json::parse(j.dump()), "node.json");
  REQUIRE(back.ok());
  CHECK(dpi::to_json(*back) == j);
  REQUIRE(back->routes.size() == n.routes.size());
  for (std::size_t i = 0; i < n.routes.size(); ++i) {
    CHECK(back->routes[i].dst == n.routes[i].dst);
    CHECK(back->routes[i].gateway == n.routes[i].gateway);
  }
  CHECK(back->interfaces[0].addrs == n.interfaces[0].addrs);
}

TEST_CASE("node info JSON: defaults for hand-written files", "[unit]") {
  auto n = dpi::node_info_from_json(json::parse(R"({
    "interfaces": [{"index": 7, "name": "cali0"}],
    "routes": [{"dst": "10.65.0.9/32", "dev": "cali0"}, {"dst": "10.65.1.0/24", "oif": 7}]
  })"),
                                    "x");
  REQUIRE(n.ok());
  CHECK(n->interfaces[0].up);
  CHECK(n->interfaces[0].addrs.empty());
  CHECK(n->routes[0].oif == 7);
  CHECK(n->routes[0].type == "unicast");
  CHECK(n->routes[0].table == 254);
  CHECK(n->routes[1].dev == "cali0");

  auto empty = dpi::node_info_from_json(json::object(), "x");
  REQUIRE(empty.ok());
  CHECK(empty->interfaces.empty());
}

TEST_CASE("node info JSON: errors name the origin and the JSON pointer", "[unit]") {
  auto error_of = [](const char* text) {
    auto r = dpi::node_info_from_json(json::parse(text), "node.json");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::bad_input);
    return r.error().message;
  };
  using Catch::Matchers::StartsWith;

  CHECK_THAT(error_of("[]"), StartsWith("node.json: /: expected an object"));
  CHECK_THAT(error_of(R"({"interfaces": {}})"),
             StartsWith("node.json: /interfaces: expected an array"));
  CHECK_THAT(error_of(R"({"interfaces": [{"name": "lo"}]})"),
             StartsWith("node.json: /interfaces/0/index: expected"));
  CHECK_THAT(error_of(R"({"interfaces": [{"index": -1, "name": "lo"}]})"),
             StartsWith("node.json: /interfaces/0/index: expected an integer"));
  CHECK_THAT(error_of(R"({"interfaces": [{"index": 1, "name": "lo", "up": "yes"}]})"),
             StartsWith("node.json: /interfaces/0/up: expected true or false"));
  CHECK_THAT(error_of(R"({"interfaces": [{"index": 1, "name": "lo", "addrs": ["1.2.3.4/33"]}]})"),
             StartsWith("node.json: /interfaces/0/addrs/0: expected an address or prefix"));
  CHECK_THAT(error_of(R"({"interfaces": [{"index": 1, "name": "a"}, {"index": 1, "name": "b"}]})"),
             StartsWith("node.json: /interfaces/1/index: expected an index not used"));
  CHECK_THAT(error_of(R"({"routes": [{"dst": "10.0.0.0/8"}, {"type": "local"}]})"),
             StartsWith("node.json: /routes/1/dst: expected"));
  CHECK_THAT(error_of(R"({"routes": [{"dst": "10.0.0.0/8", "type": "bogus"}]})"),
             StartsWith("node.json: /routes/0/type: expected a route type"));
  CHECK_THAT(error_of(R"({"routes": [{"dst": "10.0.0.0/8", "gateway": "10.0.0.300"}]})"),
             StartsWith("node.json: /routes/0/gateway: expected an IPv4 or IPv6 address"));
  CHECK_THAT(error_of(R"({"routes": [{"dst": "10.0.0.0/8", "table": 4294967296}]})"),
             StartsWith("node.json: /routes/0/table: expected an integer from 0 to 4294967295"));
  CHECK_THAT(error_of(R"({"routes": [{"dst": "10.0.0.0/8", "priority": 1.5}]})"),
             StartsWith("node.json: /routes/0/priority: expected an integer"));
  // The offending value is quoted so the user can find it.
  CHECK_THAT(error_of(R"({"routes": [{"dst": "nope"}]})"),
             Catch::Matchers::EndsWith("got \"nope\""));
}

TEST_CASE("route: ip rules by priority, with selectors, goto, suppress and actions", "[unit]") {
  NodeInfo n;
  n.routes.push_back(route("0.0.0.0/0", "unicast", "e0", 1, 254));
  n.routes.push_back(route("0.0.0.0/0", "unicast", "e1", 2, 100));
  n.routes.push_back(route("10.9.0.0/16", "unicast", "e2", 3, 100));
  n.routes.push_back(route("127.0.0.0/8", "local", "lo", 9, 255));
  auto rules = json::parse(R"([
    {"priority": 0, "table": 255},
    {"priority": 10, "fwmark": 1, "fwmask": 1, "table": 100},
    {"priority": 20, "from": "10.1.0.3/32", "table": 100, "suppress_prefixlength": 0},
    {"priority": 30, "ipproto": 17, "dport": [5000, 5100], "table": 100},
    {"priority": 40, "not": true, "iif": "c0", "action": "goto", "goto": 60},
    {"priority": 50, "to": "198.51.100.0/24", "action": "prohibit"},
    {"priority": 60, "to": "203.0.113.0/24", "action": "blackhole"},
    {"priority": 32766, "table": 254}
  ])");
  auto node = dpi::node_info_from_json(json{{"routes", json::array()}, {"rules", rules}}, "t");
  REQUIRE(node.ok());
  n.rules = node->rules;
  n.rules_read = true;
  REQUIRE(n.rules.size() == 8);

  auto via = [&](const char* dst, dpi::RouteKey k) {
    auto r = n.route(addr(dst), k);
    CHECK(r.unsupported.empty());
    return r.route ? r.route->dev + (r.route->type == "unicast" ? "" : ":" + r.route->type) : "";
  };
  dpi::RouteKey fwd{addr("10.1.0.2"), 0, "c0"};
  CHECK(via("8.8.8.8", fwd) == "e0");
  dpi::RouteKey marked = fwd;
  marked.mark = 3;
  CHECK(via("8.8.8.8", marked) == "e1");
  // suppress_prefixlength 0 ignores table 100's default route, not its /16.
  dpi::RouteKey from3{addr("10.1.0.3"), 0, "c0"};
  CHECK(via("8.8.8.8", from3) == "e0");
  CHECK(via("10.9.1.1", from3) == "e2");
  dpi::RouteKey udp = fwd;
  udp.l4proto = 17;
  udp.has_ports = true;
  udp.dport = 5050;
  CHECK(via("8.8.8.8", udp) == "e1");
  udp.dport = 6000;
  CHECK(via("8.8.8.8", udp) == "e0");
  // From c0 the goto is not taken, so the prohibit rule applies; sent by the node (iif lo), the
  // goto skips it.
  CHECK(via("198.51.100.7", fwd) == ":prohibit");
  CHECK(via("198.51.100.7", dpi::RouteKey{addr("10.1.0.2"), 0, "lo"}) == "e0");
  CHECK(via("203.0.113.7", fwd) == ":blackhole");

  // A selector that is not modelled, or a fact the lookup lacks, refuses instead of guessing.
  dpi::IpRule odd;
  odd.priority = 5;
  odd.table = 100;
  odd.unsupported = "l3mdev";
  n.rules.push_back(odd);
  auto r = n.route(addr("8.8.8.8"), fwd);
  CHECK(r.route == nullptr);
  CHECK_THAT(r.unsupported, Catch::Contains("l3mdev"));
  n.rules.pop_back();
  r = n.route(addr("8.8.8.8"), dpi::RouteKey{{}, 0, "c0"});  // rule 20 needs the source
  CHECK(r.route == nullptr);
  CHECK_THAT(r.unsupported, Catch::Contains("source address"));

  // The rules survive a round trip through the node file format.
  auto back = dpi::node_info_from_json(dpi::to_json(n), "t");
  REQUIRE(back.ok());
  CHECK(dpi::to_json(*back) == dpi::to_json(n));
  CHECK(back->rules_read);
  CHECK(dpi::ip_rule_text(back->rules[1]) == "10: from all fwmark 0x1/0x1 lookup 100");
}

TEST_CASE("node file ip rules: bad values are refused with their place", "[unit]") {
  auto bad = [](const char* rules) {
    auto r = dpi::node_info_from_json(json{{"rules", json::parse(rules)}}, "n.json");
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK_THAT(bad(R"([{"table": 1}])"), Catch::Contains("/rules/0/priority"));
  CHECK_THAT(bad(R"([{"priority": 1, "action": "jump"}])"), Catch::Contains("/rules/0/action"));
  CHECK_THAT(bad(R"([{"priority": 1}])"), Catch::Contains("/rules/0/table"));
  CHECK_THAT(bad(R"([{"priority": 1, "table": 1, "dport": [9, 3]}])"),
             Catch::Contains("/rules/0/dport"));
  CHECK_THAT(bad(R"([{"priority": 1, "table": 1, "family": 4, "from": "fd00::/8"}])"),
             Catch::Contains("/rules/0/from"));
}
