// Runs one Calico policy program, as its debug JSON holds it, in the userspace interpreter: the
// state as a private array map, the node's IP sets as the LPM trie, the policy jump map as a
// private prog array holding the sub-programs, the static programs as two stubs (allow, deny)
// reached through skb->cb[0] / cb[1], as calico_tc_main sets them up. Nothing touches the kernel.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/node_state.h"
#include "backends/ebpf/rule_index.h"
#include "backends/ebpf/state.h"
#include "backends/ebpf/vm/lpm_map.h"
#include "backends/ebpf/vm/maps.h"
#include "backends/ebpf/vm/program.h"
#include "backends/ebpf/vm/vm.h"

namespace dpi::ebpf {

// The node's IP sets as the interpreter's LPM trie (built once per loaded node).
Result<std::unique_ptr<bpfvm::LpmMap>> build_ip_sets(const std::vector<RawEntry>& entries,
                                                     uint32_t key_size);

enum class PolicyAnswer : uint8_t { allow, deny, cannot_run };

struct PolicyRun {
  PolicyAnswer answer = PolicyAnswer::cannot_run;
  std::string why;  // cannot_run: the reason, naming the instruction, helper or limit
  PolicyState after;
  uint64_t executed = 0;
};

// A policy program ready to run: decoded and validated once.
class PolicyProgram {
 public:
  // index: the program's jump-map index (sub-program k sits at index + k*10000).
  static Result<std::unique_ptr<PolicyProgram>> load(const DebugProgram& prog,
                                                     const RuleIndex& rules,
                                                     const StateLayout& layout,
                                                     const bpfvm::LpmMap* ip_sets, uint32_t index);
  PolicyRun run(const PolicyState& in) const;

 private:
  PolicyProgram() = default;
  const StateLayout* layout_ = nullptr;
  int family_ = 4;
  // Mutable: a run writes the state and reads the stubs; one run at a time per program.
  mutable std::unique_ptr<bpfvm::ArrayMap> state_;
  std::unique_ptr<bpfvm::LpmMap> empty_ip_sets_;
  std::unique_ptr<bpfvm::ProgArray> stubs_;
  std::unique_ptr<bpfvm::ProgArray> jump_;
  std::vector<std::unique_ptr<bpfvm::Program>> progs_;  // sub-program k at k; stubs after
  const bpfvm::Program* allow_stub_ = nullptr;
  const bpfvm::Program* deny_stub_ = nullptr;
  // The interpreter's scratch (stack, region table), kept across runs so that a verdict
  // allocates nothing in the steady state.
  mutable std::unique_ptr<bpfvm::Vm> vm_;
};

}  // namespace dpi::ebpf
