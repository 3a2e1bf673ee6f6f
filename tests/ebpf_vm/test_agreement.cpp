// The interpreter against the kernel: every conformance case the verifier accepts, and thousands of
// random ALU/JMP programs, must return the same r0 (both halves) from both engines.
#include <optional>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/ebpf/kernel/runner.h"
#include "backends/ebpf/vm/vm.h"
#include "tests/ebpf_vm/conformance_cases.h"
#include "tests/ebpf_vm/fixture.h"
#include "tests/ebpf_vm/kernel_fixture.h"
#include "tests/ebpf_vm/random_program.h"

namespace dpi::bpfvm::test {

namespace {

// r0 as the kernel computes it (low and high halves from two loads), or the verifier's error.
struct KernelR0 {
  bool loaded = false;
  uint64_t r0 = 0;
  bool high_known = true;  // false when a tail call ended the run (the stub's r0 has no high half)
  std::string error;
};

KernelR0 kernel_r0(const std::vector<RawInsn>& insns, bool tail_called) {
  KernelFixture kfx;
  Fixture fx;  // only for the context bytes
  KernelR0 out;
  auto lo = bpfkernel::load_program(insns, kfx.bindings, "case");
  if (!lo) {
    out.error = lo.error().message;
    return out;
  }
  out.loaded = true;
  auto run_lo = bpfkernel::test_run(*lo, fx.ctx);
  if (!run_lo) {
    out.error = run_lo.error().message;
    out.loaded = false;
    return out;
  }
  out.r0 = run_lo->retval;
  if (tail_called) {
    out.high_known = false;
    return out;
  }
  KernelFixture kfx2;  // fresh maps: the first run may have written the state
  auto hi = bpfkernel::load_program(high_half_variant(insns), kfx2.bindings, "case_hi");
  if (!hi) {
    out.error = "high-half variant: " + hi.error().message;
    out.loaded = false;
    return out;
  }
  auto run_hi = bpfkernel::test_run(*hi, fx.ctx);
  if (!run_hi) {
    out.error = run_hi.error().message;
    out.loaded = false;
    return out;
  }
  out.r0 |= static_cast<uint64_t>(run_hi->retval) << 32;
  return out;
}

}  // namespace

TEST_CASE("conformance cases agree with the kernel", "[privileged][ebpf_vm]") {
  int compared = 0, rejected = 0, skipped = 0;
  for (const Case& c : conformance_cases()) {
    INFO("case: " << c.name);
    if (c.kernel == Kernel::not_compared) {
      ++skipped;
      continue;
    }
    Fixture fx;
    std::optional<RunResult> vm_result;
    if (auto prog = Program::load(c.insns, fx.maps, "case")) vm_result = Vm().run(*prog, fx.ctx);
    const bool tail_called = vm_result && vm_result->chain_len > 0;
    KernelR0 k = kernel_r0(c.insns, tail_called);
    if (c.kernel == Kernel::rejects) {
      INFO("expected the verifier to refuse it (" << c.kernel_note << ")");
      CHECK_FALSE(k.loaded);
      ++rejected;
      continue;
    }
    INFO(k.error);
    REQUIRE(k.loaded);
    REQUIRE(vm_result.has_value());
    REQUIRE(vm_result->ok());
    if (k.high_known) {
      CHECK(vm_result->r0 == k.r0);
    } else {
      CHECK(static_cast<uint32_t>(vm_result->r0) == k.r0);
    }
    ++compared;
  }
  WARN(
      fmt::format("kernel agreement: {} cases compared, {} refused by the verifier as expected, {} "
                  "not comparable",
                  compared, rejected, skipped));
  CHECK(compared > 100);
}

TEST_CASE("random ALU/JMP programs agree with the kernel", "[privileged][ebpf_vm]") {
  constexpr int kPrograms = 3000;
  std::array<uint8_t, 192> ctx{};
  Vm vm;
  int agreed = 0;
  for (int i = 0; i < kPrograms; ++i) {
    const uint64_t seed = 0x5eed0000u + static_cast<uint64_t>(i);
    std::vector<RawInsn> insns = random_program(seed, 20 + i % 60);
    auto prog = Program::load(insns, {});
    INFO("seed " << seed << (prog.ok() ? "" : ": " + prog.error().message));
    REQUIRE(prog.ok());
    RunResult r = vm.run(*prog, ctx);
    REQUIRE(r.ok());
    auto lo = bpfkernel::load_program(insns, {}, "rand");
    INFO((lo.ok() ? "" : lo.error().message));
    REQUIRE(lo.ok());
    auto hi = bpfkernel::load_program(high_half_variant(insns), {}, "rand_hi");
    REQUIRE(hi.ok());
    auto klo = bpfkernel::test_run(*lo, ctx);
    auto khi = bpfkernel::test_run(*hi, ctx);
    REQUIRE(klo.ok());
    REQUIRE(khi.ok());
    const uint64_t kernel = klo->retval | (static_cast<uint64_t>(khi->retval) << 32);
    INFO(fmt::format("interpreter 0x{:016x}, kernel 0x{:016x}", r.r0, kernel));
    REQUIRE(r.r0 == kernel);
    ++agreed;
  }
  WARN(fmt::format("kernel agreement: {} random programs, all equal", agreed));
}

}  // namespace dpi::bpfvm::test
