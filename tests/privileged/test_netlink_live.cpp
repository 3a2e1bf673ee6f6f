// Live kernel reads against a throwaway network namespace. Needs root; never touches the root
// namespace beyond reading it.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "backends/linux/netlink_node.h"
#include "backends/linux/netns.h"
#include "backends/nftables/live_ruleset.h"
#include "core/node_info.h"
#include "privileged.h"

namespace {

using dpi::ErrorCode;
using dpi::NodeInfo;
using dpi::Result;
using nlohmann::json;

int sh(const std::string& cmd) {
  return dpi::test::exit_status(std::system(cmd.c_str()));
}

int sh_with_input(const std::string& cmd, const std::string& input) {
  FILE* p = popen(cmd.c_str(), "w");
  if (!p) return -1;
  std::fwrite(input.data(), 1, input.size(), p);
  return dpi::test::exit_status(pclose(p));
}

// One namespace per test case, deleted even when a REQUIRE throws.
class TestNetns {
 public:
  TestNetns() : name_("dpi-test-" + std::to_string(getpid())) {
    created_ = sh("ip netns add " + name_) == 0;
  }
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;
  ~TestNetns() {
    if (created_) sh("ip netns del " + name_);
  }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }
  int exec(const std::string& cmd) const { return sh("ip netns exec " + name_ + " " + cmd); }

 private:
  std::string name_;
  bool created_ = false;
};

std::string own_netns() {
  char buf[64] = {};
  ssize_t n = readlink("/proc/thread-self/ns/net", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

Result<std::string> netns_id() {
  return own_netns();
}

std::set<std::string> names(const NodeInfo& n) {
  std::set<std::string> out;
  for (const auto& i : n.interfaces) out.insert(i.name);
  return out;
}

const dpi::Route* find_route(const NodeInfo& n, const std::string& dst, uint32_t table) {
  for (const auto& r : n.routes)
    if (r.dst.str() == dst && r.table == table) return &r;
  return nullptr;
}

bool has_addr(const dpi::Interface& i, const std::string& prefix) {
  return std::any_of(i.addrs.begin(), i.addrs.end(),
                     [&](const dpi::IpPrefix& p) { return p.str() == prefix; });
}

// The objects of one kind ("table", "chain", "rule") in `nft -j list ruleset` output.
std::vector<json> nft_objects(const json& doc, const char* kind) {
  std::vector<json> out;
  for (const auto& item : doc.at("nftables"))
    if (item.contains(kind)) out.push_back(item.at(kind));
  return out;
}

const char* kRuleset = R"(table inet dpitest {
  chain dpi_fwd {
    type filter hook forward priority filter; policy accept;
    iifname "cali*" counter drop comment "dpi-test"
  }
}
)";

}  // namespace

TEST_CASE("in_netns runs on another thread and leaves the caller where it was", "[privileged]") {
  DPI_REQUIRE_ROOT();
  TestNetns ns;
  REQUIRE(ns.created());
  const std::string before = own_netns();
  REQUIRE_FALSE(before.empty());

  auto inside = dpi::os::in_netns(ns.name(), netns_id);
  REQUIRE(inside.ok());
  CHECK(*inside != before);
  CHECK(own_netns() == before);

  auto by_path = dpi::os::in_netns("/run/netns/" + ns.name(), netns_id);
  REQUIRE(by_path.ok());
  CHECK(*by_path == *inside);

  auto here = dpi::os::in_netns("", netns_id);
  REQUIRE(here.ok());
  CHECK(*here == before);

  auto missing = dpi::os::in_netns("dpi-test-missing-" + std::to_string(getpid()), netns_id);
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == ErrorCode::not_found);

  auto not_netns = dpi::os::in_netns("/proc/self/status", netns_id);
  REQUIRE_FALSE(not_netns.ok());
  CHECK(not_netns.error().code == ErrorCode::bad_input);

  CHECK_THROWS_AS(
      dpi::os::in_netns(ns.name(), []() -> Result<int> { throw std::runtime_error("boom"); }),
      std::runtime_error);
  CHECK(own_netns() == before);
}

TEST_CASE("read_node_info and list_ruleset_json see exactly the test namespace", "[privileged]") {
  DPI_REQUIRE_ROOT();
  TestNetns ns;
  REQUIRE(ns.created());
  // Some kernels ship without the dummy driver; a port-less bridge stands in for it.
  if (ns.exec("ip link add dpi0 type dummy 2>/dev/null") != 0)
    REQUIRE(ns.exec("ip link add dpi0 type bridge") == 0);
  REQUIRE(ns.exec("ip link set dpi0 up") == 0);
  REQUIRE(ns.exec("ip addr add 10.99.0.1/24 dev dpi0") == 0);
  REQUIRE(ns.exec("ip addr add fd99::1/64 dev dpi0 nodad") == 0);
  REQUIRE(ns.exec("ip link add cali1234567890a type veth peer name dpi-peer0") == 0);
  REQUIRE(ns.exec("ip link set cali1234567890a up") == 0);
  REQUIRE(ns.exec("ip link set dpi-peer0 up") == 0);
  REQUIRE(ns.exec("ip route add 10.65.0.2/32 dev cali1234567890a") == 0);
  REQUIRE(ns.exec("ip -6 route add fd65::2/128 dev cali1234567890a") == 0);
  REQUIRE(ns.exec("ip route add 10.66.0.0/16 via 10.99.0.254 dev dpi0 metric 7") == 0);
  REQUIRE(ns.exec("ip route add blackhole 10.67.0.0/16") == 0);
  REQUIRE(ns.exec("ip route add 10.68.0.0/16 dev dpi0 table 100") == 0);
  REQUIRE(sh_with_input("ip netns exec " + ns.name() + " nft -f -", kRuleset) == 0);

  SECTION("node info") {
    auto node = dpi::os::in_netns(ns.name(), dpi::os::read_node_info);
    REQUIRE(node.ok());
    CHECK(names(*node) == std::set<std::string>{"lo", "dpi0", "cali1234567890a", "dpi-peer0"});

    const dpi::Interface* lo = node->find_interface("lo");
    REQUIRE(lo);
    CHECK_FALSE(lo->up);  // nobody brought it up
    CHECK(lo->addrs.empty());
    const dpi::Interface* dpi0 = node->find_interface("dpi0");
    REQUIRE(dpi0);
    CHECK(dpi0->up);
    CHECK(has_addr(*dpi0, "10.99.0.1/24"));
    CHECK(has_addr(*dpi0, "fd99::1/64"));
    const dpi::Interface* cali = node->find_interface("cali1234567890a");
    REQUIRE(cali);
    CHECK(cali->up);

    std::set<std::string> main_v4;
    for (const auto& r : node->routes)
      if (r.table == 254 && r.dst.addr.is_v4()) main_v4.insert(r.dst.str());
    CHECK(main_v4 ==
          std::set<std::string>{"10.99.0.0/24", "10.65.0.2/32", "10.66.0.0/16", "10.67.0.0/16"});

    const dpi::Route* r = find_route(*node, "10.65.0.2/32", 254);
    REQUIRE(r);
    CHECK(r->type == "unicast");
    CHECK(r->dev == "cali1234567890a");
    CHECK(r->oif == cali->index);
    CHECK_FALSE(r->gateway);

    r = find_route(*node, "fd65::2/128", 254);
    REQUIRE(r);
    CHECK(r->dev == "cali1234567890a");

    r = find_route(*node, "10.66.0.0/16", 254);
    REQUIRE(r);
    REQUIRE(r->gateway);
    CHECK(r->gateway->str() == "10.99.0.254");
    CHECK(r->priority == 7);
    CHECK(r->dev == "dpi0");

    r = find_route(*node, "10.67.0.0/16", 254);
    REQUIRE(r);
    CHECK(r->type == "blackhole");
    CHECK(r->dev.empty());

    r = find_route(*node, "10.68.0.0/16", 100);
    REQUIRE(r);
    CHECK(r->dev == "dpi0");

    r = find_route(*node, "10.99.0.1/32", 255);
    REQUIRE(r);
    CHECK(r->type == "local");
    r = find_route(*node, "10.99.0.255/32", 255);
    REQUIRE(r);
    CHECK(r->type == "broadcast");

    // The reader's output is what the rest of dpinspect consumes.
    REQUIRE(node->lookup(*dpi::IpAddr::parse("10.65.0.2")));
    CHECK(node->lookup(*dpi::IpAddr::parse("10.65.0.2"))->dev == "cali1234567890a");
    CHECK(node->is_local(*dpi::IpAddr::parse("10.99.0.1")));
    CHECK_FALSE(node->is_local(*dpi::IpAddr::parse("10.99.0.2")));
    auto again = dpi::node_info_from_json(dpi::to_json(*node), "live");
    REQUIRE(again.ok());
    CHECK(dpi::to_json(*again) == dpi::to_json(*node));

    auto root = dpi::os::read_node_info();
    REQUIRE(root.ok());
    CHECK(names(*root) != names(*node));
    CHECK(root->find_interface("dpi-peer0") == nullptr);
  }

  SECTION("ruleset") {
    auto text = dpi::os::in_netns(ns.name(), dpi::nft::list_ruleset_json);
    REQUIRE(text.ok());
    json doc = json::parse(*text);
    auto tables = nft_objects(doc, "table");
    REQUIRE(tables.size() == 1);
    CHECK(tables[0].at("family") == "inet");
    CHECK(tables[0].at("name") == "dpitest");
    auto chains = nft_objects(doc, "chain");
    REQUIRE(chains.size() == 1);
    CHECK(chains[0].at("name") == "dpi_fwd");
    CHECK(chains[0].at("hook") == "forward");
    auto rules = nft_objects(doc, "rule");
    REQUIRE(rules.size() == 1);
    CHECK(rules[0].at("comment") == "dpi-test");
    CHECK(rules[0].contains("handle"));

    auto root = dpi::nft::list_ruleset_json();
    REQUIRE(root.ok());
    CHECK(*root != *text);
    for (const auto& t : nft_objects(json::parse(*root), "table")) CHECK(t.at("name") != "dpitest");
  }

  SECTION("generation") {
    auto g1 = dpi::os::in_netns(ns.name(), dpi::nft::ruleset_generation);
    REQUIRE(g1.ok());
    auto g2 = dpi::os::in_netns(ns.name(), dpi::nft::ruleset_generation);
    REQUIRE(g2.ok());
    CHECK(*g2 == *g1);
    REQUIRE(ns.exec("nft add table ip dpitest2") == 0);
    auto g3 = dpi::os::in_netns(ns.name(), dpi::nft::ruleset_generation);
    REQUIRE(g3.ok());
    CHECK(*g3 != *g1);
    CHECK(dpi::nft::ruleset_generation().ok());
  }
}

TEST_CASE("unprivileged callers get ErrorCode::permission", "[privileged]") {
  DPI_REQUIRE_ROOT();
  TestNetns ns;
  REQUIRE(ns.created());
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child drops root for good; each failed expectation sets one bit of the exit code.
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) _exit(0x80);
    int bad = 0;
    auto rules = dpi::nft::list_ruleset_json();
    if (rules.ok() || rules.error().code != ErrorCode::permission ||
        rules.error().message.find("CAP_NET_ADMIN") == std::string::npos)
      bad |= 1;
    auto gen = dpi::nft::ruleset_generation();
    if (gen.ok() || gen.error().code != ErrorCode::permission) bad |= 2;
    auto entered = dpi::os::in_netns(ns.name(), netns_id);
    if (entered.ok() || entered.error().code != ErrorCode::permission) bad |= 4;
    if (!dpi::os::read_node_info().ok()) bad |= 8;  // rtnetlink dumps need no privilege
    _exit(bad);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
