// The kernel's program tag (bpf_prog_info.tag): the first 8 bytes of a hash over the
// instructions with map references taken out (kernel/bpf/core.c, bpf_prog_calc_tag): SHA-256 on
// current kernels (6.18 here, reference §8), SHA-1 on older ones. Comparing it with the live
// program's tag says whether a policy-debug JSON is what runs.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/insn.h"

namespace dpi::ebpf {

using ProgTag = std::array<uint8_t, 8>;

enum class TagHash : uint8_t { sha256, sha1 };

// The instructions as the kernel hashes them: an ld_imm64 whose src_reg is a map fd or map
// value reference gets its imm zeroed, and so does its second half when that is a plain
// continuation slot (code, regs and off all 0).
std::vector<RawInsn> tag_input(std::span<const RawInsn> insns);
ProgTag prog_tag(std::span<const RawInsn> insns, TagHash hash);
std::string tag_hex(const ProgTag& t);
// True when `live` is the tag of these instructions under either hash.
bool tag_matches(std::span<const RawInsn> insns, const ProgTag& live);

}  // namespace dpi::ebpf
