#include "backends/linux/mnl_socket.h"

#include <cerrno>
#include <cstring>

namespace dpi::os {

int MnlSocket::open(int bus) {
  nl_ = mnl_socket_open(bus);
  if (!nl_) return errno;
  if (mnl_socket_bind(nl_, 0, MNL_SOCKET_AUTOPID) < 0) return errno;
  return 0;
}

Error netlink_errno_error(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  if (err == EPERM || err == EACCES)
    return make_error(ErrorCode::permission,
                      msg + "; run as root or with CAP_NET_ADMIN, or pass --ruleset FILE");
  return make_error(ErrorCode::system, msg);
}

}  // namespace dpi::os
