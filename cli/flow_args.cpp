#include "cli/flow_args.h"

#include <tuple>

#include <fmt/format.h>

#include "core/input_file.h"

namespace dpi::cli {

Result<Endpoint> parse_endpoint(const std::string& v, const std::string& option) {
  if (auto a = IpAddr::parse(v)) return Endpoint{*a, std::nullopt, std::nullopt};
  if (auto p = calico::parse_pod_ref(v)) return Endpoint{std::nullopt, *p, std::nullopt};
  // ns/svc:port (a colon cannot be in a Kubernetes name, and ns/... is no IPv6 address).
  if (auto colon = v.rfind(':'); colon != std::string::npos && v.find('/') < colon) {
    auto p = calico::parse_pod_ref(std::string_view(v).substr(0, colon));
    const std::string port = v.substr(colon + 1);
    if (p && !port.empty() && port.size() <= 5 &&
        port.find_first_not_of("0123456789") == std::string::npos) {
      const int n = std::stoi(port);
      if (n >= 1 && n <= 65535) return Endpoint{std::nullopt, *p, static_cast<uint16_t>(n)};
    }
  }
  return make_error(ErrorCode::bad_input,
                    fmt::format("{} {}: expected an IPv4 or IPv6 address, a pod on this node as "
                                "namespace/name, or with --k8s a service as namespace/name[:port]",
                                option, v));
}

Status resolve_pods(Endpoint& src, Endpoint& dst, const std::optional<NodeInfo>& node,
                    const std::string& prefix, std::vector<std::string>& notes) {
  for (auto [e, other, option] :
       {std::tuple{&src, &dst, "--src"}, std::tuple{&dst, &src, "--dst"}}) {
    if (!e->pod || e->addr) continue;
    if (e->port)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{} {}:{}: a service with a port needs --k8s FILE", option,
                                    e->pod->str(), *e->port));
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

Result<K8sNames> load_k8s_names(const std::string& path, std::size_t max_bytes) {
  auto text = read_input_file(path, max_bytes);
  if (!text) return make_error(text.error().code, "--k8s " + text.error().message);
  auto names = parse_k8s_names(*text, input_origin(path));
  if (!names) return make_error(names.error().code, "--k8s " + names.error().message);
  return names;
}

Result<std::optional<K8sNames>> snapshot_names(const LoadedDataplane& loaded,
                                               const std::string& path, std::string& source) {
  const auto& member = loaded.snapshot_k8s();
  if (!member) return std::optional<K8sNames>();
  auto names = parse_k8s_names(*member);
  if (!names)
    return make_error(names.error().code, fmt::format("{}: the snapshot's k8s member: {}",
                                                      input_origin(path), names.error().message));
  source = fmt::format("the snapshot {} (snapshot --k8s)", input_origin(path));
  return std::optional<K8sNames>(std::move(*names));
}

namespace {

// The address of the preferred family (the other endpoint's, else IPv4), else the first.
std::optional<IpAddr> pick(const std::vector<IpAddr>& ips, const Endpoint& other) {
  const bool v6 = other.addr && !other.addr->is_v4();
  for (const auto& a : ips)
    if (a.is_v4() != v6) return a;
  if (ips.empty()) return std::nullopt;
  return ips.front();
}

}  // namespace

Status resolve_services(Endpoint& src, Endpoint& dst, const K8sNames& k8s,
                        const std::string& source, std::optional<int64_t>& dport,
                        std::vector<std::string>& notes) {
  for (auto [e, other, option] :
       {std::tuple{&src, &dst, "--src"}, std::tuple{&dst, &src, "--dst"}}) {
    if (!e->pod || e->addr) continue;
    const K8sService* svc = k8s.find_service(e->pod->ns, e->pod->name);
    // A pod and a service often share a name: the bare name is the pod, ns/svc:port the service.
    if (!svc || (!e->port && k8s.find_pod(e->pod->ns, e->pod->name))) {
      if (e->port)
        return make_error(ErrorCode::bad_input,
                          fmt::format("{} {}:{}: no service {} in {}", option, e->pod->str(),
                                      *e->port, e->pod->str(), source));
      continue;
    }
    auto ip = pick(svc->cluster_ips, *other);
    if (!ip)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{} {}: service {} has no ClusterIP (headless) in {}; name "
                                    "one of its pods instead",
                                    option, e->pod->str(), svc->str(), source));
    std::string ports;
    for (const auto& p : svc->ports)
      ports += fmt::format("{}{}/{}", ports.empty() ? "" : ", ", p.port, p.proto);
    if (e->port) {
      bool found = false;
      for (const auto& p : svc->ports) found = found || p.port == *e->port;
      if (!found)
        return make_error(ErrorCode::bad_input,
                          fmt::format("{} {}:{}: service {} has no port {} (its ports: {})", option,
                                      e->pod->str(), *e->port, svc->str(), *e->port,
                                      ports.empty() ? "none" : ports));
    }
    e->addr = *ip;
    std::string note =
        fmt::format("{} service {} is {} (ClusterIP in {})", option, svc->str(), ip->str(), source);
    if (option == std::string_view("--dst") && !dport) {
      if (e->port) {
        dport = *e->port;
      } else if (svc->ports.size() == 1) {
        dport = svc->ports.front().port;
      } else {
        return make_error(ErrorCode::bad_input,
                          fmt::format("--dst {}: service {} has {} ports ({}): pass --dport or "
                                      "write {}:PORT",
                                      e->pod->str(), svc->str(), svc->ports.size(),
                                      ports.empty() ? "none" : ports, e->pod->str()));
      }
      note += fmt::format(", port {}", *dport);
    }
    notes.push_back(std::move(note));
  }
  return Ok{};
}

Status resolve_k8s_pods(Endpoint& src, Endpoint& dst, const K8sNames& k8s,
                        const std::string& source, const std::optional<NodeInfo>& node,
                        const std::string& prefix, std::vector<std::string>& notes) {
  for (auto [e, other, option] :
       {std::tuple{&src, &dst, "--src"}, std::tuple{&dst, &src, "--dst"}}) {
    if (!e->pod || e->addr) continue;
    const K8sPod* pod = k8s.find_pod(e->pod->ns, e->pod->name);
    if (!pod) continue;  // resolve_pods looks for its interface and says what is missing
    const std::string iface = calico::workload_iface(*e->pod, prefix);
    if (node && node->find_interface(iface)) continue;
    auto ip = pick(pod->ips, *other);
    if (node && pod->on_this_node && ip) {
      // The runtime runs it here, yet Felix made no interface for it: not a Calico workload
      // (host network, another CNI), or another --iface-prefix. Its address still is its own.
      e->addr = *ip;
      notes.push_back(fmt::format("{} pod {} is {} (from {}; no interface {} on this node)", option,
                                  pod->str(), ip->str(), source, iface));
      continue;
    }
    if (node) {
      if (!pod->node.empty())
        return make_error(
            ErrorCode::bad_input,
            fmt::format(
                "{} {}: the pod runs on node {} (per {}), not on this node: run dpinspect "
                "on {}{}",
                option, pod->str(), pod->node, source, pod->node,
                ip ? fmt::format(", or pass its address {} to inspect the flow here", ip->str())
                   : ""));
      continue;  // no node yet: resolve_pods says the interface is missing
    }
    if (!ip)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{} {}: the pod has no address in {} (not started yet?)",
                                    option, pod->str(), source));
    e->addr = *ip;
    notes.push_back(fmt::format("{} pod {} is {} (from {}{})", option, pod->str(), ip->str(),
                                source, pod->node.empty() ? "" : ", node " + pod->node));
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
