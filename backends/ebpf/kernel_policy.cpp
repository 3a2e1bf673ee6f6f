#include "backends/ebpf/kernel_policy.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "backends/ebpf/policy_abi.h"
#include "backends/ebpf/vm/insn.h"

namespace dpi::ebpf {

namespace {

using namespace policy_abi;  // NOLINT(google-build-using-namespace)

constexpr uint32_t kIpSetKeySize = 20;

Result<std::vector<bpfvm::RawInsn>> to_kernel(const std::vector<RawInsn>& raw) {
  std::vector<uint8_t> bytes;
  bytes.reserve(raw.size() * 8);
  for (const auto& i : raw) bytes.insert(bytes.end(), i.b.begin(), i.b.end());
  return bpfvm::decode_bytes(bytes);
}

}  // namespace

Result<bpfkernel::KernelMap> build_kernel_ip_sets(const std::vector<RawEntry>& entries) {
  auto m = bpfkernel::create_lpm_map(kIpSetKeySize, 4,
                                     std::max<uint32_t>(16, static_cast<uint32_t>(entries.size())));
  if (!m) return m.error();
  for (const auto& [k, v] : entries) {
    if (auto s = bpfkernel::map_update(*m, k, v); !s) return s.error();
  }
  return m;
}

Result<std::unique_ptr<KernelPolicyProgram>> KernelPolicyProgram::load(
    const DebugProgram& prog, const RuleIndex& rules, const StateLayout& layout,
    const bpfkernel::KernelMap& ip_sets, uint32_t index) {
  std::unique_ptr<KernelPolicyProgram> p(new KernelPolicyProgram());
  p->layout_ = &layout;
  p->file_ = prog.file;
  if (prog.subprograms.empty())
    return make_error(ErrorCode::bad_input, prog.file + ": no instructions");
  uint32_t max_k = 0;
  for (const SubProgram& s : prog.subprograms) max_k = std::max(max_k, s.k);
  auto state = bpfkernel::create_array_map(layout.size, 1);
  if (!state) return state.error();
  p->state_ = std::move(*state);
  auto stubs = bpfkernel::create_prog_array(2);
  if (!stubs) return stubs.error();
  p->stubs_ = std::move(*stubs);
  auto jump = bpfkernel::create_prog_array(index + max_k * kSubProgStride + 1);
  if (!jump) return jump.error();
  p->jump_ = std::move(*jump);
  auto a = bpfkernel::load_stub(kAllowRc, "allowed_stub");
  if (!a) return a.error();
  p->allow_stub_ = std::move(*a);
  auto d = bpfkernel::load_stub(kDenyRc, "drop_stub");
  if (!d) return d.error();
  p->deny_stub_ = std::move(*d);
  if (auto s = bpfkernel::prog_array_set(p->stubs_, kAllowSlot, p->allow_stub_); !s)
    return s.error();
  if (auto s = bpfkernel::prog_array_set(p->stubs_, kDenySlot, p->deny_stub_); !s) return s.error();

  std::vector<bpfkernel::FdBinding> maps;
  for (const MapFdRef& m : rules.maps) {
    switch (m.role) {
      case MapFdRole::state: maps.push_back({m.fd, &p->state_}); break;
      case MapFdRole::ip_sets: maps.push_back({m.fd, &ip_sets}); break;
      case MapFdRole::static_progs: maps.push_back({m.fd, &p->stubs_}); break;
      case MapFdRole::policy_jump: maps.push_back({m.fd, &p->jump_}); break;
      case MapFdRole::unknown:
        return make_error(ErrorCode::bad_input,
                          fmt::format("{}: map fd {} (first used at instruction {}) plays no role "
                                      "dpinspect knows in a Calico policy program",
                                      prog.file, m.fd, m.first_use));
    }
  }
  for (std::size_t k = 0; k < prog.subprograms.size(); ++k) {
    auto insns = to_kernel(prog.program(k));
    if (!insns) return insns.error();
    // The kernel's 15-character program name: enough to find it in `bpftool prog` while it runs.
    auto loaded = bpfkernel::load_program(*insns, maps, fmt::format("dpi_pol_{}", k));
    if (!loaded)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: sub-program {}: the kernel refused it: {}", prog.file, k,
                                    loaded.error().message));
    p->progs_.push_back(std::move(*loaded));
    const uint32_t slot = index + prog.subprograms[k].k * kSubProgStride;
    if (auto s = bpfkernel::prog_array_set(p->jump_, slot, p->progs_.back()); !s) return s.error();
  }
  return p;
}

PolicyRun KernelPolicyProgram::run(const PolicyState& in) const {
  PolicyRun out;
  const uint32_t key0 = 0;
  const std::span key(reinterpret_cast<const uint8_t*>(&key0), sizeof key0);
  if (auto s = bpfkernel::map_update(state_, key, encode_state(*layout_, in)); !s) {
    out.why = "the kernel engine's state map: " + s.error().message;
    return out;
  }
  std::array<uint8_t, kSkbSize> ctx{};
  ctx[kCb0] = kAllowSlot;
  ctx[kCb1] = kDenySlot;
  auto r = bpfkernel::test_run(progs_.front(), ctx);
  if (!r) {
    out.why = "the kernel engine: " + r.error().message;
    return out;
  }
  auto value = bpfkernel::map_lookup(state_, key);
  if (!value) {
    out.why = "the kernel engine's state map: " + value.error().message;
    return out;
  }
  auto st = decode_state(*value, 4);
  if (!st) {
    out.why = "state after the kernel's run: " + st.error().message;
    return out;
  }
  out.after = *st;
  if (r->retval == static_cast<uint32_t>(kAllowRc)) {
    out.answer = PolicyAnswer::allow;
  } else if (r->retval == static_cast<uint32_t>(kDenyRc)) {
    out.answer = PolicyAnswer::deny;
  } else {
    out.why = fmt::format(
        "the kernel ran {} to return {} without reaching the allowed or drop program (pol_rc {})",
        file_, r->retval, st->pol_rc);
  }
  return out;
}

}  // namespace dpi::ebpf
