// The interpreter: runs a loaded Program against a context and the maps it was loaded with.
//
// Registers hold plain 64-bit values; pointers are tagged: the upper 32 bits name a memory region
// of this run (the stack, the context, a map value returned by a helper), the lower 32 bits the
// offset in it. Every load and store checks its region's bounds (a shift, an index and a compare);
// nothing else is re-checked per instruction, the validator did that at load.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/vm/program.h"

namespace dpi::bpfvm {

enum class RunStatus {
  ok,                 // exited; r0 is the program's return value
  memory_error,       // a load or store outside every region (or a write to a read-only one)
  instruction_limit,  // more than RunOptions::instruction_limit instructions executed
  helper_error,       // a helper called with arguments the kernel's verifier would refuse
};

const char* to_string(RunStatus s);

struct TailCallStep {
  uint32_t index;          // the prog-array index taken
  const Program* program;  // the program it led to
};

// The kernel's MAX_TAIL_CALL_CNT: the 34th tail call in a chain fails (falls through).
inline constexpr uint32_t kMaxTailCalls = 33;

struct RunResult {
  RunStatus status = RunStatus::ok;
  uint64_t r0 = 0;
  uint64_t executed = 0;                  // instructions, across tail calls
  const Program* last_program = nullptr;  // the program that exited (or failed)
  uint32_t pc = 0;                        // raw index in last_program of the exit or the failure
  std::string error;                      // empty when ok
  std::array<TailCallStep, kMaxTailCalls> chain;  // the first chain_len are set
  uint32_t chain_len = 0;

  bool ok() const { return status == RunStatus::ok; }
  std::span<const TailCallStep> tail_calls() const { return {chain.data(), chain_len}; }
};

struct RunOptions {
  uint64_t instruction_limit = 1'000'000;
};

// Reusable scratch (stack, region table): one per thread; run() allocates nothing in the steady
// state. The context is read and written in place (a tc program's `struct __sk_buff`: 192 bytes,
// cb[0..4] at 48..67).
class Vm {
 public:
  Vm();
  RunResult run(const Program& prog, std::span<uint8_t> ctx, const RunOptions& opts = {});

 private:
  struct Region {
    uint8_t* base;
    uint32_t size;
    bool writable;
  };
  uint64_t add_region(uint8_t* base, uint32_t size, bool writable);

  alignas(16) std::array<uint8_t, 512> stack_{};
  // The lowest stack offset stored to since the stack was last zeroed (512: none).
  uint32_t stack_low_ = 512;
  std::vector<Region> regions_;
};

}  // namespace dpi::bpfvm
