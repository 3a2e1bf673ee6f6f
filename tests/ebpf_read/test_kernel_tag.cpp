// The tag computation against the kernel's: load small programs, read bpf_prog_info.tag.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/utsname.h>
#include <unistd.h>
#include <vector>

#include <bpf/bpf.h>
#include <catch2/catch.hpp>

#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_progs.h"
#include "backends/ebpf/prog_tag.h"

using namespace dpi::ebpf;

namespace {

RawInsn raw(std::array<uint8_t, 8> b) {
  return RawInsn{b};
}

void set_imm(RawInsn& in, int32_t v) {
  std::memcpy(in.b.data() + 4, &v, 4);
}

Fd load(const std::vector<RawInsn>& insns, const char* name) {
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, name, "Apache-2.0",
                         reinterpret_cast<const bpf_insn*>(insns.data()), insns.size(), &opts);
  INFO("bpf_prog_load: " << std::strerror(errno));
  REQUIRE(fd >= 0);
  return Fd(fd);
}

// Reference §8: kernel 6.18 hashes with SHA-256.
bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) return false;
  int ma = 0, mi = 0;
  if (std::sscanf(u.release, "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

}  // namespace

TEST_CASE("program tag equals the kernel's", "[privileged]") {
  Fd map(bpf_map_create(BPF_MAP_TYPE_ARRAY, "dpi_tag_test", 4, 8, 2, nullptr));
  REQUIRE(map.valid());
  Fd map2(bpf_map_create(BPF_MAP_TYPE_ARRAY, "dpi_tag_test2", 4, 8, 2, nullptr));
  REQUIRE(map2.valid());

  std::vector<RawInsn> plain = {raw({0xb7, 0x00, 0, 0, 2, 0, 0, 0}),
                                raw({0x95, 0, 0, 0, 0, 0, 0, 0})};
  // Shaped like a policy program's header: a map lookup through ld_imm64 src=1.
  std::vector<RawInsn> with_map = {
      raw({0x62, 0x0a, 0xfc, 0xff, 0, 0, 0, 0}),        // *(u32 *)(r10 - 4) = 0
      raw({0xbf, 0xa2, 0, 0, 0, 0, 0, 0}),              // r2 = r10
      raw({0x07, 0x02, 0, 0, 0xfc, 0xff, 0xff, 0xff}),  // r2 += -4
      raw({0x18, 0x11, 0, 0, 0, 0, 0, 0}),              // r1 = map (fd below)
      raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x85, 0, 0, 0, 1, 0, 0, 0}),  // call map_lookup_elem
      raw({0xb7, 0x00, 0, 0, 0, 0, 0, 0}),
      raw({0x18, 0x11, 0, 0, 0, 0, 0, 0}),  // r1 = second map, so map_ids has an order
      raw({0, 0, 0, 0, 0, 0, 0, 0}),
      raw({0x95, 0, 0, 0, 0, 0, 0, 0}),
  };
  set_imm(with_map[3], map.get());
  set_imm(with_map[7], map2.get());

  for (const auto* insns : {&plain, &with_map}) {
    Fd prog = load(*insns, "dpi_tag");
    auto info = prog_info_by_fd(prog.get());
    REQUIRE(info.ok());
    INFO("kernel tag " << tag_hex(info->tag) << ", sha256 "
                       << tag_hex(prog_tag(*insns, TagHash::sha256)) << ", sha1 "
                       << tag_hex(prog_tag(*insns, TagHash::sha1)));
    CHECK(tag_matches(*insns, info->tag));
    if (kernel_at_least(6, 18)) CHECK(prog_tag(*insns, TagHash::sha256) == info->tag);
    CHECK(info->name == "dpi_tag");
    CHECK(info->xlated_len >= 8 * insns->size() - 16);
    // The same program with other fds has the same tag; with another constant it does not.
    std::vector<RawInsn> changed = *insns;
    changed.back() = raw({0xb7, 0x00, 0, 0, 1, 0, 0, 0});
    changed.push_back(raw({0x95, 0, 0, 0, 0, 0, 0, 0}));
    CHECK_FALSE(tag_matches(changed, info->tag));
  }

  // map_ids in first-use order (reference §8).
  Fd prog = load(with_map, "dpi_tag");
  auto info = prog_info_by_fd(prog.get());
  REQUIRE(info.ok());
  bpf_map_info m1{}, m2{};
  uint32_t len = sizeof(m1);
  REQUIRE(bpf_obj_get_info_by_fd(map.get(), &m1, &len) == 0);
  len = sizeof(m2);
  REQUIRE(bpf_obj_get_info_by_fd(map2.get(), &m2, &len) == 0);
  CHECK(info->map_ids == std::vector<uint32_t>{m1.id, m2.id});
  auto by_id = prog_info_by_id(info->id);
  REQUIRE(by_id.ok());
  CHECK(by_id->tag == info->tag);
}
