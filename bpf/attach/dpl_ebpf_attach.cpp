// dpl-ebpf-attach: loads the lab's Calico-like tc program (bpf/calico_tc.bpf.c) over the maps that
// tests/lab/ebpf/node.py pinned for one Calico version, installs its "allowed" and "drop" programs
// in the static programs map(s) and attaches the main program to tc ingress and egress (clsact,
// direct-action) of each interface. Runs in the caller's network and mount namespaces: the lab
// calls it inside the node netns and the lab's private bpffs. The tc filters keep the programs
// alive after it exits; nothing is pinned.
//
//   dpl-ebpf-attach --globals <bpffs>/tc/globals --version 3.30|3.32 [--host-ip NODE_IP] --iface
//   caliX [--iface ...]
//
// --host-ip: the node's address, the source a pod's connection to itself through a service is
// masqueraded to (kube-proxy's hairpin masquerade; Calico marks such packets for it).
//
// Prints one JSON object (program ids, attached interfaces) on success; exit 1 with one line on
// stderr otherwise.

#include <arpa/inet.h>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <net/if.h>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "calico_tc.skel.h"

namespace {

struct Failure {
  std::string what;
};

[[noreturn]] void fail(const std::string& what, int err) {
  throw Failure{what + ": " + std::strerror(err < 0 ? -err : err)};
}

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

struct SkeletonDeleter {
  void operator()(calico_tc* skel) const { calico_tc__destroy(skel); }
};
using Skeleton = std::unique_ptr<calico_tc, SkeletonDeleter>;

// Where each version keeps what the program uses (calico-ebpf.md §1, §6). v3.30 has one static
// programs map and one policy jump map for both hooks; both definitions then reuse the same map.
struct VersionMaps {
  std::string_view version;
  std::string_view state, ct, counters, progs_ing, progs_egr, jump_ing, jump_egr;
  // Indices of allowed/drop per hook (ingress, egress): distinct when the map is shared.
  std::array<__u32, 2> allowed, drop;
};

constexpr std::array kVersions{
    VersionMaps{"3.30",
                "cali_state4",
                "cali_v4_ct3",
                "cali_counters3",
                "cali_progs3",
                "cali_progs3",
                "cali_jump3",
                "cali_jump3",
                {2, 12},
                {4, 14}},
    VersionMaps{"3.32",
                "cali_state6",
                "cali_v4_ct4",
                "cali_counters6",
                "cali_progs_ing2",
                "cali_progs_egr2",
                "cali_jump_ing2",
                "cali_jump_egr2",
                {2, 2},
                {4, 4}},
};

struct Options {
  std::string globals;
  const VersionMaps* maps = nullptr;
  std::vector<std::string> ifaces;
  in_addr host_ip{};  // 0.0.0.0: no masquerade for a pod reaching itself through a service
};

Options parse_args(int argc, char** argv) {
  Options o;
  std::string version;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 >= argc) throw Failure{"missing value after " + std::string(arg)};
    std::string value = argv[++i];
    if (arg == "--globals") {
      o.globals = value;
    } else if (arg == "--version") {
      version = value;
    } else if (arg == "--host-ip") {
      if (inet_pton(AF_INET, value.c_str(), &o.host_ip) != 1)
        throw Failure{"--host-ip: not an IPv4 address: " + value};
    } else if (arg == "--iface") {
      o.ifaces.push_back(value);
    } else {
      throw Failure{"unknown option " + std::string(arg) +
                    " (usage: dpl-ebpf-attach --globals DIR --version 3.30|3.32 [--host-ip "
                    "A.B.C.D] --iface NAME...)"};
    }
  }
  for (const auto& v : kVersions)
    if (v.version == version) o.maps = &v;
  if (!o.maps) throw Failure{"--version: expected 3.30 or 3.32, got '" + version + "'"};
  if (o.globals.empty()) throw Failure{"--globals is required"};
  if (o.ifaces.empty()) throw Failure{"at least one --iface is required"};
  return o;
}

void reuse_pinned(bpf_map* map, const std::string& globals, std::string_view name) {
  std::string path = globals + "/" + std::string(name);
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (fd.get() < 0) fail("open pinned map " + path, errno);
  // reuse_fd duplicates the fd and takes the map's real type and sizes from the kernel.
  if (int err = bpf_map__reuse_fd(map, fd.get())) fail("reuse " + path, err);
}

void install(bpf_map* map, __u32 index, bpf_program* prog) {
  int fd = bpf_program__fd(prog);
  if (int err = bpf_map_update_elem(bpf_map__fd(map), &index, &fd, BPF_ANY))
    fail(std::string("install ") + bpf_program__name(prog) + " at index " + std::to_string(index) +
             " of " + bpf_map__name(map),
         errno ? errno : err);
}

// One clsact qdisc per interface (kept if it exists), then one direct-action filter per hook.
void attach(const std::string& iface, bpf_program* from_wep, bpf_program* to_wep) {
  unsigned ifindex = if_nametoindex(iface.c_str());
  if (!ifindex) fail("interface " + iface, errno);
  LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = static_cast<int>(ifindex),
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  int err = bpf_tc_hook_create(&tc_hook);
  if (err && err != -EEXIST) fail("clsact qdisc on " + iface, err);
  for (auto [hook, prog] :
       {std::pair{BPF_TC_INGRESS, from_wep}, std::pair{BPF_TC_EGRESS, to_wep}}) {
    tc_hook.attach_point = hook;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE,
                .handle = 1, .priority = 1);
    if ((err = bpf_tc_attach(&tc_hook, &opts)))
      fail(std::string("attach ") + bpf_program__name(prog) + " to " + iface, err);
  }
}

__u32 prog_id(bpf_program* prog) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) ? 0 : info.id;
}

int run(const Options& o) {
  const VersionMaps& v = *o.maps;
  Skeleton skel(calico_tc__open());
  if (!skel) fail("open the BPF skeleton", errno);
  for (int hook = 0; hook < 2; ++hook) {
    skel->rodata->idx_allowed[hook] = v.allowed[hook];
    skel->rodata->idx_drop[hook] = v.drop[hook];
  }
  skel->rodata->host_ip = o.host_ip.s_addr;
  auto& m = skel->maps;
  const std::pair<bpf_map*, std::string_view> pins[] = {
      {m.state, v.state},
      {m.iface, "cali_iface4"},
      {m.routes, "cali_v4_routes"},
      {m.ct, v.ct},
      {m.nat_fe, "cali_v4_nat_fe3"},
      {m.nat_be, "cali_v4_nat_be"},
      {m.counters, v.counters},
      {m.rule_ctrs, "cali_rule_ctrs2"},
      {m.progs_ing, v.progs_ing},
      {m.progs_egr, v.progs_egr},
      {m.jump_ing, v.jump_ing},
      {m.jump_egr, v.jump_egr},
  };
  for (const auto& [map, name] : pins) reuse_pinned(map, o.globals, name);
  if (int err = calico_tc__load(skel.get())) fail("load the tc programs (verifier log above)", err);

  auto& p = skel->progs;
  install(m.progs_ing, v.allowed[0], p.calico_allow_in);
  install(m.progs_ing, v.drop[0], p.calico_drop_in);
  install(m.progs_egr, v.allowed[1], p.calico_allow_eg);
  install(m.progs_egr, v.drop[1], p.calico_drop_eg);
  for (const auto& iface : o.ifaces) attach(iface, p.calico_from_wep, p.calico_to_wep);

  std::printf(
      "{\"version\": \"%s\", \"progs\": {\"from_wep\": %u, \"to_wep\": %u, \"allowed_ingress\": "
      "%u, "
      "\"drop_ingress\": %u, \"allowed_egress\": %u, \"drop_egress\": %u}, "
      "\"static_index\": {\"allowed\": [%u, %u], \"drop\": [%u, %u]}, \"ifaces\": [",
      std::string(v.version).c_str(), prog_id(p.calico_from_wep), prog_id(p.calico_to_wep),
      prog_id(p.calico_allow_in), prog_id(p.calico_drop_in), prog_id(p.calico_allow_eg),
      prog_id(p.calico_drop_eg), v.allowed[0], v.allowed[1], v.drop[0], v.drop[1]);
  for (size_t i = 0; i < o.ifaces.size(); ++i)
    std::printf("%s\"%s\"", i ? ", " : "", o.ifaces[i].c_str());
  std::printf("]}\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const Failure& f) {
    std::fprintf(stderr, "dpl-ebpf-attach: %s\n", f.what.c_str());
    return 1;
  }
}
