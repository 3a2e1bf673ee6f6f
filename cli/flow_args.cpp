#include "cli/flow_args.h"

#include <tuple>

#include <fmt/format.h>

namespace dpi::cli {

Result<Endpoint> parse_endpoint(const std::string& v, const std::string& option) {
  if (auto a = IpAddr::parse(v)) return Endpoint{*a, std::nullopt};
  if (auto p = calico::parse_pod_ref(v)) return Endpoint{std::nullopt, *p};
  return make_error(ErrorCode::bad_input,
                    fmt::format("{} {}: expected an IPv4 or IPv6 address, or a pod on this node "
                                "as namespace/name",
                                option, v));
}

Status resolve_pods(Endpoint& src, Endpoint& dst, const std::optional<NodeInfo>& node,
                    const std::string& prefix, std::vector<std::string>& notes) {
  for (auto [e, other, option] :
       {std::tuple{&src, &dst, "--src"}, std::tuple{&dst, &src, "--dst"}}) {
    if (!e->pod) continue;
    if (!node)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{} {}: pod names need the node's interfaces and routes (read "
                                    "the node live, or give a snapshot or --node)",
                                    option, e->pod->str()));
    int family = other->addr && other->addr->is_v6() ? 6 : 4;
    auto a = calico::pod_address(*node, *e->pod, prefix, family);
    if (!a) return make_error(a.error().code, fmt::format("{} {}", option, a.error().message));
    e->addr = a->addr;
    notes.push_back(fmt::format("{} pod {} is {} (interface {} on this node)", option,
                                e->pod->str(), a->addr.str(), a->iface));
  }
  return Ok{};
}

Result<Flow> build_flow(const FlowArgs& a, const IpAddr& src, const IpAddr& dst,
                        const std::string& where) {
  Flow f;
  f.src = src;
  f.dst = dst;
  auto bad = [&](const std::string& msg) { return make_error(ErrorCode::bad_input, where + msg); };
  auto p = parse_l4proto(a.proto);
  if (!p)
    return bad(fmt::format("--proto {}: expected tcp, udp, sctp, icmp, icmpv6 or a number 0-255",
                           a.proto));
  f.l4proto = *p;
  for (auto [v, name, dstv] :
       {std::tuple{a.sport, "--sport", &f.sport}, std::tuple{a.dport, "--dport", &f.dport}}) {
    if (!v) continue;
    if (*v < 0 || *v > 65535) return bad(fmt::format("{} {}: expected 0-65535", name, *v));
    *dstv = static_cast<uint16_t>(*v);
  }
  for (auto [v, name, dstv] : {std::tuple{a.icmp_type, "--icmp-type", &f.icmp_type},
                               std::tuple{a.icmp_code, "--icmp-code", &f.icmp_code}}) {
    if (!v) continue;
    if (*v < 0 || *v > 255) return bad(fmt::format("{} {}: expected 0-255", name, *v));
    *dstv = static_cast<uint8_t>(*v);
  }
  auto ct = parse_ct_state(a.ct);
  if (!ct)
    return bad(
        fmt::format("--ct {}: expected new, established, related, invalid or untracked", a.ct));
  f.ct = *ct;
  f.iif = a.iif;
  f.oif = a.oif;
  if (auto st = normalize(f); !st) return bad(st.error().message);
  return f;
}

}  // namespace dpi::cli
