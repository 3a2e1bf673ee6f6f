// The kernel engine for one Calico policy program: its sub-programs, as the debug JSON holds them,
// loaded as new SCHED_CLS programs bound to a PRIVATE state array, a private copy of the IP sets
// (an LPM trie), a private static-program array holding the allow/drop stubs and a private policy
// jump map; run with BPF_PROG_TEST_RUN. Never the node's maps; nothing pinned; everything is an fd
// released with the object. Root only (CAP_BPF, CAP_NET_ADMIN). The same contract as
// PolicyProgram (policy_runner.h), so that the two engines can be compared answer for answer.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/kernel/runner.h"
#include "backends/ebpf/node_state.h"
#include "backends/ebpf/policy_runner.h"
#include "backends/ebpf/rule_index.h"
#include "backends/ebpf/state.h"

namespace dpi::ebpf {

// The node's IP sets (raw 20-byte v4 LPM keys and values) copied into a private LPM trie: built
// once, shared by every program loaded against it.
Result<bpfkernel::KernelMap> build_kernel_ip_sets(const std::vector<RawEntry>& entries);

class KernelPolicyProgram {
 public:
  // index: the program's jump-map index (sub-program k sits at index + k*10000). The programs
  // hold their own reference to ip_sets: it may be closed after load.
  static Result<std::unique_ptr<KernelPolicyProgram>> load(const DebugProgram& prog,
                                                           const RuleIndex& rules,
                                                           const StateLayout& layout,
                                                           const bpfkernel::KernelMap& ip_sets,
                                                           uint32_t index);
  // One BPF_PROG_TEST_RUN; `executed` stays 0 (the kernel does not count instructions).
  PolicyRun run(const PolicyState& in) const;

 private:
  KernelPolicyProgram() = default;
  const StateLayout* layout_ = nullptr;
  std::string file_;
  bpfkernel::KernelMap state_;
  bpfkernel::KernelMap stubs_;
  bpfkernel::KernelMap jump_;
  bpfkernel::KernelProg allow_stub_;
  bpfkernel::KernelProg deny_stub_;
  std::vector<bpfkernel::KernelProg> progs_;  // sub-program k at k
};

}  // namespace dpi::ebpf
