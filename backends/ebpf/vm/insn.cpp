#include "backends/ebpf/vm/insn.h"

#include <fmt/format.h>

namespace dpi::bpfvm {

Result<std::vector<RawInsn>> decode_bytes(std::span<const uint8_t> bytes) {
  if (bytes.size() % 8 != 0) {
    return make_error(ErrorCode::bad_input,
                      fmt::format("BPF program of {} bytes is not a whole number of 8-byte "
                                  "instructions",
                                  bytes.size()));
  }
  std::vector<RawInsn> out(bytes.size() / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    const uint8_t* b = bytes.data() + i * 8;
    out[i].code = b[0];
    out[i].dst = b[1] & 0x0f;
    out[i].src = b[1] >> 4;
    out[i].off = static_cast<int16_t>(b[2] | (b[3] << 8));
    out[i].imm = static_cast<int32_t>(
        static_cast<uint32_t>(b[4]) | (static_cast<uint32_t>(b[5]) << 8) |
        (static_cast<uint32_t>(b[6]) << 16) | (static_cast<uint32_t>(b[7]) << 24));
  }
  return out;
}

std::vector<uint8_t> encode_bytes(std::span<const RawInsn> insns) {
  std::vector<uint8_t> out;
  out.reserve(insns.size() * 8);
  for (const RawInsn& in : insns) {
    auto off = static_cast<uint16_t>(in.off);
    auto imm = static_cast<uint32_t>(in.imm);
    out.push_back(in.code);
    out.push_back(static_cast<uint8_t>((in.dst & 0x0f) | (in.src << 4)));
    out.push_back(static_cast<uint8_t>(off));
    out.push_back(static_cast<uint8_t>(off >> 8));
    for (int s = 0; s < 32; s += 8) out.push_back(static_cast<uint8_t>(imm >> s));
  }
  return out;
}

}  // namespace dpi::bpfvm
