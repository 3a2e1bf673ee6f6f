#include "tc_node.h"

#include <cerrno>
#include <memory>
#include <net/if.h>
#include <string>
#include <unistd.h>
#include <utility>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "calico_tc.skel.h"
#include "error.h"

namespace dpl {
namespace {

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

void reuse_pinned(bpf_map* map, const std::string& globals, std::string_view name) {
  std::string path = globals + "/" + std::string(name);
  UniqueFd fd(bpf_obj_get(path.c_str()));
  if (fd.get() < 0) fail("open pinned map " + path, errno);
  // reuse_fd duplicates the fd and takes the map's real type and sizes from the kernel.
  if (int err = bpf_map__reuse_fd(map, fd.get())) fail("reuse " + path, err);
}

void install(bpf_map* map, unsigned index, bpf_program* prog) {
  int fd = bpf_program__fd(prog);
  __u32 key = index;
  if (bpf_map_update_elem(bpf_map__fd(map), &key, &fd, BPF_ANY))
    fail(std::string("install ") + bpf_program__name(prog) + " at index " + std::to_string(index) +
             " of " + bpf_map__name(map),
         errno);
}

// One clsact qdisc per interface (kept if it exists), then one direct-action filter per hook.
void attach(const std::string& iface, bpf_program* from_ep, bpf_program* to_ep) {
  unsigned ifindex = if_nametoindex(iface.c_str());
  if (!ifindex) fail("interface " + iface, errno);
  LIBBPF_OPTS(bpf_tc_hook, tc_hook, .ifindex = static_cast<int>(ifindex),
              .attach_point = static_cast<bpf_tc_attach_point>(BPF_TC_INGRESS | BPF_TC_EGRESS));
  int err = bpf_tc_hook_create(&tc_hook);
  if (err && err != -EEXIST) fail("clsact qdisc on " + iface, err);
  for (auto [hook, prog] : {std::pair{BPF_TC_INGRESS, from_ep}, std::pair{BPF_TC_EGRESS, to_ep}}) {
    tc_hook.attach_point = hook;
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = bpf_program__fd(prog), .flags = BPF_TC_F_REPLACE,
                .handle = 1, .priority = 1);
    if ((err = bpf_tc_attach(&tc_hook, &opts)))
      fail(std::string("attach ") + bpf_program__name(prog) + " to " + iface, err);
  }
}

unsigned prog_id(bpf_program* prog) {
  bpf_prog_info info{};
  __u32 len = sizeof(info);
  return bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) ? 0 : info.id;
}

}  // namespace

Attached load_and_attach(const Options& o) {
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
      {m.routes6, "cali_v6_routes"},
      {m.ct6, v.ct6},
      {m.nat_fe, "cali_v4_nat_fe3"},
      {m.nat_be, "cali_v4_nat_be"},
      {m.counters, v.counters},
      {m.rule_ctrs, "cali_rule_ctrs2"},
      {m.fsafes, "cali_v4_fsafes2"},
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
  for (const auto& iface : o.heps) attach(iface, p.calico_from_hep, p.calico_to_hep);
  return Attached{prog_id(p.calico_from_wep),
                  prog_id(p.calico_to_wep),
                  prog_id(p.calico_from_hep),
                  prog_id(p.calico_to_hep),
                  {prog_id(p.calico_allow_in), prog_id(p.calico_allow_eg)},
                  {prog_id(p.calico_drop_in), prog_id(p.calico_drop_eg)}};
}

}  // namespace dpl
