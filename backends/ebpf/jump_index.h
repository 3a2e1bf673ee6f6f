// Where sub-program k of a policy program sits in the policy jump map: idx + k * stride
// (felix/bpf/polprog/pol_prog_builder.go, felix/bpf/jump/map.go; reference §1.2).
#pragma once

#include <cstdint>
#include <optional>

namespace dpi::ebpf {

inline constexpr uint32_t kTcJumpStride = 10000;  // entry points per tc jump map (v3.28+)
inline constexpr uint32_t kXdpJumpStride = 100;
inline constexpr uint32_t kMaxSubPrograms = 24;

// nullopt when k is out of range or the base index is not an entry point.
inline std::optional<uint32_t> sub_program_index(uint32_t base, uint32_t k,
                                                 uint32_t stride = kTcJumpStride) {
  if (k >= kMaxSubPrograms || base >= stride) return std::nullopt;
  return base + k * stride;
}

struct JumpSlot {
  uint32_t base;  // the entry point (ifstate's index)
  uint32_t k;     // sub-program number
};

// The inverse: which entry point and sub-program a jump-map key holds.
inline std::optional<JumpSlot> jump_slot(uint32_t key, uint32_t stride = kTcJumpStride) {
  if (key / stride >= kMaxSubPrograms) return std::nullopt;
  return JumpSlot{key % stride, key / stride};
}

}  // namespace dpi::ebpf
