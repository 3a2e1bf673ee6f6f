// The live readers against real maps: in a private mount namespace (a forked child), a fresh
// bpffs gets maps with Calico's names and sizes, filled by the test through libbpf; the readers
// must decode them, leave them unchanged, and refuse writes. The host's /sys/fs/bpf must not
// change.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <map>
#include <sched.h>
#include <string>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <catch2/catch.hpp>

#include "backends/ebpf/bytes.h"
#include "backends/ebpf/counters.h"
#include "backends/ebpf/detect_release.h"
#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_node.h"
#include "backends/ebpf/live_progs.h"
#include "backends/ebpf/routes.h"
#include "backends/ebpf/state.h"

using namespace dpi::ebpf;
using Vec = std::vector<uint8_t>;

namespace {

// Failures in the child, reported to the parent one per line.
std::vector<std::string> g_failures;
#define EXPECT(cond)                                                                         \
  do {                                                                                       \
    if (!(cond))                                                                             \
      g_failures.push_back(std::string(#cond) + " (line " + std::to_string(__LINE__) + ")"); \
  } while (0)

std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    out.push_back(it->path().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct Made {
  std::string name;
  int fd;
};

int make_map(const std::string& dir, bpf_map_type type, const char* pin, uint32_t key,
             uint32_t value, uint32_t max, uint32_t flags, std::vector<Made>& made) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  std::string kname = std::string(pin).substr(0, 15);
  int fd = bpf_map_create(type, kname.c_str(), key, value, max, &opts);
  if (fd < 0) {
    g_failures.push_back(std::string("create ") + pin + ": " + std::strerror(errno));
    return -1;
  }
  if (bpf_obj_pin(fd, (dir + "/" + pin).c_str()) != 0)
    g_failures.push_back(std::string("pin ") + pin + ": " + std::strerror(errno));
  made.push_back({pin, fd});
  return fd;
}

// Every entry's bytes, through the test's own fd.
std::map<Vec, Vec> dump(int fd, uint32_t key_size, std::size_t value_buf) {
  std::map<Vec, Vec> out;
  Vec k(key_size), next(key_size);
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
    Vec v(value_buf);
    if (bpf_map_lookup_elem(fd, next.data(), v.data()) == 0) out[next] = v;
    k = next;
    prev = k.data();
  }
  return out;
}

void child(const std::string& dir) {
  int cpus = libbpf_num_possible_cpus();
  std::vector<Made> made;
  // A v3.32.1 node (IPv4 only).
  int iface = make_map(dir, BPF_MAP_TYPE_HASH, "cali_iface4", 4, 52, 1000, BPF_F_NO_PREALLOC, made);
  int state = make_map(dir, BPF_MAP_TYPE_PERCPU_ARRAY, "cali_state6", 4, 512, 2, 0, made);
  int counters = make_map(dir, BPF_MAP_TYPE_PERCPU_HASH, "cali_counters6", 8, 216, 20000, 0, made);
  make_map(dir, BPF_MAP_TYPE_PERCPU_HASH, "cali_rule_ctrs2", 8, 8, 10000, 0, made);
  make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "cali_progs_ing2", 4, 4, 400, 0, made);
  make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "cali_progs_egr2", 4, 4, 400, 0, made);
  int jump_ing = make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "cali_jump_ing2", 4, 4, 240000, 0, made);
  make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "cali_jump_egr2", 4, 4, 240000, 0, made);
  make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "xdp_cali_progs3", 4, 4, 400, 0, made);
  make_map(dir, BPF_MAP_TYPE_PROG_ARRAY, "xdp_cali_jump3", 4, 4, 2400, 0, made);
  int routes =
      make_map(dir, BPF_MAP_TYPE_LPM_TRIE, "cali_v4_routes", 8, 8, 262144, BPF_F_NO_PREALLOC, made);
  make_map(dir, BPF_MAP_TYPE_LPM_TRIE, "cali_v4_ip_sets", 20, 4, 1048576, BPF_F_NO_PREALLOC, made);
  make_map(dir, BPF_MAP_TYPE_LRU_HASH, "cali_v4_ct4", 16, 88, 512000, 0, made);
  if (!g_failures.empty()) return;

  // Entries, as Felix would write them.
  Vec ik = {0x0b, 0, 0, 0};
  Vec iv = {0x03, 0,    0,    0,    'c',  'a',  'l',  'i',  '1',  0,    0,    0,    0,
            0,    0,    0,    0,    0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0x03, 0,
            0,    0,    0x04, 0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT(bpf_map_update_elem(iface, ik.data(), iv.data(), BPF_ANY) == 0);
  Vec rk = {0x20, 0, 0, 0, 10, 65, 0, 7};
  Vec rv = {0x0d, 0, 0, 0, 0x0b, 0, 0, 0};
  EXPECT(bpf_map_update_elem(routes, rk.data(), rv.data(), BPF_ANY) == 0);
  Vec sk = {0, 0, 0, 0};
  Vec sv(std::size_t{512} * cpus, 0);
  sv[92] = 2;  // pol_rc on CPU 0
  EXPECT(bpf_map_update_elem(state, sk.data(), sv.data(), BPF_ANY) == 0);
  Vec ck = {0x0b, 0, 0, 0, 0, 0, 0, 0};
  Vec cv(std::size_t{216} * cpus, 0);
  for (int c = 0; c < cpus; ++c) cv[std::size_t{216} * c + 4 * 8] = 1;  // DROPPED_BY_POLICY
  EXPECT(bpf_map_update_elem(counters, ck.data(), cv.data(), BPF_ANY) == 0);
  // A policy program at entry 3 and its sub-program 1 at 10003.
  const uint8_t prog[] = {0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0};
  int pfd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "p4E_cali1", "Apache-2.0",
                          reinterpret_cast<const bpf_insn*>(prog), 2, nullptr);
  EXPECT(pfd >= 0);
  uint32_t pk = 3, pk1 = 10003;
  EXPECT(bpf_map_update_elem(jump_ing, &pk, &pfd, BPF_ANY) == 0);
  EXPECT(bpf_map_update_elem(jump_ing, &pk1, &pfd, BPF_ANY) == 0);
  if (!g_failures.empty()) return;

  std::map<std::string, std::map<Vec, Vec>> before;
  for (const Made& m : made) {
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    bpf_obj_get_info_by_fd(m.fd, &info, &len);
    std::size_t buf = info.value_size;
    if (is_percpu(info.type)) buf = std::size_t{(info.value_size + 7) / 8 * 8} * cpus;
    if (info.type != BPF_MAP_TYPE_PROG_ARRAY) before[m.name] = dump(m.fd, info.key_size, buf);
  }

  // The readers.
  auto listed = list_pinned_maps(dir);
  EXPECT(listed.ok());
  if (listed.ok()) {
    EXPECT(listed->size() == made.size());
    auto d = detect_release(*listed);
    EXPECT(d.ok() && d->releases.str() == "v3.32.1");
  }
  auto im = PinnedMap::open(dir, "cali_iface4");
  EXPECT(im.ok());
  if (im.ok()) {
    EXPECT(im->info().key_size == 4 && im->info().value_size == 52 &&
           im->info().max_entries == 1000 && im->info().type == BPF_MAP_TYPE_HASH);
    int seen = 0;
    auto st = im->for_each(100, [&](std::span<const uint8_t> k, std::span<const uint8_t> v) {
      ++seen;
      auto key = decode_ifstate_key(k);
      auto s = decode_ifstate_value(v);
      EXPECT(key.ok() && *key == 11);
      EXPECT(s.ok() && s->name == "cali1" && s->ingress_v4 == 3u && s->egress_v4 == 4u &&
             !s->xdp_v4 && !s->filter_egress);
    });
    EXPECT(st.ok() && seen == 1);
    // Read-only: the kernel refuses a write through the reader's fd.
    EXPECT(bpf_map_update_elem(im->fd(), ik.data(), iv.data(), BPF_ANY) != 0);
  }
  auto rm = PinnedMap::open(dir, "cali_v4_routes");
  EXPECT(rm.ok());
  if (rm.ok()) {
    auto v = rm->lookup(encode_route_key(*dpi::IpPrefix::parse("10.65.0.7/32")));
    EXPECT(v.ok() && v->has_value());
    if (v.ok() && v->has_value()) {
      auto r = decode_route_value(**v, 4);
      EXPECT(r.ok() && r->local_workload() && r->ifindex == 11);
    }
    auto miss = rm->lookup(encode_route_key(*dpi::IpPrefix::parse("10.65.0.8/32")));
    EXPECT(miss.ok() && !miss->has_value());
  }
  auto sm = PinnedMap::open(dir, "cali_state6");
  EXPECT(sm.ok());
  if (sm.ok()) {
    EXPECT(sm->value_buffer_size() == std::size_t{512} * cpus);
    auto v = sm->lookup(sk);
    EXPECT(v.ok() && v->has_value());
    if (v.ok() && v->has_value()) {
      auto s = decode_state(std::span<const uint8_t>(**v).subspan(0, 512), 4);
      EXPECT(s.ok() && s->pol_rc == pol_rc::deny);
    }
  }
  auto cm = PinnedMap::open(dir, "cali_counters6");
  EXPECT(cm.ok());
  if (cm.ok()) {
    auto v = cm->lookup(ck);
    EXPECT(v.ok() && v->has_value());
    if (v.ok() && v->has_value()) {
      auto sums = decode_counters_value(**v, 216, cm->cpus(), Release::v3_32_1);
      EXPECT(sums.ok() && sums->size() == 27 && (*sums)[4] == static_cast<uint64_t>(cpus));
    }
  }
  auto jm = PinnedMap::open(dir, "cali_jump_ing2");
  EXPECT(jm.ok());
  if (jm.ok()) {
    auto id = prog_array_lookup(*jm, 3);
    auto id1 = prog_array_lookup(*jm, 10003);
    auto empty = prog_array_lookup(*jm, 4);
    EXPECT(id.ok() && id->has_value() && id1.ok() && *id1 == *id);
    EXPECT(empty.ok() && !empty->has_value());
    if (id.ok() && id->has_value()) {
      auto info = prog_info_by_id(**id);
      EXPECT(info.ok() && info->name == "p4E_cali1" && info->type == BPF_PROG_TYPE_SCHED_CLS);
      std::vector<RawInsn> insns = {RawInsn{{0xb7, 0, 0, 0, 2, 0, 0, 0}},
                                    RawInsn{{0x95, 0, 0, 0, 0, 0, 0, 0}}};
      EXPECT(info.ok() && tag_matches(insns, info->tag));
    }
    EXPECT(!prog_array_lookup(*im, 0).ok());  // not a prog_array
  }
  // The node view the backend uses.
  auto node = LiveNode::open(dir);
  EXPECT(node.ok());
  if (node.ok()) {
    EXPECT(node->detection().releases.str() == "v3.32.1");
    auto ifs = node->map(MapRole::ifstate);
    EXPECT(ifs.ok());
    if (ifs.ok()) {
      auto all = read_ifstates(*ifs);
      EXPECT(all.ok() && all->size() == 1 && all->count(11) &&
             all->at(11).index_for(AttachHook::tc_ingress, 4) == 3u);
    }
    auto rts = node->map(MapRole::routes, 4);
    EXPECT(rts.ok());
    if (rts.ok()) {
      auto r = lookup_route(*rts, *dpi::IpAddr::parse("10.65.0.7"));
      EXPECT(r.ok() && r->has_value() && (*r)->ifindex == 11);
      auto none = lookup_route(*rts, *dpi::IpAddr::parse("10.65.0.8"));
      EXPECT(none.ok() && !none->has_value());
    }
    auto v6 = node->map(MapRole::routes, 6);
    EXPECT(!v6.ok() && v6.error().code == dpi::ErrorCode::not_found);
    auto jump = node->policy_jump(AttachHook::tc_ingress);
    EXPECT(jump.ok() && jump->path() == dir + "/cali_jump_ing2");
    if (jump.ok()) {
      auto progs = read_policy_programs(*jump, 3, 10000);
      EXPECT(progs.ok() && progs->size() == 2);
      if (progs.ok() && progs->size() == 2)
        EXPECT((*progs)[1].k == 1 && (*progs)[1].key == 10003 &&
               (*progs)[1].prog.name == "p4E_cali1");
      auto lost = read_policy_programs(*jump, 4, 10000);
      EXPECT(lost.ok() && lost->empty());
    }
  }
  auto missing = PinnedMap::open(dir, "cali_v6_routes");
  EXPECT(!missing.ok() && missing.error().code == dpi::ErrorCode::not_found);

  // Nothing changed.
  for (const Made& m : made) {
    if (!before.count(m.name)) continue;
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    bpf_obj_get_info_by_fd(m.fd, &info, &len);
    std::size_t buf = info.value_size;
    if (is_percpu(info.type)) buf = std::size_t{(info.value_size + 7) / 8 * 8} * cpus;
    if (dump(m.fd, info.key_size, buf) != before[m.name])
      g_failures.push_back(m.name + " changed by the readers");
  }
  uint32_t v = 0;
  EXPECT(bpf_map_lookup_elem(jump_ing, &pk, &v) == 0);  // still programmed
}

}  // namespace

TEST_CASE("live readers on a private bpffs", "[privileged]") {
  auto host_before = tree("/sys/fs/bpf");
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    char tmpl[] = "/tmp/dpi-ebpf-read-XXXXXX";
    std::string dir;
    if (unshare(CLONE_NEWNS) != 0) {
      g_failures.push_back(std::string("unshare: ") + std::strerror(errno));
    } else if (mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      g_failures.push_back(std::string("make-rprivate: ") + std::strerror(errno));
    } else if (!mkdtemp(tmpl)) {
      g_failures.push_back(std::string("mkdtemp: ") + std::strerror(errno));
    } else if (mount("bpf", tmpl, "bpf", 0, nullptr) != 0) {
      g_failures.push_back(std::string("mount bpf: ") + std::strerror(errno));
    } else {
      dir = tmpl;
      child(dir);
      umount2(tmpl, MNT_DETACH);
    }
    if (!dir.empty() || tmpl[0]) rmdir(tmpl);
    std::string report;
    for (const auto& f : g_failures) report += f + "\n";
    if (!report.empty()) (void)!write(fds[1], report.data(), report.size());
    close(fds[1]);
    _exit(g_failures.empty() ? 0 : 1);
  }
  close(fds[1]);
  std::string report;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) report.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  INFO(report);
  CHECK(report.empty());
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(tree("/sys/fs/bpf") == host_before);
}
