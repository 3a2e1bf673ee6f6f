// The first half of attribution for nftables and iptables-nft: the path the evaluator recorded,
// read as Calico positions (which endpoint chain, policy or profile chain, tier, rule, or which of
// Calico's special rules decided). Rule text and comments are read here, never in core/; core
// (core/calico/attribution.h) turns the positions into the report's decisions and sentences.
#pragma once

#include <optional>
#include <vector>

#include "core/calico/attribution.h"
#include "core/calico/position.h"
#include "core/report.h"

namespace dpi::nft {

// The positions behind a recorded path. deciding_step: the index of the deciding rule in path
// (none when a base chain's policy decided); deciding_rule: that rule or policy, as the evaluator
// found it.
calico::Located locate_positions(const std::vector<PathStep>& path, Verdict verdict,
                                 std::optional<std::size_t> deciding_step,
                                 const std::optional<RuleRef>& deciding_rule,
                                 const calico::MarkBits& bits = {});

// Both halves: fills report.stages and report.decided_by (kind, summary, tier, policy...). Expects
// report.path, report.verdict and report.decided_by.rule to be set by the evaluator.
void attribute(Report& report, std::optional<std::size_t> deciding_step,
               const calico::MarkBits& bits = {});

}  // namespace dpi::nft

namespace dpi::calico {
// The name the attribution of a recorded path had when it lived in core.
using nft::attribute;
}  // namespace dpi::calico
