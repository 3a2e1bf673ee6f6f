// `dpinspect trace`: the kernel's own path for one real packet of a flow, beside the static
// prediction. Backends produce a KernelPath (DataplaneBackend::trace); core compares and renders.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/flow.h"
#include "core/report.h"

namespace dpi {

inline constexpr const char* kTraceSchema = "dpinspect.trace/v1";

// What to trace: the flow's tuple, matching only what the user pinned down (a defaulted source
// port or ICMP type is not the next real packet's).
struct TraceRequest {
  Flow flow;
  bool match_sport = false;
  bool match_icmp = false;
  std::chrono::milliseconds timeout{30000};
  // Called once the tracing is in place, before waiting: "send the traffic now".
  std::function<void(const std::string& what)> on_ready;
};

// One event the kernel reported for the traced packet.
struct TraceEvent {
  std::string kind;  // rule, return, policy
  NftRuleLocation at;
  std::string verdict;  // accept, drop, continue, jump, goto, return, break, queue, stolen...
  std::string target;   // jump/goto target chain
  std::string iif, oif;
};

struct KernelPath {
  std::string source;  // "live netns node1"
  std::vector<TraceEvent> events;
  bool seen = false;  // false: no packet of the flow within the timeout
  Verdict verdict = Verdict::indeterminate;
  std::optional<std::size_t> deciding;  // index of the drop event, or of the last accept
  std::vector<std::string> notes;       // lost events, ...
};

// The differences between the kernel's path and the prediction; empty when they agree.
std::vector<std::string> trace_differences(const Report& predicted, const KernelPath& kernel);

std::string render_trace_text(const Report& predicted, const KernelPath& kernel,
                              const std::vector<std::string>& differences);
nlohmann::json trace_json(const Report& predicted, const KernelPath& kernel,
                          const std::vector<std::string>& differences);

}  // namespace dpi
