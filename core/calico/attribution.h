// The second half of attribution: positions a backend located (position.h) become the report's
// Calico decisions, stage by stage, with the sentences and notes every backend shares. How a
// backend finds its positions is its own business (backends/*/calico_positions, ebpf/inspect).
#pragma once

#include "core/calico/position.h"
#include "core/report.h"

namespace dpi::calico {

// Calico's mark bits; the defaults of v3.30+ unless the ruleset shows others.
struct MarkBits {
  uint32_t accept = 0x10000;
  uint32_t pass = 0x20000;
  uint32_t drop = 0x40000;
};

// Calico never polices traffic from the host to its own local workloads, on any dataplane: every
// backend's report of such a flow carries this sentence in its notes.
inline constexpr const char* kHostToWorkloadUnpoliced =
    "Calico does not police traffic from the host to its local workloads";

// The note of every report whose summary names "rule N of policy P": how Calico counts rules.
inline constexpr const char* kRuleNumbering =
    "rule numbers count a policy's (or profile's) ingress or egress rules from 0, in the order of "
    "its spec: rule 0 is the first rule of that direction";

// One endpoint stage as the report shows it: role, outcome and decision (without summary).
Stage explain_stage(const StagePosition& at);

// One stage's position on its own, as the decision that stage would make, its sentence as the
// summary ("end-of-tier implicit deny in tier default, egress of workload on cali1"): what a rule
// counter counts, for `watch`.
Decision explain_stage_position(const StagePosition& at);

// The decision at a position outside any endpoint stage, summary included, for the flow's verdict.
Decision explain_position(const Position& at, Verdict verdict);

// Appends the located stages to report.stages and, unless the verdict (report.verdict, set by
// the backend) is indeterminate, sets report.decided_by from the deciding position(s).
void explain(Report& report, const Located& located);

}  // namespace dpi::calico
