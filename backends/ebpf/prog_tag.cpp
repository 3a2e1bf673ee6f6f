#include "backends/ebpf/prog_tag.h"

#include <algorithm>
#include <string_view>

#include <fmt/format.h>

#include "backends/ebpf/sha256.h"
#include "core/sha1.h"

namespace dpi::ebpf {

std::vector<RawInsn> tag_input(std::span<const RawInsn> insns) {
  std::vector<RawInsn> out(insns.begin(), insns.end());
  bool was_ld_map = false;
  for (RawInsn& in : out) {
    if (!was_ld_map && in.code() == opcode::ld_imm64 &&
        (in.src() == kPseudoMapFd || in.src() == kPseudoMapValue)) {
      was_ld_map = true;
      std::fill(in.b.begin() + 4, in.b.end(), 0);
    } else if (was_ld_map && in.code() == 0 && in.b[1] == 0 && in.off() == 0) {
      was_ld_map = false;
      std::fill(in.b.begin() + 4, in.b.end(), 0);
    } else {
      was_ld_map = false;
    }
  }
  return out;
}

ProgTag prog_tag(std::span<const RawInsn> insns, TagHash hash) {
  std::vector<RawInsn> in = tag_input(insns);
  std::vector<uint8_t> bytes;
  bytes.reserve(in.size() * 8);
  for (const RawInsn& i : in) bytes.insert(bytes.end(), i.b.begin(), i.b.end());
  ProgTag tag{};
  switch (hash) {
    case TagHash::sha256: {
      auto d = sha256(bytes);
      std::copy_n(d.begin(), 8, tag.begin());
      break;
    }
    case TagHash::sha1: {
      auto d =
          dpi::sha1(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      std::copy_n(d.begin(), 8, tag.begin());
      break;
    }
  }
  return tag;
}

std::string tag_hex(const ProgTag& t) {
  std::string out;
  for (uint8_t b : t) out += fmt::format("{:02x}", b);
  return out;
}

bool tag_matches(std::span<const RawInsn> insns, const ProgTag& live) {
  return prog_tag(insns, TagHash::sha256) == live || prog_tag(insns, TagHash::sha1) == live;
}

}  // namespace dpi::ebpf
