// Which engine runs a policy program for inspect (--engine): dpinspect's interpreter
// (PolicyProgram, no kernel), the kernel itself (KernelPolicyProgram: a private copy run with
// BPF_PROG_TEST_RUN, root only), or both, whose answers must then agree. A disagreement is not
// resolved in favour of either: the stage is indeterminate with both answers (principle 2).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/node_state.h"
#include "backends/ebpf/policy_runner.h"
#include "backends/ebpf/rule_index.h"
#include "backends/ebpf/state.h"
#include "backends/ebpf/vm/lpm_map.h"
#include "core/result.h"

namespace dpi::ebpf {

enum class Engine : uint8_t { interp, kernel, both };

inline constexpr const char* kEngineOption = "engine";
inline constexpr const char* kDefaultEngine = "interp";

std::optional<Engine> parse_engine(std::string_view s);
const char* engine_name(Engine e);
// The report's assumption line: where the policy programs ran.
std::string engine_assumption(Engine e);
inline bool uses_kernel(Engine e) {
  return e != Engine::interp;
}
inline bool uses_interp(Engine e) {
  return e != Engine::kernel;
}

class KernelPolicyProgram;
class KernelIpSets;

// One stage's answers: one per engine that ran.
struct EngineRuns {
  std::optional<PolicyRun> interp;
  std::optional<PolicyRun> kernel;
  // Both ran and differ in answer, pol_rc, rules hit or any recorded rule id: the difference in
  // words ("interpreter: allow, ...; kernel: deny, ..."). Empty when they agree or one ran.
  std::string disagreement;

  // The answer the report uses: the interpreter's when it ran, else the kernel's.
  const PolicyRun& answer() const { return interp ? *interp : *kernel; }
  // The stage's evidence: each engine's answer, and whether they agreed.
  nlohmann::json evidence() const;
};

// One policy program, loaded into the engines chosen.
class EnginePrograms {
 public:
  EnginePrograms();
  ~EnginePrograms();
  EnginePrograms(EnginePrograms&&) = delete;
  EnginePrograms& operator=(EnginePrograms&&) = delete;
  EnginePrograms(const EnginePrograms&) = delete;
  EnginePrograms& operator=(const EnginePrograms&) = delete;

  EngineRuns run(const PolicyState& in) const;

 private:
  friend class PolicyEngines;
  std::unique_ptr<PolicyProgram> interp_;
  std::unique_ptr<KernelPolicyProgram> kernel_;
  // With both engines, one that refused the program answers cannot_run with this reason.
  std::string interp_error_;
  std::string kernel_error_;
  bool want_interp_ = false;
  bool want_kernel_ = false;
};

// The engines of one loaded node: the choice, and the kernel's private copy of the IP sets (built
// once). Everything the kernel engine creates is an fd owned here or by an EnginePrograms; nothing
// is pinned, and it is all released with them.
class PolicyEngines {
 public:
  // The kernel engines need root: a clear permission error otherwise.
  static Result<std::unique_ptr<PolicyEngines>> create(Engine e,
                                                       const std::vector<RawEntry>& ip_sets4);
  ~PolicyEngines();
  PolicyEngines(const PolicyEngines&) = delete;
  PolicyEngines& operator=(const PolicyEngines&) = delete;

  Engine engine() const { return engine_; }
  // With one engine its refusal is the error; with both, only when both refuse.
  Result<std::unique_ptr<EnginePrograms>> load(const DebugProgram& prog, const RuleIndex& rules,
                                               const StateLayout& layout,
                                               const bpfvm::LpmMap* ip_sets, uint32_t index) const;

 private:
  explicit PolicyEngines(Engine e);
  Engine engine_;
  std::unique_ptr<KernelIpSets> kernel_ip_sets_;
};

}  // namespace dpi::ebpf
