// Explains a verdict in Calico's terms from the path a backend recorded: which endpoint
// stage decided, and whether it was a policy rule, an end-of-tier deny, a profile, etc.
#pragma once

#include "core/report.h"

namespace dpi::calico {

// Calico's mark bits; the defaults of v3.30+ unless the ruleset shows others.
struct MarkBits {
  uint32_t accept = 0x10000;
  uint32_t pass = 0x20000;
  uint32_t drop = 0x40000;
};

// Fills report.stages and report.decided_by (kind, summary, tier, policy...). Expects
// report.path, report.verdict and report.decided_by.rule to be set by the backend, with
// deciding_step the index of the deciding rule in report.path (none for a chain policy).
void attribute(Report& report, std::optional<std::size_t> deciding_step, const MarkBits& bits = {});

// The summary of one stage ("end-of-tier implicit deny in tier T, egress of workload on X"), for
// backends that locate their stages without a path (eBPF), so that every backend words them alike.
std::string stage_summary(const Stage& stage);

// Calico never polices traffic from the host to its own local workloads, on any dataplane: every
// backend's report of such a flow carries this sentence in its notes.
inline constexpr const char* kHostToWorkloadUnpoliced =
    "Calico does not police traffic from the host to its local workloads";

// The eBPF dataplane's decision for such a flow: calico_tc_main lets it through on the workload's
// tc egress hook before any policy program runs. No stage, kind chain_policy, as nftables reports
// the same flow (accepted by its base chain's policy after cali-OUTPUT returned).
Decision host_to_workload_decision();

}  // namespace dpi::calico
