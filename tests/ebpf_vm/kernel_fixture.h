// The fixture's maps and stubs mirrored in the kernel: private fds, released on scope exit.
#pragma once

#include <vector>

#include "backends/ebpf/kernel/runner.h"
#include "backends/ebpf/vm/insn.h"

namespace dpi::bpfvm::test {

struct KernelFixture {
  KernelFixture();
  bpfkernel::KernelMap state;
  bpfkernel::KernelMap ipsets;
  bpfkernel::KernelMap progs;
  bpfkernel::KernelProg allow_stub;
  bpfkernel::KernelProg deny_stub;
  std::vector<bpfkernel::FdBinding> bindings;
};

// A copy of `insns` whose every exit jumps to an appended `r0 >>= 32; exit`: the kernel reports
// only the low 32 bits of r0, so each program is run twice to compare all 64.
std::vector<RawInsn> high_half_variant(const std::vector<RawInsn>& insns);

}  // namespace dpi::bpfvm::test
