// Kubernetes names for addresses: a `kubectl get pods,services,endpointslices -A -o json` document
// (a List) read once, so that reports can say `client/client` instead of 10.65.0.2 and `--dst` can
// take a service. Core only: the file is data, no API server is asked.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/ip.h"
#include "core/node_info.h"
#include "core/result.h"

namespace dpi {

struct Report;

struct K8sPod {
  std::string ns, name, node;
  std::vector<IpAddr> ips;
  // A host-network pod shares the node's address: that address does not name it.
  bool host_network = false;
  // Listed by this node's container runtime (crictl): the pod runs here, whatever node says.
  bool on_this_node = false;
  std::string str() const { return ns + "/" + name; }
};

struct K8sServicePort {
  std::string name, proto;  // proto as kubectl writes it: TCP, UDP, SCTP
  uint16_t port = 0;
};

struct K8sService {
  std::string ns, name;
  std::vector<IpAddr> cluster_ips;  // empty for headless services
  std::vector<K8sServicePort> ports;
  std::string str() const { return ns + "/" + name; }
};

struct K8sNames {
  std::vector<K8sPod> pods;
  std::vector<K8sService> services;

  const K8sPod* find_pod(std::string_view ns, std::string_view name) const;
  const K8sService* find_service(std::string_view ns, std::string_view name) const;
  const K8sPod* pod_by_ip(const IpAddr& a) const;
  const K8sService* service_by_ip(const IpAddr& a) const;
  // The pod whose Felix interface (prefix + hash of "ns.pod", calico::workload_iface) is iface.
  const K8sPod* pod_by_iface(std::string_view iface, std::string_view prefix) const;
  // What the address is called: "ns/pod", "service ns/svc", or "" when the data does not know.
  std::string name_of(const IpAddr& a) const;
};

// The items of a List (or one object) of kind Pod and Service; EndpointSlices and other kinds are
// accepted and not needed. Errors (bad_input) name what is malformed.
Result<K8sNames> parse_k8s_names(const nlohmann::json& doc);
Result<K8sNames> parse_k8s_names(std::string_view text, const std::string& origin);

// Two name sources as one: what `into` has wins; a pod or service only `more` has is added, and
// a pod of both that has no address in `into` takes `more`'s (and its on_this_node).
void merge_k8s_names(K8sNames& into, const K8sNames& more);

// Names the flow's source and destination and each stage's workload (the pod whose Felix interface,
// prefix + hash of "ns.pod", is the stage's endpoint) when the data knows them, and adds
// "pod and service names from <source>" (without services: "pod names from") to the
// assumptions. An address the data does not know is still named when node (if given) routes it
// through the interface of a pod of the data (a host route, /32 or /128).
void apply_k8s_names(Report& r, const K8sNames& names, std::string_view source,
                     std::string_view iface_prefix = "cali", const NodeInfo* node = nullptr);

}  // namespace dpi
