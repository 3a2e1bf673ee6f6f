// A flows file for `compare`: one JSON object a line, e.g.
//   {"src": "10.65.0.2", "dst": "stars/frontend", "proto": "tcp", "dport": 80}
// Blank lines and lines starting with '#' are skipped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cli/flow_args.h"
#include "core/result.h"

namespace dpi::cli {

struct FlowSpec {
  std::string src, dst;
  FlowArgs args;
  std::string where;  // "flows.jsonl:3: "
};

Result<std::vector<FlowSpec>> read_flow_specs(std::string_view text, const std::string& origin);

}  // namespace dpi::cli
