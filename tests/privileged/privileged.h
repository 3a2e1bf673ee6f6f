// Shared by the privileged test files: they need root (network namespaces, netlink writes).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

// Without root the case is skipped with a warning rather than failed (ctest runs it as root).
#define DPI_REQUIRE_ROOT()                        \
  do {                                            \
    if (geteuid() != 0) {                         \
      WARN("not root: skipping privileged test"); \
      return;                                     \
    }                                             \
  } while (0)

namespace dpi::test {

// The exit status of a std::system() or pclose() result; -1 when it did not exit normally.
inline int exit_status(int rc) {
  return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace dpi::test
