// Where a backend found the rules that decided a flow, in Calico's terms and nothing else: which
// endpoint stage, which tier, policy or profile, which rule, or which of Calico's special rules.
// A backend locates positions in its own dataplane (nftables chains, BPF programs); core turns them
// into the report's decisions and sentences (attribution.h), so every backend words them alike.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/report.h"

namespace dpi::calico {

enum class EndpointRole { workload, host_endpoint };

// The policy direction at the endpoint: a workload's egress is traffic leaving the pod.
enum class Direction { ingress, egress };

// Which of a host endpoint's chains (Felix endpoints.go): the filter chains for traffic to and from
// the host itself, the filter chains for forwarded traffic (applyOnForward policies), mangle's
// pre-DNAT ingress chain, raw's untracked (doNotTrack) chains, and mangle's egress chain for
// host traffic that was DNATed. Workloads have only `host`.
enum class HostEndpointChain { host, forward, pre_dnat, untracked, dnat_egress };

// One endpoint hook the flow crosses.
struct Endpoint {
  EndpointRole role = EndpointRole::workload;
  Direction direction = Direction::ingress;
  HostEndpointChain hep_chain = HostEndpointChain::host;
  std::string iface;  // the interface, or what stands for it ("ifindex 7")
  std::string chain;  // where its policy sits: the endpoint chain, or the tc hook
};

enum class PositionKind {
  unlocated,     // nothing of the stage's rules was reached or read
  policy_rule,   // a rule of a policy (owner)
  profile_rule,  // a rule of a profile (owner)
  end_of_tier,   // the implicit deny at the end of a tier
  no_profile,    // "Drop if no profiles matched"
  ct_invalid,
  ct_established,
  unknown_interface,   // the dispatch chain's drop for an interface without endpoint
  no_interface_state,  // eBPF: no cali_iface entry for the interface (ifindex)
  admin_down,          // the endpoint chain's drop for an administratively down endpoint
  endpoint_not_ready,  // eBPF: ifstate without the ready flag (iface_flags)
  no_policy_program,   // eBPF: ifstate names no policy program for the hook
  empty_policy_slot,   // eBPF: the policy jump-map slot is empty (policy_slot)
  encapsulation,       // IPIP/VXLAN from a workload
  rpf,                 // reverse-path filter
  default_endpoint_to_host,
  service_loop_prevention,
  service_without_backends,  // eBPF: NAT frontend with no backends (service, frontend_id)
  no_route,                  // the node cannot route the flow (why)
  // An accept in cali-failsafe-in/out (Felix's failsafe ports); eBPF: a cali_v4_fsafes2 entry let
  // the flow through a host endpoint before its policy program (comment_text names it).
  failsafe,
  calico_rule,        // another Calico rule (comment_text says what)
  non_calico,         // a table or chain Calico does not own
  chain_policy,       // a base chain's policy decided, no rule
  host_to_workload,   // eBPF: calico_tc_main lets host -> local workload through
  no_rule_id,         // eBPF: the program recorded no rule id
  rule_id_not_found,  // eBPF: the recorded rule id is not in the program's rules
  // A host endpoint's policy had nothing that applies (no apply-on-forward policy for forwarded
  // traffic, or every applicable tier passed): Calico allows.
  no_host_policy,
};

enum class Action { none, allow, deny, pass };
enum class StageOutcome { unknown, allow, deny, pass };

struct Position {
  PositionKind kind = PositionKind::unlocated;
  Action action = Action::none;
  std::string tier;  // the tier's name, when the dataplane names it
  // The tier by number in the endpoint's chain, when its name is not known (rendered "#n").
  std::optional<int> tier_ordinal;
  std::optional<PolicyName> owner;  // the policy or profile of a policy_rule / profile_rule
  std::optional<int> rule_index;
  bool rule_index_exact = false;
  // The index was counted from the chain's action rules rather than read (it says so in a note).
  bool rule_index_counted = false;
  std::string rule_id;  // Calico's rule id
  std::optional<int> nflog_group;
  std::string nflog_prefix;
  std::optional<RuleRef> rule;  // the rule at this position
  std::string comment_text;     // Calico's comment on the rule, without its rule id;
                                // failsafe: the failsafe entry ("inbound tcp:22 from 0.0.0.0/0")

  // What some kinds name (see PositionKind).
  std::optional<uint32_t> ifindex;      // no_interface_state
  std::optional<uint32_t> iface_flags;  // endpoint_not_ready
  int ip_family = 4;                    // endpoint_not_ready: whose IPv<N>Ready flag is missing
  std::string policy_slot;              // empty_policy_slot: "<jump map>[<index>]"
  std::string conntrack_entry;          // ct_established outside a stage: "a:p <-> b:p"
  std::string service;                  // service_without_backends: "addr:port"
  std::optional<uint64_t> frontend_id;  // service_without_backends
  std::string why;                      // no_route: the route lookup's answer
  std::string recorded_id;   // no_rule_id aside: the rule id as the program records it (hex)
  std::string program_file;  // rule_id_not_found: the program's rule list
  int same_id_sites = 0;     // more than 1: several places record the rule id, the last is reported
  // chain_policy: how many times cali-OUTPUT returned for a workload interface (host -> pod).
  int host_to_workload_returns = 0;
};

struct StagePosition {
  Endpoint endpoint;
  StageOutcome outcome = StageOutcome::unknown;
  Position at;
};

// What a backend located for one flow. Which position decided depends on the verdict the backend
// found (the report's): a stage, all stages (allowed through each), or one position outside them.
struct Located {
  enum class By { stage, stages, position };
  std::vector<StagePosition> stages;  // in path order
  By by = By::position;
  std::size_t stage = 0;  // By::stage
  Position position;      // By::position
  // The deciding kernel rule as the backend found it; the decision keeps it whatever explains it.
  std::optional<RuleRef> rule;
};

std::string_view action_name(Action a);
std::string_view outcome_name(StageOutcome o);

}  // namespace dpi::calico
