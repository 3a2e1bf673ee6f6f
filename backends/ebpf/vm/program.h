// A BPF program decoded once and validated at load: what the interpreter executes.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/vm/insn.h"
#include "backends/ebpf/vm/maps.h"
#include "core/result.h"

namespace dpi::bpfvm {

// ALU operations with a 64-bit and a 32-bit form, each with an immediate (K) or register (X)
// operand; Sdiv/Smod are DIV/MOD with offset 1 (RFC 9669 signed division).
// clang-format off
#define DPI_BPFVM_ALU_OPS(X) \
  X(Add) X(Sub) X(Mul) X(Div) X(Sdiv) X(Mod) X(Smod) X(Or) X(And) X(Xor) X(Lsh) X(Rsh) X(Arsh) X(Mov)
#define DPI_BPFVM_JMP_CONDS(X) \
  X(Jeq) X(Jgt) X(Jge) X(Jset) X(Jne) X(Jsgt) X(Jsge) X(Jlt) X(Jle) X(Jslt) X(Jsle)

// The pre-decoded operation: one dense enum so that the interpreter dispatches with one switch.
enum class Op : uint8_t {
#define DPI_BPFVM_ALU_ENUM(n) n##64K, n##64X, n##32K, n##32X,
  DPI_BPFVM_ALU_OPS(DPI_BPFVM_ALU_ENUM)
#undef DPI_BPFVM_ALU_ENUM
  Neg64, Neg32,
  Movsx64_8, Movsx64_16, Movsx64_32, Movsx32_8, Movsx32_16,
  Le16, Le32, Le64, Swap16, Swap32, Swap64,
#define DPI_BPFVM_JMP_ENUM(n) n##64K, n##64X, n##32K, n##32X,
  DPI_BPFVM_JMP_CONDS(DPI_BPFVM_JMP_ENUM)
#undef DPI_BPFVM_JMP_ENUM
  Ja,
  CallMapLookup,  // helper 1
  TailCall,       // helper 12
  Exit,
  LdxB, LdxH, LdxW, LdxDw, LdxsB, LdxsH, LdxsW,
  StB, StH, StW, StDw,
  StxB, StxH, StxW, StxDw,
  LdImm64,  // imm holds the 64-bit value
  LdMap,    // imm holds the map handle (index into Program::maps())
};
// clang-format on

// 16 bytes. For jumps `off` is the target's index in the decoded array; for loads and stores it
// is the memory offset. `imm` is pre-extended: sign-extended for 64-bit operations, masked for
// shifts by an immediate.
struct Insn {
  Op op;
  uint8_t dst;
  uint8_t src;
  uint8_t pad = 0;
  int32_t off;
  uint64_t imm;
};

// Helpers the interpreter implements; any other id is refused at load, named.
struct HelperInfo {
  int32_t id;
  const char* name;
};
std::span<const HelperInfo> supported_helpers();
// The kernel's name for a helper id ("bpf_map_update_elem"), or "helper <id>".
std::string helper_name(int32_t id);

class Program {
 public:
  // Decodes and validates. Map-fd immediates are resolved through `maps`; an fd not in it, an
  // unknown opcode or helper, a bad register, a jump out of range or into an ld_imm64, a write to
  // r10, a division by an immediate zero, or a last instruction other than exit/ja is an error
  // naming the instruction index.
  static Result<Program> load(std::span<const RawInsn> insns, const MapTable& maps,
                              std::string name = {});

  std::span<const Insn> insns() const { return insns_; }
  std::span<const MapRef> maps() const { return maps_; }
  const std::string& name() const { return name_; }
  // The raw instruction index (as in the debug JSON) of decoded instruction i.
  uint32_t raw_pc(size_t i) const { return raw_pc_[i]; }
  size_t raw_size() const { return raw_size_; }

 private:
  std::vector<Insn> insns_;
  std::vector<uint32_t> raw_pc_;
  std::vector<MapRef> maps_;
  std::string name_;
  size_t raw_size_ = 0;
};

}  // namespace dpi::bpfvm
