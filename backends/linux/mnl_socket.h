// A libmnl netlink socket that closes itself, and the one way a failed netlink call becomes an
// Error (shared by the nfnetlink, rtnetlink and libnftables readers).
#pragma once

#include <string>

#include <libmnl/libmnl.h>

#include "core/result.h"

namespace dpi::os {

class MnlSocket {
 public:
  MnlSocket() = default;
  MnlSocket(const MnlSocket&) = delete;
  MnlSocket& operator=(const MnlSocket&) = delete;
  ~MnlSocket() {
    if (nl_) mnl_socket_close(nl_);
  }
  // Opens and binds a socket on bus (NETLINK_ROUTE, NETLINK_NETFILTER); 0 or an errno value.
  int open(int bus);
  mnl_socket* get() const { return nl_; }
  unsigned portid() const { return mnl_socket_get_portid(nl_); }

 private:
  mnl_socket* nl_ = nullptr;
};

// "<what>: <strerror>"; EPERM and EACCES are ErrorCode::permission with what to do about it.
Error netlink_errno_error(int err, const std::string& what);

}  // namespace dpi::os
