// Byte-exact decoding of map entries, the bytes written out by hand from the reference's offset
// tables (§1.1-1.8) and felix/bpf-gpl/nat_types.h.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/ebpf/conntrack.h"
#include "backends/ebpf/counters.h"
#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/ip_sets.h"
#include "backends/ebpf/jump_index.h"
#include "backends/ebpf/map_table.h"
#include "backends/ebpf/nat.h"
#include "backends/ebpf/routes.h"

using namespace dpi::ebpf;
using Vec = std::vector<uint8_t>;

namespace {

dpi::IpAddr ip(const char* s) {
  return *dpi::IpAddr::parse(s);
}

}  // namespace

TEST_CASE("ifstate: 52-byte value (v3.28+) and 40-byte value (v3.27)", "[unit]") {
  const Vec v52 = {
      0x03, 0x00, 0x00, 0x00,                                                      // WEP|IPv4Ready
      'c',  'a',  'l',  'i',  '1', '2', '3', '4', 'a', 'b', 'c', 'd', 0, 0, 0, 0,  // name
      0xff, 0xff, 0xff, 0xff,                                                      // xdp v4 -1
      0x07, 0x00, 0x00, 0x00,                                                      // ingress v4 7
      0x00, 0x00, 0x00, 0x00,  // egress v4 0 (a real index)
      0xff, 0xff, 0xff, 0xff,  // xdp v6
      0x10, 0x27, 0x00, 0x00,  // ingress v6 10000
      0xff, 0xff, 0xff, 0xff,  // egress v6
      0xff, 0xff, 0xff, 0xff,  // filter ingress
      0x02, 0x00, 0x00, 0x00,  // filter egress 2
  };
  REQUIRE(v52.size() == 52);
  auto s = decode_ifstate_value(v52);
  REQUIRE(s.ok());
  CHECK(s->flags == 0x3);
  CHECK(s->name == "cali1234abcd");
  CHECK_FALSE(s->xdp_v4);
  CHECK(s->ingress_v4 == 7u);
  CHECK(s->egress_v4 == 0u);
  CHECK_FALSE(s->xdp_v6);
  CHECK(s->ingress_v6 == 10000u);
  CHECK_FALSE(s->egress_v6);
  CHECK_FALSE(s->filter_ingress);
  CHECK(s->filter_egress == 2u);
  CHECK(s->dual_stack_layout);
  CHECK(ifstate_flag_names(s->flags) == std::vector<std::string>{"WEP", "IPv4Ready"});
  CHECK(ifstate_flag_names(0xe) == std::vector<std::string>{"IPv4Ready", "IPv6Ready", "HEP"});
  CHECK(ifstate_flag_names(0x1401) == std::vector<std::string>{"WEP", "NotManaged", "0x1000"});

  const Vec v40 = {0x01, 0x00, 0x00, 0x00, 'e',  't',  'h',  '0',  0,    0,
                   0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
                   0xff, 0xff, 0xff, 0xff, 0x05, 0x00, 0x00, 0x00, 0x06, 0x00,
                   0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  REQUIRE(v40.size() == 40);
  auto o = decode_ifstate_value(v40);
  REQUIRE(o.ok());
  CHECK(o->name == "eth0");
  CHECK(o->ingress_v4 == 5u);
  CHECK(o->egress_v4 == 6u);
  CHECK_FALSE(o->ingress_v6);
  CHECK_FALSE(o->dual_stack_layout);

  Vec bad = v52;
  bad[24] = 0xfe;  // ingress v4 = -2
  bad[25] = bad[26] = bad[27] = 0xff;
  auto b = decode_ifstate_value(bad);
  REQUIRE_FALSE(b.ok());
  CHECK(b.error().message == "ifstate value: ingress_policy_v4 is -2 (only -1 means none)");

  auto short_value = decode_ifstate_value(Vec(50, 0));
  REQUIRE_FALSE(short_value.ok());
  CHECK(short_value.error().message ==
        "ifstate map value: 50 bytes seen, sizes known: cali_iface3 40 (v3.27), cali_iface4 52 "
        "(v3.28-v3.32.1)");
  CHECK(decode_ifstate_key(Vec{0x2a, 0x00, 0x00, 0x00}).value() == 42u);
}

TEST_CASE("routes: LPM key and value, flags as bits", "[unit]") {
  const Vec key4 = {0x20, 0x00, 0x00, 0x00, 10, 65, 0, 5};
  auto k = decode_route_key(key4, 4);
  REQUIRE(k.ok());
  CHECK(k->str() == "10.65.0.5/32");
  CHECK(encode_route_key(*k) == key4);

  const Vec wep = {0x0d, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x00, 0x00};  // IN_POOL|WORKLOAD|LOCAL
  auto w = decode_route_value(wep, 4);
  REQUIRE(w.ok());
  CHECK(w->local_workload());
  CHECK_FALSE(w->local_host());
  CHECK(w->ifindex == 11u);
  CHECK(route_flag_names(w->flags) == std::vector<std::string>{"in-pool", "workload", "local"});

  const Vec remote = {0x05, 0x00, 0x00, 0x00, 192, 168, 1, 20};  // remote block via 192.168.1.20
  auto r = decode_route_value(remote, 4);
  REQUIRE(r.ok());
  CHECK(r->remote_workload());
  CHECK(r->next_hop.str() == "192.168.1.20");

  const Vec host = {0x18, 0x00, 0x00, 0x00, 0, 0, 0, 0};
  CHECK(decode_route_value(host, 4)->local_host());

  const Vec key6 = {0x40, 0x00, 0x00, 0x00, 0xfd, 0x00, 0, 0x10, 0, 0,
                    0,    0,    0,    0,    0,    0,    0, 0,    0, 0};
  auto k6 = decode_route_key(key6, 6);
  REQUIRE(k6.ok());
  CHECK(k6->str() == "fd00:10::/64");

  CHECK_FALSE(decode_route_key(key4, 6).ok());
  const Vec too_long = {33, 0, 0, 0, 10, 0, 0, 1};
  CHECK(decode_route_key(too_long, 4).error().message == "routes map key: prefix length 33 > 32");
}

TEST_CASE("IP sets: packed LPM key, set id BE, port LE", "[unit]") {
  const Vec cidr = {0x58, 0x00, 0x00, 0x00,                          // mask 88 = 64 + 24
                    0x1a, 0x2b, 0x3c, 0x4d, 0x5e, 0x6f, 0x70, 0x81,  // set id BE
                    10,   65,   1,    0,                             // 10.65.1.0
                    0x00, 0x00, 0x00, 0x00};
  auto k = decode_ip_set_key(cidr, 4);
  REQUIRE(k.ok());
  CHECK(k->set_id == 0x1a2b3c4d5e6f7081);
  CHECK(k->addr.str() == "10.65.1.0");
  CHECK(k->addr_prefix_len() == 24);
  CHECK_FALSE(k->named_port());
  CHECK(encode_ip_set_key(*k) == cidr);

  const Vec named = {0x78, 0x00, 0x00, 0x00, 0, 0, 0,    0,    0,    0,
                     0,    0x07, 10,   65,   1, 7, 0x50, 0x00, 0x06, 0x00};  // 10.65.1.7,tcp:80
  auto n = decode_ip_set_key(named, 4);
  REQUIRE(n.ok());
  CHECK(n->set_id == 7u);
  CHECK(n->port == 80);
  CHECK(n->proto == 6);
  CHECK(n->named_port());
  CHECK(n->addr_prefix_len() == 32);

  Vec lookup6(32, 0);
  lookup6[0] = 224;  // the program's full-length lookup
  auto l6 = decode_ip_set_key(lookup6, 6);
  REQUIRE(l6.ok());
  CHECK(l6->named_port());
  CHECK_FALSE(decode_ip_set_key(cidr, 6).ok());
  CHECK(decode_ip_set_value(Vec{1, 0, 0, 0}).value() == 1u);
}

TEST_CASE("conntrack: key order as Calico compares", "[unit]") {
  struct Row {
    const char* src;
    uint16_t sport;
    const char* dst;
    uint16_t dport;
    bool src_is_a;
  };
  // v4 compares the network-order bytes loaded as a little-endian u32: the last octet is the most
  // significant. 10.0.0.2 (0x0200000a) < 9.0.0.1 (0x01000009)? no: 0x0200000a > 0x01000009.
  const Row rows[] = {
      {"10.0.0.2", 1000, "9.0.0.1", 80, false},
      {"9.0.0.1", 80, "10.0.0.2", 1000, true},
      {"10.0.0.1", 5000, "10.0.1.0", 80, false},  // 0x0100000a vs 0x0001000a: last octet wins
      {"10.0.0.5", 80, "10.0.0.5", 81, true},     // tie broken by port
      {"10.0.0.5", 81, "10.0.0.5", 80, false},
      {"fd00::2", 1, "fd00::1:0", 1, false},  // v6: word by word, each as a LE u32
  };
  for (const Row& r : rows) {
    INFO(r.src << " -> " << r.dst);
    bool src_is_a = false;
    CtKey k = make_ct_key(6, ip(r.src), r.sport, ip(r.dst), r.dport, &src_is_a);
    CHECK(src_is_a == r.src_is_a);
    CHECK(k.addr_a == (r.src_is_a ? ip(r.src) : ip(r.dst)));
    CHECK(k.port_a == (r.src_is_a ? r.sport : r.dport));
  }
  const Vec key = {0x06, 0x00, 0x00, 0x00, 10, 0, 0, 2, 9, 0, 0, 1, 0xe8, 0x03, 0x50, 0x00};
  auto d = decode_ct_key(key, 4);
  REQUIRE(d.ok());
  CHECK(d->proto == 6);
  CHECK(d->addr_a.str() == "10.0.0.2");
  CHECK(d->addr_b.str() == "9.0.0.1");
  CHECK(d->port_a == 1000);
  CHECK(d->port_b == 80);
  CHECK(encode_ct_key(*d) == key);
}

TEST_CASE("conntrack: value, legs, approved bits, NAT types", "[unit]") {
  Vec v(88, 0);
  const Vec head = {0x01, 0,    0, 0, 0, 0, 0, 0,  // rst_seen/created
                    0x00, 0x10, 0, 0, 0, 0, 0, 0,  // last_seen 0x1000
                    0x02,                          // NAT_REV
                    0x01,                          // flags NAT_OUT
                    0x01, 0x00,                    // flags3 (bit 16)
                    0,    0,    0,                 // pad
                    0x01};                         // flags2 0x100 (BA)
  std::copy(head.begin(), head.end(), v.begin());
  const Vec a_to_b = {0x00, 0x04, 0,    0,    0, 0, 0, 0,  // bytes 1024
                      0x03, 0,    0,    0,                 // packets 3
                      0x78, 0x56, 0x34, 0x12,              // seqno
                      0x33, 0,    0,    0,                 // syn|ack|approved|opener
                      0x0b, 0,    0,    0};                // ifindex 11
  std::copy(a_to_b.begin(), a_to_b.end(), v.begin() + 24);
  v[48 + 16] = 0x02;                    // b_to_a: ack only
  const Vec tail = {192,  168,  0, 1,   // tun_ip
                    10,   96,   0, 10,  // orig_ip (service)
                    0x50, 0x00,         // orig_port 80
                    0x39, 0x30,         // orig_sport 12345
                    10,   65,   0, 7};  // orig_sip
  std::copy(tail.begin(), tail.end(), v.begin() + 72);
  auto c = decode_ct_value(v, 4);
  REQUIRE(c.ok());
  CHECK(c->first_word == 1u);
  CHECK(c->last_seen == 0x1000u);
  CHECK(c->type == CtType::nat_rev);
  CHECK(c->flags == 0x10101u);
  CHECK(c->a_to_b.bytes == 1024u);
  CHECK(c->a_to_b.packets == 3u);
  CHECK(c->a_to_b.seqno == 0x12345678u);
  CHECK(c->a_to_b.approved());
  CHECK(c->a_to_b.opener());
  CHECK(c->a_to_b.syn_seen());
  CHECK_FALSE(c->a_to_b.workload());
  CHECK(c->a_to_b.ifindex == 11u);
  CHECK_FALSE(c->b_to_a.approved());
  CHECK(c->b_to_a.ack_seen());
  CHECK_FALSE(c->both_approved());
  CHECK(c->tun_ip.str() == "192.168.0.1");
  CHECK(c->orig_ip.str() == "10.96.0.10");
  CHECK(c->orig_port == 80);
  CHECK(c->orig_sport == 12345);
  CHECK(c->orig_sip.str() == "10.65.0.7");

  Vec fwd(88, 0);
  fwd[16] = 0x01;  // NAT_FWD: the reverse entry's key at 24, nat_sport after it
  const Vec rev = {0x11, 0, 0, 0, 10, 65, 0, 7, 10, 65, 0, 9, 0x35, 0x00, 0x39, 0x30, 0xd2, 0x04};
  std::copy(rev.begin(), rev.end(), fwd.begin() + 24);
  auto f = decode_ct_value(fwd, 4);
  REQUIRE(f.ok());
  CHECK(f->type == CtType::nat_fwd);
  REQUIRE(f->nat_rev_key);
  CHECK(f->nat_rev_key->proto == 17);
  CHECK(f->nat_rev_key->addr_b.str() == "10.65.0.9");
  CHECK(f->nat_rev_key->port_a == 53);
  CHECK(f->nat_sport == 1234);

  Vec bad = v;
  bad[16] = 3;
  CHECK(decode_ct_value(bad, 4).error().message == "conntrack value: type 3");
  CHECK(decode_ct_value(Vec(128, 0), 6).ok());
  CHECK(decode_ct_value(Vec(128, 0), 4).error().message ==
        "conntrack map (IPv4) value: 128 bytes seen, sizes known: cali_v4_ct3 88 (v3.27-v3.30), "
        "cali_v4_ct4 88 (v3.31-v3.32.1)");
}

TEST_CASE("NAT: frontend, backend, affinity", "[unit]") {
  const Vec fe = {0x38, 0x00, 0x00, 0x00,  // prefixlen 56: dst, port, proto; any source
                  10,   96,   0,    10,    // service IP
                  0x35, 0x00,              // port 53
                  0x11,                    // udp
                  0,    0,    0,    0,     // saddr
                  0x00};
  auto k = decode_nat_frontend_key(fe, 4);
  REQUIRE(k.ok());
  CHECK(k->addr.str() == "10.96.0.10");
  CHECK(k->port == 53);
  CHECK(k->proto == 17);
  CHECK(k->src_prefix_len() == 0);
  CHECK(encode_nat_frontend_key(*k) == fe);

  const Vec fev = {0x07, 0, 0, 0, 0x02, 0, 0, 0, 0x01, 0, 0, 0, 0x2c, 0x01, 0, 0, 0x02, 0, 0, 0};
  auto v = decode_nat_frontend_value(fev);
  REQUIRE(v.ok());
  CHECK(v->id == 7u);
  CHECK(v->count == 2u);
  CHECK(v->local == 1u);
  CHECK(v->affinity_timeout == 300u);
  CHECK(v->flags == nat_flag::internal_local);
  CHECK_FALSE(v->drop());
  const Vec drop = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK(decode_nat_frontend_value(drop)->drop());

  const Vec bek = {0x07, 0, 0, 0, 0x01, 0, 0, 0};
  auto b = decode_nat_backend_key(bek);
  REQUIRE(b.ok());
  CHECK(b->id == 7u);
  CHECK(b->ordinal == 1u);
  CHECK(encode_nat_backend_key(*b) == bek);
  const Vec bev = {10, 65, 0, 9, 0x35, 0x00, 0, 0};
  auto be = decode_nat_backend_value(bev, 4);
  REQUIRE(be.ok());
  CHECK(be->addr.str() == "10.65.0.9");
  CHECK(be->port == 53);

  const Vec affk = {10, 96, 0, 10, 0x35, 0x00, 0x11, 0, 10, 65, 0, 7, 0, 0, 0, 0};
  auto ak = decode_nat_affinity_key(affk, 4);
  REQUIRE(ak.ok());
  CHECK(ak->addr.str() == "10.96.0.10");
  CHECK(ak->proto == 17);
  CHECK(ak->client.str() == "10.65.0.7");
  const Vec affv = {10, 65, 0, 9, 0x35, 0x00, 0, 0, 0x00, 0xca, 0x9a, 0x3b, 0, 0, 0, 0};
  auto av = decode_nat_affinity_value(affv, 4);
  REQUIRE(av.ok());
  CHECK(av->backend.addr.str() == "10.65.0.9");
  CHECK(av->ts == 1000000000u);
  Vec affv6(32, 0);
  affv6[24] = 5;
  CHECK(decode_nat_affinity_value(affv6, 6)->ts == 5u);
  CHECK(decode_nat_frontend_key(Vec(40, 0), 6).ok());
  CHECK_FALSE(decode_nat_frontend_key(Vec(40, 0), 4).ok());
}

TEST_CASE("counters: per-CPU sums, names by release", "[unit]") {
  const Vec key = {0x0b, 0, 0, 0, 0x01, 0, 0, 0};
  auto k = decode_counters_key(key);
  REQUIRE(k.ok());
  CHECK(k->ifindex == 11u);
  CHECK(k->hook == CounterHook::tc_egress);
  CHECK(encode_counters_key(*k) == key);
  CHECK_FALSE(decode_counters_key(Vec{0, 0, 0, 0, 3, 0, 0, 0}).ok());

  // v3.30: 17 counters x 2 CPUs.
  Vec all(17 * 8 * 2, 0);
  all[4 * 8] = 3;               // CPU0 DROPPED_BY_POLICY
  all[17 * 8 + 4 * 8] = 4;      // CPU1 DROPPED_BY_POLICY
  all[17 * 8 + 4 * 8 + 4] = 1;  // high word: 1 << 32
  auto sums = decode_counters_value(all, 17 * 8, 2, Release::v3_30);
  REQUIRE(sums.ok());
  REQUIRE(sums->size() == 17);
  CHECK((*sums)[4] == 7u + (uint64_t{1} << 32));
  CHECK_FALSE(decode_counters_value(all, 17 * 8, 2, Release::v3_31).ok());
  CHECK_FALSE(decode_counters_value(Vec(17 * 8, 0), 17 * 8, 2, Release::v3_30).ok());

  CHECK(counter_name(Release::v3_27, 4) == "DROPPED_BY_POLICY");
  CHECK(counter_name(Release::v3_28, 13) == "");
  CHECK(counter_name(Release::v3_29, 13) == "BLACK_HOLE");
  CHECK(counter_name(Release::v3_30, 16) == "CT_CREATE_FAILED");
  CHECK(counter_name(Release::v3_30, 17) == "");
  CHECK(counter_name(Release::v3_31, 23) == "DROPPED_BY_QOS");
  CHECK(counter_name(Release::v3_32_0, 25) == "MAGLEV_NO_BACKEND");
  CHECK(counter_name(Release::v3_32_0, 26) == "");
  CHECK(counter_name(Release::v3_32_1, 26) == "NO_HOST_IP");

  const Vec rkey = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
  CHECK(decode_rule_counter_key(rkey).value() == 0xfedcba9876543210u);
  CHECK(encode_rule_counter_key(0xfedcba9876543210u) == rkey);
  const Vec rval = {2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
  CHECK(decode_rule_counter_value(rval, 3).value() == 8u);
}

TEST_CASE("rule counters: cali_rule_ctrs2 entries per release, per-CPU sums", "[unit]") {
  // The same map in every release (felix/bpf-gpl/rule_counters.h:12-14 at v3.27.0 ... v3.32.1):
  // key = rule id u64 LE; value = one u64 LE per possible CPU, each CPU's count of that rule.
  struct Case {
    Release release;
    uint32_t cpus;
    Vec key;
    Vec value;  // all CPUs, as a per-CPU lookup returns them
    uint64_t id;
    uint64_t packets;
  };
  const Case cases[] = {
      {Release::v3_27, 1, {0x01, 0, 0, 0, 0, 0, 0, 0}, {0x2a, 0, 0, 0, 0, 0, 0, 0}, 1, 42},
      {Release::v3_28,
       2,
       {0, 0, 0, 0, 0, 0, 0, 0},  // id 0: no profile matched / log rules (end of tier before v3.30)
       {0x05, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0, 0, 0, 0, 0, 0},
       0,
       12},
      {Release::v3_29,
       2,
       {0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01},
       {0, 0, 0, 0, 0x01, 0, 0, 0, 0x03, 0, 0, 0, 0, 0, 0, 0},  // CPU0: 1 << 32
       0x0123456789abcdef,
       (uint64_t{1} << 32) + 3},
      {Release::v3_30,
       4,
       {0xb5, 0x46, 0xeb, 0x64, 0x03, 0x25, 0x73, 0x15},
       {0x01, 0, 0, 0, 0, 0, 0, 0, 0,    0, 0, 0, 0, 0, 0, 0,
        0x02, 0, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0, 0, 0, 0, 0},
       0x1573250364eb46b5,
       7},
      {Release::v3_31,
       1,
       {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       {0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
       ~uint64_t{0},
       ~uint64_t{0} - 1},
      {Release::v3_32_0,
       3,
       {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe},
       {0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0, 0, 0, 0},
       0xfedcba9876543210,
       257},
      {Release::v3_32_1, 2, {0x02, 0, 0, 0, 0, 0, 0, 0}, Vec(16, 0), 2, 0},
  };
  for (const Case& c : cases) {
    INFO(release_name(c.release));
    const MapSpec* m = find_map(layout_for(c.release), MapRole::rule_counters);
    REQUIRE(m != nullptr);
    CHECK(m->pin_name == "cali_rule_ctrs2");
    CHECK(m->type == MapType::percpu_hash);
    CHECK((m->key_size == 8 && m->value_size == 8));
    CHECK(decode_rule_counter_key(c.key).value() == c.id);
    CHECK(encode_rule_counter_key(c.id) == c.key);
    CHECK(decode_rule_counter_value(c.value, c.cpus).value() == c.packets);
    // One CPU's bytes short, or another CPU count: refused, never a partial sum.
    CHECK_FALSE(decode_rule_counter_value(Vec(c.value.begin(), c.value.end() - 1), c.cpus).ok());
    CHECK_FALSE(decode_rule_counter_value(c.value, c.cpus + 1).ok());
    CHECK(parse_rule_id(fmt::format("{:#x}", c.id)) == c.id);
  }
  CHECK_FALSE(decode_rule_counter_key(Vec(7, 0)).ok());
  CHECK_FALSE(decode_rule_counter_key(Vec(16, 0)).ok());  // a rule_count_t-era key/value mixup
  // Rule ids as reports write them.
  struct IdCase {
    const char* text;
    std::optional<uint64_t> id;
  };
  const IdCase ids[] = {
      {"0x0", 0},
      {"0x1573250364eb46b5", 0x1573250364eb46b5},
      {"0XFFFFFFFFFFFFFFFF", ~uint64_t{0}},
      {"0x10000000000000000", std::nullopt},  // 17 digits: over 64 bits
      {"0x", std::nullopt},
      {"1573250364eb46b5", std::nullopt},
      {"0x12g4", std::nullopt},
      {"", std::nullopt},
  };
  for (const IdCase& c : ids) {
    INFO(c.text);
    CHECK(parse_rule_id(c.text) == c.id);
  }
}

TEST_CASE("policy jump map: index arithmetic", "[unit]") {
  CHECK(sub_program_index(3, 0) == 3u);
  CHECK(sub_program_index(3, 1) == 10003u);
  CHECK(sub_program_index(9999, 23) == 239999u);
  CHECK_FALSE(sub_program_index(3, 24));
  CHECK_FALSE(sub_program_index(10000, 0));
  CHECK(sub_program_index(5, 2, kXdpJumpStride) == 205u);
  auto s = jump_slot(20007);
  REQUIRE(s);
  CHECK(s->base == 7u);
  CHECK(s->k == 2u);
  CHECK_FALSE(jump_slot(240000));
}

TEST_CASE("ifstate: the index for a hook and family", "[unit]") {
  IfState s;
  s.ingress_v4 = 1u;
  s.egress_v4 = 2u;
  s.xdp_v4 = 3u;
  s.ingress_v6 = 4u;
  CHECK(s.index_for(AttachHook::tc_ingress, 4) == 1u);
  CHECK(s.index_for(AttachHook::tc_egress, 4) == 2u);
  CHECK(s.index_for(AttachHook::xdp, 4) == 3u);
  CHECK(s.index_for(AttachHook::tc_ingress, 6) == 4u);
  CHECK_FALSE(s.index_for(AttachHook::tc_egress, 6));
  s.dual_stack_layout = false;  // v3.27: one set for both families
  CHECK(s.index_for(AttachHook::tc_ingress, 6) == 1u);
}

TEST_CASE("IPv6 twins: conntrack value, IP-set key, NAT backend", "[unit]") {
  // conntrack v6 value (128 B): legs at 24/48, then tun_ip 72, orig_ip 88, orig_port 104,
  // orig_sport 106, orig_sip 108 (16 B each address).
  Vec v(128, 0);
  v[16] = 0x02;       // NAT_REV
  v[48 + 16] = 0x10;  // b_to_a approved
  v[72] = 0xfd;       // tun_ip fd00::
  v[88] = 0xfd;       // orig_ip fd00::a
  v[88 + 15] = 0x0a;
  v[104] = 0x50;  // orig_port 80
  v[106] = 0x39;  // orig_sport 12345
  v[107] = 0x30;
  v[108] = 0xfd;  // orig_sip fd00::7
  v[108 + 15] = 0x07;
  auto c = decode_ct_value(v, 6);
  REQUIRE(c.ok());
  CHECK(c->b_to_a.approved());
  CHECK_FALSE(c->a_to_b.approved());
  CHECK(c->tun_ip.str() == "fd00::");
  CHECK(c->orig_ip.str() == "fd00::a");
  CHECK(c->orig_port == 80);
  CHECK(c->orig_sport == 12345);
  CHECK(c->orig_sip.str() == "fd00::7");

  // IP-set v6 key (32 B): mask, set id BE at 4, addr at 12, port LE at 28, proto at 30.
  const Vec k6 = {0x80, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0x09, 0xfd, 0,    0,    0,
                  0,    0,    0,    0,    0, 0, 0, 0, 0, 0, 0, 0,    0x35, 0x00, 0x11, 0x00};
  auto k = decode_ip_set_key(k6, 6);
  REQUIRE(k.ok());
  CHECK(k->mask == 128u);
  CHECK(k->set_id == 9u);
  CHECK(k->addr.str() == "fd00::");
  CHECK(k->addr_prefix_len() == 64);
  CHECK(k->port == 53);
  CHECK(k->proto == 17);
  CHECK(encode_ip_set_key(*k) == k6);

  // NAT backend v6 value (20 B): addr, port, pad.
  Vec be(20, 0);
  be[0] = 0xfd;
  be[15] = 0x09;
  be[16] = 0x35;
  auto b = decode_nat_backend_value(be, 6);
  REQUIRE(b.ok());
  CHECK(b->addr.str() == "fd00::9");
  CHECK(b->port == 53);
}
