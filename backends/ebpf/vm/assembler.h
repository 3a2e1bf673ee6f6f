// Builders for raw instructions: what the tests, the benchmark and a program generator write.
#pragma once

#include <cstdint>

#include "backends/ebpf/vm/insn.h"
#include "backends/ebpf/vm/opcodes.h"

namespace dpi::bpfvm::as {

constexpr RawInsn raw(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  return RawInsn{code, dst, src, off, imm};
}
constexpr RawInsn alu64_imm(uint8_t o, uint8_t dst, int32_t imm) {
  return raw(op::kClassAlu64 | op::kSrcK | o, dst, 0, 0, imm);
}
constexpr RawInsn alu64_reg(uint8_t o, uint8_t dst, uint8_t src) {
  return raw(op::kClassAlu64 | op::kSrcX | o, dst, src, 0, 0);
}
constexpr RawInsn alu32_imm(uint8_t o, uint8_t dst, int32_t imm) {
  return raw(op::kClassAlu | op::kSrcK | o, dst, 0, 0, imm);
}
constexpr RawInsn alu32_reg(uint8_t o, uint8_t dst, uint8_t src) {
  return raw(op::kClassAlu | op::kSrcX | o, dst, src, 0, 0);
}
constexpr RawInsn mov64_imm(uint8_t dst, int32_t imm) {
  return alu64_imm(op::kMov, dst, imm);
}
constexpr RawInsn mov64_reg(uint8_t dst, uint8_t src) {
  return alu64_reg(op::kMov, dst, src);
}
constexpr RawInsn mov32_imm(uint8_t dst, int32_t imm) {
  return alu32_imm(op::kMov, dst, imm);
}
constexpr RawInsn jmp_imm(uint8_t o, uint8_t dst, int32_t imm, int16_t off) {
  return raw(op::kClassJmp | op::kSrcK | o, dst, 0, off, imm);
}
constexpr RawInsn jmp_reg(uint8_t o, uint8_t dst, uint8_t src, int16_t off) {
  return raw(op::kClassJmp | op::kSrcX | o, dst, src, off, 0);
}
constexpr RawInsn jmp32_imm(uint8_t o, uint8_t dst, int32_t imm, int16_t off) {
  return raw(op::kClassJmp32 | op::kSrcK | o, dst, 0, off, imm);
}
constexpr RawInsn jmp32_reg(uint8_t o, uint8_t dst, uint8_t src, int16_t off) {
  return raw(op::kClassJmp32 | op::kSrcX | o, dst, src, off, 0);
}
constexpr RawInsn ja(int16_t off) {
  return raw(op::kClassJmp | op::kJa, 0, 0, off, 0);
}
constexpr RawInsn call(int32_t helper) {
  return raw(op::kClassJmp | op::kCall, 0, 0, 0, helper);
}
constexpr RawInsn exit() {
  return raw(op::kClassJmp | op::kExit, 0, 0, 0, 0);
}
// size: op::kSizeB/H/W/Dw.
constexpr RawInsn ldx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  return raw(op::kClassLdx | op::kModeMem | size, dst, src, off, 0);
}
constexpr RawInsn ldxsx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  return raw(op::kClassLdx | op::kModeMemsx | size, dst, src, off, 0);
}
constexpr RawInsn stx(uint8_t size, uint8_t dst, uint8_t src, int16_t off) {
  return raw(op::kClassStx | op::kModeMem | size, dst, src, off, 0);
}
constexpr RawInsn st(uint8_t size, uint8_t dst, int16_t off, int32_t imm) {
  return raw(op::kClassSt | op::kModeMem | size, dst, 0, off, imm);
}
// ld_imm64 is two slots: write both, lo first.
constexpr RawInsn ld_imm64_lo(uint8_t dst, uint64_t value) {
  return raw(op::kLdImm64, dst, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(value)));
}
constexpr RawInsn ld_imm64_hi(uint64_t value) {
  return raw(0, 0, 0, 0, static_cast<int32_t>(static_cast<uint32_t>(value >> 32)));
}
constexpr RawInsn ld_map_fd_lo(uint8_t dst, int32_t fd) {
  return raw(op::kLdImm64, dst, op::kPseudoMapFd, 0, fd);
}
constexpr RawInsn ld_map_fd_hi() {
  return raw(0, 0, 0, 0, 0);
}

}  // namespace dpi::bpfvm::as
