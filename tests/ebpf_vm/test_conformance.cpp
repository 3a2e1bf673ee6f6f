// Every RFC 9669 conformance case through the interpreter.
#include <catch2/catch.hpp>

#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/vm.h"
#include "tests/ebpf_vm/conformance_cases.h"
#include "tests/ebpf_vm/fixture.h"

namespace dpi::bpfvm::test {

TEST_CASE("interpreter conformance (RFC 9669)", "[unit][ebpf_vm]") {
  for (const Case& c : conformance_cases()) {
    SECTION(c.name) {
      Fixture fx;
      auto prog = Program::load(c.insns, fx.maps, "case");
      if (c.expect == Expect::load_error) {
        REQUIRE_FALSE(prog.ok());
        CHECK_THAT(prog.error().message, Catch::Contains(c.error));
        continue;
      }
      INFO((prog.ok() ? "" : prog.error().message));
      REQUIRE(prog.ok());
      Vm vm;
      RunResult r = vm.run(*prog, fx.ctx);
      if (c.expect == Expect::run_error) {
        REQUIRE_FALSE(r.ok());
        CHECK_THAT(r.error, Catch::Contains(c.error));
        continue;
      }
      INFO(r.error);
      REQUIRE(r.ok());
      CHECK(r.r0 == c.r0);
    }
  }
}

TEST_CASE("run errors name the instruction", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  Fixture fx;
  const RawInsn code[] = {mov64_imm(0, 0), ld_imm64_lo(1, 0), ld_imm64_hi(0),
                          ldx(op::kSizeW, 0, 1, 4), exit()};
  auto prog = Program::load(code, fx.maps, "pol");
  REQUIRE(prog.ok());
  RunResult r = Vm().run(*prog, fx.ctx);
  CHECK(r.status == RunStatus::memory_error);
  CHECK(r.pc == 3);  // the raw index, counting both ld_imm64 slots
  CHECK_THAT(r.error, Catch::StartsWith("pol insn 3:"));
}

TEST_CASE("the instruction limit is configurable and counted", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  const RawInsn loop[] = {mov64_imm(0, 0), alu64_imm(op::kAdd, 0, 1), jmp_imm(op::kJlt, 0, 100, -2),
                          exit()};
  auto prog = Program::load(loop, {});
  REQUIRE(prog.ok());
  std::array<uint8_t, 192> ctx{};
  Vm vm;
  RunResult full = vm.run(*prog, ctx);
  REQUIRE(full.ok());
  CHECK(full.executed == 1 + 100 * 2 + 1);
  RunResult cut = vm.run(*prog, ctx, RunOptions{50});
  CHECK(cut.status == RunStatus::instruction_limit);
  CHECK(cut.executed == 50);
}

// The Vm re-zeroes only the stack bytes earlier runs stored to: a second run on the same Vm
// must still read zeros everywhere, whether the first stored through r10 or a copy of it.
TEST_CASE("every run starts on a zeroed stack", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  const RawInsn dirty[] = {st(op::kSizeDw, 10, -8, -1),
                           mov64_reg(1, 10),
                           alu64_imm(op::kAdd, 1, -512),
                           mov64_imm(2, 7),
                           stx(op::kSizeB, 1, 2, 0),
                           stx(op::kSizeDw, 1, 2, 200),
                           mov64_imm(0, 0),
                           exit()};
  const RawInsn read[] = {ldx(op::kSizeDw, 0, 10, -8), ldx(op::kSizeB, 1, 10, -512),
                          alu64_reg(op::kOr, 0, 1),    ldx(op::kSizeDw, 1, 10, -312),
                          alu64_reg(op::kOr, 0, 1),    exit()};
  auto p1 = Program::load(dirty, {});
  auto p2 = Program::load(read, {});
  REQUIRE(p1.ok());
  REQUIRE(p2.ok());
  std::array<uint8_t, 192> ctx{};
  Vm vm;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(vm.run(*p1, ctx).ok());
    RunResult r = vm.run(*p2, ctx);
    REQUIRE(r.ok());
    CHECK(r.r0 == 0);
  }
}

TEST_CASE("tail calls are recorded in the result", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  Fixture fx;
  const RawInsn code[] = {ldx(op::kSizeW, 3, 1, 52), ld_map_fd_lo(2, kProgsFd), ld_map_fd_hi(),
                          call(op::kHelperTailCall), mov64_imm(0, 2),           exit()};
  auto prog = Program::load(code, fx.maps, "policy");
  REQUIRE(prog.ok());
  RunResult r = Vm().run(*prog, fx.ctx);
  REQUIRE(r.ok());
  CHECK(r.r0 == 124);
  REQUIRE(r.tail_calls().size() == 1);
  CHECK(r.tail_calls()[0].index == kDenyIndex);
  CHECK(r.tail_calls()[0].program == fx.deny_stub.get());
  CHECK(r.last_program == fx.deny_stub.get());
}

TEST_CASE("a chain of tail calls stops after 33", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  // A program that tail-calls itself (slot 0) and counts in cb[2]: the kernel allows 33 tail calls.
  ProgArray self(1);
  MapTable maps = {{9, &self}};
  const RawInsn code[] = {mov64_reg(6, 1),
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
  auto prog = Program::load(code, maps);
  REQUIRE(prog.ok());
  self.set(0, &*prog);
  std::array<uint8_t, 192> ctx{};
  RunResult r = Vm().run(*prog, ctx);
  REQUIRE(r.ok());
  CHECK(r.r0 == kMaxTailCalls + 1);
  CHECK(r.tail_calls().size() == kMaxTailCalls);
}

TEST_CASE("instruction bytes round-trip", "[unit][ebpf_vm]") {
  using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
  const RawInsn code[] = {ld_imm64_lo(3, 0x123456789abcdefull), ld_imm64_hi(0x123456789abcdefull),
                          jmp_reg(op::kJsle, 3, 9, -300), exit()};
  std::vector<uint8_t> bytes = encode_bytes(code);
  REQUIRE(bytes.size() == 32);
  CHECK(bytes[0] == 0x18);
  CHECK(bytes[1] == 0x03);
  CHECK(bytes[17] == 0x93);  // dst 3, src 9
  auto back = decode_bytes(bytes);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 4);
  CHECK((*back)[2].off == -300);
  CHECK((*back)[0].imm == static_cast<int32_t>(0x89abcdef));
  CHECK_FALSE(decode_bytes(std::span(bytes).first(13)).ok());
}

}  // namespace dpi::bpfvm::test
