// `watch --source nflog`: the packets netfilter's log rules (Calico's flow-log NFLOG rules) send
// to nfnetlink_log groups, read over libmnl in one network namespace.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "core/result.h"
#include "core/watch.h"

namespace dpi::os {

// One decoded nfnetlink_log packet message (NFULNL_MSG_PACKET), exposed for tests: the group,
// the prefix, the interfaces, the sequence number (with NFULNL_CFG_F_SEQ) and the packet's flow
// from its payload. Not a packet message, or a malformed one: bad_input.
struct NflogPacket {
  WatchEvent event;
  std::optional<uint32_t> seq;
};
Result<NflogPacket> decode_nflog_message(const void* msg, std::size_t len);

// Counts the packets an NFLOG subscription lost. A full socket buffer (ENOBUFS) says at least one
// message was dropped; the next gap in a group's sequence numbers says how many, and includes
// those: the provisional one is not counted again. Exposed for tests.
class NflogLoss {
 public:
  void overflow() { ++unconfirmed_; }
  // A packet of `group` with sequence number `seq` (NFULNL_CFG_F_SEQ, per group).
  void packet(int group, uint32_t seq);
  uint64_t total() const { return gaps_ + unconfirmed_; }

 private:
  std::map<int, uint32_t> next_seq_;  // per group: the sequence number expected next
  uint64_t gaps_ = 0, unconfirmed_ = 0;
};

// The bytes of each packet an NFLOG message carries: the headers the tuple needs (IPv6 with
// extension headers, then the ports), so that messages stay small. Calico's own log rules cap
// it lower (snaplen 80).
inline constexpr uint32_t kNflogCopyRange = 256;

// Subscribes to `groups` in the calling thread's network namespace. The socket stays in that
// namespace for its whole life, so the source may be read from any thread afterwards. Needs
// CAP_NET_ADMIN (ErrorCode::permission); a group another process already listens to (Felix's
// flow-log collector, ulogd) is refused by the kernel (ErrorCode::system, saying so).
Result<std::unique_ptr<WatchSource>> open_nflog_source(const std::vector<int>& groups);

}  // namespace dpi::os
