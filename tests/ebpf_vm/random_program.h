// Straight-line programs of random ALU operations and forward conditional jumps over registers
// r0..r9 all initialised with ld_imm64 (so the kernel's verifier accepts them), ending in a fold
// of every register into r0. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/ebpf/vm/insn.h"

namespace dpi::bpfvm::test {

std::vector<RawInsn> random_program(uint64_t seed, int body_len);

}  // namespace dpi::bpfvm::test
