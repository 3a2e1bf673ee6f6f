// The report for humans: verdict and reason first, evidence after.
#pragma once

#include <string>

#include "core/report.h"

namespace dpi {

struct TextOptions {
  bool verbose = false;  // print the whole path, not only jumps and verdicts
};

std::string render_text(const Report& r, const TextOptions& opts = {});

// Where a rule is: "ip calico filter-FORWARD handle 12", "bpf prog 42 calico_tc_main (tc ingress
// cali1234567890a) insn 7".
std::string rule_location(const RuleRef& r);

}  // namespace dpi
