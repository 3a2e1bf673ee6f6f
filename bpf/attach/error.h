// dpl-ebpf-attach's one error type: what failed, with the system's reason. Thrown below main and
// printed there as one line.
#pragma once

#include <cstring>
#include <string>

namespace dpl {

struct AttachError {
  std::string what;
};

// err: an errno value, or a negative one as libbpf returns them.
[[noreturn]] inline void fail(const std::string& what, int err) {
  throw AttachError{what + ": " + std::strerror(err < 0 ? -err : err)};
}

}  // namespace dpl
