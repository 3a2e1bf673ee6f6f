#include "core/cri_names.h"

#include <fmt/format.h>

namespace dpi {

namespace {

using nlohmann::json;

std::string cri_str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json* cri_obj(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

// One `inspectp` status into the pod it describes (matched by sandbox id).
Status add_status(K8sNames& names, const std::vector<CriSandbox>& sandboxes, const json& entry,
                  const std::string& where) {
  const json* status = entry.is_object() ? cri_obj(entry, "status") : nullptr;
  if (!status) return make_error(ErrorCode::bad_input, where + ": expected {\"status\": {...}}");
  const std::string id = cri_str(*status, "id");
  std::size_t i = 0;
  while (i < sandboxes.size() && sandboxes[i].id != id) ++i;
  if (i == sandboxes.size()) return Ok{};  // a sandbox that appeared after `crictl pods`
  K8sPod& pod = names.pods[i];
  if (const json* lx = cri_obj(*status, "linux"))
    if (const json* nss = cri_obj(*lx, "namespaces"))
      if (const json* opts = cri_obj(*nss, "options"))
        pod.host_network = cri_str(*opts, "network") == "NODE";
  const json* net = cri_obj(*status, "network");
  if (!net) return Ok{};
  std::vector<std::string> ips{cri_str(*net, "ip")};
  if (auto more = net->find("additionalIps"); more != net->end() && more->is_array())
    for (const auto& e : *more)
      if (e.is_object()) ips.push_back(cri_str(e, "ip"));
  for (const auto& s : ips) {
    if (s.empty()) continue;
    auto a = IpAddr::parse(s);
    if (!a)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{} (pod {}): {} is not an address", where, pod.str(), s));
    bool have = false;
    for (const auto& x : pod.ips) have = have || x == *a;
    if (!have) pod.ips.push_back(*a);
  }
  return Ok{};
}

}  // namespace

Result<std::vector<CriSandbox>> parse_crictl_pods(const json& doc) {
  const auto items = doc.is_object() ? doc.find("items") : json::const_iterator();
  if (!doc.is_object() || items == doc.end() || !items->is_array())
    return make_error(
        ErrorCode::bad_input,
        "expected {\"items\": [...]} (crictl pods -o json), found " + std::string(doc.type_name()));
  std::vector<CriSandbox> out;
  for (std::size_t n = 0; n < items->size(); ++n) {
    const json& item = (*items)[n];
    const std::string where = fmt::format("items[{}]", n);
    const json* meta = item.is_object() ? cri_obj(item, "metadata") : nullptr;
    if (!meta) return make_error(ErrorCode::bad_input, where + ": a pod without metadata");
    CriSandbox s{cri_str(item, "id"), cri_str(*meta, "namespace"), cri_str(*meta, "name")};
    if (s.id.empty() || s.name.empty())
      return make_error(ErrorCode::bad_input, where + ": a pod without an id or a name");
    // The filter `--state ready` asked for; an older crictl may list the others too.
    const std::string state = cri_str(item, "state");
    if (!state.empty() && state != "SANDBOX_READY") continue;
    out.push_back(std::move(s));
  }
  return out;
}

Result<K8sNames> cri_names(const std::vector<CriSandbox>& sandboxes, const json* inspectp) {
  K8sNames names;
  for (const auto& s : sandboxes) {
    K8sPod p;
    p.ns = s.ns;
    p.name = s.name;
    p.on_this_node = true;
    names.pods.push_back(std::move(p));
  }
  if (!inspectp) return names;
  if (inspectp->is_array()) {
    for (std::size_t n = 0; n < inspectp->size(); ++n)
      if (auto st = add_status(names, sandboxes, (*inspectp)[n], fmt::format("[{}]", n)); !st)
        return st.error();
  } else if (auto st = add_status(names, sandboxes, *inspectp, "the document"); !st) {
    return st.error();
  }
  return names;
}

}  // namespace dpi
