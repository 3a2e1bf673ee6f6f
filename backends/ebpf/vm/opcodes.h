// The instruction encoding of RFC 9669, defined here so that the interpreter needs no kernel
// header.
#pragma once

#include <cstdint>

namespace dpi::bpfvm::op {

// Instruction classes (low 3 bits).
inline constexpr uint8_t kClassLd = 0x00;
inline constexpr uint8_t kClassLdx = 0x01;
inline constexpr uint8_t kClassSt = 0x02;
inline constexpr uint8_t kClassStx = 0x03;
inline constexpr uint8_t kClassAlu = 0x04;
inline constexpr uint8_t kClassJmp = 0x05;
inline constexpr uint8_t kClassJmp32 = 0x06;
inline constexpr uint8_t kClassAlu64 = 0x07;

// Source bit of ALU and JMP instructions.
inline constexpr uint8_t kSrcK = 0x00;
inline constexpr uint8_t kSrcX = 0x08;

// ALU operations (high 4 bits).
inline constexpr uint8_t kAdd = 0x00;
inline constexpr uint8_t kSub = 0x10;
inline constexpr uint8_t kMul = 0x20;
inline constexpr uint8_t kDiv = 0x30;
inline constexpr uint8_t kOr = 0x40;
inline constexpr uint8_t kAnd = 0x50;
inline constexpr uint8_t kLsh = 0x60;
inline constexpr uint8_t kRsh = 0x70;
inline constexpr uint8_t kNeg = 0x80;
inline constexpr uint8_t kMod = 0x90;
inline constexpr uint8_t kXor = 0xa0;
inline constexpr uint8_t kMov = 0xb0;
inline constexpr uint8_t kArsh = 0xc0;
inline constexpr uint8_t kEnd = 0xd0;

// Byte-swap direction, in the source bit of an ALU kEnd (ALU64 kEnd swaps unconditionally).
inline constexpr uint8_t kToLe = 0x00;
inline constexpr uint8_t kToBe = 0x08;

// Jump operations (high 4 bits).
inline constexpr uint8_t kJa = 0x00;
inline constexpr uint8_t kJeq = 0x10;
inline constexpr uint8_t kJgt = 0x20;
inline constexpr uint8_t kJge = 0x30;
inline constexpr uint8_t kJset = 0x40;
inline constexpr uint8_t kJne = 0x50;
inline constexpr uint8_t kJsgt = 0x60;
inline constexpr uint8_t kJsge = 0x70;
inline constexpr uint8_t kCall = 0x80;
inline constexpr uint8_t kExit = 0x90;
inline constexpr uint8_t kJlt = 0xa0;
inline constexpr uint8_t kJle = 0xb0;
inline constexpr uint8_t kJslt = 0xc0;
inline constexpr uint8_t kJsle = 0xd0;

// Load/store size (bits 3-4) and mode (high 3 bits).
inline constexpr uint8_t kSizeW = 0x00;
inline constexpr uint8_t kSizeH = 0x08;
inline constexpr uint8_t kSizeB = 0x10;
inline constexpr uint8_t kSizeDw = 0x18;
inline constexpr uint8_t kModeImm = 0x00;
inline constexpr uint8_t kModeMem = 0x60;
inline constexpr uint8_t kModeMemsx = 0x80;

// ld_imm64 (class LD, mode IMM, size DW) and the meanings of its source field.
inline constexpr uint8_t kLdImm64 = kClassLd | kModeImm | kSizeDw;
inline constexpr uint8_t kPseudoMapFd = 1;

// Helper ids (the kernel's enum bpf_func_id).
inline constexpr int32_t kHelperMapLookupElem = 1;
inline constexpr int32_t kHelperTailCall = 12;

}  // namespace dpi::bpfvm::op
