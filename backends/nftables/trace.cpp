#include "backends/nftables/trace.h"

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <memory>
#include <poll.h>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <libnftnl/trace.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>

#include "backends/linux/ifname.h"
#include "backends/linux/mnl_socket.h"
#include "backends/nftables/xt/xt_payloads.h"

namespace dpi::nft {

namespace {

using Clock = std::chrono::steady_clock;

// After the first event, the packet is done when nothing more comes for this long: it left the
// last hook (events arrive within microseconds of each other while it is inside netfilter).
constexpr std::chrono::milliseconds kQuiet{500};

struct CtxFree {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};
struct TraceFree {
  void operator()(nftnl_trace* t) const { nftnl_trace_free(t); }
};

std::string family_name(uint32_t nfproto) {
  std::string name = nft_family_name(static_cast<int>(nfproto));
  return name.empty() ? fmt::format("family {}", nfproto) : name;
}

std::string verdict_text(uint32_t code) {
  switch (static_cast<int32_t>(code)) {
    case NF_DROP: return "drop";
    case NF_ACCEPT: return "accept";
    case NF_STOLEN: return "stolen";
    case NF_QUEUE: return "queue";
    case NF_REPEAT: return "repeat";
    case NFT_CONTINUE: return "continue";
    case NFT_BREAK: return "break";
    case NFT_JUMP: return "jump";
    case NFT_GOTO: return "goto";
    case NFT_RETURN: return "return";
    default:
      // NF_QUEUE with a queue number and NF_DROP with an errno are encoded in the upper bits.
      if ((code & NF_VERDICT_MASK) == NF_QUEUE) return "queue";
      if ((code & NF_VERDICT_MASK) == NF_DROP) return "drop";
      return fmt::format("verdict {}", code);
  }
}

std::string kind_text(uint32_t type) {
  switch (type) {
    case NFT_TRACETYPE_RULE: return "rule";
    case NFT_TRACETYPE_RETURN: return "return";
    case NFT_TRACETYPE_POLICY: return "policy";
    default: return fmt::format("type {}", type);
  }
}

std::string ifname(const nftnl_trace* t, uint16_t attr) {
  if (!nftnl_trace_is_set(t, attr)) return "";
  return os::interface_name(nftnl_trace_get_u32(t, attr));
}

struct Collector {
  std::string own_table;
  std::optional<uint32_t> id;
  KernelPath* path = nullptr;
  bool dropped = false;
};

int on_event(const nlmsghdr* nlh, void* data) {
  auto* c = static_cast<Collector*>(data);
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_TRACE)) return MNL_CB_OK;
  std::unique_ptr<nftnl_trace, TraceFree> t(nftnl_trace_alloc());
  if (!t || nftnl_trace_nlmsg_parse(nlh, t.get()) < 0) return MNL_CB_OK;
  const char* table = nftnl_trace_is_set(t.get(), NFTNL_TRACE_TABLE)
                          ? nftnl_trace_get_str(t.get(), NFTNL_TRACE_TABLE)
                          : "";
  // Our own chains set the trace flag; their events are not the dataplane's.
  if (c->own_table == table) return MNL_CB_OK;
  const uint32_t id = nftnl_trace_get_u32(t.get(), NFTNL_TRACE_ID);
  if (c->id && *c->id != id) return MNL_CB_OK;  // another packet of the flow
  c->id = id;
  TraceEvent e;
  e.kind = kind_text(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_TYPE));
  e.at.family = family_name(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_FAMILY));
  e.at.table = table;
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_CHAIN))
    e.at.chain = nftnl_trace_get_str(t.get(), NFTNL_TRACE_CHAIN);
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_RULE_HANDLE))
    e.at.handle = nftnl_trace_get_u64(t.get(), NFTNL_TRACE_RULE_HANDLE);
  if (e.kind == "policy" && nftnl_trace_is_set(t.get(), NFTNL_TRACE_POLICY))
    e.verdict = verdict_text(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_POLICY));
  else if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_VERDICT))
    e.verdict = verdict_text(nftnl_trace_get_u32(t.get(), NFTNL_TRACE_VERDICT));
  if (nftnl_trace_is_set(t.get(), NFTNL_TRACE_JUMP_TARGET))
    e.target = nftnl_trace_get_str(t.get(), NFTNL_TRACE_JUMP_TARGET);
  e.iif = ifname(t.get(), NFTNL_TRACE_IIF);
  e.oif = ifname(t.get(), NFTNL_TRACE_OIF);
  if (e.verdict == "drop") c->dropped = true;
  c->path->events.push_back(std::move(e));
  return MNL_CB_OK;
}

std::string addr_match(const TraceRequest& t) {
  const char* ip = t.flow.dst.is_v6() ? "ip6" : "ip";
  return fmt::format("{} saddr {} {} daddr {}", ip, t.flow.src.str(), ip, t.flow.dst.str());
}

}  // namespace

void conclude_path(KernelPath& k, bool events_lost) {
  k.seen = !k.events.empty();
  k.verdict = Verdict::indeterminate;
  k.deciding.reset();
  if (!k.seen) return;
  if (events_lost) {
    k.notes.push_back(
        "some trace events were lost (the socket's buffer overflowed): the path is incomplete, "
        "so the kernel's verdict is not given");
    return;
  }
  std::optional<std::size_t> last_accept;
  for (std::size_t i = 0; i < k.events.size(); ++i) {
    const std::string& v = k.events[i].verdict;
    if (v == "drop") {
      k.verdict = Verdict::deny;
      k.deciding = i;
      return;
    }
    if (v == "accept") {
      last_accept = i;
    } else if (!v.empty() && v != "continue" && v != "jump" && v != "goto" && v != "return" &&
               v != "break") {
      // queue, stolen, repeat, an unknown code: the packet left netfilter's verdicts here, and
      // what happened to it next is not in the trace.
      const auto& at = k.events[i].at;
      k.notes.push_back(fmt::format(
          "the kernel answered \"{}\" in {} {} {}{}: dpinspect does not follow a packet past it, "
          "so the kernel's verdict is not given",
          v, at.family, at.table, at.chain,
          at.handle ? fmt::format(" handle {}", *at.handle) : ""));
      k.deciding = i;
      return;
    }
  }
  k.verdict = Verdict::allow;
  k.deciding = last_accept;
}

std::string trace_table_text(const std::string& name, const TraceRequest& t) {
  std::string match = addr_match(t);
  const std::string proto = l4proto_name(t.flow.l4proto);
  if (t.flow.has_ports()) {
    if (t.match_sport && t.flow.sport) match += fmt::format(" {} sport {}", proto, *t.flow.sport);
    if (t.flow.dport) match += fmt::format(" {} dport {}", proto, *t.flow.dport);
  } else if (t.flow.is_icmp() && t.match_icmp && t.flow.icmp_type) {
    const char* icmp = t.flow.l4proto == 58 ? "icmpv6" : "icmp";
    match += fmt::format(" {} type {}", icmp, *t.flow.icmp_type);
    if (t.flow.icmp_code) match += fmt::format(" {} code {}", icmp, *t.flow.icmp_code);
  } else {
    match += fmt::format(" meta l4proto {}", t.flow.l4proto);
  }
  const char* family = t.flow.dst.is_v6() ? "ip6" : "ip";
  // INT_MIN: before every other chain of the hook (conntrack, Calico's raw chains), so that the
  // whole path is traced.
  return fmt::format(
      "table {0} {1} {{\n"
      "  flags owner\n"
      "  chain prerouting {{ type filter hook prerouting priority {2}; policy accept; {3} meta "
      "nftrace set 1; }}\n"
      "  chain output {{ type filter hook output priority {2}; policy accept; {3} meta nftrace "
      "set 1; }}\n"
      "}}\n",
      family, name, INT_MIN, match);
}

Result<KernelPath> trace_here(const TraceRequest& t) {
  os::MnlSocket events;
  if (int err = events.open(NETLINK_NETFILTER))
    return os::netlink_errno_error(err, "nfnetlink socket");
  int group = NFNLGRP_NFTRACE;
  if (mnl_socket_setsockopt(events.get(), NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
    return os::netlink_errno_error(errno, "subscribing to nftables trace events");

  // The context's netlink socket owns the table; it stays open until ctx is freed (or the
  // process dies), and the kernel then deletes the table.
  std::unique_ptr<nft_ctx, CtxFree> ctx(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!ctx) return make_error(ErrorCode::system, "libnftables: nft_ctx_new failed");
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0)
    return make_error(ErrorCode::system, "libnftables: cannot buffer output");
  const std::string name = fmt::format("dpinspect_trace_{}", getpid());
  const std::string text = trace_table_text(name, t);
  errno = 0;
  if (nft_run_cmd_from_buffer(ctx.get(), text.c_str()) != 0) {
    int err = errno;
    const char* ebuf = nft_ctx_get_error_buffer(ctx.get());
    std::string detail = ebuf ? ebuf : "";
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' ')) detail.pop_back();
    bool denied = err == EPERM || detail.find("Operation not permitted") != std::string::npos;
    std::string msg = "adding the trace table: " + (detail.empty() ? std::strerror(err) : detail);
    if (denied)
      return make_error(ErrorCode::permission,
                        msg + "; trace adds a temporary table: run as root or with CAP_NET_ADMIN");
    return make_error(ErrorCode::system, msg);
  }

  KernelPath path;
  Collector c{name, std::nullopt, &path};
  if (t.on_ready) t.on_ready(fmt::format("table {} {}", t.flow.dst.is_v6() ? "ip6" : "ip", name));
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE * 8);
  bool lost = false;
  const auto deadline = Clock::now() + t.timeout;
  auto quiet_until = deadline;
  for (;;) {
    const auto now = Clock::now();
    const auto until = std::min(deadline, quiet_until);
    if (now >= until || c.dropped) break;
    pollfd p{mnl_socket_get_fd(events.get()), POLLIN, 0};
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    int r = poll(&p, 1, static_cast<int>(std::max<int64_t>(ms, 1)));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return os::netlink_errno_error(errno, "waiting for trace events");
    if (r == 0) continue;
    ssize_t n = mnl_socket_recvfrom(events.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == ENOBUFS) {
        lost = true;
        continue;
      }
      return os::netlink_errno_error(errno, "reading trace events");
    }
    const std::size_t had = path.events.size();
    mnl_cb_run(buf.data(), static_cast<size_t>(n), 0, 0, on_event, &c);
    if (path.events.size() > had) quiet_until = Clock::now() + kQuiet;
  }
  conclude_path(path, lost);
  return path;
}

}  // namespace dpi::nft
