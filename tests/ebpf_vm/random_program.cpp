#include "tests/ebpf_vm/random_program.h"

#include <array>
#include <random>

#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/opcodes.h"

namespace dpi::bpfvm::test {

namespace {

using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
using namespace dpi::bpfvm::op;  // NOLINT(google-build-using-namespace)

// Values where the edge cases live, mixed with random ones.
constexpr std::array<uint64_t, 12> kSpecial = {0,
                                               1,
                                               2,
                                               0xffffffffffffffffull,
                                               0x8000000000000000ull,
                                               0x7fffffffffffffffull,
                                               0xffffffffull,
                                               0x80000000ull,
                                               0x7fffffffull,
                                               0x100000000ull,
                                               63,
                                               32};

struct Gen {
  std::mt19937_64 rng;
  uint64_t below(uint64_t n) { return rng() % n; }
  uint64_t value() { return below(3) == 0 ? rng() : kSpecial[below(kSpecial.size())]; }
  int32_t imm() {
    switch (below(4)) {
      case 0: return static_cast<int32_t>(rng());
      case 1: return static_cast<int32_t>(below(64)) - 32;
      case 2: return static_cast<int32_t>(static_cast<uint32_t>(kSpecial[below(kSpecial.size())]));
      default: return static_cast<int32_t>(below(1000));
    }
  }
  uint8_t reg() { return static_cast<uint8_t>(below(10)); }
};

constexpr std::array<uint8_t, 12> kAlu = {kAdd, kSub, kMul, kDiv, kOr,  kAnd,
                                          kLsh, kRsh, kMod, kXor, kMov, kArsh};
constexpr std::array<uint8_t, 11> kJmp = {kJeq,  kJgt, kJge, kJset, kJne, kJsgt,
                                          kJsge, kJlt, kJle, kJslt, kJsle};

RawInsn random_alu(Gen& g) {
  const bool is64 = g.below(2) == 0;
  const uint8_t cls = is64 ? kClassAlu64 : kClassAlu;
  const uint8_t dst = g.reg();
  switch (g.below(12)) {
    case 0: return raw(cls | kNeg, dst, 0, 0, 0);
    case 1: {  // byte swap
      constexpr std::array<int32_t, 3> widths = {16, 32, 64};
      const int32_t w = widths[g.below(3)];
      if (is64) return raw(kClassAlu64 | kEnd, dst, 0, 0, w);
      return raw(kClassAlu | kEnd | (g.below(2) ? kToBe : kToLe), dst, 0, 0, w);
    }
    case 2: {  // sign-extending move
      const int16_t bits =
          is64 ? static_cast<int16_t>(8 << g.below(3)) : static_cast<int16_t>(8 << g.below(2));
      return raw(cls | kSrcX | kMov, dst, g.reg(), bits, 0);
    }
    case 3: {  // signed division / modulo
      const uint8_t o = g.below(2) ? kDiv : kMod;
      if (g.below(2)) return raw(cls | kSrcX | o, dst, g.reg(), 1, 0);
      int32_t k = g.imm();
      return raw(cls | kSrcK | o, dst, 0, 1, k == 0 ? 3 : k);
    }
    default: break;
  }
  const uint8_t o = kAlu[g.below(kAlu.size())];
  if (g.below(2)) return raw(cls | kSrcX | o, dst, g.reg(), 0, 0);
  int32_t k = g.imm();
  if (o == kLsh || o == kRsh || o == kArsh) k = static_cast<int32_t>(g.below(is64 ? 64 : 32));
  if ((o == kDiv || o == kMod) && k == 0) k = 7;
  return raw(cls | kSrcK | o, dst, 0, 0, k);
}

}  // namespace

std::vector<RawInsn> random_program(uint64_t seed, int body_len) {
  Gen g{std::mt19937_64(seed)};
  std::vector<RawInsn> p;
  for (uint8_t r = 0; r < 10; ++r) {
    uint64_t v = g.value();
    p.push_back(ld_imm64_lo(r, v));
    p.push_back(ld_imm64_hi(v));
  }
  const int body_start = static_cast<int>(p.size());
  const int body_end = body_start + body_len;  // the fold starts here
  for (int i = body_start; i < body_end; ++i) {
    if (g.below(5) != 0 || i + 1 >= body_end) {
      p.push_back(random_alu(g));
      continue;
    }
    // A forward conditional jump landing in the body or on the fold's first instruction.
    const auto off = static_cast<int16_t>(g.below(std::min(body_end - i - 1, 8)) + 0);
    const uint8_t cls = g.below(2) ? kClassJmp : kClassJmp32;
    const uint8_t o = kJmp[g.below(kJmp.size())];
    if (g.below(2)) {
      p.push_back(raw(cls | kSrcX | o, g.reg(), g.reg(), off, 0));
    } else {
      p.push_back(raw(cls | kSrcK | o, g.reg(), 0, off, g.imm()));
    }
  }
  // Fold every register into r0 so that a difference anywhere shows.
  for (uint8_t r = 1; r < 10; ++r) {
    p.push_back(alu64_imm(kMul, 0, 0x01000193));
    p.push_back(alu64_reg(kXor, 0, r));
  }
  p.push_back(exit());
  return p;
}

}  // namespace dpi::bpfvm::test
