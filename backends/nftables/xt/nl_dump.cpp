#include "backends/nftables/xt/nl_dump.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>

#include <fmt/format.h>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>

#include "backends/linux/mnl_socket.h"

namespace dpi::nft::xt {

namespace {

struct Dispatch {
  const std::function<int(const nlmsghdr*)>* on_msg;
  bool interrupted = false;
};

int dispatch(const nlmsghdr* nlh, void* data) {
  auto* d = static_cast<Dispatch*>(data);
  if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) d->interrupted = true;
  if (g_nl_capture) g_nl_capture(nlh);
  return (*d->on_msg)(nlh);
}

}  // namespace

std::function<void(const nlmsghdr*)> g_nl_capture;

Status nl_parse(const void* buf, std::size_t len, const std::function<int(const nlmsghdr*)>& on_msg,
                const std::string& what) {
  const auto* base = static_cast<const char*>(buf);
  const auto* nlh = static_cast<const nlmsghdr*>(buf);
  int left = static_cast<int>(std::min<std::size_t>(len, INT_MAX));
  // A saved dump must be whole: a message cut short is an error, not a smaller catalog.
  while (left > 0) {
    auto at = reinterpret_cast<const char*>(nlh) - base;
    // Not mnl_nlmsg_ok: it casts nlmsg_len to int, so a length of 2^31 or more passes it.
    if (left < static_cast<int>(sizeof(nlmsghdr)) || nlh->nlmsg_len < sizeof(nlmsghdr) ||
        nlh->nlmsg_len > static_cast<unsigned>(left))
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: the message at byte {} is cut short", what, at));
    if (nlh->nlmsg_type == NLMSG_DONE) return Ok{};
    if (nlh->nlmsg_type == NLMSG_ERROR)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: the message at byte {} is a netlink error", what, at));
    if (nlh->nlmsg_type >= NLMSG_MIN_TYPE && on_msg(nlh) < MNL_CB_OK)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: the message at byte {} was not understood", what, at));
    nlh = mnl_nlmsg_next(nlh, &left);
  }
  return Ok{};
}

Status nl_dump(const NlRequest& req, const std::function<int(const nlmsghdr*)>& on_msg,
               const std::function<void()>& on_reset, int retries, int* err_no) {
  auto fail = [&](int e, const std::string& what) {
    if (err_no) *err_no = e;
    return os::netlink_errno_error(e, what);
  };
  std::vector<char> buf(1 << 16);
  for (int attempt = 0; attempt <= retries; ++attempt) {
    if (attempt > 0) on_reset();
    os::MnlSocket sock;
    if (int e = sock.open(NETLINK_NETFILTER))
      return fail(e, "opening a netfilter netlink socket for " + req.what);
    nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
    nlh->nlmsg_type = req.subsys_msg;
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    uint32_t seq = static_cast<uint32_t>(time(nullptr)) + static_cast<uint32_t>(attempt);
    nlh->nlmsg_seq = seq;
    auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    nfg->nfgen_family = req.family;
    nfg->version = NFNETLINK_V0;
    nfg->res_id = 0;
    if (req.add_attrs) req.add_attrs(nlh);
    if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
      return fail(errno, "sending the request for " + req.what);
    Dispatch d{&on_msg};
    unsigned portid = sock.portid();
    int rc = MNL_CB_OK;
    while (rc > MNL_CB_STOP) {
      ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
      if (n < 0) {
        int e = errno;
        if (e == ENOBUFS || e == EINTR) {
          d.interrupted = true;  // messages were lost: start over
          break;
        }
        return fail(e, req.what);
      }
      rc = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid, dispatch, &d);
      if (rc == MNL_CB_ERROR) {
        if (errno == EINTR) {  // the kernel's own "dump interrupted" answer
          d.interrupted = true;
          break;
        }
        if (errno == 0)
          return make_error(ErrorCode::bad_input, req.what + ": a reply was not understood");
        return fail(errno, req.what);
      }
    }
    if (!d.interrupted) return Ok{};
  }
  return make_error(ErrorCode::system, req.what +
                                           ": the dump was interrupted by concurrent changes " +
                                           std::to_string(retries + 1) + " times");
}

void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& fn) {
  const char* base = static_cast<const char*>(mnl_attr_get_payload(nest));
  const char* end = base + mnl_attr_get_payload_len(nest);
  for (auto* a = reinterpret_cast<const nlattr*>(base);
       mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)));
       a = mnl_attr_next(a))
    fn(a);
}

std::string attr_str(const nlattr* a) {
  if (!a) return "";
  const char* p = static_cast<const char*>(mnl_attr_get_payload(a));
  std::size_t len = mnl_attr_get_payload_len(a), n = 0;
  while (n < len && p[n]) ++n;
  return std::string(p, n);
}

}  // namespace dpi::nft::xt
