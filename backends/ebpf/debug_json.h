// Felix's policy-debug JSON (/var/run/calico/bpf/policy/<iface>_<ingress|egress|xdp>_v<4|6>.json):
// the policy program's instructions with labels and comments, sub-programs concatenated
// (reference §2.5; felix/bpf/bpf_defs.go, felix/bpf/asm/asm.go).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backends/ebpf/insn.h"
#include "core/result.h"

namespace dpi::ebpf {

// The file name says the policy direction (not the tc hook) and the family.
enum class PolicyDir : uint8_t { ingress, egress, xdp };
const char* policy_dir_name(PolicyDir d);

struct DebugFileName {
  std::string iface;
  PolicyDir dir = PolicyDir::ingress;
  int family = 4;
};
Result<DebugFileName> parse_debug_file_name(std::string_view file_name);
std::string debug_file_name(const DebugFileName& n);

struct DebugInsn {
  RawInsn insn;
  std::vector<std::string> labels;
  std::vector<std::string> comments;
  std::string annotation;
};

// Sub-program k: instructions [first, first + count) of the concatenated stream.
struct SubProgram {
  uint32_t k = 0;
  std::size_t first = 0;
  std::size_t count = 0;
};

struct DebugProgram {
  std::string file;  // for messages
  std::string iface;
  std::string hook;   // "tc ingress", "tc egress", "tc xdp"
  std::string error;  // Felix's load error, if any
  std::vector<DebugInsn> insns;
  std::vector<SubProgram> subprograms;

  // Sub-program k's raw instructions, as loaded into the kernel.
  std::vector<RawInsn> program(std::size_t sub) const;
  // Which sub-program holds global instruction i.
  const SubProgram* subprogram_of(std::size_t i) const;
};

// file names the source in error messages ("cali12_egress_v4.json: policyInfo[3].inst: ...").
Result<DebugProgram> parse_debug_json(std::string_view text, std::string_view file);
Result<DebugProgram> load_debug_json(const std::string& path);

}  // namespace dpi::ebpf
