// The interpreter against the kernel: every conformance case the verifier accepts, and thousands of
// random ALU/JMP programs, must return the same r0 (both halves) from both engines.
#include <optional>

#include <bpf/bpf.h>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "backends/ebpf/kernel/runner.h"
#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/vm.h"
#include "bench/felix_policy.h"
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

namespace dpi::bpfvm::test {

// Felix-shaped policy programs (bench/felix_policy.h) on random flows: the verdict (r0, 123 allow
// or 124 deny via the stubs) and everything the program writes to the state (pol_rc, rules_hit,
// rule_ids) must be identical.
TEST_CASE("Felix-shaped policies agree with the kernel", "[privileged][ebpf_vm]") {
  namespace b = dpi::bench;
  int flows_compared = 0, allowed = 0;
  for (int p = 0; p < 30; ++p) {
    b::PolicySpec spec;
    spec.seed = 7000 + p;
    spec.rules = 1 + (p * 37) % 200;
    spec.ip_sets = 4 + p % 13;
    spec.members_per_set = 16 << (p % 5);
    b::SynthPolicy pol = b::make_policy(spec);
    INFO("policy seed " << spec.seed << ", " << spec.rules << " rules");

    // Interpreter side.
    ArrayMap state(b::kStateSize, 2);
    auto ipsets = LpmMap::create(b::kIpSetKeySize, 4);
    REQUIRE(ipsets.ok());
    const uint8_t one[4] = {1, 0, 0, 0};
    for (const auto& k : pol.members) REQUIRE(ipsets->insert(k, one).ok());
    Fixture fx;  // the stubs and the context
    MapTable maps = {{b::kStateFd, &state}, {b::kIpSetsFd, &*ipsets}, {b::kProgsFd, &fx.progs}};
    auto prog = Program::load(pol.insns, maps, "policy");
    INFO((prog.ok() ? "" : prog.error().message));
    REQUIRE(prog.ok());

    // Kernel side.
    auto kstate = bpfkernel::create_array_map(b::kStateSize, 2);
    auto kipsets = bpfkernel::create_lpm_map(b::kIpSetKeySize, 4, 1 << 16);
    REQUIRE(kstate.ok());
    REQUIRE(kipsets.ok());
    for (const auto& k : pol.members) REQUIRE(bpfkernel::map_update(*kipsets, k, one).ok());
    KernelFixture kfx;  // the stubs' prog array
    const bpfkernel::FdBinding kmaps[] = {
        {b::kStateFd, &*kstate}, {b::kIpSetsFd, &*kipsets}, {b::kProgsFd, &kfx.progs}};
    auto kprog = bpfkernel::load_program(pol.insns, kmaps, "policy");
    INFO((kprog.ok() ? "" : kprog.error().message));
    REQUIRE(kprog.ok());

    Vm vm;
    const uint32_t key0 = 0;
    const auto key = std::span(reinterpret_cast<const uint8_t*>(&key0), 4);
    for (const b::SynthFlow& f : b::make_flows(pol, 100, spec.seed)) {
      b::fill_state(state.value(0), f);
      std::vector<uint8_t> input(state.value(0).begin(), state.value(0).end());
      RunResult r = vm.run(*prog, fx.ctx);
      INFO(r.error);
      REQUIRE(r.ok());
      REQUIRE(bpfkernel::map_update(*kstate, key, input).ok());
      auto k = bpfkernel::test_run(*kprog, fx.ctx);
      REQUIRE(k.ok());
      auto kout = bpfkernel::map_lookup(*kstate, key);
      REQUIRE(kout.ok());
      CHECK(r.r0 == k->retval);
      const auto vout = state.value(0);
      CHECK(std::equal(vout.begin() + b::kOffPolRc, vout.begin() + b::kOffRuleIds + 256,
                       kout->begin() + b::kOffPolRc));
      ++flows_compared;
      allowed += r.r0 == 123;
    }
  }
  WARN(fmt::format("kernel agreement: {} Felix-shaped flows ({} allowed), verdicts and state equal",
                   flows_compared, allowed));
  // Both verdicts must occur, or the comparison proves little.
  CHECK(allowed > flows_compared / 10);
  CHECK(allowed < flows_compared * 9 / 10);
}

}  // namespace dpi::bpfvm::test

namespace dpi::bpfvm::test {

// A program that tail-calls itself and counts in cb[2]: the kernel allows 33 tail calls, the 34th
// falls through; the interpreter must stop at the same count.
TEST_CASE("the tail-call limit agrees with the kernel", "[privileged][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  const std::vector<RawInsn> code = {mov64_reg(6, 1),
                                     ldx(op::kSizeW, 4, 6, 56),
                                     alu64_imm(op::kAdd, 4, 1),
                                     stx(op::kSizeW, 6, 4, 56),
                                     mov64_imm(3, 0),
                                     ld_map_fd_lo(2, 9),
                                     ld_map_fd_hi(),
                                     mov64_reg(1, 6),
                                     call(op::kHelperTailCall),
                                     ldx(op::kSizeW, 0, 6, 56),
                                     exit()};
  ProgArray self(1);
  const MapTable maps = {{9, &self}};
  auto prog = Program::load(code, maps);
  REQUIRE(prog.ok());
  self.set(0, &*prog);
  std::array<uint8_t, 192> ctx{};
  RunResult r = Vm().run(*prog, ctx);
  REQUIRE(r.ok());

  auto kself = bpfkernel::create_prog_array(1);
  REQUIRE(kself.ok());
  const bpfkernel::FdBinding kmaps[] = {{9, &*kself}};
  auto kprog = bpfkernel::load_program(code, kmaps, "self_tail");
  INFO((kprog.ok() ? "" : kprog.error().message));
  REQUIRE(kprog.ok());
  REQUIRE(bpfkernel::prog_array_set(*kself, 0, *kprog).ok());
  const std::array<uint8_t, 192> fresh_ctx{};  // the interpreter's run counted in ctx
  auto k = bpfkernel::test_run(*kprog, fresh_ctx);
  REQUIRE(k.ok());
  CHECK(k->retval == r.r0);
  CHECK(r.r0 == kMaxTailCalls + 1);
  // The program holds its own prog array, which holds the program: break the cycle so both are
  // freed when the fds close.
  const uint32_t slot = 0;
  CHECK(bpf_map_delete_elem(kself->fd.get(), &slot) == 0);
}

}  // namespace dpi::bpfvm::test
