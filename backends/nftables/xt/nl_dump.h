// One nfnetlink dump request over libmnl, shared by the xt payload and ipset readers.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include "core/result.h"

namespace dpi::nft::xt {

struct NlRequest {
  uint16_t subsys_msg = 0;  // (subsystem << 8) | message type
  uint8_t family = 0;       // nfgenmsg.nfgen_family
  // Appends attributes after the nfgenmsg header (may be empty).
  std::function<void(nlmsghdr*)> add_attrs;
  std::string what;  // "listing nftables rules", for error messages
};

// Sends the request with NLM_F_DUMP and calls on_msg for every reply message. A dump the kernel
// marks as interrupted (NLM_F_DUMP_INTR) is reported as ErrorCode::system with "interrupted" in
// the message after `retries` fresh attempts; on_reset is called before each new attempt so the
// caller can drop what it collected. *err_no (if given) receives the errno of a failure.
Status nl_dump(const NlRequest& req, const std::function<int(const nlmsghdr*)>& on_msg,
               const std::function<void()>& on_reset, int retries = 5, int* err_no = nullptr);

// Calls on_msg for every message of buf, a dump's reply bytes as the kernel sent them (saved for a
// test or a fuzz input): no socket, no sequence or port check. Stops at the first message that
// does not fit the buffer (cut short) or is a netlink error, with an error naming its byte
// offset. buf must be 4-byte aligned, like a receive buffer.
Status nl_parse(const void* buf, std::size_t len, const std::function<int(const nlmsghdr*)>& on_msg,
                const std::string& what);

// When set, nl_dump passes every reply message it receives, whole, to this hook before parsing
// it (tests/fuzz/capture_netlink saves real dumps this way for the fuzz seed corpus).
extern std::function<void(const nlmsghdr*)> g_nl_capture;

// Calls fn for each attribute nested in nest (libmnl's iteration macro is C-only).
void for_each_nested(const nlattr* nest, const std::function<void(const nlattr*)>& fn);

// Attribute table for one nesting level: tb[type] = attr (the last one wins).
template <std::size_t N>
struct Attrs {
  const nlattr* tb[N + 1] = {};
  static int cb(const nlattr* a, void* data) {
    auto* self = static_cast<Attrs*>(data);
    uint16_t t = mnl_attr_get_type(a);
    if (t <= N) self->tb[t] = a;
    return MNL_CB_OK;
  }
  const nlattr* operator[](std::size_t i) const { return tb[i]; }
};

// A NUL-terminated string attribute, cut at its payload length.
std::string attr_str(const nlattr* a);

}  // namespace dpi::nft::xt
