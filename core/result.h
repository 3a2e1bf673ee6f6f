// Recoverable errors below the CLI: every fallible function returns Result<T>.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace dpi {

// The CLI maps these to exit codes (docs/exit-codes in docs/inspect.md).
enum class ErrorCode {
  bad_input,   // malformed file, unknown flag value, impossible flow
  permission,  // needs root / CAP_NET_ADMIN
  not_found,   // netns, table, chain or file missing
  system,      // a kernel or library call failed for another reason
};

struct Error {
  ErrorCode code = ErrorCode::bad_input;
  std::string message;
};

inline Error make_error(ErrorCode code, std::string message) {
  return Error{code, std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const { return std::get<Error>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Ok {};
using Status = Result<Ok>;

}  // namespace dpi
