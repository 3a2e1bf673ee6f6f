// A flow through a Calico eBPF node: the state calico_tc_main would build, the source workload's
// egress policy (tc ingress hook), then the destination's ingress policy (tc egress hook), each run
// in the interpreter; the deciding rule id read back and explained in Calico's terms.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/node_state.h"
#include "backends/ebpf/policy_engines.h"
#include "backends/ebpf/policy_runner.h"
#include "backends/ebpf/routes.h"
#include "core/calico/position.h"
#include "core/report.h"

namespace dpi::ebpf {

// The state calico_tc_main builds for the policy program: addresses, ports (ICMP type/code),
// protocol, pre/post-NAT destination, DEST_IS_HOST / SRC_IS_HOST from the routes of the source and
// the post-NAT destination.
PolicyState build_policy_state(const Flow& flow, const IpAddr& post_nat_dst,
                               uint16_t post_nat_dport, const std::optional<RouteValue>& src_route,
                               const std::optional<RouteValue>& dst_route);

// A node decoded for inspect: built once per load, then answers any number of flows.
class NodeModel {
 public:
  explicit NodeModel(NodeState n);
  const NodeState& state() const { return n_; }
  // Which engine runs the policy programs (--engine); the interpreter unless set. The kernel
  // engines need root and build their private IP-set map here.
  Status set_engine(Engine e);
  Result<Report> inspect(const Flow& flow) const;

  struct PolicyFile {
    std::string file;
    std::optional<DebugProgram> prog;
    std::optional<RuleIndex> rules;
    std::string error;  // unreadable / unparsable
  };
  // The parsed debug JSON of a file name (cached).
  const PolicyFile& policy_file(const std::string& name) const;

  // Every rule id the policy programs of the node's interfaces record, as a report rule: the
  // program and instruction of its first site (interfaces by ifindex), calico_rule_id, and a text
  // naming it in Calico's terms ("rule id 0x..: tier default policy ns/name rule 0 allow (prog
  // ...)"). Only programs whose debug JSON matches the live tags. Built on first use.
  const std::map<uint64_t, RuleRef>& rule_refs() const;
  // The same rule ids as Calico positions: the first site's endpoint stage (interface, hook,
  // direction), kind, tier, owner, rule index and action (with `rule` its RuleRef location), and
  // how many programs record the id (the counter sums them all).
  struct RulePlace {
    calico::StagePosition at;
    std::size_t programs = 0;
  };
  const std::map<uint64_t, RulePlace>& rule_places() const;

  std::optional<RouteValue> route(const IpAddr& a) const;
  const IfState* iface(uint32_t ifindex) const;
  // The data interfaces of ifstate (HEP or Bond flag), which can be host endpoints (ifindexes).
  std::vector<uint32_t> host_interfaces() const;
  // The ifindex of the interface ifstate names `name`.
  std::optional<uint32_t> ifindex_of(const std::string& name) const;

 private:
  NodeState n_;
  std::vector<std::pair<IpPrefix, RouteValue>> routes_;  // both families
  std::map<uint32_t, IfState> ifaces_;
  // By family: [0] IPv4 (cali_v4_ip_sets), [1] IPv6 (cali_v6_ip_sets).
  std::unique_ptr<bpfvm::LpmMap> ip_sets_[2];
  std::string ip_sets_error_[2];
  mutable std::map<std::string, PolicyFile> files_;
  std::unique_ptr<PolicyEngines> engines_;
  mutable std::map<std::string, std::unique_ptr<EnginePrograms>> programs_;
  mutable std::optional<std::map<uint64_t, RuleRef>> rule_refs_;
  mutable std::optional<std::map<uint64_t, RulePlace>> rule_places_;
  friend class FlowRun;
};

}  // namespace dpi::ebpf
