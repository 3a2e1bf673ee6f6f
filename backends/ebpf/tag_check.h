// Is a policy-debug JSON what runs? Its sub-programs' tags against the live programs' tags.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/prog_tag.h"

namespace dpi::ebpf {

struct SubProgramTag {
  std::size_t k = 0;
  ProgTag computed{};           // SHA-256 of the JSON's instructions
  std::optional<ProgTag> live;  // nullopt: no live program for this sub-program
  bool matches = false;         // under SHA-256 or SHA-1
};

struct TagCheck {
  std::vector<SubProgramTag> subprograms;
  bool all_match() const;
  // "" when all match, else why not, one line ("sub-program 1: JSON tag ..., live ...").
  std::string mismatch() const;
};

// live[k] is the tag of the program in jump-map slot idx + k*stride (nullopt when empty).
TagCheck check_tags(const DebugProgram& prog, std::span<const std::optional<ProgTag>> live);

}  // namespace dpi::ebpf
