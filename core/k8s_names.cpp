#include "core/k8s_names.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/calico/workload.h"
#include "core/report.h"

namespace dpi {

namespace {

using nlohmann::json;

std::string str_at(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& obj_at(const json& j, const char* key) {
  static const json empty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

// An address field that is absent or "None" (headless) is not an error; a malformed one is.
Status add_ip(std::vector<IpAddr>& out, const json& v, const std::string& where) {
  if (!v.is_string()) return make_error(ErrorCode::bad_input, where + ": expected a string");
  const auto s = v.get<std::string>();
  if (s.empty() || s == "None") return Ok{};
  auto a = IpAddr::parse(s);
  if (!a)
    return make_error(ErrorCode::bad_input, fmt::format("{}: {} is not an address", where, s));
  for (const auto& have : out)
    if (have == *a) return Ok{};
  out.push_back(*a);
  return Ok{};
}

Result<K8sPod> parse_pod(const json& item, const std::string& where) {
  const json& meta = obj_at(item, "metadata");
  const json& spec = obj_at(item, "spec");
  const json& status = obj_at(item, "status");
  K8sPod p{str_at(meta, "namespace"), str_at(meta, "name"), str_at(spec, "nodeName"), {}, false};
  if (p.name.empty()) return make_error(ErrorCode::bad_input, where + ": a Pod without a name");
  if (auto hn = spec.find("hostNetwork"); hn != spec.end() && hn->is_boolean())
    p.host_network = hn->get<bool>();
  if (auto ips = status.find("podIPs"); ips != status.end() && ips->is_array())
    for (const auto& e : *ips)
      if (e.is_object() && e.contains("ip"))
        if (auto st = add_ip(p.ips, e["ip"], where + " status.podIPs"); !st) return st.error();
  if (auto ip = status.find("podIP"); ip != status.end())
    if (auto st = add_ip(p.ips, *ip, where + " status.podIP"); !st) return st.error();
  return p;
}

Result<K8sService> parse_service(const json& item, const std::string& where) {
  const json& meta = obj_at(item, "metadata");
  const json& spec = obj_at(item, "spec");
  K8sService s{str_at(meta, "namespace"), str_at(meta, "name"), {}, {}};
  if (s.name.empty()) return make_error(ErrorCode::bad_input, where + ": a Service without a name");
  if (auto ips = spec.find("clusterIPs"); ips != spec.end() && ips->is_array())
    for (const auto& e : *ips)
      if (auto st = add_ip(s.cluster_ips, e, where + " spec.clusterIPs"); !st) return st.error();
  if (auto ip = spec.find("clusterIP"); ip != spec.end())
    if (auto st = add_ip(s.cluster_ips, *ip, where + " spec.clusterIP"); !st) return st.error();
  if (auto ports = spec.find("ports"); ports != spec.end() && ports->is_array())
    for (const auto& e : *ports) {
      auto port = e.find("port");
      if (!e.is_object() || port == e.end() || !port->is_number_integer() ||
          port->get<int64_t>() < 1 || port->get<int64_t>() > 65535)
        return make_error(ErrorCode::bad_input,
                          where + " spec.ports: each port needs a number 1-65535");
      std::string proto = str_at(e, "protocol");
      s.ports.push_back({str_at(e, "name"), proto.empty() ? "TCP" : proto,
                         static_cast<uint16_t>(port->get<int64_t>())});
    }
  return s;
}

}  // namespace

const K8sPod* K8sNames::find_pod(std::string_view ns, std::string_view name) const {
  for (const auto& p : pods)
    if (p.ns == ns && p.name == name) return &p;
  return nullptr;
}

const K8sService* K8sNames::find_service(std::string_view ns, std::string_view name) const {
  for (const auto& s : services)
    if (s.ns == ns && s.name == name) return &s;
  return nullptr;
}

const K8sPod* K8sNames::pod_by_ip(const IpAddr& a) const {
  for (const auto& p : pods)
    if (!p.host_network)
      for (const auto& ip : p.ips)
        if (ip == a) return &p;
  return nullptr;
}

const K8sService* K8sNames::service_by_ip(const IpAddr& a) const {
  for (const auto& s : services)
    for (const auto& ip : s.cluster_ips)
      if (ip == a) return &s;
  return nullptr;
}

const K8sPod* K8sNames::pod_by_iface(std::string_view iface, std::string_view prefix) const {
  // Hashing every pod is cheaper than it looks: a node's report has a handful of interfaces.
  if (iface.rfind(prefix, 0) != 0) return nullptr;
  for (const auto& p : pods)
    if (!p.host_network && calico::workload_iface({p.ns, p.name}, prefix) == iface) return &p;
  return nullptr;
}

std::string K8sNames::name_of(const IpAddr& a) const {
  if (const auto* p = pod_by_ip(a)) return p->str();
  if (const auto* s = service_by_ip(a)) return "service " + s->str();
  return {};
}

Result<K8sNames> parse_k8s_names(const json& doc) {
  if (!doc.is_object())
    return make_error(ErrorCode::bad_input,
                      "expected the output of kubectl get pods,services,endpointslices -A -o json "
                      "(a JSON object of kind List)");
  std::vector<const json*> items;
  if (auto it = doc.find("items"); it != doc.end()) {
    if (!it->is_array()) return make_error(ErrorCode::bad_input, "items: expected an array");
    for (const auto& i : *it) items.push_back(&i);
  } else {
    items.push_back(&doc);
  }
  K8sNames out;
  for (std::size_t n = 0; n < items.size(); ++n) {
    const json& item = *items[n];
    const std::string where = fmt::format("items[{}]", n);
    if (!item.is_object()) return make_error(ErrorCode::bad_input, where + ": expected an object");
    const std::string kind = str_at(item, "kind");
    if (kind == "Pod") {
      auto p = parse_pod(item, where);
      if (!p) return p.error();
      out.pods.push_back(std::move(*p));
    } else if (kind == "Service") {
      auto s = parse_service(item, where);
      if (!s) return s.error();
      out.services.push_back(std::move(*s));
    } else if (kind.empty()) {
      return make_error(ErrorCode::bad_input, where + ": an object without a kind");
    }
  }
  return out;
}

Result<K8sNames> parse_k8s_names(std::string_view text, const std::string& origin) {
  auto doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded())
    return make_error(ErrorCode::bad_input, fmt::format("{}: not JSON (expected kubectl get "
                                                        "pods,services,endpointslices -A -o json)",
                                                        origin));
  auto names = parse_k8s_names(doc);
  if (!names) return make_error(names.error().code, origin + ": " + names.error().message);
  return names;
}

void merge_k8s_names(K8sNames& into, const K8sNames& more) {
  for (const auto& p : more.pods) {
    auto it = std::find_if(into.pods.begin(), into.pods.end(),
                           [&](const K8sPod& q) { return q.ns == p.ns && q.name == p.name; });
    if (it == into.pods.end()) {
      into.pods.push_back(p);
    } else if (it->ips.empty()) {
      it->ips = p.ips;
      it->on_this_node = it->on_this_node || p.on_this_node;
    }
  }
  for (const auto& s : more.services)
    if (!into.find_service(s.ns, s.name)) into.services.push_back(s);
}

namespace {

// The pod whose interface carries the host route to a (Felix's /32 or /128 to a local workload).
std::string name_by_route(const K8sNames& names, const NodeInfo& node, const IpAddr& a,
                          std::string_view prefix) {
  for (const auto& r : node.routes)
    if (r.type == "unicast" && r.dst.addr == a && r.dst.len == (a.is_v4() ? 32 : 128))
      if (const K8sPod* p = names.pod_by_iface(r.dev, prefix)) return p->str();
  return {};
}

}  // namespace

void apply_k8s_names(Report& r, const K8sNames& names, std::string_view source,
                     std::string_view iface_prefix, const NodeInfo* node) {
  if (r.src_name.empty()) r.src_name = names.name_of(r.flow.src);
  if (r.dst_name.empty()) r.dst_name = names.name_of(r.flow.dst);
  if (node && r.src_name.empty())
    r.src_name = name_by_route(names, *node, r.flow.src, iface_prefix);
  if (node && r.dst_name.empty())
    r.dst_name = name_by_route(names, *node, r.flow.dst, iface_prefix);
  for (auto& s : r.stages) {
    if (!s.workload.empty() || s.endpoint.empty()) continue;
    if (const K8sPod* p = names.pod_by_iface(s.endpoint, iface_prefix)) s.workload = p->str();
  }
  r.assumptions.push_back(
      fmt::format("{} names from {}", names.services.empty() ? "pod" : "pod and service", source));
}

}  // namespace dpi
