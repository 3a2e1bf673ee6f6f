// Calico's NFLOG prefixes, chain names and comments (shared/reference/calico-nftables.md §1.5, §3,
// §4).
#include <catch2/catch.hpp>

#include "core/calico/names.h"
#include "core/calico/nflog_prefix.h"

using namespace dpi;
using namespace dpi::calico;

TEST_CASE("NFLOG prefix: end of tier, rules, profiles", "[unit]") {
  auto p = parse_nflog_prefix("DPE|platform");
  REQUIRE(p);
  CHECK(p->action == "deny");
  CHECK(p->direction == "egress");
  CHECK(p->end_of_tier());
  CHECK(p->id == "platform");

  p = parse_nflog_prefix("API0|default.allow-x");
  REQUIRE(p);
  CHECK(p->action == "allow");
  CHECK(p->rule_index == 0);
  CHECK_FALSE(p->end_of_tier());
  CHECK(p->id == "default.allow-x");

  p = parse_nflog_prefix("PPE12|np/ns/name");
  REQUIRE(p);
  CHECK(p->action == "pass");
  CHECK(p->rule_index == 12);

  p = parse_nflog_prefix("DRI");
  REQUIRE(p);
  CHECK(p->no_profile_matched());

  for (const char* bad : {"", "XPE|t", "DXE|t", "DPX|t", "DPE", "DPE7", "calico-packet: "})
    CHECK_FALSE(parse_nflog_prefix(bad));
}

TEST_CASE("NFLOG prefix: hashed long ids are recognised", "[unit]") {
  // first 10 characters, '_', 41 hash characters, '_', last 10 characters.
  std::string hashed = "API0|knp.d_" + std::string(41, 'A') + "_ault.allow";
  REQUIRE(hashed.size() == 63);
  auto p = parse_nflog_prefix(hashed);
  REQUIRE(p);
  CHECK(p->hashed);
}

TEST_CASE("chain names in both layouts", "[unit]") {
  auto c = classify_chain("calico", "filter-cali-fw-cali0de30c97d63");
  CHECK(c.kind == ChainKind::from_workload);
  CHECK(c.layer == "filter");
  CHECK(c.suffix == "cali0de30c97d63");
  c = classify_chain("filter", "cali-tw-cali92d634f8f03");
  CHECK(c.kind == ChainKind::to_workload);
  CHECK(c.layer.empty());
  CHECK(classify_chain("filter", "cali-from-wl-dispatch-1").kind == ChainKind::wl_dispatch);
  CHECK(classify_chain("raw", "cali-PREROUTING").kind == ChainKind::raw_prerouting);
  CHECK(classify_chain("calico", "raw-cali-PREROUTING").kind == ChainKind::raw_prerouting);
  CHECK(classify_chain("nat", "cali-PREROUTING").kind == ChainKind::other_calico);
  CHECK(classify_chain("filter", "KUBE-FORWARD").kind == ChainKind::not_calico);
  CHECK(classify_chain("calico", "filter-FORWARD").kind == ChainKind::other_calico);
}

TEST_CASE("policy names from chain names and first-rule comments", "[unit]") {
  auto pn = policy_from_chain(classify_chain("calico", "filter-cali-pi-np/client/allow-x"), "");
  CHECK(pn.recovered);
  CHECK(pn.kind == "np");
  CHECK(pn.ns == "client");
  CHECK(pn.name == "allow-x");
  pn = policy_from_chain(classify_chain("calico", "filter-cali-pi-gnp/allow-x"), "");
  CHECK(pn.kind == "gnp");
  CHECK(pn.ns.empty());
  // v3.30/31: tier/name, where a namespaced v1 name is ns/tier.name.
  pn = policy_from_chain(
      classify_chain("calico", "filter-cali-po-default/client/default.allow-stars"), "");
  CHECK(pn.ns == "client");
  CHECK(pn.name == "default.allow-stars");
  // Hashed (iptables) names need the comment.
  pn = policy_from_chain(classify_chain("filter", "cali-pi-_kxgQy6VBWOo3Mj1GNsy"), "");
  CHECK_FALSE(pn.recovered);
  CHECK(pn.display().find("not recoverable") != std::string::npos);
  pn = policy_from_chain(classify_chain("filter", "cali-pi-_kxgQy6VBWOo3Mj1GNsy"),
                         "cali:abc; Policy alpha/knp.default.alpha-deny ingress");
  CHECK(pn.recovered);
  CHECK(pn.ns == "alpha");
  CHECK(pn.name == "knp.default.alpha-deny");
  pn = policy_from_chain(classify_chain("filter", "cali-po-_xyz"),
                         "GlobalNetworkPolicy allow-dns egress");
  CHECK(pn.kind == "gnp");
  CHECK(pn.name == "allow-dns");
}

TEST_CASE("comments split into rule id and text; tiers from comments", "[unit]") {
  auto c = split_comment(
      "cali:nlnyiRop3K2QW_8c; End of tier default. Drop if no policies passed packet");
  CHECK(c.rule_id == "cali:nlnyiRop3K2QW_8c");
  CHECK(tier_from_comment(c.text) == std::optional<std::string>("default"));
  CHECK(tier_from_comment("Start of tier platform") == std::optional<std::string>("platform"));
  CHECK_FALSE(tier_from_comment("Drop if no profiles matched"));
  CHECK(split_comment("plain").text == "plain");
}
