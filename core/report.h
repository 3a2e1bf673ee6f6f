// One report model for every backend: what was decided, by which rule, what it means in
// Calico terms, and the path and evidence behind it. Rendered by report_text / report_json.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/flow.h"

namespace dpi {

inline constexpr const char* kReportSchema = "dpinspect.report/v1";

enum class Verdict { allow, deny, indeterminate };
std::string_view verdict_name(Verdict v);

// Where an nftables rule lives. handle is empty when a base chain's policy decided.
struct NftRuleLocation {
  std::string family;  // ip, ip6, inet...
  std::string table;
  std::string chain;
  std::optional<uint64_t> handle;
};

// Where a decision was taken inside a BPF program (Calico's eBPF dataplane).
struct BpfLocation {
  uint32_t prog_id = 0;
  std::string prog_name;  // as the kernel names it (bpftool prog show)
  std::string tag;        // the program's tag, hex
  std::string attach;     // attach point and hook: "tc ingress cali1234567890a", "xdp eth0"
  std::optional<uint32_t> insn_offset;  // instruction offset of the deciding instruction
  std::string calico_rule_id;           // Calico's rule id, when the program names it
  std::string debug_comment;            // the policy debug JSON's comment for that rule
};

// A rule reference: an nftables rule or a place in a BPF program, plus what every backend can
// say about it. JSON: "kind" is "nftables" or "bpf" (docs/report-schema.md).
struct RuleRef {
  RuleRef() = default;
  // An nftables rule reference.
  RuleRef(std::string family, std::string table, std::string chain, std::optional<uint64_t> handle,
          std::string text, std::string comment, std::optional<uint64_t> packets,
          std::optional<uint64_t> bytes)
      : location(NftRuleLocation{std::move(family), std::move(table), std::move(chain), handle}),
        text(std::move(text)),
        comment(std::move(comment)),
        packets(packets),
        bytes(bytes) {}
  RuleRef(BpfLocation at, std::string text, std::string comment)
      : location(std::move(at)), text(std::move(text)), comment(std::move(comment)) {}

  std::variant<NftRuleLocation, BpfLocation> location;
  std::string text;     // the rule as the backend renders it (nft-like for nftables)
  std::string comment;  // the rule's comment, if any
  std::optional<uint64_t> packets;
  std::optional<uint64_t> bytes;

  // The nftables location; for a BPF location an empty one (no family, table or chain).
  const NftRuleLocation& nft() const;
  // Makes this an nftables reference (if it was not) and returns its location to fill in.
  NftRuleLocation& nft();
  const BpfLocation* bpf() const { return std::get_if<BpfLocation>(&location); }
};

// What a backend knows about a matched rule that attribution needs, independent of syntax.
struct RuleFacts {
  std::string action;          // accept, drop, reject, return, jump, goto, continue, queue
  std::string target;          // chain for jump/goto
  bool unconditional = false;  // no match expressions at all
  std::optional<uint32_t> tests_mark_clear;  // rule requires (mark & M) == 0
  std::optional<uint32_t> tests_mark_set;    // rule requires (mark & M) == M
  std::optional<uint32_t> sets_mark_bits;    // mark |= M
  std::optional<uint32_t> clears_mark_bits;  // mark &= ~M
  bool tests_ct_invalid = false;
  bool tests_ct_established = false;
  std::optional<std::string> log_prefix;
  std::optional<int> log_group;
  std::optional<std::string> reject_with;
  int position = 0;  // index of the rule in its chain
  // Number of earlier rules in the same chain that set an accept/pass/drop mark or drop
  // directly: Calico renders one such "action" per API rule, so it estimates the rule index.
  int action_ordinal = -1;
};

struct PathStep {
  std::string hook;    // prerouting, input, forward, output, postrouting
  int invocation = 0;  // one id per chain entry; parent gives the call tree
  int parent_invocation = -1;
  RuleRef rule;
  RuleFacts facts;
  std::string chain_first_comment;  // comment of the chain's first rule (policy name in Calico)
};

enum class DecisionKind {
  policy_rule,
  profile_rule,
  end_of_tier_deny,
  no_profile_matched,
  ct_invalid,
  ct_established,
  unknown_interface,
  admin_down,
  encap_from_workload,
  rpf_failure,
  default_endpoint_to_host,
  service_loop_prevention,
  failsafe,      // Felix's failsafe port rule (cali-failsafe-in/out) accepted host-endpoint traffic
  calico_rule,   // a Calico rule of another kind; summary quotes its comment
  non_calico,    // a table or chain Calico does not own (host firewall, kube-proxy)
  chain_policy,  // a base chain's policy, no rule decided
  unknown,
};
std::string_view decision_kind_name(DecisionKind k);

struct PolicyName {
  std::string kind;  // np, gnp, knp, ... or "" when not recoverable
  std::string ns;
  std::string name;
  bool recovered = false;
  std::string chain;  // the policy chain, always known
  std::string display() const;
};

struct Decision {
  DecisionKind kind = DecisionKind::unknown;
  std::string summary;
  std::string direction;  // ingress, egress, or ""
  std::string endpoint;   // workload interface
  std::string tier;
  std::optional<PolicyName> policy;
  std::optional<int> rule_index;
  bool rule_index_exact = false;
  std::string action;   // allow, deny, pass, log
  std::string rule_id;  // cali:<hash>
  std::optional<int> nflog_group;
  std::string nflog_prefix;
  // The kernel's rule that applied the verdict (the final accept or drop).
  std::optional<RuleRef> rule;
  // The rules of the Calico positions that decided (the policy or profile rules, one per
  // endpoint stage that allowed a flow), in packet order; empty inside a stage and when nothing
  // was located. The text report shows them first and `rule` as the evidence after them.
  std::vector<RuleRef> calico_rules;
  std::vector<std::string> notes;
};

// Each endpoint hook the flow crosses (from-workload egress, to-workload ingress, host).
struct Stage {
  // "egress/ingress of workload", "egress/ingress of host endpoint", the latter qualified for a
  // host endpoint's other chains: "forwarded", "pre-DNAT", "untracked", "DNATed" (position.h)
  std::string role;
  std::string endpoint;
  std::string chain;
  std::string outcome;  // allow, deny, pass, unknown
  Decision decision;
  std::string workload;  // the pod behind endpoint ("ns/pod"), when names are known
};

struct NatStep {
  std::string kind;  // dnat, snat, masquerade, redirect
  std::string hook;
  RuleRef rule;
  std::string to;  // translated address, addr_port() or ":port"; empty for masquerade
};

struct IndeterminateReason {
  RuleRef rule;
  std::string expression;
  std::string why;
};

// A possible outcome when a rule chooses at random (numgen, statistic, meta random) or a service
// has several backends: every branch is explored.
struct Outcome {
  std::string choice;  // e.g. "numgen random mod 2 = 1"
  Verdict verdict = Verdict::indeterminate;
  std::optional<RuleRef> rule;
  std::string summary;
  std::vector<NatStep> nat;  // the translations this outcome applied (which endpoint it reached)
};

struct Dataplane {
  std::string kind;                         // nftables, iptables-nft, ebpf, none
  std::string source;                       // "live netns X", "file F"
  std::vector<std::string> calico_layouts;  // "nftables (table ip calico)", "iptables-nft"
  std::string calico_version_hint;
};

// One dataplane layer's answer, when a node runs more than one (core/layers.h).
struct LayerVerdict {
  std::string dataplane;  // the backend's name: "ebpf", "nftables"
  std::string layer;      // "tc", "netfilter"
  Verdict verdict = Verdict::indeterminate;
  bool applies = true;   // false: the flow is outside what this layer judges
  bool decided = false;  // this layer's answer is the report's (both allowed: every layer)
  std::string why;       // its one-line reason
};

// `inspect --counters`: the deciding rule's counter read twice, `interval_s` apart, on the live
// dataplane. No before/after (and a note saying why) when the rule has no counter.
struct CounterDelta {
  RuleRef rule;
  double interval_s = 0;
  std::optional<uint64_t> packets_before, bytes_before, packets_after, bytes_after;
  std::string note;  // empty when both reads found a counter
  // Counters read with the rule's that count its endpoint's packets (eBPF: the deciding hook's
  // DROPPED_BY_POLICY and ACCEPTED_BY_POLICY), by name; a read that did not find one is nullopt.
  struct Related {
    std::string name;
    std::optional<uint64_t> before, after;
  };
  std::vector<Related> related;
  // Why the related counters are missing when a read of them failed (the rule's count stands).
  std::string related_note;
};

struct Report {
  Flow flow;
  // What the flow's addresses are called ("ns/pod", "service ns/svc"), when names are known
  // (core/k8s_names.h); empty otherwise.
  std::string src_name, dst_name;
  std::vector<std::string> assumptions;
  Dataplane dataplane;
  Verdict verdict = Verdict::indeterminate;
  Decision decided_by;
  std::vector<Stage> stages;
  std::vector<PathStep> path;
  // The hook whose chains hold Calico's policy for this flow (forward, input, output), set by a
  // backend that records a path: the text report shows that hook's rules unless asked for all.
  std::string policy_hook;
  std::vector<NatStep> nat;
  std::vector<Outcome> outcomes;
  std::vector<std::string> warnings;
  std::optional<IndeterminateReason> indeterminate_reason;
  nlohmann::json evidence = nlohmann::json::object();
  // Empty unless more than one layer was evaluated (then in packet order).
  std::vector<LayerVerdict> layers;
  // Set by `inspect --counters` only.
  std::optional<CounterDelta> counters;
};

// 0 allowed, 1 denied, 2 indeterminate (docs/inspect.md).
int exit_code_for(Verdict v);

}  // namespace dpi
