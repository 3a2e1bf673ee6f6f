// One raw eBPF instruction slot (8 bytes) and the field accessors the readers need.
#pragma once

#include <array>
#include <cstdint>

namespace dpi::ebpf {

struct RawInsn {
  std::array<uint8_t, 8> b{};

  uint8_t code() const { return b[0]; }
  uint8_t dst() const { return b[1] & 0x0f; }
  uint8_t src() const { return b[1] >> 4; }
  int16_t off() const { return static_cast<int16_t>(b[2] | (b[3] << 8)); }
  int32_t imm() const {
    return static_cast<int32_t>(static_cast<uint32_t>(b[4]) | (static_cast<uint32_t>(b[5]) << 8) |
                                (static_cast<uint32_t>(b[6]) << 16) |
                                (static_cast<uint32_t>(b[7]) << 24));
  }
  bool operator==(const RawInsn&) const = default;
};

namespace opcode {
inline constexpr uint8_t ld_imm64 = 0x18;   // BPF_LD | BPF_IMM | BPF_DW
inline constexpr uint8_t call = 0x85;       // BPF_JMP | BPF_CALL
inline constexpr uint8_t add64_imm = 0x07;  // BPF_ALU64 | BPF_ADD | BPF_K
inline constexpr uint8_t add64_reg = 0x0f;  // BPF_ALU64 | BPF_ADD | BPF_X
inline constexpr uint8_t mov64_imm = 0xb7;
inline constexpr uint8_t mov32_imm = 0xb4;
inline constexpr uint8_t ldx_w = 0x61;  // BPF_LDX | BPF_MEM | BPF_W
}  // namespace opcode

// ld_imm64 src_reg values (uapi bpf.h).
inline constexpr uint8_t kPseudoMapFd = 1;
inline constexpr uint8_t kPseudoMapValue = 2;

}  // namespace dpi::ebpf
