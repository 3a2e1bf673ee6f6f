// Release detection from pinned names and sizes (reference §6, §9), written out per release.
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "backends/ebpf/detect_release.h"
#include "backends/ebpf/size_error.h"

using namespace dpi::ebpf;

namespace {

// BPF_MAP_TYPE_*: hash 1, prog_array 3, percpu_hash 5, percpu_array 6, lru_hash 9, lpm_trie 11.
std::vector<PinnedMapInfo> common_v4(const char* ct, uint32_t ct_type) {
  return {
      {"cali_rule_ctrs2", 5, 8, 8, 10000},    {"cali_v4_ip_sets", 11, 20, 4, 1048576},
      {"cali_v4_routes", 11, 8, 8, 262144},   {ct, ct_type, 16, 88, 512000},
      {"cali_v4_nat_fe3", 11, 16, 20, 65536}, {"cali_v4_nat_be", 1, 8, 8, 262144},
      {"cali_v4_nat_aff", 9, 16, 16, 65536},
  };
}

std::vector<PinnedMapInfo> with(std::vector<PinnedMapInfo> a, std::vector<PinnedMapInfo> b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<PinnedMapInfo> node_v3_27() {
  return with(common_v4("cali_v4_ct3", 1), {{"cali_iface3", 1, 4, 40, 1000},
                                            {"cali_state4", 6, 4, 464, 2},
                                            {"cali_counters2", 5, 8, 112, 20000},
                                            {"cali_progs2", 3, 4, 4, 200},
                                            {"cali_jump2", 3, 4, 4, 10000},
                                            {"xdp_cali_progs2", 3, 4, 4, 200},
                                            {"xdp_cali_jump2", 3, 4, 4, 100}});
}

std::vector<PinnedMapInfo> node_v3_28_to_31(uint32_t state, const char* counters,
                                            uint32_t counters_size, const char* ct,
                                            uint32_t ct_type) {
  return with(common_v4(ct, ct_type), {{"cali_iface4", 1, 4, 52, 1000},
                                       {"cali_state4", 6, 4, state, 2},
                                       {counters, 5, 8, counters_size, 20000},
                                       {"cali_progs3", 3, 4, 4, 400},
                                       {"cali_jump3", 3, 4, 4, 240000},
                                       {"xdp_cali_progs3", 3, 4, 4, 400},
                                       {"xdp_cali_jump3", 3, 4, 4, 2400}});
}

std::vector<PinnedMapInfo> node_v3_32(uint32_t counters_size) {
  return with(common_v4("cali_v4_ct4", 9), {{"cali_iface4", 1, 4, 52, 1000},
                                            {"cali_state6", 6, 4, 512, 2},
                                            {"cali_counters6", 5, 8, counters_size, 20000},
                                            {"cali_progs_ing2", 3, 4, 4, 400},
                                            {"cali_progs_egr2", 3, 4, 4, 400},
                                            {"cali_jump_ing2", 3, 4, 4, 240000},
                                            {"cali_jump_egr2", 3, 4, 4, 240000},
                                            {"xdp_cali_progs3", 3, 4, 4, 400},
                                            {"xdp_cali_jump3", 3, 4, 4, 2400}});
}

}  // namespace

TEST_CASE("detect: each release's pinned maps", "[unit]") {
  struct Row {
    const char* what;
    std::vector<PinnedMapInfo> maps;
    const char* range;
  };
  const Row rows[] = {
      {"v3.27", node_v3_27(), "v3.27"},
      {"v3.28/29", node_v3_28_to_31(480, "cali_counters2", 112, "cali_v4_ct3", 1), "v3.28-v3.29"},
      {"v3.30", node_v3_28_to_31(488, "cali_counters3", 136, "cali_v4_ct3", 1), "v3.30"},
      {"v3.31", node_v3_28_to_31(488, "cali_counters5", 200, "cali_v4_ct4", 9), "v3.31"},
      {"v3.32.0", node_v3_32(208), "v3.32.0"},
      {"v3.32.1", node_v3_32(216), "v3.32.1"},
  };
  for (const Row& r : rows) {
    INFO(r.what);
    auto d = detect_release(r.maps);
    INFO((d.ok() ? std::string() : d.error().message));
    REQUIRE(d.ok());
    CHECK(d->releases.str() == r.range);
    // IPv6 maps are absent in these nodes: said, not fatal.
    REQUIRE(d->notes.size() == 1);
    CHECK(d->notes[0].find("cali_v6_routes") != std::string::npos);
  }
}

TEST_CASE("detect: unknown sizes are named with the known ones", "[unit]") {
  auto maps = node_v3_28_to_31(500, "cali_counters3", 136, "cali_v4_ct3", 1);
  auto d = detect_release(maps);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().message ==
        "unknown Calico map layout: cali_state4 is percpu_array 4/500, known: percpu_array 4/464 "
        "(v3.27), percpu_array 4/480 (v3.28-v3.29), percpu_array 4/488 (v3.30-v3.31)");

  auto counters = node_v3_32(224);
  auto c = detect_release(counters);
  REQUIRE_FALSE(c.ok());
  CHECK(c.error().message ==
        "unknown Calico map layout: cali_counters6 is percpu_hash 8/224, known: percpu_hash "
        "8/208 (v3.32.0), percpu_hash 8/216 (v3.32.1)");
}

TEST_CASE("detect: incomplete or foreign sets", "[unit]") {
  std::vector<PinnedMapInfo> none = {{"other_map", 1, 4, 4, 10}};
  auto d = detect_release(none);
  REQUIRE_FALSE(d.ok());
  CHECK(d.error().code == dpi::ErrorCode::not_found);

  auto partial = node_v3_32(208);
  std::erase_if(partial, [](const PinnedMapInfo& m) { return m.name == "cali_jump_egr2"; });
  auto p = detect_release(partial);
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().message == "unknown Calico map layout: closest v3.32.0: cali_jump_egr2 missing");
}

TEST_CASE("known sizes per map role", "[unit]") {
  CHECK(known_sizes(MapRole::ifstate, 0, Part::value) ==
        "cali_iface3 40 (v3.27), cali_iface4 52 (v3.28-v3.32.1)");
  CHECK(known_sizes(MapRole::state, 0, Part::value) ==
        "cali_state4 464 (v3.27), cali_state4 480 (v3.28-v3.29), cali_state4 488 (v3.30-v3.31), "
        "cali_state6 512 (v3.32.0-v3.32.1)");
  CHECK(known_sizes(MapRole::conntrack, 6, Part::value) ==
        "cali_v6_ct3 128 (v3.27-v3.30), cali_v6_ct4 128 (v3.31-v3.32.1)");
  auto e = size_error(MapRole::routes, 4, Part::key, 9);
  CHECK(e.message ==
        "routes map (IPv4) key: 9 bytes seen, sizes known: cali_v4_routes 8 (v3.27-v3.32.1)");
}

TEST_CASE("layout table: maps by role", "[unit]") {
  const Layout& l = layout_for(Release::v3_29);
  CHECK(l.releases.str() == "v3.28-v3.29");
  REQUIRE(find_map(l, MapRole::jump) != nullptr);
  CHECK(find_map(l, MapRole::jump)->pin_name == "cali_jump3");
  CHECK(find_map(l, MapRole::jump_ing) == nullptr);
  CHECK(find_map(layout_for(Release::v3_32_0), MapRole::jump_egr)->pin_name == "cali_jump_egr2");
  CHECK(find_map(layout_for(Release::v3_32_0), MapRole::routes, 6)->pin_name == "cali_v6_routes");
  CHECK(layout_for(Release::v3_27).counters_n() == 14);
  CHECK(layout_for(Release::v3_30).counters_n() == 17);
  CHECK(layout_for(Release::v3_31).counters_n() == 25);
  CHECK(layout_for(Release::v3_32_1).counters_n() == 27);
}

TEST_CASE("policy jump map and stride per hook and release", "[unit]") {
  struct Row {
    Release release;
    AttachHook hook;
    const char* pin;
    uint32_t stride;
  };
  const Row rows[] = {
      {Release::v3_27, AttachHook::tc_ingress, "cali_jump2", 0},
      {Release::v3_27, AttachHook::xdp, "xdp_cali_jump2", 0},
      {Release::v3_28, AttachHook::tc_ingress, "cali_jump3", 10000},
      {Release::v3_31, AttachHook::tc_egress, "cali_jump3", 10000},
      {Release::v3_31, AttachHook::xdp, "xdp_cali_jump3", 100},
      {Release::v3_32_0, AttachHook::tc_ingress, "cali_jump_ing2", 10000},
      {Release::v3_32_1, AttachHook::tc_egress, "cali_jump_egr2", 10000},
  };
  for (const Row& r : rows) {
    INFO(release_name(r.release) << " " << attach_hook_name(r.hook));
    const MapSpec* m = policy_jump_map(layout_for(r.release), r.hook);
    REQUIRE(m != nullptr);
    CHECK(m->pin_name == r.pin);
    CHECK(policy_jump_stride(layout_for(r.release), r.hook) == r.stride);
  }
}
