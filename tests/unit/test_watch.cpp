// watch's pure parts: the packet decoder (NFLOG payloads, dropped skbs), the nfnetlink_log
// message decoder and its loss count, which events are shown, the rate limit and the summary,
// the rule counters' deltas and their lines (the kernel side is tests/privileged/
// test_watch_live.py, and tests/lab/test_ebpf_walkthrough.py for the eBPF counters).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <vector>

#include <catch2/catch.hpp>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "backends/linux/nflog.h"
#include "core/calico/attribution.h"
#include "core/packet.h"
#include "core/watch.h"

using namespace dpi;

namespace {

// IPv4 10.65.0.2 -> 10.65.0.5 with protocol p, then l4 bytes.
std::vector<uint8_t> v4(uint8_t proto, std::vector<uint8_t> l4, uint16_t frag = 0) {
  std::vector<uint8_t> b = {0x45,
                            0,
                            0,
                            60,
                            0,
                            1,
                            static_cast<uint8_t>(frag >> 8),
                            static_cast<uint8_t>(frag),
                            64,
                            proto,
                            0,
                            0,
                            10,
                            65,
                            0,
                            2,
                            10,
                            65,
                            0,
                            5};
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

// IPv6 fd00::2 -> fd00::5, next header nh, then the rest.
std::vector<uint8_t> v6(uint8_t nh, std::vector<uint8_t> rest) {
  std::vector<uint8_t> b = {0x60, 0, 0, 0, 0, 40, nh, 64};
  for (int a : {2, 5}) {
    std::vector<uint8_t> addr(16, 0);
    addr[0] = 0xfd;
    addr[15] = static_cast<uint8_t>(a);
    b.insert(b.end(), addr.begin(), addr.end());
  }
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

}  // namespace

TEST_CASE("packet decoder: tuples of IPv4 and IPv6 packets, and what it refuses", "[unit]") {
  const std::vector<uint8_t> udp_9001 = {0x9c, 0x40, 0x23, 0x29, 0, 8, 0, 0};  // 40000 -> 9001
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    const char* flow;   // describe() of the decoded flow, or nullptr
    const char* error;  // a part of the error message
  };
  const std::vector<Case> cases = {
      {"v4 udp", v4(17, udp_9001), "udp 10.65.0.2:40000 -> 10.65.0.5:9001", nullptr},
      {"v4 tcp", v4(6, {0x9c, 0x40, 0, 80, 0, 0, 0, 0}), "tcp 10.65.0.2:40000 -> 10.65.0.5:80",
       nullptr},
      {"v4 icmp echo", v4(1, {8, 0, 0, 0}), "icmp 10.65.0.2 -> 10.65.0.5 type 8 code 0", nullptr},
      {"v4 first fragment has ports (MF set)", v4(17, udp_9001, 0x2000),
       "udp 10.65.0.2:40000 -> 10.65.0.5:9001", nullptr},
      {"v4 later fragment", v4(17, udp_9001, 0x0010), nullptr, "later IPv4 fragment"},
      {"v4 cut in the ports", v4(17, {0x9c, 0x40}), nullptr, "before its ports"},
      {"v4 cut in the header", {0x45, 0, 0, 60, 0, 0}, nullptr, "before its IPv4 header"},
      {"v6 udp", v6(17, udp_9001), "udp [fd00::2]:40000 -> [fd00::5]:9001", nullptr},
      {"v6 icmpv6 echo", v6(58, {128, 0, 0, 0}), "icmpv6 fd00::2 -> fd00::5 type 128 code 0",
       nullptr},
      {"v6 hop-by-hop then fragment 0 then udp",
       v6(0, {44,   0,    1,    4,    0, 0, 0, 0,  // hop-by-hop, 8 bytes, next fragment
              17,   0,    0,    0,    0, 0, 0, 1,  // fragment offset 0, next udp
              0x9c, 0x40, 0x23, 0x29, 0, 8, 0, 0}),
       "udp [fd00::2]:40000 -> [fd00::5]:9001", nullptr},
      {"v6 later fragment", v6(44, {17, 0, 0, 8, 0, 0, 0, 1}), nullptr, "later IPv6 fragment"},
      {"v6 cut", v6(17, {}), nullptr, "before its ports"},
      {"not IP", {0x50, 0, 0, 0}, nullptr, "IP version 5"},
      {"empty", {}, nullptr, "IP version"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto f = decode_ip_packet(c.bytes.data(), c.bytes.size());
    if (c.flow) {
      REQUIRE(f);
      CHECK(describe(*f) == c.flow);
    } else {
      REQUIRE_FALSE(f);
      CHECK(f.error().code == ErrorCode::bad_input);
      CHECK_THAT(f.error().message, Catch::Contains(c.error));
    }
  }
}

namespace {

// An nfnetlink_log packet message as the kernel sends it.
std::vector<char> nflog_message(uint16_t group, const char* prefix, uint32_t indev,
                                std::optional<uint32_t> seq, const std::vector<uint8_t>& payload,
                                uint16_t type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET) {
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_INET;
  nfg->res_id = htons(group);
  nfulnl_msg_packet_hdr hdr{htons(0x0800), 2, 0};
  mnl_attr_put(nlh, NFULA_PACKET_HDR, sizeof(hdr), &hdr);
  if (indev) mnl_attr_put_u32(nlh, NFULA_IFINDEX_INDEV, htonl(indev));
  if (!payload.empty()) mnl_attr_put(nlh, NFULA_PAYLOAD, payload.size(), payload.data());
  if (prefix) mnl_attr_put_strz(nlh, NFULA_PREFIX, prefix);
  if (seq) mnl_attr_put_u32(nlh, NFULA_SEQ, htonl(*seq));
  buf.resize(nlh->nlmsg_len);
  return buf;
}

}  // namespace

TEST_CASE("NFLOG message decoder: group, prefix, interface, sequence, tuple", "[unit]") {
  const std::vector<uint8_t> udp = v4(17, {0x9c, 0x40, 0x23, 0x29, 0, 8, 0, 0});
  auto m = nflog_message(2, "DPE|default", 7, 41, udp);
  auto p = os::decode_nflog_message(m.data(), m.size());
  REQUIRE(p);
  CHECK(p->event.source == "nflog");
  CHECK(p->event.group == 2);
  CHECK(p->event.prefix == "DPE|default");
  CHECK(p->event.in_ifindex == 7);
  CHECK(p->event.out_ifindex == 0);
  CHECK(p->seq == 41u);
  REQUIRE(p->event.flow);
  CHECK(describe(*p->event.flow) == "udp 10.65.0.2:40000 -> 10.65.0.5:9001");

  m = nflog_message(1, nullptr, 0, std::nullopt, {});
  p = os::decode_nflog_message(m.data(), m.size());
  REQUIRE(p);
  CHECK(p->event.prefix.empty());
  CHECK_FALSE(p->seq);
  CHECK_FALSE(p->event.flow);
  CHECK(p->event.undecoded == "the log message carries no packet");

  m = nflog_message(1, "DRI", 3, 1, {0x45, 0});
  p = os::decode_nflog_message(m.data(), m.size());
  REQUIRE(p);
  CHECK_THAT(p->event.undecoded, Catch::Contains("IPv4 header"));

  m = nflog_message(1, "DRI", 3, 1, udp, (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG);
  CHECK_FALSE(os::decode_nflog_message(m.data(), m.size()));
  m = nflog_message(1, "DRI", 3, 1, udp);
  CHECK_FALSE(os::decode_nflog_message(m.data(), 10));
}

TEST_CASE("watch shows denials by default: which events count as one", "[unit]") {
  struct Case {
    const char* source;
    const char* prefix;
    bool denial;
  };
  const std::vector<Case> cases = {
      {"nflog", "DPE|default", true},          // end of tier, deny
      {"nflog", "DPI0|np/ns/deny-x", true},    // a deny rule
      {"nflog", "DRI", true},                  // no profile matched
      {"nflog", "API0|np/ns/allow-x", false},  // allowed by a rule
      {"nflog", "PPE|platform", false},        // end of tier, pass
      {"nflog", "not calico", true},           // unparsable: shown, never hidden
      {"kfree_skb", "", true},
  };
  for (const auto& c : cases) {
    INFO(c.source << " " << c.prefix);
    WatchEvent e;
    e.source = c.source;
    e.prefix = c.prefix;
    CHECK(is_denial(e) == c.denial);
  }
}

TEST_CASE("watch rate limit and summary", "[unit]") {
  using namespace std::chrono;
  WatchRateLimit limit(2);
  const auto t0 = steady_clock::time_point{} + hours(1);
  CHECK(limit.admit(t0));
  CHECK(limit.admit(t0 + milliseconds(10)));
  CHECK_FALSE(limit.admit(t0 + milliseconds(20)));
  CHECK_FALSE(limit.admit(t0 + milliseconds(30)));
  CHECK(limit.take_suppressed() == 2);
  CHECK(limit.take_suppressed() == 0);
  CHECK(limit.admit(t0 + milliseconds(1000)));

  WatchSummary s;
  auto drop = [](const char* reason) {
    WatchLine l;
    l.event.source = "kfree_skb";
    l.event.drop_reason = reason;
    l.error = std::string("kernel drop reason ") + reason + ": not a policy drop";
    return l;
  };
  s.add(drop("NO_SOCKET"));
  s.add(drop("IP_RPFILTER"));
  s.add(drop("IP_RPFILTER"));
  s.add_suppressed(5);
  s.set_lost("kfree_skb", 3);
  auto j = s.as_json();
  CHECK(j["type"] == "summary");
  CHECK(j["events"] == 3);
  CHECK(j["suppressed"] == 5);
  CHECK(j["lost"]["kfree_skb"] == 3);
  REQUIRE(j["top"].size() == 2);
  CHECK(j["top"][0]["reason"] == "kernel drop reason IP_RPFILTER");
  CHECK(j["top"][0]["count"] == 2);
  CHECK_THAT(s.text(), Catch::Contains("3 lost by kfree_skb"));

  WatchLine l = drop("NO_SOCKET");
  auto flow = decode_ip_packet(v4(17, {0x9c, 0x40, 0x23, 0x29}).data(), 24);
  REQUIRE(flow);
  l.event.flow = *flow;
  auto e = watch_line_json(l);
  CHECK(e["schema"] == kWatchSchema);
  CHECK(e["type"] == "event");
  CHECK(e["verdict"] == "drop");
  CHECK(e["flow"]["dport"] == 9001);
  CHECK(e["drop_reason"]["name"] == "NO_SOCKET");
  CHECK(e["explanation"].is_null());
  CHECK(e["agrees"].is_null());
  CHECK_THAT(watch_line_text(l),
             Catch::Contains("kfree_skb drop udp 10.65.0.2:40000 -> 10.65.0.5:9001: kernel drop "
                             "reason NO_SOCKET: not a policy drop"));
}

TEST_CASE("NFLOG losses: sequence gaps, and an overflow counted once", "[unit]") {
  // Each step: {group, seq} a packet, or {-1, 0} an ENOBUFS overflow.
  struct Case {
    const char* name;
    std::vector<std::pair<int, uint32_t>> steps;
    uint64_t lost;
  };
  const std::vector<Case> cases = {
      {"in order", {{1, 0}, {1, 1}, {1, 2}}, 0},
      {"a gap", {{1, 0}, {1, 3}}, 2},
      {"groups count their own sequence", {{1, 0}, {2, 0}, {1, 1}, {2, 2}}, 1},
      {"an overflow alone: at least one", {{1, 0}, {-1, 0}}, 1},
      {"an overflow then the gap: the gap's count, not one more", {{1, 0}, {-1, 0}, {1, 4}}, 3},
      {"two overflows, one gap of 1: still two", {{1, 0}, {-1, 0}, {-1, 0}, {1, 2}}, 2},
      {"an overflow, no gap after it", {{1, 0}, {-1, 0}, {1, 1}}, 1},
      {"the first packet of a group is no gap", {{1, 7}}, 0},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    os::NflogLoss loss;
    for (auto [group, seq] : c.steps) {
      if (group < 0)
        loss.overflow();
      else
        loss.packet(group, seq);
    }
    CHECK(loss.total() == c.lost);
  }
  CHECK(os::kNflogCopyRange == 256);
}

TEST_CASE("rule counter deltas: baseline, moves, resets, vanished ids", "[unit]") {
  using Kind = CounterChange::Kind;
  struct Want {
    const char* id;
    Kind kind;
    uint64_t before, now, packets;
    std::optional<uint64_t> bytes;
  };
  struct Case {
    const char* name;
    std::vector<std::vector<CounterReading>> polls;
    std::vector<Want> last;  // the changes the last poll reports
  };
  const std::vector<Case> cases = {
      {"the first poll is the baseline", {{{"0xa", 5, {}}, {"0xb", 0, {}}}}, {}},
      {"a counter that did not move says nothing", {{{"0xa", 5, {}}}, {{"0xa", 5, {}}}}, {}},
      {"a counter that moved: the delta",
       {{{"0xa", 5, {}}}, {{"0xa", 8, {}}}},
       {{"0xa", Kind::moved, 5, 8, 3, {}}}},
      {"each poll is the next one's baseline",
       {{{"0xa", 1, {}}}, {{"0xa", 3, {}}}, {{"0xa", 4, {}}}},
       {{"0xa", Kind::moved, 3, 4, 1, {}}}},
      {"an id first seen after the baseline counted from 0",
       {{{"0xa", 5, {}}}, {{"0xa", 5, {}}, {"0xb", 4, {}}}},
       {{"0xb", Kind::moved, 0, 4, 4, {}}}},
      {"a counter that went down is a reset, no delta",
       {{{"0xa", 10, {}}}, {{"0xa", 3, {}}}},
       {{"0xa", Kind::reset, 10, 3, 0, {}}}},
      {"an id gone from the map vanished, no delta",
       {{{"0xa", 10, {}}, {"0xb", 1, {}}}, {{"0xb", 1, {}}}},
       {{"0xa", Kind::vanished, 10, 0, 0, {}}}},
      {"bytes where the dataplane counts them",
       {{{"0xa", 5, 500}}, {{"0xa", 7, 700}}},
       {{"0xa", Kind::moved, 5, 7, 2, 200}}},
      {"bytes going down are a reset too",
       {{{"0xa", 5, 500}}, {{"0xa", 6, 100}}},
       {{"0xa", Kind::reset, 5, 6, 0, {}}}},
      {"several in rule id order",
       {{{"0xb", 1, {}}, {"0xa", 1, {}}, {"0xc", 9, {}}}, {{"0xb", 2, {}}, {"0xa", 2, {}}}},
       {{"0xa", Kind::moved, 1, 2, 1, {}},
        {"0xb", Kind::moved, 1, 2, 1, {}},
        {"0xc", Kind::vanished, 9, 0, 0, {}}}},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    CounterDeltas d;
    CHECK_FALSE(d.has_baseline());
    std::vector<CounterChange> got;
    for (const auto& p : c.polls) got = d.update(p);
    CHECK(d.has_baseline());
    REQUIRE(got.size() == c.last.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO(i);
      CHECK(got[i].rule_id == c.last[i].id);
      CHECK(got[i].kind == c.last[i].kind);
      CHECK(got[i].before == c.last[i].before);
      if (c.last[i].kind != Kind::vanished) CHECK(got[i].now == c.last[i].now);
      CHECK(got[i].packets() == c.last[i].packets);
      CHECK(got[i].bytes() == c.last[i].bytes);
    }
  }
}

namespace {

// A counter event of rule id 0x1f: `action` at the end of tier platform, or rule 2 of policy
// np/ns/web (egress of cali1).
WatchEvent counter_event(const char* action, CounterChange::Kind kind, uint64_t before,
                         uint64_t now, bool end_of_tier) {
  calico::StagePosition sp;
  sp.endpoint.direction = calico::Direction::egress;
  sp.endpoint.iface = "cali1";
  sp.endpoint.chain = "tc ingress";
  const std::string a = action;
  sp.at.action = a == "allow"  ? calico::Action::allow
                 : a == "pass" ? calico::Action::pass
                               : calico::Action::deny;
  sp.outcome = a == "allow" ? calico::StageOutcome::allow : calico::StageOutcome::deny;
  if (end_of_tier) {
    sp.at.kind = calico::PositionKind::end_of_tier;
    sp.at.tier = "platform";
  } else {
    sp.at.kind = calico::PositionKind::policy_rule;
    sp.at.tier = "default";
    PolicyName pn;
    pn.kind = "np";
    pn.ns = "ns";
    pn.name = "web";
    pn.recovered = true;
    sp.at.owner = pn;
    sp.at.rule_index = 2;
    sp.at.rule_index_exact = true;
  }
  WatchEvent e;
  e.source = "counters";
  e.rule = calico::explain_stage_position(sp);
  e.hook = "tc ingress cali1";
  CounterChange c;
  c.kind = kind;
  c.rule_id = "0x1f";
  c.before = before;
  c.now = now;
  e.counter = c;
  return e;
}

}  // namespace

TEST_CASE("watch counters: which are shown, their lines and the summary", "[unit]") {
  using Kind = CounterChange::Kind;
  struct Case {
    const char* action;
    bool end_of_tier;
    bool denial;
  };
  for (const auto& c : std::vector<Case>{{"deny", true, true},
                                         {"deny", false, true},
                                         {"allow", false, false},
                                         {"pass", true, false}}) {
    INFO(c.action << " " << c.end_of_tier);
    CHECK(is_denial(counter_event(c.action, Kind::moved, 1, 2, c.end_of_tier)) == c.denial);
  }
  WatchEvent unknown = counter_event("allow", Kind::moved, 1, 2, false);
  unknown.rule.reset();
  unknown.unattributed = "in no live policy program's debug JSON";
  CHECK(is_denial(unknown));  // never hidden

  // Explaining a counter evaluates nothing: the backend attributed it.
  WatchLine deny;
  deny.event = counter_event("deny", Kind::moved, 7, 12, true);
  deny.event.hook_counters = {{"tc ingress cali1 DROPPED_BY_POLICY", 5},
                              {"tc ingress cali1 ACCEPTED_BY_POLICY", 0}};
  const std::string text = watch_line_text(deny);
  CHECK_THAT(text, Catch::Contains("counters deny +5 packets rule id 0x1f: end-of-tier implicit "
                                   "deny in tier platform, egress of workload on cali1"));
  CHECK_THAT(text,
             Catch::Contains("[tc ingress cali1; now 12 packets; tc ingress cali1 "
                             "DROPPED_BY_POLICY +5; tc ingress cali1 ACCEPTED_BY_POLICY +0]"));
  auto j = watch_line_json(deny);
  CHECK(j["source"] == "counters");
  CHECK(j["verdict"] == "deny");
  CHECK(j["flow"].is_null());
  CHECK(j["counter"]["rule_id"] == "0x1f");
  CHECK(j["counter"]["change"] == "moved");
  CHECK(j["counter"]["packets"] == 5);
  CHECK(j["counter"]["bytes"].is_null());
  CHECK(j["counter"]["hook"] == "tc ingress cali1");
  REQUIRE(j["counter"]["hook_counters"].size() == 2);
  CHECK(j["counter"]["hook_counters"][0]["counter"] == "tc ingress cali1 DROPPED_BY_POLICY");
  CHECK(j["counter"]["hook_counters"][0]["delta"] == 5);
  CHECK(j["explanation"]["kind"] == "end_of_tier_deny");
  CHECK(j["explanation"]["tier"] == "platform");
  CHECK(j["explanation"]["direction"] == "egress");
  CHECK(j["explanation"]["endpoint"] == "cali1");
  CHECK(j["error"].is_null());

  WatchLine allow;
  allow.event = counter_event("allow", Kind::moved, 0, 3, false);
  j = watch_line_json(allow);
  CHECK(j["explanation"]["policy"] == "np/ns/web");
  CHECK(j["explanation"]["rule_index"] == 2);
  CHECK(j["verdict"] == "allow");
  CHECK(j["counter"]["hook_counters"].empty());

  WatchLine reset;
  reset.event = counter_event("deny", Kind::reset, 12, 2, true);
  CHECK_THAT(watch_line_text(reset), Catch::Contains("counters deny reset rule id 0x1f") &&
                                         Catch::Contains("went down from 12 to 2 packets"));
  CHECK(watch_line_json(reset)["counter"]["packets"].is_null());
  WatchLine gone;
  gone.event = counter_event("deny", Kind::vanished, 12, 0, true);
  CHECK_THAT(watch_line_text(gone), Catch::Contains("left the rule counters map"));
  CHECK(watch_line_json(gone)["counter"]["now"].is_null());
  WatchLine what;
  what.event = unknown;
  what.error = unknown.unattributed;
  CHECK_THAT(watch_line_text(what),
             Catch::Contains("counters ? +1 packets rule id 0x1f: in no live"));
  CHECK(watch_line_json(what)["explanation"].is_null());

  // The summary ranks the policies by the packets their counters counted.
  WatchSummary s;
  WatchLine more = deny;
  more.event.counter->before = 12;
  more.event.counter->now = 20;
  for (const WatchLine* l : {&deny, &allow, &more, &reset}) s.add(*l);
  auto sj = s.as_json();
  CHECK(sj["events"] == 4);
  REQUIRE(sj["top_counted"].size() == 2);
  CHECK(sj["top_counted"][0]["packets"] == 13);
  CHECK(sj["top_counted"][0]["reason"] == "deny by end of tier platform (egress of cali1)");
  CHECK(sj["top_counted"][1]["packets"] == 3);
  CHECK_THAT(s.text(), Catch::Contains("packets counted by the rule counters:") &&
                           Catch::Contains("13  deny by end of tier platform (egress of cali1)"));
}
