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

}  // namespace dpi::calico
