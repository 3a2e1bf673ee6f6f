#include "bench/felix_policy.h"

#include <cstring>
#include <random>
#include <stdexcept>

#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/opcodes.h"

namespace dpi::bench {

namespace {

using namespace dpi::bpfvm::as;  // NOLINT(google-build-using-namespace)
using namespace dpi::bpfvm::op;  // NOLINT(google-build-using-namespace)
using bpfvm::RawInsn;

// Stack layout as Felix's: state key at -4, the destination IP-set key below it.
constexpr int16_t kStackStateKey = -4;
constexpr int16_t kStackDstKey = -36;

// Labels resolved when the program is finished.
class Asm {
 public:
  int label() {
    pos_.push_back(-1);
    return static_cast<int>(pos_.size()) - 1;
  }
  void bind(int l) { pos_[l] = static_cast<int>(code_.size()); }
  bool used(int l) const {
    for (const auto& f : fixups_) {
      if (f.second == l) return true;
    }
    return false;
  }
  void emit(RawInsn in) { code_.push_back(in); }
  void jump(RawInsn in, int l) {
    fixups_.emplace_back(code_.size(), l);
    code_.push_back(in);
  }
  void lddw(uint8_t dst, uint64_t v) {
    emit(ld_imm64_lo(dst, v));
    emit(ld_imm64_hi(v));
  }
  void map(uint8_t dst, int32_t fd) {
    emit(ld_map_fd_lo(dst, fd));
    emit(ld_map_fd_hi());
  }
  std::vector<RawInsn> finish() {
    for (auto [at, l] : fixups_) {
      const long off = pos_[l] - static_cast<long>(at + 1);
      // Felix splits programs long before this; the generator is for programs that fit.
      if (off < INT16_MIN || off > INT16_MAX) throw std::length_error("policy program too long");
      code_[at].off = static_cast<int16_t>(off);
    }
    return std::move(code_);
  }

 private:
  std::vector<RawInsn> code_;
  std::vector<int> pos_;
  std::vector<std::pair<size_t, int>> fixups_;
};

uint32_t bswap32(uint32_t v) {
  return __builtin_bswap32(v);
}

void record_rule_id(Asm& a, uint64_t id, int action) {
  a.emit(ldx(kSizeB, 1, 9, kOffRulesHit));
  a.jump(jmp_imm(kJge, 1, 32, 0), action);
  a.emit(mov64_reg(2, 1));
  a.emit(alu64_imm(kAdd, 2, 1));
  a.emit(stx(kSizeB, 9, 2, kOffRulesHit));
  a.emit(alu64_imm(kLsh, 1, 3));
  a.emit(alu64_imm(kAdd, 1, kOffRuleIds));
  a.lddw(2, id);
  a.emit(alu64_reg(kAdd, 1, 9));
  a.emit(stx(kSizeDw, 1, 2, 0));
}

}  // namespace

std::array<uint8_t, kIpSetKeySize> ipset_key(uint32_t prefixlen, uint64_t set_id, uint32_t addr,
                                             uint16_t port, uint8_t proto) {
  std::array<uint8_t, kIpSetKeySize> k{};
  std::memcpy(&k[0], &prefixlen, 4);
  for (int i = 0; i < 8; ++i) k[4 + i] = static_cast<uint8_t>(set_id >> (56 - 8 * i));
  uint32_t be = bswap32(addr);
  std::memcpy(&k[12], &be, 4);
  std::memcpy(&k[16], &port, 2);
  k[18] = proto;
  return k;
}

SynthPolicy make_policy(const PolicySpec& spec) {
  std::mt19937_64 rng(spec.seed);
  auto below = [&](uint64_t n) { return static_cast<uint32_t>(rng() % n); };
  SynthPolicy out;
  // Addresses in a few /16s of 10/8 so that CIDRs and set members overlap with flows.
  for (int i = 0; i < spec.ip_sets * spec.members_per_set + 64; ++i) {
    out.addresses.push_back(0x0a000000u | (below(4) << 16) | below(65536));
  }
  std::vector<uint64_t> set_ids;
  size_t next_addr = 0;
  for (int s = 0; s < spec.ip_sets; ++s) {
    uint64_t id = rng() | 1;
    set_ids.push_back(id);
    for (int m = 0; m < spec.members_per_set; ++m) {
      uint32_t addr = out.addresses[next_addr++ % out.addresses.size()];
      switch (below(8)) {
        case 0: out.members.push_back(ipset_key(64 + 24, id, addr & 0xffffff00u, 0, 0)); break;
        case 1: out.members.push_back(ipset_key(64 + 32 + 24, id, addr, 80 + below(3), 6)); break;
        default: out.members.push_back(ipset_key(64 + 32, id, addr, 0, 0)); break;
      }
    }
  }

  Asm a;
  const int deny = a.label(), allow = a.label(), exit_drop = a.label();
  // Header.
  a.emit(mov64_reg(6, 1));
  a.emit(mov64_imm(1, 0));
  a.emit(stx(kSizeW, 10, 1, kStackStateKey));
  a.emit(mov64_reg(2, 10));
  a.emit(alu64_imm(kAdd, 2, kStackStateKey));
  a.map(1, kStateFd);
  a.emit(call(kHelperMapLookupElem));
  a.jump(jmp_imm(kJeq, 0, 0, 0), exit_drop);
  a.emit(mov64_reg(9, 0));

  for (int r = 0; r < spec.rules; ++r) {
    const int next = a.label();
    // The kernel refuses unreachable code, so every rule but the tier's end can fail to match.
    const bool any = below(50) != 0;
    const bool want_cidr = any && below(10) < 5;
    const bool want_set = any && below(10) < 5;
    const bool want_port = any && below(10) < 7;
    if (below(10) < 5 || !(want_cidr || want_set || want_port)) {  // protocol
      a.emit(ldx(kSizeB, 1, 9, kOffProto));
      a.jump(jmp_imm(kJne, 1, below(3) ? 6 : 17, 0), next);
    }
    if (want_cidr) {  // source CIDRs (any of 1-3)
      const int matched = a.label();
      const uint32_t n = 1 + below(3);
      for (uint32_t c = 0; c < n; ++c) {
        const uint32_t plen = 16 + below(17);
        const uint32_t mask = plen == 32 ? ~0u : ~((1u << (32 - plen)) - 1);
        const uint32_t addr = out.addresses[below(out.addresses.size())] & mask;
        a.emit(ldx(kSizeW, 1, 9, kOffIpSrc));
        a.emit(mov32_imm(2, static_cast<int32_t>(bswap32(mask))));
        a.emit(alu32_reg(kAnd, 2, 1));
        a.jump(jmp32_imm(kJeq, 2, static_cast<int32_t>(bswap32(addr)), 0), matched);
      }
      a.jump(ja(0), next);
      a.bind(matched);
    }
    if (want_set) {  // destination IP set
      const uint64_t id = set_ids[below(set_ids.size())];
      const uint64_t id_be = __builtin_bswap64(id);
      a.emit(mov64_imm(1, 0));
      a.emit(stx(kSizeB, 10, 1, kStackDstKey + 19));
      a.emit(mov64_imm(1, 128));
      a.emit(stx(kSizeW, 10, 1, kStackDstKey));
      a.emit(ldx(kSizeW, 1, 9, kOffPostNatIpDst));
      a.emit(stx(kSizeW, 10, 1, kStackDstKey + 12));
      a.emit(ldx(kSizeH, 1, 9, kOffPostNatDport));
      a.emit(stx(kSizeH, 10, 1, kStackDstKey + 16));
      a.emit(ldx(kSizeB, 1, 9, kOffProto));
      a.emit(stx(kSizeB, 10, 1, kStackDstKey + 18));
      a.emit(mov32_imm(1, static_cast<int32_t>(static_cast<uint32_t>(id_be))));
      a.emit(stx(kSizeW, 10, 1, kStackDstKey + 4));
      a.emit(mov32_imm(1, static_cast<int32_t>(static_cast<uint32_t>(id_be >> 32))));
      a.emit(stx(kSizeW, 10, 1, kStackDstKey + 8));
      a.map(1, kIpSetsFd);
      a.emit(mov64_reg(2, 10));
      a.emit(alu64_imm(kAdd, 2, kStackDstKey));
      a.emit(call(kHelperMapLookupElem));
      a.jump(jmp_imm(kJeq, 0, 0, 0), next);
    }
    if (want_port) {  // destination port or range
      a.emit(ldx(kSizeH, 1, 9, kOffPostNatDport));
      const int32_t lo = static_cast<int32_t>(below(4) ? 1000 + below(9000) : 80 + below(4));
      if (below(2)) {
        a.jump(jmp_imm(kJne, 1, lo, 0), next);
      } else {
        a.jump(jmp_imm(kJlt, 1, lo, 0), next);
        a.jump(jmp_imm(kJgt, 1, lo + static_cast<int32_t>(below(200)), 0), next);
      }
    }
    const int action = below(10) < 7 ? allow : deny;
    record_rule_id(a, rng(), action);
    a.jump(ja(0), action);
    a.bind(next);
  }
  // End of tier: deny, recorded.
  record_rule_id(a, rng(), deny);
  a.jump(ja(0), deny);

  // Footer.
  a.bind(deny);
  a.emit(mov32_imm(1, 2));
  a.emit(stx(kSizeW, 9, 1, kOffPolRc));
  a.emit(mov64_reg(1, 6));
  a.map(2, kProgsFd);
  a.emit(ldx(kSizeW, 3, 6, 52));
  a.emit(call(kHelperTailCall));
  a.bind(exit_drop);
  a.emit(mov64_imm(0, 2));
  a.emit(exit());
  if (a.used(allow)) {  // Felix emits the allow footer only when a rule jumps to it
    a.bind(allow);
    a.emit(mov32_imm(1, 1));
    a.emit(stx(kSizeW, 9, 1, kOffPolRc));
    a.emit(mov64_reg(1, 6));
    a.map(2, kProgsFd);
    a.emit(ldx(kSizeW, 3, 6, 48));
    a.emit(call(kHelperTailCall));
    a.emit(mov32_imm(1, 10));
    a.emit(stx(kSizeW, 9, 1, kOffPolRc));
    a.emit(mov64_imm(0, 2));
    a.emit(exit());
  }
  out.insns = a.finish();
  return out;
}

std::vector<SynthFlow> make_flows(const SynthPolicy& policy, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto below = [&](uint64_t m) { return static_cast<uint32_t>(rng() % m); };
  auto addr = [&] {
    return below(4) ? policy.addresses[below(policy.addresses.size())]
                    : 0x0a000000u | (below(256) << 16) | below(65536);
  };
  std::vector<SynthFlow> flows(n);
  for (SynthFlow& f : flows) {
    f.src = addr();
    f.dst = addr();
    f.sport = static_cast<uint16_t>(1024 + below(60000));
    f.dport = static_cast<uint16_t>(below(2) ? 80 + below(4) : below(11000));
    f.proto = below(4) ? 6 : 17;
  }
  return flows;
}

void fill_state(std::span<uint8_t> state, const SynthFlow& flow) {
  std::memset(state.data(), 0, state.size());
  uint32_t src = bswap32(flow.src), dst = bswap32(flow.dst);
  std::memcpy(&state[kOffIpSrc], &src, 4);
  std::memcpy(&state[kOffIpSrc + 16], &dst, 4);  // ip_dst
  std::memcpy(&state[kOffIpSrc + 32], &dst, 4);  // pre_nat_ip_dst
  std::memcpy(&state[kOffPostNatIpDst], &dst, 4);
  std::memcpy(&state[kOffSport], &flow.sport, 2);
  std::memcpy(&state[kOffSport + 2], &flow.dport, 2);  // dport
  std::memcpy(&state[kOffSport + 4], &flow.dport, 2);  // pre_nat_dport
  std::memcpy(&state[kOffPostNatDport], &flow.dport, 2);
  state[kOffProto] = flow.proto;
}

}  // namespace dpi::bench
