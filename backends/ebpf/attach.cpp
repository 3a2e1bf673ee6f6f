#include "backends/ebpf/attach.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <bpf/bpf.h>
#include <fmt/format.h>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netlink.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>

#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_progs.h"
#include "backends/linux/netns.h"

namespace dpi::ebpf {

namespace {

// Debian 12's kernel headers (6.1) predate TCX (Linux 6.6); the attach types are ABI.
constexpr int kBpfTcxIngress = 46;
constexpr int kBpfTcxEgress = 47;
// Dumps arrive in skbs of up to 32 KiB.
constexpr std::size_t kRecvBuffer = std::size_t{64} * 1024;
constexpr uint32_t kMaxTcxProgs = 64;

Error errno_error(int err, const std::string& what) {
  ErrorCode code = (err == EPERM || err == EACCES) ? ErrorCode::permission : ErrorCode::system;
  return make_error(code, fmt::format("{}: {}", what, std::strerror(err)));
}

using MessageFn = std::function<void(const nlmsghdr*)>;

// One rtnetlink dump: `header` (ifinfomsg, tcmsg) follows the nlmsghdr.
template <class Header>
Status dump(uint16_t type, const Header& header, const char* what, const MessageFn& on_message) {
  Fd sock(socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (!sock.valid()) return errno_error(errno, "netlink socket");
  struct Request {
    nlmsghdr nlh;
    Header body;
  } req{};
  req.nlh.nlmsg_len = NLMSG_LENGTH(sizeof(Header));
  req.nlh.nlmsg_type = type;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = 1;
  req.body = header;
  if (send(sock.get(), &req, req.nlh.nlmsg_len, 0) < 0)
    return errno_error(errno, fmt::format("netlink {} request", what));
  std::vector<char> buf(kRecvBuffer);
  for (;;) {
    ssize_t n = recv(sock.get(), buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_error(errno, fmt::format("netlink {} dump", what));
    }
    auto len = static_cast<unsigned>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf.data()); NLMSG_OK(nlh, len);
         nlh = NLMSG_NEXT(nlh, len)) {
      if (nlh->nlmsg_type == NLMSG_DONE) return Ok{};
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* e = static_cast<const nlmsgerr*>(NLMSG_DATA(nlh));
        if (e->error == 0) return Ok{};
        return errno_error(-e->error, fmt::format("netlink {} dump", what));
      }
      on_message(nlh);
    }
  }
}

// Attributes of a message or a nested attribute, by type (the last of a type wins).
std::vector<const rtattr*> attrs(const rtattr* rta, int len, std::size_t max_type) {
  std::vector<const rtattr*> tb(max_type + 1, nullptr);
  for (; RTA_OK(rta, len); rta = RTA_NEXT(rta, len))
    if (rta->rta_type <= max_type) tb[rta->rta_type] = rta;
  return tb;
}

std::string attr_string(const rtattr* a) {
  if (!a) return "";
  const char* p = static_cast<const char*>(RTA_DATA(a));
  return std::string(p, strnlen(p, RTA_PAYLOAD(a)));
}

uint32_t attr_u32(const rtattr* a) {
  uint32_t v = 0;
  if (a && RTA_PAYLOAD(a) >= sizeof v) std::memcpy(&v, RTA_DATA(a), sizeof v);
  return v;
}

struct Link {
  uint32_t ifindex;
  std::string name;
};

Result<std::vector<Link>> links_with_prefix(const std::string& prefix) {
  std::vector<Link> out;
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  auto st = dump(RTM_GETLINK, ifi, "link", [&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != RTM_NEWLINK) return;
    const auto* m = static_cast<const ifinfomsg*>(NLMSG_DATA(nlh));
    auto tb = attrs(IFLA_RTA(m), static_cast<int>(IFLA_PAYLOAD(nlh)), IFLA_MAX);
    std::string name = attr_string(tb[IFLA_IFNAME]);
    if (name.rfind(prefix, 0) == 0) out.push_back({static_cast<uint32_t>(m->ifi_index), name});
  });
  if (!st) return st.error();
  std::sort(out.begin(), out.end(), [](const Link& a, const Link& b) { return a.name < b.name; });
  return out;
}

// The bpf filters of one clsact direction (TC_H_MIN_INGRESS / TC_H_MIN_EGRESS).
Status tc_filters(const Link& link, const char* hook, uint32_t minor,
                  std::vector<AttachedProg>& out) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = static_cast<int>(link.ifindex);
  t.tcm_parent = TC_H_MAKE(TC_H_CLSACT, minor);
  return dump(RTM_GETTFILTER, t, "tc filter", [&](const nlmsghdr* nlh) {
    if (nlh->nlmsg_type != RTM_NEWTFILTER) return;
    const auto* m = static_cast<const tcmsg*>(NLMSG_DATA(nlh));
    int len = static_cast<int>(nlh->nlmsg_len) - static_cast<int>(NLMSG_LENGTH(sizeof(*m)));
    auto tb = attrs(TCA_RTA(m), len, TCA_MAX);
    if (attr_string(tb[TCA_KIND]) != "bpf" || !tb[TCA_OPTIONS]) return;
    const rtattr* opt = tb[TCA_OPTIONS];
    auto ob = attrs(static_cast<const rtattr*>(RTA_DATA(opt)), static_cast<int>(RTA_PAYLOAD(opt)),
                    TCA_BPF_MAX);
    // The filter chain's head has no program; only entries with an id name one.
    if (!ob[TCA_BPF_ID]) return;
    AttachedProg p;
    p.iface = link.name;
    p.ifindex = link.ifindex;
    p.hook = hook;
    p.mode = "tc";
    p.prog_id = attr_u32(ob[TCA_BPF_ID]);
    p.name = attr_string(ob[TCA_BPF_NAME]);
    p.pref = TC_H_MAJ(m->tcm_info) >> 16;
    out.push_back(std::move(p));
  });
}

// TCX links of one direction; a kernel without TCX (EINVAL) has none.
Status tcx_progs(const Link& link, const char* hook, int attach_type,
                 std::vector<AttachedProg>& out) {
  std::vector<uint32_t> ids(kMaxTcxProgs);
  uint32_t count = kMaxTcxProgs;
  uint32_t flags = 0;
  if (bpf_prog_query(static_cast<int>(link.ifindex), static_cast<bpf_attach_type>(attach_type), 0,
                     &flags, ids.data(), &count) != 0) {
    int err = errno;
    if (err == EINVAL || err == EOPNOTSUPP) return Ok{};
    return errno_error(err, fmt::format("{} tcx {} query", link.name, hook));
  }
  for (uint32_t i = 0; i < std::min(count, kMaxTcxProgs); ++i) {
    AttachedProg p;
    p.iface = link.name;
    p.ifindex = link.ifindex;
    p.hook = hook;
    p.mode = "tcx";
    p.prog_id = ids[i];
    out.push_back(std::move(p));
  }
  return Ok{};
}

Result<Attachments> read_here(const std::string& prefix) {
  Attachments a;
  auto links = links_with_prefix(prefix);
  if (!links) return links.error();
  a.interfaces = links->size();
  for (const Link& l : *links) {
    for (const auto& [hook, minor, tcx] : {std::tuple{"ingress", TC_H_MIN_INGRESS, kBpfTcxIngress},
                                           std::tuple{"egress", TC_H_MIN_EGRESS, kBpfTcxEgress}}) {
      for (const Status& st :
           {tc_filters(l, hook, minor, a.progs), tcx_progs(l, hook, tcx, a.progs)}) {
        if (st) continue;
        if (st.error().code == ErrorCode::permission) return st.error();
        a.notes.push_back(fmt::format("{} {}: {}", l.name, hook, st.error().message));
      }
    }
  }
  // Name and tag from the program itself (the filter's name is the loader's section name).
  for (auto& p : a.progs) {
    auto info = prog_info_by_id(p.prog_id);
    if (!info) {
      a.notes.push_back(
          fmt::format("{} {} prog {}: {}", p.iface, p.hook, p.prog_id, info.error().message));
      continue;
    }
    p.name = info->name;
    p.tag = tag_hex(info->tag);
  }
  return a;
}

}  // namespace

Result<Attachments> read_attachments(const std::string& netns, const std::string& prefix) {
  auto r = os::in_netns(netns, [&] { return read_here(prefix); });
  if (!r) return r.error();
  r->netns = netns;
  return r;
}

nlohmann::json attachments_to_json(const Attachments& a) {
  nlohmann::json progs = nlohmann::json::array();
  for (const auto& p : a.progs)
    progs.push_back({{"iface", p.iface},
                     {"ifindex", p.ifindex},
                     {"hook", p.hook},
                     {"mode", p.mode},
                     {"prog_id", p.prog_id},
                     {"name", p.name},
                     {"tag", p.tag},
                     {"pref", p.pref}});
  return {
      {"netns", a.netns}, {"interfaces", a.interfaces}, {"programs", progs}, {"notes", a.notes}};
}

std::vector<std::string> attachments_text(const Attachments& a) {
  std::vector<std::string> out;
  for (const auto& p : a.progs)
    out.push_back(fmt::format("{} {} {} prog {} {} tag {}", p.iface, p.hook, p.mode, p.prog_id,
                              p.name.empty() ? "?" : p.name, p.tag.empty() ? "?" : p.tag));
  return out;
}

void add_attachments(dpi::Detection& d, const Result<Attachments>& a) {
  nlohmann::json& ebpf = d.details["ebpf"];
  if (!a) {
    ebpf["attached"] = {{"error", a.error().message}};
    d.clues.push_back(
        fmt::format("programs attached to cali* interfaces: not read ({})", a.error().message));
    return;
  }
  ebpf["attached"] = attachments_to_json(*a);
  std::size_t tcx = static_cast<std::size_t>(std::count_if(
      a->progs.begin(), a->progs.end(), [](const AttachedProg& p) { return p.mode == "tcx"; }));
  d.clues.push_back(
      fmt::format("{} programs attached to {} cali* interfaces in netns {} ({} tc "
                  "clsact, {} TCX)",
                  a->progs.size(), a->interfaces, a->netns, a->progs.size() - tcx, tcx));
  for (const auto& note : a->notes) d.clues.push_back(note);
  for (auto& line : attachments_text(*a)) d.text_lines.emplace_back("attached", std::move(line));
}

}  // namespace dpi::ebpf
