#include "backends/nftables/live_ruleset.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <sys/socket.h>
#include <vector>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>

#include "backends/linux/mnl_socket.h"

namespace dpi::nft {

namespace {

constexpr const char* kPermissionHint =
    "; run as root or with CAP_NET_ADMIN, or pass --ruleset FILE";

class NftCtx {
 public:
  NftCtx() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {}
  NftCtx(const NftCtx&) = delete;
  NftCtx& operator=(const NftCtx&) = delete;
  ~NftCtx() {
    if (ctx_) nft_ctx_free(ctx_);
  }
  nft_ctx* get() const { return ctx_; }

 private:
  nft_ctx* ctx_;
};

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int on_gen_attr(const nlattr* attr, void* data) {
  if (mnl_attr_get_type(attr) == NFTA_GEN_ID && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
    *static_cast<std::optional<uint32_t>*>(data) = ntohl(mnl_attr_get_u32(attr));
  return MNL_CB_OK;
}

int on_gen(const nlmsghdr* nlh, void* data) {
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) return MNL_CB_OK;
  mnl_attr_parse(nlh, sizeof(nfgenmsg), on_gen_attr, data);
  return MNL_CB_OK;
}

}  // namespace

Result<std::string> list_ruleset_json() {
  // Ask nf_tables directly first: a missing capability then comes back as errno instead of
  // being guessed from libnftables' text, and libnftables does not get to print its own
  // "you must be root" line to stderr.
  if (auto gen = ruleset_generation(); !gen.ok() && gen.error().code == ErrorCode::permission)
    return gen.error();

  NftCtx ctx;
  if (!ctx.get()) return make_error(ErrorCode::system, "libnftables: nft_ctx_new failed");
  // Flags set: NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE, i.e. `nft -j -a`. Handles let a
  // verdict name the exact rule. No NFT_CTX_OUTPUT_NUMERIC_*: protocols, priorities and symbols
  // stay symbolic ("tcp", "filter", "established"), as users see them in `nft list ruleset`.
  nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE);
  if (nft_ctx_buffer_output(ctx.get()) != 0 || nft_ctx_buffer_error(ctx.get()) != 0)
    return make_error(ErrorCode::system, "libnftables: cannot buffer output");

  errno = 0;
  int rc = nft_run_cmd_from_buffer(ctx.get(), "list ruleset");
  int err = errno;
  if (rc != 0) {
    const char* ebuf = nft_ctx_get_error_buffer(ctx.get());
    std::string detail = trim(ebuf ? ebuf : "");
    if (detail.empty()) detail = err ? std::strerror(err) : "unknown error";
    // libnftables reports failures as text only; errno is usually, but not reliably, left set.
    bool denied = err == EPERM || err == EACCES ||
                  detail.find("Operation not permitted") != std::string::npos ||
                  detail.find("Permission denied") != std::string::npos;
    std::string msg = "nft list ruleset: " + detail;
    if (denied) return make_error(ErrorCode::permission, msg + kPermissionHint);
    return make_error(ErrorCode::system, msg);
  }
  const char* out = nft_ctx_get_output_buffer(ctx.get());
  return std::string(out ? out : "");
}

Result<uint32_t> ruleset_generation() {
  os::MnlSocket sock;
  if (int err = sock.open(NETLINK_NETFILTER))
    return os::netlink_errno_error(err, "nfnetlink socket");

  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  nlh->nlmsg_seq = static_cast<uint32_t>(time(nullptr));
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  const uint32_t seq = nlh->nlmsg_seq;
  if (mnl_socket_sendto(sock.get(), nlh, nlh->nlmsg_len) < 0)
    return os::netlink_errno_error(errno, "NFT_MSG_GETGEN request");

  // One reply: NFT_MSG_NEWGEN, or an NLMSG_ERROR that mnl_cb_run turns into errno.
  std::optional<uint32_t> gen;
  ssize_t n = mnl_socket_recvfrom(sock.get(), buf.data(), buf.size());
  if (n < 0) return os::netlink_errno_error(errno, "NFT_MSG_GETGEN reply");
  if (mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, sock.portid(), on_gen, &gen) < 0)
    return os::netlink_errno_error(errno, "NFT_MSG_GETGEN");
  if (!gen) return make_error(ErrorCode::system, "NFT_MSG_GETGEN: reply without NFTA_GEN_ID");
  return *gen;
}

}  // namespace dpi::nft
