#include "backends/ebpf/vm/vm.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <type_traits>
#include <variant>

#include <fmt/format.h>

namespace dpi::bpfvm {

namespace {

// Region tags (upper 32 bits of a pointer): 1 = stack, 2 = context, 3.. = map values. A map handle
// (what ld_imm64 src=1 loads) has its own tag and is no region, so dereferencing it fails.
constexpr uint64_t kStackTag = 1;
constexpr uint64_t kCtxTag = 2;
constexpr uint64_t kMapTag = 0xfffffffeull;
constexpr uint32_t kStackSize = 512;
// What the interpreter leaves in r0 after a failed tail call. The kernel leaves r0 as it was and
// its verifier treats it as clobbered, so no accepted program reads it; any negative value will do.
constexpr uint64_t kTailCallFailed = static_cast<uint64_t>(-2);  // -ENOENT

template <class U>
using S = std::make_signed_t<U>;

template <class U>
U sdiv(U a, U b) {
  if (b == 0) return 0;
  if (static_cast<S<U>>(b) == -1) return static_cast<U>(U{0} - a);  // INT_MIN / -1 wraps
  return static_cast<U>(static_cast<S<U>>(a) / static_cast<S<U>>(b));
}
template <class U>
U smod(U a, U b) {
  if (b == 0) return a;
  if (static_cast<S<U>>(b) == -1) return 0;
  return static_cast<U>(static_cast<S<U>>(a) % static_cast<S<U>>(b));
}

template <class U>
bool c_jeq(U a, U b) {
  return a == b;
}
template <class U>
bool c_jgt(U a, U b) {
  return a > b;
}
template <class U>
bool c_jge(U a, U b) {
  return a >= b;
}
template <class U>
bool c_jset(U a, U b) {
  return (a & b) != 0;
}
template <class U>
bool c_jne(U a, U b) {
  return a != b;
}
template <class U>
bool c_jsgt(U a, U b) {
  return static_cast<S<U>>(a) > static_cast<S<U>>(b);
}
template <class U>
bool c_jsge(U a, U b) {
  return static_cast<S<U>>(a) >= static_cast<S<U>>(b);
}
template <class U>
bool c_jlt(U a, U b) {
  return a < b;
}
template <class U>
bool c_jle(U a, U b) {
  return a <= b;
}
template <class U>
bool c_jslt(U a, U b) {
  return static_cast<S<U>>(a) < static_cast<S<U>>(b);
}
template <class U>
bool c_jsle(U a, U b) {
  return static_cast<S<U>>(a) <= static_cast<S<U>>(b);
}

[[gnu::cold]] void fail(RunResult& res, RunStatus st, const Program* prog, size_t index,
                        uint64_t executed, std::string msg) {
  res.executed = executed;
  res.status = st;
  res.last_program = prog;
  res.pc = prog->raw_pc(index);
  res.error =
      fmt::format("{}insn {}: {}", prog->name().empty() ? "" : prog->name() + " ", res.pc, msg);
}

[[gnu::cold]] void mem_fault(RunResult& res, const Program* prog, size_t index, uint64_t executed,
                             uint64_t addr, uint32_t size, bool write) {
  fail(res, RunStatus::memory_error, prog, index, executed,
       fmt::format("{} of {} bytes at 0x{:x} is outside every memory region{}",
                   write ? "store" : "load", size, addr,
                   (addr >> 32) == 0 ? " (a scalar or null pointer)" : ""));
}

}  // namespace

const char* to_string(RunStatus s) {
  switch (s) {
    case RunStatus::ok: return "ok";
    case RunStatus::memory_error: return "memory error";
    case RunStatus::instruction_limit: return "instruction limit";
    case RunStatus::helper_error: return "helper error";
  }
  return "?";
}

Vm::Vm() {
  regions_.reserve(64);
}

// One region per successful lookup, never searched for an earlier one: the table's capacity is
// kept across runs, and the instruction limit bounds its growth within one.
uint64_t Vm::add_region(uint8_t* base, uint32_t size, bool writable) {
  regions_.push_back(Region{base, size, writable});
  return static_cast<uint64_t>(regions_.size()) << 32;
}

// Dispatch: with GCC or Clang, threaded code (each handler ends in its own indirect jump through
// a table of label addresses, which the branch predictor learns per handler); elsewhere, one
// switch (also with -DDPI_BPFVM_NO_THREADED). Both run the same handler bodies below.
#if defined(__GNUC__) && !defined(DPI_BPFVM_NO_THREADED)
#define DPI_BPFVM_THREADED 1
#endif

RunResult Vm::run(const Program& prog, std::span<uint8_t> ctx, const RunOptions& opts) {
  RunResult res;
  // Every run starts on a zeroed stack; only the bytes earlier runs stored to need it again.
  std::memset(stack_.data() + stack_low_, 0, kStackSize - stack_low_);
  stack_low_ = kStackSize;
  regions_.clear();
  regions_.push_back(Region{stack_.data(), kStackSize, true});
  regions_.push_back(Region{ctx.data(), static_cast<uint32_t>(ctx.size()), true});

  uint64_t r[11] = {};
  r[1] = kCtxTag << 32;
  r[10] = (kStackTag << 32) | kStackSize;

  const Program* cur = &prog;
  const Insn* code = cur->insns().data();
  // The instruction being executed: `ip` points one past it while its handler runs.
  const Insn* ip = code;
  const Insn* in = nullptr;
  uint64_t executed = 0;
  const uint64_t limit = opts.instruction_limit;
  auto index = [&]() -> size_t { return static_cast<size_t>(ip - code) - 1; };

  // The region table in locals, refreshed when a helper adds a region: the compiler cannot keep
  // the vector's fields in registers across the stores the program does.
  const Region* regs = regions_.data();
  size_t nregs = regions_.size();
  auto mem = [&regs, &nregs](uint64_t addr, uint32_t size, bool write) -> uint8_t* {
    uint64_t idx = (addr >> 32) - 1;
    if (idx >= nregs) return nullptr;
    const Region& g = regs[idx];
    auto off = static_cast<uint32_t>(addr);
    if (off > g.size || g.size - off < size || (write && !g.writable)) return nullptr;
    return g.base + off;
  };

  // NOLINTBEGIN(bugprone-macro-parentheses,cppcoreguidelines-avoid-goto)
#ifdef DPI_BPFVM_THREADED
  // In the order of enum class Op (program.h); the static_assert below checks the count, the
  // conformance suite (every operation, both operand forms) checks the order.
  // clang-format off
  static const void* const kHandlers[] = {
#define DPI_ALU_LABELS(n) &&op_##n##64K, &&op_##n##64X, &&op_##n##32K, &&op_##n##32X,
      DPI_BPFVM_ALU_OPS(DPI_ALU_LABELS)
#undef DPI_ALU_LABELS
      &&op_Neg64, &&op_Neg32, &&op_Movsx64_8, &&op_Movsx64_16, &&op_Movsx64_32, &&op_Movsx32_8,
      &&op_Movsx32_16, &&op_Le16, &&op_Le32, &&op_Le64, &&op_Swap16, &&op_Swap32, &&op_Swap64,
#define DPI_JMP_LABELS(n) &&op_##n##64K, &&op_##n##64X, &&op_##n##32K, &&op_##n##32X,
      DPI_BPFVM_JMP_CONDS(DPI_JMP_LABELS)
#undef DPI_JMP_LABELS
      &&op_Ja, &&op_CallMapLookup, &&op_TailCall, &&op_Exit,
      &&op_LdxB, &&op_LdxH, &&op_LdxW, &&op_LdxDw, &&op_LdxsB, &&op_LdxsH, &&op_LdxsW,
      &&op_StB, &&op_StH, &&op_StW, &&op_StDw, &&op_StxB, &&op_StxH, &&op_StxW, &&op_StxDw,
      &&op_LdImm64, &&op_LdMap,
  };
  // clang-format on
  static_assert(std::size(kHandlers) == static_cast<size_t>(Op::LdMap) + 1,
                "one handler per Op, in enum order");
#define DPI_OP(name) op_##name:
#define DPI_NEXT                                   \
  do {                                             \
    in = ip++;                                     \
    if (++executed > limit) [[unlikely]]           \
      goto limit_reached;                          \
    goto* kHandlers[static_cast<uint8_t>(in->op)]; \
  } while (0)
#else
#define DPI_OP(name) case Op::name:
#define DPI_NEXT continue
#endif

#define DPI_LDX(NAME, T, CAST)                                         \
  DPI_OP(NAME) {                                                       \
    uint64_t a = r[in->src] + static_cast<uint64_t>(int64_t{in->off}); \
    uint8_t* p = mem(a, sizeof(T), false);                             \
    if (p == nullptr) {                                                \
      mem_fault(res, cur, index(), executed, a, sizeof(T), false);     \
      return res;                                                      \
    }                                                                  \
    T v;                                                               \
    std::memcpy(&v, p, sizeof v);                                      \
    r[in->dst] = static_cast<uint64_t>(CAST(v));                       \
    DPI_NEXT;                                                          \
  }
#define DPI_ST(NAME, T, VALUE)                                                               \
  DPI_OP(NAME) {                                                                             \
    uint64_t a = r[in->dst] + static_cast<uint64_t>(int64_t{in->off});                       \
    uint8_t* p = mem(a, sizeof(T), true);                                                    \
    if (p == nullptr) {                                                                      \
      mem_fault(res, cur, index(), executed, a, sizeof(T), true);                            \
      return res;                                                                            \
    }                                                                                        \
    if ((a >> 32) == kStackTag) stack_low_ = std::min(stack_low_, static_cast<uint32_t>(a)); \
    auto v = static_cast<T>(VALUE);                                                          \
    std::memcpy(p, &v, sizeof v);                                                            \
    DPI_NEXT;                                                                                \
  }
#define DPI_ALU(NAME, EXPR)                                           \
  DPI_OP(NAME##64K) {                                                 \
    using U = uint64_t;                                               \
    U a = r[in->dst], b = in->imm;                                    \
    r[in->dst] = (EXPR);                                              \
    DPI_NEXT;                                                         \
  }                                                                   \
  DPI_OP(NAME##64X) {                                                 \
    using U = uint64_t;                                               \
    U a = r[in->dst], b = r[in->src];                                 \
    r[in->dst] = (EXPR);                                              \
    DPI_NEXT;                                                         \
  }                                                                   \
  DPI_OP(NAME##32K) {                                                 \
    using U = uint32_t;                                               \
    U a = static_cast<U>(r[in->dst]), b = static_cast<U>(in->imm);    \
    r[in->dst] = static_cast<U>(EXPR);                                \
    DPI_NEXT;                                                         \
  }                                                                   \
  DPI_OP(NAME##32X) {                                                 \
    using U = uint32_t;                                               \
    U a = static_cast<U>(r[in->dst]), b = static_cast<U>(r[in->src]); \
    r[in->dst] = static_cast<U>(EXPR);                                \
    DPI_NEXT;                                                         \
  }
// FN names a comparison template; it cannot be parenthesised.
#define DPI_JMP(NAME, FN)                                                                   \
  DPI_OP(NAME##64K) {                                                                       \
    if (FN<uint64_t>(r[in->dst], in->imm)) ip = code + in->off;                             \
    DPI_NEXT;                                                                               \
  }                                                                                         \
  DPI_OP(NAME##64X) {                                                                       \
    if (FN<uint64_t>(r[in->dst], r[in->src])) ip = code + in->off;                          \
    DPI_NEXT;                                                                               \
  }                                                                                         \
  DPI_OP(NAME##32K) {                                                                       \
    if (FN<uint32_t>(static_cast<uint32_t>(r[in->dst]), static_cast<uint32_t>(in->imm)))    \
      ip = code + in->off;                                                                  \
    DPI_NEXT;                                                                               \
  }                                                                                         \
  DPI_OP(NAME##32X) {                                                                       \
    if (FN<uint32_t>(static_cast<uint32_t>(r[in->dst]), static_cast<uint32_t>(r[in->src]))) \
      ip = code + in->off;                                                                  \
    DPI_NEXT;                                                                               \
  }

#ifdef DPI_BPFVM_THREADED
  DPI_NEXT;
  {
#else
  for (;;) {
    in = ip++;
    if (++executed > limit) [[unlikely]]
      goto limit_reached;
    switch (in->op) {
#endif
    DPI_ALU(Add, a + b)
    DPI_ALU(Sub, a - b)
    DPI_ALU(Mul, a * b)
    DPI_ALU(Div, b ? a / b : U{0})
    DPI_ALU(Sdiv, sdiv<U>(a, b))
    DPI_ALU(Mod, b ? a % b : a)
    DPI_ALU(Smod, smod<U>(a, b))
    DPI_ALU(Or, a | b)
    DPI_ALU(And, a & b)
    DPI_ALU(Xor, a ^ b)
    DPI_ALU(Lsh, a << (b & (sizeof(U) * 8 - 1)))
    DPI_ALU(Rsh, a >> (b & (sizeof(U) * 8 - 1)))
    DPI_ALU(Arsh, static_cast<U>(static_cast<S<U>>(a) >> (b & (sizeof(U) * 8 - 1))))
    DPI_ALU(Mov, (static_cast<void>(a), b))
    DPI_OP(Neg64) {
      r[in->dst] = uint64_t{0} - r[in->dst];
      DPI_NEXT;
    }
    DPI_OP(Neg32) {
      r[in->dst] = static_cast<uint32_t>(0u - static_cast<uint32_t>(r[in->dst]));
      DPI_NEXT;
    }
    DPI_OP(Movsx64_8) {
      r[in->dst] = static_cast<uint64_t>(int64_t{static_cast<int8_t>(r[in->src])});
      DPI_NEXT;
    }
    DPI_OP(Movsx64_16) {
      r[in->dst] = static_cast<uint64_t>(int64_t{static_cast<int16_t>(r[in->src])});
      DPI_NEXT;
    }
    DPI_OP(Movsx64_32) {
      r[in->dst] = static_cast<uint64_t>(int64_t{static_cast<int32_t>(r[in->src])});
      DPI_NEXT;
    }
    DPI_OP(Movsx32_8) {
      r[in->dst] = static_cast<uint32_t>(int32_t{static_cast<int8_t>(r[in->src])});
      DPI_NEXT;
    }
    DPI_OP(Movsx32_16) {
      r[in->dst] = static_cast<uint32_t>(int32_t{static_cast<int16_t>(r[in->src])});
      DPI_NEXT;
    }
    DPI_OP(Le16) {
      r[in->dst] = static_cast<uint16_t>(r[in->dst]);
      DPI_NEXT;
    }
    DPI_OP(Le32) {
      r[in->dst] = static_cast<uint32_t>(r[in->dst]);
      DPI_NEXT;
    }
    DPI_OP(Le64) {
      DPI_NEXT;
    }
    DPI_OP(Swap16) {
      r[in->dst] = __builtin_bswap16(static_cast<uint16_t>(r[in->dst]));
      DPI_NEXT;
    }
    DPI_OP(Swap32) {
      r[in->dst] = __builtin_bswap32(static_cast<uint32_t>(r[in->dst]));
      DPI_NEXT;
    }
    DPI_OP(Swap64) {
      r[in->dst] = __builtin_bswap64(r[in->dst]);
      DPI_NEXT;
    }
    DPI_JMP(Jeq, c_jeq)
    DPI_JMP(Jgt, c_jgt)
    DPI_JMP(Jge, c_jge)
    DPI_JMP(Jset, c_jset)
    DPI_JMP(Jne, c_jne)
    DPI_JMP(Jsgt, c_jsgt)
    DPI_JMP(Jsge, c_jsge)
    DPI_JMP(Jlt, c_jlt)
    DPI_JMP(Jle, c_jle)
    DPI_JMP(Jslt, c_jslt)
    DPI_JMP(Jsle, c_jsle)
    DPI_OP(Ja) {
      ip = code + in->off;
      DPI_NEXT;
    }
    DPI_OP(CallMapLookup) {
      const uint64_t h = r[1];
      if ((h >> 32) != kMapTag || static_cast<uint32_t>(h) >= cur->maps().size()) {
        fail(res, RunStatus::helper_error, cur, index(), executed,
             "bpf_map_lookup_elem: r1 is not a map loaded by ld_imm64");
        return res;
      }
      const MapRef& m = cur->maps()[static_cast<uint32_t>(h)];
      if (ArrayMap* const* am = std::get_if<ArrayMap*>(&m)) {
        uint8_t* k = mem(r[2], 4, false);
        if (k == nullptr) {
          mem_fault(res, cur, index(), executed, r[2], 4, false);
          return res;
        }
        uint32_t key;
        std::memcpy(&key, k, 4);
        std::span<uint8_t> v = (*am)->value(key);
        r[0] = v.empty() ? 0 : add_region(v.data(), static_cast<uint32_t>(v.size()), true);
        regs = regions_.data();
        nregs = regions_.size();
      } else if (LpmMap* const* lm = std::get_if<LpmMap*>(&m)) {
        uint8_t* k = mem(r[2], (*lm)->key_size(), false);
        if (k == nullptr) {
          mem_fault(res, cur, index(), executed, r[2], (*lm)->key_size(), false);
          return res;
        }
        const uint8_t* v = (*lm)->lookup(k);
        // IP-set values are shared by every run: read-only here (Felix never writes them).
        r[0] = v == nullptr ? 0 : add_region(const_cast<uint8_t*>(v), (*lm)->value_size(), false);
        regs = regions_.data();
        nregs = regions_.size();
      } else {
        fail(res, RunStatus::helper_error, cur, index(), executed,
             "bpf_map_lookup_elem on a prog array");
        return res;
      }
      DPI_NEXT;
    }
    DPI_OP(TailCall) {
      const uint64_t h = r[2];
      ProgArray* const* pa = nullptr;
      if ((h >> 32) == kMapTag && static_cast<uint32_t>(h) < cur->maps().size()) {
        pa = std::get_if<ProgArray*>(&cur->maps()[static_cast<uint32_t>(h)]);
      }
      if (pa == nullptr) {
        fail(res, RunStatus::helper_error, cur, index(), executed,
             "bpf_tail_call: r2 is not a prog array loaded by ld_imm64");
        return res;
      }
      const auto slot = static_cast<uint32_t>(r[3]);
      const Program* next = (*pa)->get(slot);
      if (next == nullptr || res.chain_len >= kMaxTailCalls) {
        r[0] = kTailCallFailed;
        DPI_NEXT;
      }
      res.chain[res.chain_len++] = TailCallStep{slot, next};
      cur = next;
      code = cur->insns().data();
      ip = code;
      DPI_NEXT;
    }
    DPI_OP(Exit) {
      res.r0 = r[0];
      res.executed = executed;
      res.last_program = cur;
      res.pc = cur->raw_pc(index());
      return res;
    }
    DPI_LDX(LdxB, uint8_t, )
    DPI_LDX(LdxH, uint16_t, )
    DPI_LDX(LdxW, uint32_t, )
    DPI_LDX(LdxDw, uint64_t, )
    DPI_LDX(LdxsB, int8_t, int64_t)
    DPI_LDX(LdxsH, int16_t, int64_t)
    DPI_LDX(LdxsW, int32_t, int64_t)
    DPI_ST(StB, uint8_t, in->imm)
    DPI_ST(StH, uint16_t, in->imm)
    DPI_ST(StW, uint32_t, in->imm)
    DPI_ST(StDw, uint64_t, in->imm)
    DPI_ST(StxB, uint8_t, r[in->src])
    DPI_ST(StxH, uint16_t, r[in->src])
    DPI_ST(StxW, uint32_t, r[in->src])
    DPI_ST(StxDw, uint64_t, r[in->src])
    DPI_OP(LdImm64) {
      r[in->dst] = in->imm;
      DPI_NEXT;
    }
    DPI_OP(LdMap) {
      r[in->dst] = (kMapTag << 32) | in->imm;
      DPI_NEXT;
    }
#ifdef DPI_BPFVM_THREADED
  }
#else
    }
  }
#endif
limit_reached:
  fail(res, RunStatus::instruction_limit, cur, index(), executed - 1,
       fmt::format("instruction limit of {} reached", limit));
  return res;
  // NOLINTEND(bugprone-macro-parentheses,cppcoreguidelines-avoid-goto)
#undef DPI_OP
#undef DPI_NEXT
#undef DPI_LDX
#undef DPI_ST
#undef DPI_ALU
#undef DPI_JMP
}

}  // namespace dpi::bpfvm
