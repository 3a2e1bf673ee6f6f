#include "backends/ebpf/vm/program.h"

#include <array>
#include <climits>
#include <optional>

#include <fmt/format.h>

#include "backends/ebpf/vm/opcodes.h"

namespace dpi::bpfvm {

namespace {

constexpr std::array<HelperInfo, 2> kSupported = {{
    {op::kHelperMapLookupElem, "bpf_map_lookup_elem"},
    {op::kHelperTailCall, "bpf_tail_call"},
}};

// Names of helpers a program might plausibly call, for the error message only.
constexpr std::array<HelperInfo, 14> kKnownNames = {{
    {1, "bpf_map_lookup_elem"},
    {2, "bpf_map_update_elem"},
    {3, "bpf_map_delete_elem"},
    {5, "bpf_ktime_get_ns"},
    {6, "bpf_trace_printk"},
    {7, "bpf_get_prandom_u32"},
    {8, "bpf_get_smp_processor_id"},
    {9, "bpf_skb_store_bytes"},
    {12, "bpf_tail_call"},
    {14, "bpf_get_current_pid_tgid"},
    {25, "bpf_perf_event_output"},
    {26, "bpf_skb_load_bytes"},
    {51, "bpf_redirect_map"},
    {130, "bpf_ringbuf_output"},
}};

constexpr uint32_t kMaxInsns = 1'000'000;
constexpr uint32_t kNoTarget = UINT32_MAX;

Error err(uint32_t pc, std::string msg) {
  return make_error(ErrorCode::bad_input, fmt::format("insn {}: {}", pc, msg));
}

// The index into an Op family laid out as 64K, 64X, 32K, 32X.
Op family(Op first, bool is64, bool is_reg) {
  return static_cast<Op>(static_cast<uint8_t>(first) + (is64 ? 0 : 2) + (is_reg ? 1 : 0));
}

std::optional<Op> alu_family(uint8_t opc, int16_t off) {
  switch (opc) {
    case op::kAdd: return Op::Add64K;
    case op::kSub: return Op::Sub64K;
    case op::kMul: return Op::Mul64K;
    case op::kDiv:
      return off == 1 ? Op::Sdiv64K : off == 0 ? std::optional(Op::Div64K) : std::nullopt;
    case op::kMod:
      return off == 1 ? Op::Smod64K : off == 0 ? std::optional(Op::Mod64K) : std::nullopt;
    case op::kOr: return Op::Or64K;
    case op::kAnd: return Op::And64K;
    case op::kXor: return Op::Xor64K;
    case op::kLsh: return Op::Lsh64K;
    case op::kRsh: return Op::Rsh64K;
    case op::kArsh: return Op::Arsh64K;
    case op::kMov: return Op::Mov64K;
    default: return std::nullopt;
  }
}

std::optional<Op> jmp_family(uint8_t opc) {
  switch (opc) {
    case op::kJeq: return Op::Jeq64K;
    case op::kJgt: return Op::Jgt64K;
    case op::kJge: return Op::Jge64K;
    case op::kJset: return Op::Jset64K;
    case op::kJne: return Op::Jne64K;
    case op::kJsgt: return Op::Jsgt64K;
    case op::kJsge: return Op::Jsge64K;
    case op::kJlt: return Op::Jlt64K;
    case op::kJle: return Op::Jle64K;
    case op::kJslt: return Op::Jslt64K;
    case op::kJsle: return Op::Jsle64K;
    default: return std::nullopt;
  }
}

uint64_t sext(int32_t imm) {
  return static_cast<uint64_t>(static_cast<int64_t>(imm));
}

struct Decoded {
  Insn insn;
  // For jumps: the raw target index (resolved to a decoded index afterwards).
  int64_t raw_target = INT64_MIN;
};

Result<Decoded> decode_alu(const RawInsn& in, uint32_t pc, bool is64) {
  const uint8_t opc = in.code & 0xf0;
  const bool is_reg = (in.code & op::kSrcX) != 0;
  if (in.dst == 10) return err(pc, "write to r10 (the frame pointer is read-only)");
  Insn out{Op::Exit, in.dst, in.src, 0, 0, 0};
  switch (opc) {
    case op::kNeg:
      if (is_reg)
        return err(pc, fmt::format("unknown opcode 0x{:02x} (neg with a register)", in.code));
      out.op = is64 ? Op::Neg64 : Op::Neg32;
      return Decoded{out};
    case op::kEnd:
      if (in.imm != 16 && in.imm != 32 && in.imm != 64) {
        return err(pc, fmt::format("byte swap of width {} (16, 32 or 64)", in.imm));
      }
      if (is64 && is_reg) return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
      if (!is64 && !is_reg) {  // to little endian: on this (little-endian) host a truncation
        out.op = in.imm == 16 ? Op::Le16 : in.imm == 32 ? Op::Le32 : Op::Le64;
      } else {
        out.op = in.imm == 16 ? Op::Swap16 : in.imm == 32 ? Op::Swap32 : Op::Swap64;
      }
      return Decoded{out};
    case op::kMov:
      if (in.off != 0) {
        if (!is_reg) return err(pc, "sign-extending mov with an immediate");
        if (is64 && in.off == 8)
          out.op = Op::Movsx64_8;
        else if (is64 && in.off == 16)
          out.op = Op::Movsx64_16;
        else if (is64 && in.off == 32)
          out.op = Op::Movsx64_32;
        else if (!is64 && in.off == 8)
          out.op = Op::Movsx32_8;
        else if (!is64 && in.off == 16)
          out.op = Op::Movsx32_16;
        else
          return err(pc, fmt::format("mov with offset {} (8, 16 or 32)", in.off));
        if (in.src > 10) return err(pc, fmt::format("source register r{}", in.src));
        return Decoded{out};
      }
      break;
    default: break;
  }
  std::optional<Op> fam = alu_family(opc, in.off);
  if (!fam) {
    return err(pc, fmt::format("unknown opcode 0x{:02x} (offset {})", in.code, in.off));
  }
  if (is_reg && in.src > 10) return err(pc, fmt::format("source register r{}", in.src));
  out.op = family(*fam, is64, is_reg);
  if (!is_reg) {
    if ((opc == op::kDiv || opc == op::kMod) && in.imm == 0) {
      return err(pc, "division by an immediate zero");
    }
    if (opc == op::kLsh || opc == op::kRsh || opc == op::kArsh) {
      out.imm = static_cast<uint32_t>(in.imm) & (is64 ? 63u : 31u);
    } else {
      out.imm = is64 ? sext(in.imm) : static_cast<uint32_t>(in.imm);
    }
  }
  return Decoded{out};
}

Result<Decoded> decode_jmp(const RawInsn& in, uint32_t pc, bool is64) {
  const uint8_t opc = in.code & 0xf0;
  const bool is_reg = (in.code & op::kSrcX) != 0;
  Insn out{Op::Exit, in.dst, in.src, 0, 0, 0};
  switch (opc) {
    case op::kJa:
      if (is_reg) return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
      out.op = Op::Ja;
      // JMP32 ja (gotol) carries its offset in imm.
      return Decoded{out, static_cast<int64_t>(pc) + 1 + (is64 ? in.off : in.imm)};
    case op::kCall:
      if (!is64 || is_reg) return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
      if (in.src == 1) return err(pc, "bpf-to-bpf call (not supported)");
      if (in.src == 2) return err(pc, "kfunc call (not supported)");
      if (in.src != 0) return err(pc, fmt::format("call with source {}", in.src));
      if (in.imm == op::kHelperMapLookupElem)
        out.op = Op::CallMapLookup;
      else if (in.imm == op::kHelperTailCall)
        out.op = Op::TailCall;
      else
        return err(pc, fmt::format("unknown helper {} ({})", in.imm, helper_name(in.imm)));
      return Decoded{out};
    case op::kExit:
      if (!is64 || is_reg) return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
      out.op = Op::Exit;
      return Decoded{out};
    default: break;
  }
  std::optional<Op> fam = jmp_family(opc);
  if (!fam) return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
  if (in.dst > 10) return err(pc, fmt::format("destination register r{}", in.dst));
  if (is_reg && in.src > 10) return err(pc, fmt::format("source register r{}", in.src));
  out.op = family(*fam, is64, is_reg);
  if (!is_reg) out.imm = is64 ? sext(in.imm) : static_cast<uint32_t>(in.imm);
  return Decoded{out, static_cast<int64_t>(pc) + 1 + in.off};
}

Result<Decoded> decode_mem(const RawInsn& in, uint32_t pc) {
  const uint8_t cls = in.code & 0x07;
  const uint8_t mode = in.code & 0xe0;
  const uint8_t size = in.code & 0x18;
  Insn out{Op::Exit, in.dst, in.src, 0, in.off, 0};
  if (in.dst > 10) return err(pc, fmt::format("destination register r{}", in.dst));
  if (cls != op::kClassSt && in.src > 10)
    return err(pc, fmt::format("source register r{}", in.src));
  auto pick = [&](Op b, Op h, Op w, Op dw) {
    return size == op::kSizeB ? b : size == op::kSizeH ? h : size == op::kSizeW ? w : dw;
  };
  switch (cls) {
    case op::kClassLdx:
      if (in.dst == 10) return err(pc, "write to r10 (the frame pointer is read-only)");
      if (mode == op::kModeMem) {
        out.op = pick(Op::LdxB, Op::LdxH, Op::LdxW, Op::LdxDw);
        return Decoded{out};
      }
      if (mode == op::kModeMemsx && size != op::kSizeDw) {
        out.op = pick(Op::LdxsB, Op::LdxsH, Op::LdxsW, Op::LdxsW);
        return Decoded{out};
      }
      break;
    case op::kClassSt:
      if (mode == op::kModeMem) {
        out.op = pick(Op::StB, Op::StH, Op::StW, Op::StDw);
        out.imm = sext(in.imm);
        return Decoded{out};
      }
      break;
    case op::kClassStx:
      if (mode == op::kModeMem) {
        out.op = pick(Op::StxB, Op::StxH, Op::StxW, Op::StxDw);
        return Decoded{out};
      }
      if (mode == 0xc0) return err(pc, "atomic operation (not supported)");
      break;
    default: break;
  }
  return err(pc, fmt::format("unknown opcode 0x{:02x}", in.code));
}

}  // namespace

std::span<const HelperInfo> supported_helpers() {
  return kSupported;
}

std::string helper_name(int32_t id) {
  for (const HelperInfo& h : kKnownNames) {
    if (h.id == id) return h.name;
  }
  return fmt::format("helper {}", id);
}

Result<Program> Program::load(std::span<const RawInsn> insns, const MapTable& maps,
                              std::string name) {
  if (insns.empty()) return make_error(ErrorCode::bad_input, "empty BPF program");
  if (insns.size() > kMaxInsns) {
    return make_error(
        ErrorCode::bad_input,
        fmt::format("BPF program of {} instructions (at most {})", insns.size(), kMaxInsns));
  }
  Program p;
  p.name_ = std::move(name);
  p.raw_size_ = insns.size();
  std::vector<uint32_t> index_of(insns.size(), kNoTarget);  // insns pc -> decoded index
  std::vector<int64_t> targets;
  p.insns_.reserve(insns.size());
  p.raw_pc_.reserve(insns.size());
  targets.reserve(insns.size());

  for (uint32_t pc = 0; pc < insns.size(); ++pc) {
    const RawInsn& in = insns[pc];
    if (in.dst > 10) return err(pc, fmt::format("destination register r{}", in.dst));
    Decoded d{};
    const uint8_t cls = in.code & 0x07;
    switch (cls) {
      case op::kClassAlu:
      case op::kClassAlu64: {
        auto r = decode_alu(in, pc, cls == op::kClassAlu64);
        if (!r) return r.error();
        d = *r;
        break;
      }
      case op::kClassJmp:
      case op::kClassJmp32: {
        auto r = decode_jmp(in, pc, cls == op::kClassJmp);
        if (!r) return r.error();
        d = *r;
        break;
      }
      case op::kClassLdx:
      case op::kClassSt:
      case op::kClassStx: {
        auto r = decode_mem(in, pc);
        if (!r) return r.error();
        d = *r;
        break;
      }
      case op::kClassLd: {
        if (in.code != op::kLdImm64) {
          return err(pc, fmt::format("unknown opcode 0x{:02x} (legacy packet loads are not "
                                     "supported)",
                                     in.code));
        }
        if (in.dst == 10) return err(pc, "write to r10 (the frame pointer is read-only)");
        if (pc + 1 >= insns.size()) return err(pc, "ld_imm64 without its second half");
        const RawInsn& hi = insns[pc + 1];
        if (hi.code != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0) {
          return err(pc + 1, "malformed second half of ld_imm64");
        }
        d.insn = Insn{Op::LdImm64, in.dst, 0, 0, 0, 0};
        if (in.src == 0) {
          d.insn.imm = static_cast<uint32_t>(in.imm) |
                       (static_cast<uint64_t>(static_cast<uint32_t>(hi.imm)) << 32);
        } else if (in.src == op::kPseudoMapFd) {
          if (hi.imm != 0) return err(pc, "map fd ld_imm64 with a non-zero upper half");
          const MapBinding* found = nullptr;
          for (const MapBinding& b : maps) {
            if (b.fd == in.imm) found = &b;
          }
          if (!found) return err(pc, fmt::format("map fd {} is not in the map table", in.imm));
          size_t idx = 0;
          while (idx < p.maps_.size() && p.maps_[idx] != found->map) ++idx;
          if (idx == p.maps_.size()) p.maps_.push_back(found->map);
          d.insn.op = Op::LdMap;
          d.insn.imm = idx;  // turned into a handle by the interpreter
        } else {
          return err(
              pc, fmt::format("ld_imm64 with source {} (only 0 = value and 1 = map fd)", in.src));
        }
        break;
      }
    }
    index_of[pc] = static_cast<uint32_t>(p.insns_.size());
    p.insns_.push_back(d.insn);
    p.raw_pc_.push_back(pc);
    targets.push_back(d.raw_target);
    if (d.insn.op == Op::LdImm64 || d.insn.op == Op::LdMap) ++pc;
  }

  for (size_t i = 0; i < p.insns_.size(); ++i) {
    if (targets[i] == INT64_MIN) continue;
    int64_t t = targets[i];
    if (t < 0 || t >= static_cast<int64_t>(insns.size())) {
      return err(p.raw_pc_[i],
                 fmt::format("jump to {} is outside the program (0..{})", t, insns.size() - 1));
    }
    if (index_of[t] == kNoTarget) {
      return err(p.raw_pc_[i], fmt::format("jump to {}, the middle of an ld_imm64", t));
    }
    p.insns_[i].off = static_cast<int32_t>(index_of[t]);
  }
  Op last = p.insns_.back().op;
  if (last != Op::Exit && last != Op::Ja) {
    return err(p.raw_pc_.back(),
               "the last instruction is not exit or ja (execution would fall "
               "off the end)");
  }
  return p;
}

}  // namespace dpi::bpfvm
