#include "backends/linux/nflog.h"

#include <algorithm>
#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <sys/socket.h>

#include <fmt/format.h>
// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>

#include "backends/linux/mnl_socket.h"
#include "core/packet.h"

namespace dpi::os {

namespace {

constexpr uint16_t kPacketMsg = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET;
constexpr uint16_t kConfigMsg = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;

int collect_attr(const nlattr* a, void* data) {
  auto* tb = static_cast<const nlattr**>(data);
  const uint16_t type = mnl_attr_get_type(a);
  if (type <= NFULA_MAX) tb[type] = a;
  return MNL_CB_OK;
}

uint32_t be32_attr(const nlattr* a) {
  uint32_t v = 0;
  if (mnl_attr_get_payload_len(a) >= sizeof(v)) std::memcpy(&v, mnl_attr_get_payload(a), sizeof(v));
  return ntohl(v);
}

// Receives one datagram into buf: the bytes in buf, or -1 (errno). A datagram longer than buf
// is cut: its complete messages are read, the cut-off ones are lost and the group's next
// sequence number counts them (MSG_TRUNC makes netlink return the real length, which tells).
ssize_t recv_datagram(int fd, std::vector<char>& buf, int flags) {
  const ssize_t n = recv(fd, buf.data(), buf.size(), flags | MSG_TRUNC);
  return std::min(n, static_cast<ssize_t>(buf.size()));
}

// A datagram: one message of up to kNflogCopyRange packet bytes, or the default batches of a
// group bound a moment before its mode is set.
constexpr std::size_t kRecvBuffer = std::size_t{64} << 10;

class NflogSource final : public WatchSource {
 public:
  std::string_view name() const override { return "nflog"; }
  int fd() const override { return mnl_socket_get_fd(sock_.get()); }
  Status read(std::vector<WatchEvent>& out) override;
  uint64_t lost() const override { return loss_.total(); }

  // Decodes a packet message into out, counting sequence gaps.
  void take(const nlmsghdr* nlh, std::vector<WatchEvent>& out);

  MnlSocket sock_;
  std::vector<WatchEvent> pending_;  // packets that arrived while the groups were being bound
  uint32_t seq_ = 0;

 private:
  NflogLoss loss_;
  std::vector<char> buf_ = std::vector<char>(kRecvBuffer);
};

void NflogSource::take(const nlmsghdr* nlh, std::vector<WatchEvent>& out) {
  auto p = decode_nflog_message(nlh, nlh->nlmsg_len);
  if (!p) return;  // not a packet message
  // The per-instance sequence number counts every packet the group logged: a gap is packets
  // the kernel could not queue to this socket.
  if (p->seq && p->event.group) loss_.packet(*p->event.group, *p->seq);
  out.push_back(std::move(p->event));
}

struct ReadCtx {
  NflogSource* src;
  std::vector<WatchEvent>* out;
};

int nflog_on_message(const nlmsghdr* nlh, void* data) {
  auto* c = static_cast<ReadCtx*>(data);
  if (nlh->nlmsg_type == kPacketMsg) c->src->take(nlh, *c->out);
  return MNL_CB_OK;
}

Status NflogSource::read(std::vector<WatchEvent>& out) {
  if (!pending_.empty()) {
    for (auto& e : pending_) out.push_back(std::move(e));
    pending_.clear();
  }
  for (;;) {
    ssize_t n = recv_datagram(fd(), buf_, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Ok{};
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        // The socket's buffer overflowed: the kernel dropped messages (the sequence numbers
        // count how many once the next one arrives); at least one.
        loss_.overflow();
        continue;
      }
      return netlink_errno_error(errno, "reading NFLOG messages");
    }
    ReadCtx c{this, &out};
    mnl_cb_run(buf_.data(), static_cast<size_t>(n), 0, 0, nflog_on_message, &c);
  }
}

// Sends one NFULNL_MSG_CONFIG for `group` and waits for its acknowledgement.
Status configure(NflogSource& s, int group, const std::function<void(nlmsghdr*)>& attrs,
                 const std::string& what) {
  // Packets logged while the groups are bound arrive here too (pending_), in the kernel's
  // default mode (whole packets, batched) until the mode is set.
  std::vector<char> buf(kRecvBuffer);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = kConfigMsg;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = ++s.seq_;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(static_cast<uint16_t>(group));
  attrs(nlh);
  if (mnl_socket_sendto(s.sock_.get(), nlh, nlh->nlmsg_len) < 0)
    return netlink_errno_error(errno, what);
  for (;;) {
    ssize_t n = recv_datagram(s.fd(), buf, 0);
    if (n < 0) {
      if (errno == ENOBUFS || errno == EINTR) continue;
      return netlink_errno_error(errno, what);
    }
    ReadCtx c{&s, &s.pending_};
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), s.seq_, s.sock_.portid(),
                       nflog_on_message, &c);
    if (r == MNL_CB_ERROR) {
      if (errno == EBUSY)
        return make_error(ErrorCode::system,
                          fmt::format("{}: another process already listens to NFLOG group {} in "
                                      "this namespace (Felix's flow-log collector, ulogd?); the "
                                      "kernel gives a group to one listener only",
                                      what, group));
      return netlink_errno_error(errno, what);
    }
    if (r == MNL_CB_STOP) return Ok{};
  }
}

}  // namespace

void NflogLoss::packet(int group, uint32_t seq) {
  auto [it, fresh] = next_seq_.try_emplace(group, seq);
  if (!fresh && seq > it->second) {
    const uint64_t gap = seq - it->second;
    gaps_ += gap;
    // The overflow's provisional losses are among these.
    unconfirmed_ = unconfirmed_ > gap ? unconfirmed_ - gap : 0;
  }
  it->second = seq + 1;
}

Result<NflogPacket> decode_nflog_message(const void* msg, std::size_t len) {
  const auto* nlh = static_cast<const nlmsghdr*>(msg);
  if (len < sizeof(nlmsghdr) || !mnl_nlmsg_ok(nlh, static_cast<int>(len)))
    return make_error(ErrorCode::bad_input, "truncated netlink message");
  if (nlh->nlmsg_type != kPacketMsg)
    return make_error(ErrorCode::bad_input, "not an nfnetlink_log packet message");
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg))
    return make_error(ErrorCode::bad_input, "nfnetlink_log message without its header");
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(nlh));
  const nlattr* tb[NFULA_MAX + 1] = {};
  if (mnl_attr_parse(nlh, sizeof(nfgenmsg), collect_attr, tb) < 0)
    return make_error(ErrorCode::bad_input, "malformed nfnetlink_log attributes");
  NflogPacket p;
  WatchEvent& e = p.event;
  e.source = "nflog";
  e.time = std::chrono::system_clock::now();
  e.group = ntohs(nfg->res_id);
  if (const nlattr* a = tb[NFULA_PREFIX]) {
    const char* s = static_cast<const char*>(mnl_attr_get_payload(a));
    e.prefix.assign(s, strnlen(s, mnl_attr_get_payload_len(a)));
  }
  if (tb[NFULA_IFINDEX_INDEV]) e.in_ifindex = static_cast<int>(be32_attr(tb[NFULA_IFINDEX_INDEV]));
  if (tb[NFULA_IFINDEX_OUTDEV])
    e.out_ifindex = static_cast<int>(be32_attr(tb[NFULA_IFINDEX_OUTDEV]));
  if (tb[NFULA_SEQ]) p.seq = be32_attr(tb[NFULA_SEQ]);
  if (const nlattr* a = tb[NFULA_PAYLOAD]) {
    auto flow = decode_ip_packet(static_cast<const uint8_t*>(mnl_attr_get_payload(a)),
                                 mnl_attr_get_payload_len(a));
    if (flow)
      e.flow = std::move(*flow);
    else
      e.undecoded = flow.error().message;
  } else {
    e.undecoded = "the log message carries no packet";
  }
  return p;
}

Result<std::unique_ptr<WatchSource>> open_nflog_source(const std::vector<int>& groups) {
  auto s = std::make_unique<NflogSource>();
  if (int err = s->sock_.open(NETLINK_NETFILTER))
    return netlink_errno_error(err, "nfnetlink_log socket");
  // A larger receive buffer rides out bursts; the kernel caps it at net.core.rmem_max.
  int rcvbuf = 4 << 20;
  (void)setsockopt(s->fd(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  for (int g : groups) {
    const std::string what = fmt::format("subscribing to NFLOG group {}", g);
    if (auto st = configure(
            *s, g,
            [](nlmsghdr* nlh) {
              nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
              mnl_attr_put(nlh, NFULA_CFG_CMD, sizeof(cmd), &cmd);
            },
            what);
        !st)
      return st.error();
    if (auto st = configure(
            *s, g,
            [](nlmsghdr* nlh) {
              // The packet's headers (as far as the rule's snaplen allows); each one sent at
              // once (a queue threshold of 1) with its sequence number, so losses can be counted.
              nfulnl_msg_config_mode mode{};
              mode.copy_mode = NFULNL_COPY_PACKET;
              mode.copy_range = htonl(kNflogCopyRange);
              mnl_attr_put(nlh, NFULA_CFG_MODE, sizeof(mode), &mode);
              mnl_attr_put_u32(nlh, NFULA_CFG_QTHRESH, htonl(1));
              mnl_attr_put_u16(nlh, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
            },
            what);
        !st)
      return st.error();
  }
  return std::unique_ptr<WatchSource>(std::move(s));
}

}  // namespace dpi::os
