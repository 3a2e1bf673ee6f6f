// `watch --source nflog`: the packets netfilter's log rules (Calico's flow-log NFLOG rules) send
// to nfnetlink_log groups, read over libmnl in one network namespace.
#pragma once

#include <cstddef>
#include <cstdint>
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

// Subscribes to `groups` in the calling thread's network namespace. The socket stays in that
// namespace for its whole life, so the source may be read from any thread afterwards. Needs
// CAP_NET_ADMIN (ErrorCode::permission); a group another process already listens to (Felix's
// flow-log collector, ulogd) is refused by the kernel (ErrorCode::system, saying so).
Result<std::unique_ptr<WatchSource>> open_nflog_source(const std::vector<int>& groups);

}  // namespace dpi::os
