// Running a piece of work inside another network namespace without moving the caller.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "core/result.h"

namespace dpi::os {

// The namespace file a --netns value names: a bare name is /run/netns/NAME (as `ip netns`
// creates it); anything with a '/' is a path such as /proc/PID/ns/net.
std::string netns_path(const std::string& name_or_path);

namespace detail {
// Runs body on a fresh thread that has joined the namespace first (inline when
// name_or_path is empty). The returned Status only reports failing to get there; an exception
// thrown by body is rethrown in the caller.
Status run_in_netns(const std::string& name_or_path, const std::function<void()>& body);
}  // namespace detail

// name_or_path: "" = the caller's namespace; otherwise as netns_path().
// Errors: not_found (no such namespace), permission (setns needs CAP_SYS_ADMIN), bad_input (the
// file is not a network namespace), system.
// Sockets opened by fn belong to that namespace, and stay there when they outlive the call (watch's
// event sources do); readers close theirs before returning.
template <class F>
auto in_netns(const std::string& name_or_path, F&& fn) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  std::optional<R> out;
  Status entered = detail::run_in_netns(name_or_path, [&] { out.emplace(fn()); });
  if (!entered) return entered.error();
  return std::move(*out);
}

}  // namespace dpi::os
