// Conformance cases written from RFC 9669 (the BPF instruction set): instructions and the r0 they
// must return, or the error they must give. Each also says what the kernel's verifier makes of it:
// the agreement test runs every case the kernel accepts on the kernel too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "backends/ebpf/vm/insn.h"

namespace dpi::bpfvm::test {

enum class Expect { r0, load_error, run_error };
enum class Kernel {
  compare,       // the kernel accepts it and must return the same r0
  rejects,       // the kernel's verifier refuses it (kernel_note says why); asserted
  not_compared,  // cannot be run there as is (kernel_note says why)
};

struct Case {
  std::string name;
  std::vector<RawInsn> insns;
  Expect expect = Expect::r0;
  uint64_t r0 = 0;
  std::string error;  // a substring of the load or run error
  Kernel kernel = Kernel::compare;
  std::string kernel_note;
};

const std::vector<Case>& conformance_cases();

}  // namespace dpi::bpfvm::test
