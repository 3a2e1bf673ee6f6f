#include "tests/ebpf_vm/conformance_cases.h"

#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/opcodes.h"
#include "tests/ebpf_vm/fixture.h"

namespace dpi::bpfvm::test {

namespace {

using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
using namespace dpi::bpfvm::op;  // NOLINT(google-build-using-namespace)

using Insns = std::vector<RawInsn>;

// ld_imm64 as the two slots it occupies.
Insns lddw(uint8_t dst, uint64_t v) {
  return {ld_imm64_lo(dst, v), ld_imm64_hi(v)};
}
Insns cat(std::initializer_list<Insns> parts) {
  Insns out;
  for (const Insns& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Case ok(std::string name, Insns insns, uint64_t r0) {
  return Case{std::move(name), std::move(insns), Expect::r0, r0, {}, Kernel::compare, {}};
}
Case load_error(std::string name, Insns insns, std::string error, Kernel kernel,
                std::string note = {}) {
  return Case{std::move(name),  std::move(insns), Expect::load_error, 0,
              std::move(error), kernel,           std::move(note)};
}
Case run_error(std::string name, Insns insns, std::string error, std::string why_kernel_rejects) {
  return Case{std::move(name),
              std::move(insns),
              Expect::run_error,
              0,
              std::move(error),
              Kernel::rejects,
              std::move(why_kernel_rejects)};
}
Case kernel_rejects(Case c, std::string why) {
  c.kernel = Kernel::rejects;
  c.kernel_note = std::move(why);
  return c;
}

constexpr uint64_t kMin64 = 0x8000000000000000ull;
constexpr uint64_t kPattern = 0x0102030405060708ull;

// r0 = 1 if `if dst <op> operand` is taken, else 0.
Insns taken(RawInsn jump_with_off_1) {
  return {mov64_imm(0, 1), jump_with_off_1, mov64_imm(0, 0), exit()};
}

std::vector<Case> build() {
  std::vector<Case> c;
  // --- ALU64 / ALU: immediates, sign and zero extension, 32-bit wrap.
  c.push_back(ok("mov64 imm is sign-extended", {mov64_imm(0, -1), exit()}, ~0ull));
  c.push_back(ok("mov32 imm is zero-extended", {mov32_imm(0, -1), exit()}, 0xffffffffull));
  c.push_back(ok("mov32 reg zero-extends", cat({lddw(1, ~0ull), {alu32_reg(kMov, 0, 1), exit()}}),
                 0xffffffffull));
  c.push_back(ok("add64 negative imm", {mov64_imm(0, 1), alu64_imm(kAdd, 0, -2), exit()}, ~0ull));
  c.push_back(
      ok("add32 wraps at 2^32", cat({lddw(0, 0xffffffffull), {alu32_imm(kAdd, 0, 1), exit()}}), 0));
  c.push_back(ok("add32 clears the upper half",
                 cat({lddw(0, 0xdeadbeef00000001ull), {alu32_imm(kAdd, 0, 1), exit()}}), 2));
  c.push_back(ok("sub64 reg below zero",
                 {mov64_imm(0, 3), mov64_imm(1, 5), alu64_reg(kSub, 0, 1), exit()},
                 static_cast<uint64_t>(-2)));
  c.push_back(ok("sub32 reg below zero",
                 {mov64_imm(0, 3), mov64_imm(1, 5), alu32_reg(kSub, 0, 1), exit()}, 0xfffffffeull));
  c.push_back(
      ok("mul64", cat({lddw(0, 0x100000001ull), {alu64_imm(kMul, 0, 3), exit()}}), 0x300000003ull));
  c.push_back(ok("mul64 by negative imm", {mov64_imm(0, 5), alu64_imm(kMul, 0, -1), exit()},
                 static_cast<uint64_t>(-5)));
  c.push_back(ok("mul32 wraps", {mov32_imm(0, 0x10000), alu32_imm(kMul, 0, 0x10000), exit()}, 0));
  c.push_back(
      ok("div64 reg", {mov64_imm(0, 100), mov64_imm(1, 7), alu64_reg(kDiv, 0, 1), exit()}, 14));
  c.push_back(ok("div64 is unsigned", {mov64_imm(0, -1), alu64_imm(kDiv, 0, 2), exit()},
                 0x7fffffffffffffffull));
  c.push_back(ok("div64 imm -1 is sign-extended (unsigned max)",
                 {mov64_imm(0, -1), alu64_imm(kDiv, 0, -1), exit()}, 1));
  c.push_back(
      ok("div32 imm -1 is 0xffffffff", {mov64_imm(0, -1), alu32_imm(kDiv, 0, -1), exit()}, 1));
  c.push_back(ok("div64 by zero register gives 0",
                 {mov64_imm(0, 42), mov64_imm(1, 0), alu64_reg(kDiv, 0, 1), exit()}, 0));
  c.push_back(ok(
      "div32 by zero register gives 0",
      cat({lddw(0, 0xffffffff00000005ull), {mov64_imm(1, 0), alu32_reg(kDiv, 0, 1), exit()}}), 0));
  c.push_back(ok("div32 by a register whose low half is zero",
                 cat({lddw(1, 0x100000000ull), {mov64_imm(0, 9), alu32_reg(kDiv, 0, 1), exit()}}),
                 0));
  c.push_back(
      ok("mod64 reg", {mov64_imm(0, 100), mov64_imm(1, 7), alu64_reg(kMod, 0, 1), exit()}, 2));
  c.push_back(ok("mod64 by zero register leaves dst",
                 cat({lddw(0, 0x123456789ull), {mov64_imm(1, 0), alu64_reg(kMod, 0, 1), exit()}}),
                 0x123456789ull));
  c.push_back(ok("mod32 by zero register truncates dst",
                 cat({lddw(0, 0x123456789ull), {mov64_imm(1, 0), alu32_reg(kMod, 0, 1), exit()}}),
                 0x23456789ull));
  c.push_back(ok("mod32 imm", {mov64_imm(0, -1), alu32_imm(kMod, 0, 10), exit()}, 5));
  // Signed division: DIV/MOD with offset 1.
  auto sdiv64 = [](uint8_t d, uint8_t s) { return raw(kClassAlu64 | kSrcX | kDiv, d, s, 1, 0); };
  auto smod64 = [](uint8_t d, uint8_t s) { return raw(kClassAlu64 | kSrcX | kMod, d, s, 1, 0); };
  auto sdiv32 = [](uint8_t d, uint8_t s) { return raw(kClassAlu | kSrcX | kDiv, d, s, 1, 0); };
  auto smod32 = [](uint8_t d, uint8_t s) { return raw(kClassAlu | kSrcX | kMod, d, s, 1, 0); };
  c.push_back(ok("sdiv64 rounds toward zero",
                 {mov64_imm(0, -7), mov64_imm(1, 2), sdiv64(0, 1), exit()},
                 static_cast<uint64_t>(-3)));
  c.push_back(ok("smod64 takes the dividend's sign",
                 {mov64_imm(0, -7), mov64_imm(1, 2), smod64(0, 1), exit()},
                 static_cast<uint64_t>(-1)));
  c.push_back(
      ok("sdiv64 by zero gives 0", {mov64_imm(0, -7), mov64_imm(1, 0), sdiv64(0, 1), exit()}, 0));
  c.push_back(ok("smod64 by zero leaves dst",
                 {mov64_imm(0, -7), mov64_imm(1, 0), smod64(0, 1), exit()},
                 static_cast<uint64_t>(-7)));
  c.push_back(ok("sdiv64 INT64_MIN / -1 wraps",
                 cat({lddw(0, kMin64), {mov64_imm(1, -1), sdiv64(0, 1), exit()}}), kMin64));
  c.push_back(ok("smod64 INT64_MIN % -1 is 0",
                 cat({lddw(0, kMin64), {mov64_imm(1, -1), smod64(0, 1), exit()}}), 0));
  c.push_back(
      ok("sdiv32", {mov64_imm(0, -7), mov64_imm(1, 2), sdiv32(0, 1), exit()}, 0xfffffffdull));
  c.push_back(ok("smod32 by zero truncates dst",
                 {mov64_imm(0, -7), mov64_imm(1, 0), smod32(0, 1), exit()}, 0xfffffff9ull));
  c.push_back(ok("sdiv imm",
                 {mov64_imm(0, -9), raw(kClassAlu64 | kSrcK | kDiv, 0, 0, 1, 3), exit()},
                 static_cast<uint64_t>(-3)));
  // Bitwise.
  c.push_back(ok("or64", cat({lddw(0, 0xf000000000000000ull), {alu64_imm(kOr, 0, 0x0f), exit()}}),
                 0xf00000000000000full));
  c.push_back(ok("and64 imm sign-extends", cat({lddw(0, ~0ull), {alu64_imm(kAnd, 0, -16), exit()}}),
                 0xfffffffffffffff0ull));
  c.push_back(ok("and32", cat({lddw(0, ~0ull), {alu32_imm(kAnd, 0, 0xff), exit()}}), 0xff));
  c.push_back(ok("xor64 reg",
                 cat({lddw(0, kPattern), lddw(1, ~0ull), {alu64_reg(kXor, 0, 1), exit()}}),
                 ~kPattern));
  c.push_back(ok("xor32 clears the upper half",
                 cat({lddw(0, kPattern), {alu32_imm(kXor, 0, 0), exit()}}), 0x05060708ull));
  // Shifts: amounts are masked to the width.
  c.push_back(ok("lsh64 by 63", {mov64_imm(0, 1), alu64_imm(kLsh, 0, 63), exit()}, kMin64));
  c.push_back(ok("lsh64 by register 64 is by 0",
                 {mov64_imm(0, 1), mov64_imm(1, 64), alu64_reg(kLsh, 0, 1), exit()}, 1));
  c.push_back(ok("lsh32 by register 33 is by 1",
                 {mov64_imm(0, 1), mov64_imm(1, 33), alu32_reg(kLsh, 0, 1), exit()}, 2));
  c.push_back(ok("lsh32 drops bits past 32", {mov64_imm(0, -1), alu32_imm(kLsh, 0, 4), exit()},
                 0xfffffff0ull));
  c.push_back(kernel_rejects(
      ok("lsh64 by imm 64 is by 0", {mov64_imm(0, 3), alu64_imm(kLsh, 0, 64), exit()}, 3),
      "the verifier refuses shifts by an immediate >= the width"));
  c.push_back(kernel_rejects(
      ok("rsh32 by imm 35 is by 3", {mov64_imm(0, 64), alu32_imm(kRsh, 0, 35), exit()}, 8),
      "the verifier refuses shifts by an immediate >= the width"));
  c.push_back(ok("rsh64 is logical", {mov64_imm(0, -1), alu64_imm(kRsh, 0, 60), exit()}, 0xf));
  c.push_back(ok("rsh32 is logical on the low half",
                 {mov64_imm(0, -1), alu32_imm(kRsh, 0, 4), exit()}, 0x0fffffffull));
  c.push_back(ok("arsh64 keeps the sign", {mov64_imm(0, -16), alu64_imm(kArsh, 0, 2), exit()},
                 static_cast<uint64_t>(-4)));
  c.push_back(ok("arsh32 sign is bit 31, result zero-extended",
                 {mov32_imm(0, static_cast<int32_t>(0x80000000u)), alu32_imm(kArsh, 0, 4), exit()},
                 0xf8000000ull));
  c.push_back(ok("arsh64 by register 65 is by 1",
                 {mov64_imm(0, -4), mov64_imm(1, 65), alu64_reg(kArsh, 0, 1), exit()},
                 static_cast<uint64_t>(-2)));
  c.push_back(
      ok("arsh64 of a positive value", {mov64_imm(0, 0x40), alu64_imm(kArsh, 0, 3), exit()}, 8));
  c.push_back(ok("neg64", {mov64_imm(0, 5), raw(kClassAlu64 | kNeg, 0, 0, 0, 0), exit()},
                 static_cast<uint64_t>(-5)));
  c.push_back(ok("neg32 zero-extends", {mov64_imm(0, 5), raw(kClassAlu | kNeg, 0, 0, 0, 0), exit()},
                 0xfffffffbull));
  // Sign-extending moves (MOV with offset 8/16/32).
  auto movsx64 = [](int16_t bits) { return raw(kClassAlu64 | kSrcX | kMov, 0, 1, bits, 0); };
  auto movsx32 = [](int16_t bits) { return raw(kClassAlu | kSrcX | kMov, 0, 1, bits, 0); };
  c.push_back(ok("movsx64 s8", {mov64_imm(1, 0x80), movsx64(8), exit()}, 0xffffffffffffff80ull));
  c.push_back(
      ok("movsx64 s16", {mov64_imm(1, 0x8000), movsx64(16), exit()}, 0xffffffffffff8000ull));
  c.push_back(ok("movsx64 s32", cat({lddw(1, 0x80000000ull), {movsx64(32), exit()}}),
                 0xffffffff80000000ull));
  c.push_back(
      ok("movsx32 s8 zero-extends", {mov64_imm(1, 0xff), movsx32(8), exit()}, 0xffffffffull));
  c.push_back(ok("movsx32 s16 positive", {mov64_imm(1, 0x17fff), movsx32(16), exit()}, 0x7fff));
  // Byte swaps.
  auto end = [](uint8_t cls, uint8_t dir, int32_t width) {
    return raw(cls | kEnd | dir, 0, 0, 0, width);
  };
  c.push_back(
      ok("le16 truncates", cat({lddw(0, kPattern), {end(kClassAlu, kToLe, 16), exit()}}), 0x0708));
  c.push_back(ok("le32 truncates", cat({lddw(0, kPattern), {end(kClassAlu, kToLe, 32), exit()}}),
                 0x05060708));
  c.push_back(ok("le64 is identity", cat({lddw(0, kPattern), {end(kClassAlu, kToLe, 64), exit()}}),
                 kPattern));
  c.push_back(
      ok("be16 swaps", cat({lddw(0, kPattern), {end(kClassAlu, kToBe, 16), exit()}}), 0x0807));
  c.push_back(
      ok("be32 swaps", cat({lddw(0, kPattern), {end(kClassAlu, kToBe, 32), exit()}}), 0x08070605));
  c.push_back(ok("be64 swaps", cat({lddw(0, kPattern), {end(kClassAlu, kToBe, 64), exit()}}),
                 0x0807060504030201ull));
  c.push_back(
      ok("bswap16 (ALU64)", cat({lddw(0, kPattern), {end(kClassAlu64, 0, 16), exit()}}), 0x0807));
  c.push_back(ok("bswap64 (ALU64)", cat({lddw(0, kPattern), {end(kClassAlu64, 0, 64), exit()}}),
                 0x0807060504030201ull));

  // --- JMP / JMP32.
  c.push_back(ok("jeq imm taken", cat({{mov64_imm(1, 7)}, taken(jmp_imm(kJeq, 1, 7, 1))}), 1));
  c.push_back(ok("jeq imm not taken", cat({{mov64_imm(1, 8)}, taken(jmp_imm(kJeq, 1, 7, 1))}), 0));
  c.push_back(
      ok("jne reg", cat({{mov64_imm(1, 7), mov64_imm(2, 8)}, taken(jmp_reg(kJne, 1, 2, 1))}), 1));
  c.push_back(ok("jgt is unsigned", cat({{mov64_imm(1, -1)}, taken(jmp_imm(kJgt, 1, 1, 1))}), 1));
  c.push_back(ok("jsgt is signed", cat({{mov64_imm(1, -1)}, taken(jmp_imm(kJsgt, 1, 1, 1))}), 0));
  c.push_back(ok("jge equal", cat({{mov64_imm(1, 5)}, taken(jmp_imm(kJge, 1, 5, 1))}), 1));
  c.push_back(ok("jsge negative", cat({{mov64_imm(1, -5)}, taken(jmp_imm(kJsge, 1, -5, 1))}), 1));
  c.push_back(ok("jlt is unsigned", cat({{mov64_imm(1, -1)}, taken(jmp_imm(kJlt, 1, 1, 1))}), 0));
  c.push_back(ok("jslt is signed", cat({{mov64_imm(1, -1)}, taken(jmp_imm(kJslt, 1, 1, 1))}), 1));
  c.push_back(
      ok("jle reg", cat({{mov64_imm(1, 3), mov64_imm(2, 3)}, taken(jmp_reg(kJle, 1, 2, 1))}), 1));
  c.push_back(ok("jsle reg",
                 cat({{mov64_imm(1, -3), mov64_imm(2, -4)}, taken(jmp_reg(kJsle, 1, 2, 1))}), 0));
  c.push_back(ok("jset", cat({{mov64_imm(1, 6)}, taken(jmp_imm(kJset, 1, 2, 1))}), 1));
  c.push_back(ok("jset none", cat({{mov64_imm(1, 6)}, taken(jmp_imm(kJset, 1, 9, 1))}), 0));
  c.push_back(ok("jmp imm -1 is sign-extended to 64 bits",
                 cat({{mov32_imm(1, -1)}, taken(jmp_imm(kJeq, 1, -1, 1))}), 0));
  c.push_back(ok("jmp32 imm -1 compares 32 bits",
                 cat({{mov32_imm(1, -1)}, taken(jmp32_imm(kJeq, 1, -1, 1))}), 1));
  c.push_back(ok("jmp32 ignores the upper half",
                 cat({lddw(1, 0x100000000ull), taken(jmp32_imm(kJeq, 1, 0, 1))}), 1));
  c.push_back(ok("jmp32 jslt on bit 31",
                 cat({lddw(1, 0x80000000ull), taken(jmp32_imm(kJslt, 1, 0, 1))}), 1));
  c.push_back(ok("jmp64 jslt with bit 31 only is positive",
                 cat({lddw(1, 0x80000000ull), taken(jmp_imm(kJslt, 1, 0, 1))}), 0));
  c.push_back(ok(
      "jmp32 jgt reg unsigned",
      cat({lddw(1, 0x1fffffffeull), lddw(2, 0x2ffffffffull), taken(jmp32_reg(kJgt, 1, 2, 1))}), 0));
  c.push_back(ok("jmp32 jsge reg",
                 cat({{mov32_imm(1, -2), mov32_imm(2, -3)}, taken(jmp32_reg(kJsge, 1, 2, 1))}), 1));
  c.push_back(
      ok("jmp32 jset", cat({lddw(1, 0xff00000000ull), taken(jmp32_imm(kJset, 1, -1, 1))}), 0));
  // The kernel refuses unreachable instructions, so the skipped one is also a branch target.
  c.push_back(
      ok("ja skips", {mov64_imm(0, 1), jmp_imm(kJeq, 0, 9, 1), ja(1), mov64_imm(0, 2), exit()}, 1));
  c.push_back(ok("bounded backward loop",
                 {mov64_imm(0, 0), alu64_imm(kAdd, 0, 1), jmp_imm(kJlt, 0, 10, -2), exit()}, 10));

  // --- Loads and stores: stack, context, sizes, sign extension.
  c.push_back(ok(
      "stx dw / ldx b (little endian)",
      cat({lddw(1, kPattern), {stx(kSizeDw, 10, 1, -8), ldx(kSizeB, 0, 10, -8), exit()}}), 0x08));
  c.push_back(ok(
      "stx dw / ldx h at +2",
      cat({lddw(1, kPattern), {stx(kSizeDw, 10, 1, -8), ldx(kSizeH, 0, 10, -6), exit()}}), 0x0506));
  c.push_back(
      ok("stx dw / ldx w at +4",
         cat({lddw(1, kPattern), {stx(kSizeDw, 10, 1, -8), ldx(kSizeW, 0, 10, -4), exit()}}),
         0x01020304));
  c.push_back(
      ok("stx dw / ldx dw",
         cat({lddw(1, kPattern), {stx(kSizeDw, 10, 1, -8), ldx(kSizeDw, 0, 10, -8), exit()}}),
         kPattern));
  c.push_back(
      ok("stx b writes one byte",
         cat({lddw(1, ~0ull),
              {st(kSizeDw, 10, -8, 0), stx(kSizeB, 10, 1, -7), ldx(kSizeDw, 0, 10, -8), exit()}}),
         0xff00));
  c.push_back(ok("stx h, stx w",
                 {mov64_imm(1, 0x1234), mov64_imm(2, 0x56789abc), st(kSizeDw, 10, -8, 0),
                  stx(kSizeH, 10, 1, -8), stx(kSizeW, 10, 2, -4), ldx(kSizeDw, 0, 10, -8), exit()},
                 0x56789abc00001234ull));
  c.push_back(
      ok("st w imm", {st(kSizeW, 10, -4, -1), ldx(kSizeW, 0, 10, -4), exit()}, 0xffffffffull));
  c.push_back(ok("st dw imm is sign-extended",
                 {st(kSizeDw, 10, -8, -2), ldx(kSizeDw, 0, 10, -8), exit()},
                 static_cast<uint64_t>(-2)));
  c.push_back(ok("st b / st h",
                 {st(kSizeW, 10, -4, 0), st(kSizeB, 10, -4, 0x1ab), st(kSizeH, 10, -2, 0x7777),
                  ldx(kSizeW, 0, 10, -4), exit()},
                 0x777700abull));
  c.push_back(ok("ldxsb sign-extends", {st(kSizeB, 10, -1, 0x80), ldxsx(kSizeB, 0, 10, -1), exit()},
                 0xffffffffffffff80ull));
  c.push_back(ok("ldxsh sign-extends",
                 {st(kSizeH, 10, -2, 0x8001), ldxsx(kSizeH, 0, 10, -2), exit()},
                 0xffffffffffff8001ull));
  c.push_back(ok("ldxsw sign-extends", {st(kSizeW, 10, -4, -3), ldxsx(kSizeW, 0, 10, -4), exit()},
                 static_cast<uint64_t>(-3)));
  c.push_back(ok("stack bottom (r10 - 512) is in bounds",
                 {st(kSizeDw, 10, -512, 9), ldx(kSizeDw, 0, 10, -512), exit()}, 9));
  c.push_back(ok("pointer arithmetic on r10 copy",
                 {mov64_reg(2, 10), alu64_imm(kAdd, 2, -16), st(kSizeW, 2, 4, 77),
                  ldx(kSizeW, 0, 10, -12), exit()},
                 77));
  c.push_back(ok("ctx cb[0] and cb[1]",
                 {ldx(kSizeW, 2, 1, 48), ldx(kSizeW, 0, 1, 52), alu64_imm(kLsh, 0, 8),
                  alu64_reg(kOr, 0, 2), exit()},
                 (kDenyIndex << 8) | kAllowIndex));
  c.push_back(ok("ld_imm64 full 64-bit value", cat({lddw(0, 0xfedcba9876543210ull), {exit()}}),
                 0xfedcba9876543210ull));
  c.push_back(run_error("load above the frame pointer", {ldx(kSizeDw, 0, 10, 0), exit()},
                        "outside every memory region", "invalid stack access"));
  c.push_back(run_error("load below the stack", {ldx(kSizeB, 0, 10, -513), exit()},
                        "outside every memory region", "invalid stack access"));
  c.push_back(run_error("store straddling the frame pointer", {st(kSizeDw, 10, -4, 0), exit()},
                        "outside every memory region", "invalid stack access"));
  c.push_back(run_error("null dereference", {mov64_imm(1, 0), ldx(kSizeB, 0, 1, 0), exit()},
                        "null pointer", "scalar used as a pointer"));
  c.push_back(run_error("ctx read past its end", {ldx(kSizeW, 0, 1, 192), exit()},
                        "outside every memory region", "invalid bpf_context access"));
  c.push_back(run_error("endless loop hits the instruction limit",
                        {mov64_imm(0, 0), ja(-1), exit()}, "instruction limit",
                        "infinite loop detected"));
  c.push_back(kernel_rejects(ok("uninitialised register reads as 0", {mov64_reg(0, 5), exit()}, 0),
                             "R5 !read_ok: the verifier refuses reading an unwritten register"));

  // --- Helpers: the state array, the IP-set LPM trie, tail calls.
  Insns state_lookup =
      cat({{st(kSizeW, 10, -4, 0), mov64_reg(2, 10), alu64_imm(kAdd, 2, -4)},
           {ld_map_fd_lo(1, kStateFd), ld_map_fd_hi(), call(kHelperMapLookupElem)}});
  c.push_back(ok("state map value write and read back",
                 cat({state_lookup,
                      {jmp_imm(kJne, 0, 0, 2), mov64_imm(0, 99), exit(), st(kSizeW, 0, 92, 5),
                       ldx(kSizeW, 0, 0, 92), exit()}}),
                 5));
  c.push_back(ok("array lookup out of range is NULL",
                 {st(kSizeW, 10, -4, 5), mov64_reg(2, 10), alu64_imm(kAdd, 2, -4),
                  ld_map_fd_lo(1, kStateFd), ld_map_fd_hi(), call(kHelperMapLookupElem),
                  jmp_imm(kJeq, 0, 0, 2), mov64_imm(0, 1), exit(), mov64_imm(0, 2), exit()},
                 2));
  c.push_back(run_error("state value read past its end",
                        cat({state_lookup,
                             {jmp_imm(kJne, 0, 0, 2), mov64_imm(0, 99), exit(),
                              ldx(kSizeW, 0, 0, kStateValueSize), exit()}}),
                        "outside every memory region", "invalid access to map value"));
  // A Felix-shaped IP-set probe: key at r10-20, full prefix 128, set id big-endian, addr from a
  // register (already network order), port/proto.
  auto ipset_probe = [](uint32_t addr_be, uint16_t port, uint8_t proto) {
    uint64_t id_be = __builtin_bswap64(kSetId);
    return Insns{st(kSizeW, 10, -20, 128),
                 st(kSizeW, 10, -16, static_cast<int32_t>(static_cast<uint32_t>(id_be))),
                 st(kSizeW, 10, -12, static_cast<int32_t>(static_cast<uint32_t>(id_be >> 32))),
                 st(kSizeW, 10, -8, static_cast<int32_t>(addr_be)),
                 st(kSizeH, 10, -4, port),
                 st(kSizeB, 10, -2, proto),
                 st(kSizeB, 10, -1, 0),
                 ld_map_fd_lo(1, kIpSetsFd),
                 ld_map_fd_hi(),
                 mov64_reg(2, 10),
                 alu64_imm(kAdd, 2, -20),
                 call(kHelperMapLookupElem),
                 mov64_imm(1, 1),
                 jmp_imm(kJne, 0, 0, 1),
                 mov64_imm(1, 0),
                 mov64_reg(0, 1),
                 exit()};
  };
  auto be = [](uint8_t a, uint8_t b, uint8_t c3, uint8_t d) {
    return static_cast<uint32_t>(a) | (static_cast<uint32_t>(b) << 8) |
           (static_cast<uint32_t>(c3) << 16) | (static_cast<uint32_t>(d) << 24);
  };
  c.push_back(ok("ipset member of a /8", ipset_probe(be(10, 1, 2, 3), 443, 6), 1));
  c.push_back(ok("ipset non-member", ipset_probe(be(11, 1, 2, 3), 443, 6), 0));
  c.push_back(ok("ipset named port hit", ipset_probe(be(192, 168, 1, 1), 80, 6), 1));
  c.push_back(ok("ipset named port, other port", ipset_probe(be(192, 168, 1, 1), 81, 6), 0));
  c.push_back(ok("ipset named port, other protocol", ipset_probe(be(192, 168, 1, 1), 80, 17), 0));
  Insns tail_call_cb0 = {ldx(kSizeW, 3, 1, 48), ld_map_fd_lo(2, kProgsFd), ld_map_fd_hi(),
                         call(kHelperTailCall), mov64_imm(0, 7),           exit()};
  c.push_back(ok("tail call through cb[0] to the allow stub", tail_call_cb0, 123));
  c.push_back(ok("tail call through cb[1] to the deny stub",
                 {ldx(kSizeW, 3, 1, 52), ld_map_fd_lo(2, kProgsFd), ld_map_fd_hi(),
                  call(kHelperTailCall), mov64_imm(0, 7), exit()},
                 124));
  c.push_back(ok("tail call to an empty slot falls through",
                 {mov64_imm(3, 5), ld_map_fd_lo(2, kProgsFd), ld_map_fd_hi(), call(kHelperTailCall),
                  mov64_imm(0, 7), exit()},
                 7));
  c.push_back(ok("tail call past the array's end falls through",
                 {mov64_imm(3, 1000), ld_map_fd_lo(2, kProgsFd), ld_map_fd_hi(),
                  call(kHelperTailCall), mov64_imm(0, 8), exit()},
                 8));

  // --- Validator rejections (at load; the kernel's verifier refuses them too unless noted).
  c.push_back(load_error("unknown opcode 0xff", {raw(0xff, 0, 0, 0, 0), exit()},
                         "unknown opcode 0xff", Kernel::rejects, "unknown opcode"));
  c.push_back(load_error("unknown ALU64 operation 0xe0",
                         {raw(kClassAlu64 | 0xe0, 0, 0, 0, 0), exit()}, "unknown opcode 0xe7",
                         Kernel::rejects, "unknown opcode"));
  c.push_back(load_error("jump past the end", {mov64_imm(0, 0), ja(5), exit()},
                         "outside the program", Kernel::rejects, "jump out of range"));
  c.push_back(load_error("jump before the start",
                         {mov64_imm(0, 0), jmp_imm(kJeq, 0, 0, -3), exit()}, "outside the program",
                         Kernel::rejects, "jump out of range"));
  c.push_back(load_error("jump into the second half of ld_imm64",
                         cat({{mov64_imm(0, 0), jmp_imm(kJeq, 0, 0, 1)}, lddw(1, 5), {exit()}}),
                         "middle of an ld_imm64", Kernel::rejects,
                         "jump into the middle of ldimm64"));
  c.push_back(load_error("write to r10", {mov64_imm(10, 0), mov64_imm(0, 0), exit()},
                         "write to r10", Kernel::rejects, "frame pointer is read only"));
  c.push_back(load_error("load into r10", {ldx(kSizeDw, 10, 10, -8), exit()}, "write to r10",
                         Kernel::rejects, "frame pointer is read only"));
  c.push_back(load_error("register r11", {mov64_reg(0, 11), exit()}, "register r11",
                         Kernel::rejects, "invalid register"));
  c.push_back(load_error("division by an immediate zero",
                         {mov64_imm(0, 1), alu64_imm(kDiv, 0, 0), exit()},
                         "division by an immediate zero", Kernel::rejects, "div by zero"));
  c.push_back(load_error("modulo by an immediate zero",
                         {mov64_imm(0, 1), alu32_imm(kMod, 0, 0), exit()},
                         "division by an immediate zero", Kernel::rejects, "div by zero"));
  c.push_back(load_error("falls off the end", {mov64_imm(0, 0)}, "last instruction",
                         Kernel::rejects, "jump out of range"));
  c.push_back(load_error("ld_imm64 cut in half", {mov64_imm(0, 0), ld_imm64_lo(1, 1)},
                         "second half", Kernel::rejects, "invalid bpf_ld_imm64 insn"));
  c.push_back(load_error(
      "unknown helper is named", {call(5), exit()}, "bpf_ktime_get_ns", Kernel::not_compared,
      "the kernel has this helper; the interpreter refuses what it does not model"));
  c.push_back(load_error(
      "map fd not in the table", {ld_map_fd_lo(1, 42), ld_map_fd_hi(), mov64_imm(0, 0), exit()},
      "map fd 42", Kernel::not_compared, "fd 42 has no private map in the kernel either"));
  c.push_back(load_error(
      "bpf-to-bpf call", {raw(kClassJmp | kCall, 0, 1, 0, 1), exit(), mov64_imm(0, 0), exit()},
      "bpf-to-bpf", Kernel::not_compared, "a real subprogram call; the interpreter refuses it"));
  c.push_back(load_error("empty program", {}, "empty", Kernel::rejects, "empty program"));
  return c;
}

}  // namespace

const std::vector<Case>& conformance_cases() {
  static const std::vector<Case> cases = build();
  return cases;
}

}  // namespace dpi::bpfvm::test
