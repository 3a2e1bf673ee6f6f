#include "core/calico/workload.h"

#include <cctype>

#include <fmt/format.h>

#include "core/sha1.h"

namespace dpi::calico {

namespace {

// DNS-1123 labels/subdomains: what namespace and pod names are made of.
bool k8s_name(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return false;
  return std::isalnum(static_cast<unsigned char>(s.front())) &&
         std::isalnum(static_cast<unsigned char>(s.back()));
}

}  // namespace

std::optional<PodRef> parse_pod_ref(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  PodRef p{std::string(s.substr(0, slash)), std::string(s.substr(slash + 1))};
  if (!k8s_name(p.ns) || !k8s_name(p.name)) return std::nullopt;
  return p;
}

std::string workload_iface(const PodRef& pod, std::string_view prefix) {
  return std::string(prefix) + sha1_hex(pod.ns + "." + pod.name).substr(0, 11);
}

Result<PodAddress> pod_address(const NodeInfo& node, const PodRef& pod, std::string_view prefix,
                               int prefer_family) {
  const std::string iface = workload_iface(pod, prefix);
  if (!node.find_interface(iface))
    return make_error(ErrorCode::bad_input,
                      fmt::format("pod {}: no interface {} on this node (the pod runs on another "
                                  "node, or Felix uses another interface prefix: --iface-prefix); "
                                  "pass its address instead",
                                  pod.str(), iface));
  std::optional<IpAddr> found;
  for (const auto& r : node.routes) {
    if (r.dev != iface || r.type != "unicast") continue;
    if (r.dst.len != (r.dst.addr.is_v4() ? 32 : 128)) continue;
    if (!found || (found->is_v4() ? 4 : 6) != prefer_family) found = r.dst.addr;
  }
  if (!found)
    return make_error(ErrorCode::bad_input,
                      fmt::format("pod {}: interface {} has no host route (/32 or /128) on this "
                                  "node; pass the pod's address instead",
                                  pod.str(), iface));
  return PodAddress{*found, iface};
}

}  // namespace dpi::calico
