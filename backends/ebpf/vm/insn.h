// The raw 8-byte instruction as it is stored (policy-debug JSON, a live program, a test table).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"

namespace dpi::bpfvm {

struct RawInsn {
  uint8_t code = 0;
  uint8_t dst = 0;  // 4 bits
  uint8_t src = 0;  // 4 bits
  int16_t off = 0;
  int32_t imm = 0;
};

// Little-endian wire form, as the kernel and the debug JSON store it: code, dst|src<<4, off, imm.
Result<std::vector<RawInsn>> decode_bytes(std::span<const uint8_t> bytes);
std::vector<uint8_t> encode_bytes(std::span<const RawInsn> insns);

}  // namespace dpi::bpfvm
