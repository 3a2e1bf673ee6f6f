#include "backends/ebpf/tag_check.h"

#include <fmt/format.h>

namespace dpi::ebpf {

bool TagCheck::all_match() const {
  if (subprograms.empty()) return false;
  for (const SubProgramTag& s : subprograms)
    if (!s.matches) return false;
  return true;
}

std::string TagCheck::mismatch() const {
  if (subprograms.empty()) return "the policy-debug JSON has no instructions";
  for (const SubProgramTag& s : subprograms) {
    if (s.matches) continue;
    if (!s.live) return fmt::format("sub-program {}: no live program", s.k);
    return fmt::format("sub-program {}: JSON tag {} (sha256), live tag {}", s.k,
                       tag_hex(s.computed), tag_hex(*s.live));
  }
  return "";
}

TagCheck check_tags(const DebugProgram& prog, std::span<const std::optional<ProgTag>> live) {
  TagCheck out;
  if (prog.insns.empty()) return out;
  for (std::size_t k = 0; k < prog.subprograms.size(); ++k) {
    auto insns = prog.program(k);
    SubProgramTag t;
    t.k = k;
    t.computed = prog_tag(insns, TagHash::sha256);
    if (k < live.size()) t.live = live[k];
    t.matches = t.live && tag_matches(insns, *t.live);
    out.subprograms.push_back(t);
  }
  return out;
}

}  // namespace dpi::ebpf
