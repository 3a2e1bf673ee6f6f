// watch's pure parts: the packet decoder (NFLOG payloads, dropped skbs), the nfnetlink_log
// message decoder, which events are shown, the rate limit and the summary (the kernel side is
// tests/privileged/test_watch_live.py).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <vector>

#include <catch2/catch.hpp>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>

#include "backends/linux/nflog.h"
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
