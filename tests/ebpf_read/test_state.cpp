// The per-CPU state the policy program reads: offsets per release, written out from the
// reference's table (§1.6, §6), not from the encoder.
#include <cstdint>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/ebpf/state.h"

using namespace dpi::ebpf;
using Vec = std::vector<uint8_t>;

namespace {

struct Patch {
  std::size_t off;
  Vec bytes;
};

Vec expected(std::size_t size, const std::vector<Patch>& patches) {
  Vec v(size, 0);
  for (const Patch& p : patches) std::copy(p.bytes.begin(), p.bytes.end(), v.begin() + p.off);
  return v;
}

PolicyState flow() {
  PolicyState s;
  s.ip_src = *dpi::IpAddr::parse("10.65.0.7");
  s.ip_dst = *dpi::IpAddr::parse("10.65.0.9");
  s.pre_nat_ip_dst = *dpi::IpAddr::parse("10.96.0.10");
  s.post_nat_ip_dst = *dpi::IpAddr::parse("10.65.0.9");
  s.sport = 40000;
  s.dport = 53;
  s.pre_nat_dport = 53;
  s.post_nat_dport = 5353;
  s.ip_proto = 17;
  s.flags = state_flag::dest_is_host;
  return s;
}

}  // namespace

TEST_CASE("state: encoded bytes per release", "[unit]") {
  struct Row {
    uint32_t size;
    const char* releases;
    std::vector<Patch> patches;
  };
  const std::vector<Patch> eventhdr_layout = {
      {8, {10, 65, 0, 7}}, {24, {10, 65, 0, 9}}, {40, {10, 96, 0, 10}}, {56, {10, 65, 0, 9}},
      {96, {0x40, 0x9c}},  {98, {0x35, 0x00}},   {100, {0x35, 0x00}},   {102, {0xe9, 0x14}},
      {104, {0x11}},       {368, {0x04}},
  };
  const Row rows[] = {
      {464,
       "v3.27",
       {{0, {10, 65, 0, 7}},
        {16, {10, 65, 0, 9}},
        {32, {10, 96, 0, 10}},
        {48, {10, 65, 0, 9}},
        {88, {0x40, 0x9c}},
        {90, {0x35, 0x00}},
        {92, {0x35, 0x00}},
        {94, {0xe9, 0x14}},
        {96, {0x11}},
        {408, {0x04}}}},
      {480,
       "v3.28-v3.29",
       {{0, {10, 65, 0, 7}},
        {16, {10, 65, 0, 9}},
        {32, {10, 96, 0, 10}},
        {48, {10, 65, 0, 9}},
        {88, {0x40, 0x9c}},
        {90, {0x35, 0x00}},
        {92, {0x35, 0x00}},
        {94, {0xe9, 0x14}},
        {96, {0x11}},
        {360, {0x04}}}},
      {488, "v3.30-v3.31", eventhdr_layout},
      {512, "v3.32.0-v3.32.1", eventhdr_layout},
  };
  for (const Row& r : rows) {
    INFO(r.size);
    const StateLayout* l = state_layout(r.size);
    REQUIRE(l != nullptr);
    CHECK(l->releases.str() == r.releases);
    Vec got = encode_state(*l, flow());
    CHECK(got == expected(r.size, r.patches));
    auto back = decode_state(got, 4);
    REQUIRE(back.ok());
    CHECK(back->ip_src == flow().ip_src);
    CHECK(back->pre_nat_ip_dst == flow().pre_nat_ip_dst);
    CHECK(back->post_nat_dport == 5353);
    CHECK(back->flags == state_flag::dest_is_host);
  }
  CHECK(state_layout(500) == nullptr);
  CHECK(state_layout_checked(500).error().message ==
        "state map value: 500 bytes seen, sizes known: cali_state4 464 (v3.27), cali_state4 480 "
        "(v3.28-v3.29), cali_state4 488 (v3.30-v3.31), cali_state6 512 (v3.32.0-v3.32.1)");
}

TEST_CASE("state: what the program wrote, per release", "[unit]") {
  struct Row {
    uint32_t size;
    std::size_t pol_rc, rules_hit, rule_ids;
  };
  const Row rows[] = {
      {464, 84, 100, 104}, {480, 84, 100, 104}, {488, 92, 108, 112}, {512, 92, 108, 112}};
  for (const Row& r : rows) {
    INFO(r.size);
    Vec v = expected(r.size, {{r.pol_rc, {0x02, 0, 0, 0}},
                              {r.rules_hit, {0x02, 0, 0, 0}},
                              {r.rule_ids, {0xcb, 0x04, 0xfb, 0x71, 0x1f, 0x01, 0, 0}},
                              {r.rule_ids + 8, {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe}}});
    auto s = decode_state(v, 4);
    REQUIRE(s.ok());
    CHECK(s->pol_rc == pol_rc::deny);
    CHECK(s->recorded_ids() == std::vector<uint64_t>{1234567890123u, 0xfedcba9876543210u});
  }
}

TEST_CASE("state: ICMP type and code share dport", "[unit]") {
  PolicyState s;
  s.set_icmp(8, 3);
  Vec v = encode_state(*state_layout(488), s);
  CHECK(v[98] == 8);
  CHECK(v[99] == 3);
  PolicyState many;
  many.rules_hit = 40;  // more than 32 matches: recording stopped at 32
  CHECK(many.recorded_ids().size() == 32);
}
