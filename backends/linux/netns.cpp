#include "backends/linux/netns.h"

#include <cerrno>
#include <cstring>
#include <exception>
#include <fcntl.h>
#include <sched.h>
#include <system_error>
#include <thread>
#include <unistd.h>

namespace dpi::os {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

Error netns_error(int err, const std::string& path, const char* step) {
  std::string msg = std::string(step) + " network namespace " + path + ": " + std::strerror(err);
  switch (err) {
    case ENOENT: return make_error(ErrorCode::not_found, msg + " (see `ip netns list`)");
    case EPERM:
    case EACCES:
      return make_error(ErrorCode::permission,
                        msg +
                            "; entering a namespace needs CAP_SYS_ADMIN: run as root, or pass "
                            "--ruleset FILE");
    case EINVAL: return make_error(ErrorCode::bad_input, msg + " (not a network namespace file)");
    default: return make_error(ErrorCode::system, msg);
  }
}

}  // namespace

std::string netns_path(const std::string& name_or_path) {
  return name_or_path.find('/') == std::string::npos ? "/run/netns/" + name_or_path : name_or_path;
}

Status detail::run_in_netns(const std::string& name_or_path, const std::function<void()>& body) {
  if (name_or_path.empty()) {
    body();
    return Ok{};
  }
  std::string path = netns_path(name_or_path);
  // Opened here rather than on the worker so a missing namespace costs no thread.
  Fd ns(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (ns.get() < 0) return netns_error(errno, path, "opening");

  int setns_errno = 0;
  std::exception_ptr thrown;
  try {
    // setns(CLONE_NEWNET) only moves the calling thread, so a throwaway thread keeps the
    // caller (and every other thread) where it was, and nothing has to be switched back.
    std::thread worker([&] {
      if (setns(ns.get(), CLONE_NEWNET) != 0) {
        setns_errno = errno;
        return;
      }
      try {
        body();
      } catch (...) {
        thrown = std::current_exception();
      }
    });
    worker.join();
  } catch (const std::system_error& e) {
    return make_error(ErrorCode::system,
                      "starting a thread for network namespace " + path + ": " + e.what());
  }
  if (setns_errno != 0) return netns_error(setns_errno, path, "entering");
  if (thrown) std::rethrow_exception(thrown);
  return Ok{};
}

}  // namespace dpi::os
