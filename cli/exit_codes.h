// Exit codes, documented in docs/inspect.md: 0 allowed, 1 denied, 2 indeterminate, then errors.
#pragma once

#include <ostream>

#include "core/result.h"

namespace dpi::cli {

inline constexpr int kExitBadInput = 3;
inline constexpr int kExitPermission = 4;
inline constexpr int kExitSystem = 5;

inline int exit_code_for(const Error& e) {
  switch (e.code) {
    case ErrorCode::bad_input:
    case ErrorCode::not_found: return kExitBadInput;
    case ErrorCode::permission: return kExitPermission;
    case ErrorCode::system: return kExitSystem;
  }
  return kExitSystem;
}

// Prints "dpinspect: <message>" on one line of err and returns the error's exit code.
int report_error(const Error& e, std::ostream& err);

}  // namespace dpi::cli
