#include "backends/ebpf/policy_runner.h"

#include <array>

#include <fmt/format.h>

#include "backends/ebpf/policy_abi.h"
#include "backends/ebpf/vm/insn.h"
#include "backends/ebpf/vm/vm.h"

namespace dpi::ebpf {

namespace {

using namespace policy_abi;  // NOLINT(google-build-using-namespace)

constexpr uint32_t kJumpEntries = 240000;

Result<std::vector<bpfvm::RawInsn>> to_vm(const std::vector<RawInsn>& raw) {
  std::vector<uint8_t> bytes;
  bytes.reserve(raw.size() * 8);
  for (const auto& i : raw) bytes.insert(bytes.end(), i.b.begin(), i.b.end());
  return bpfvm::decode_bytes(bytes);
}

Result<bpfvm::Program> stub(uint64_t rc, const char* name) {
  std::vector<bpfvm::RawInsn> insns = {
      {0xb7, 0, 0, 0, static_cast<int32_t>(rc)},  // r0 = rc
      {0x95, 0, 0, 0, 0},                         // exit
  };
  return bpfvm::Program::load(insns, {}, name);
}

}  // namespace

Result<std::unique_ptr<bpfvm::LpmMap>> build_ip_sets(const std::vector<RawEntry>& entries,
                                                     uint32_t key_size) {
  auto m = bpfvm::LpmMap::create(key_size, 4);
  if (!m) return m.error();
  auto out = std::make_unique<bpfvm::LpmMap>(std::move(*m));
  for (const auto& [k, v] : entries) {
    if (k.size() != key_size || v.size() != 4)
      return make_error(ErrorCode::bad_input, fmt::format("IP-set entry of {}/{} bytes, want {}/4",
                                                          k.size(), v.size(), key_size));
    auto st = out->insert(k, v);
    if (!st) return st.error();
  }
  return out;
}

Result<std::unique_ptr<PolicyProgram>> PolicyProgram::load(const DebugProgram& prog,
                                                           const RuleIndex& rules,
                                                           const StateLayout& layout,
                                                           const bpfvm::LpmMap* ip_sets,
                                                           uint32_t index) {
  std::unique_ptr<PolicyProgram> p(new PolicyProgram());
  p->layout_ = &layout;
  // The family from the file name (`_v6.json`): how the state's address slots read back.
  auto fname = parse_debug_file_name(prog.file);
  p->family_ = fname ? fname->family : 4;
  p->state_ = std::make_unique<bpfvm::ArrayMap>(layout.size, 2);
  p->stubs_ = std::make_unique<bpfvm::ProgArray>(2);
  p->jump_ = std::make_unique<bpfvm::ProgArray>(kJumpEntries);
  bpfvm::MapTable maps;
  for (const MapFdRef& m : rules.maps) {
    switch (m.role) {
      case MapFdRole::state: maps.push_back({m.fd, p->state_.get()}); break;
      case MapFdRole::ip_sets:
        if (!ip_sets) {
          auto e = bpfvm::LpmMap::create(p->family_ == 6 ? 32 : 20, 4);
          if (!e) return e.error();
          p->empty_ip_sets_ = std::make_unique<bpfvm::LpmMap>(std::move(*e));
          ip_sets = p->empty_ip_sets_.get();
        }
        maps.push_back({m.fd, const_cast<bpfvm::LpmMap*>(ip_sets)});
        break;
      case MapFdRole::static_progs: maps.push_back({m.fd, p->stubs_.get()}); break;
      case MapFdRole::policy_jump: maps.push_back({m.fd, p->jump_.get()}); break;
      case MapFdRole::unknown:
        return make_error(ErrorCode::bad_input,
                          fmt::format("{}: map fd {} (first used at instruction {}) plays no role "
                                      "dpinspect knows in a Calico policy program",
                                      prog.file, m.fd, m.first_use));
    }
  }
  if (prog.subprograms.empty())
    return make_error(ErrorCode::bad_input, prog.file + ": no instructions");
  for (std::size_t k = 0; k < prog.subprograms.size(); ++k) {
    auto insns = to_vm(prog.program(k));
    if (!insns) return insns.error();
    auto loaded =
        bpfvm::Program::load(*insns, maps, fmt::format("{} sub-program {}", prog.file, k));
    if (!loaded)
      return make_error(ErrorCode::bad_input, fmt::format("{}: sub-program {}: {}", prog.file, k,
                                                          loaded.error().message));
    p->progs_.push_back(std::make_unique<bpfvm::Program>(std::move(*loaded)));
    uint32_t slot = index + static_cast<uint32_t>(prog.subprograms[k].k) * kSubProgStride;
    if (!p->jump_->set(slot, p->progs_.back().get()))
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: sub-program slot {} out of range", prog.file, slot));
  }
  auto a = stub(kAllowRc, "allowed stub");
  auto d = stub(kDenyRc, "drop stub");
  if (!a) return a.error();
  if (!d) return d.error();
  p->progs_.push_back(std::make_unique<bpfvm::Program>(std::move(*a)));
  p->allow_stub_ = p->progs_.back().get();
  p->progs_.push_back(std::make_unique<bpfvm::Program>(std::move(*d)));
  p->deny_stub_ = p->progs_.back().get();
  p->stubs_->set(kAllowSlot, p->allow_stub_);
  p->stubs_->set(kDenySlot, p->deny_stub_);
  return p;
}

PolicyRun PolicyProgram::run(const PolicyState& in) const {
  PolicyRun out;
  auto value = encode_state(*layout_, in);
  auto slot = state_->value(0);
  std::copy(value.begin(), value.end(), slot.begin());
  std::array<uint8_t, kSkbSize> ctx{};
  ctx[kCb0] = kAllowSlot;
  ctx[kCb1] = kDenySlot;
  if (!vm_) vm_ = std::make_unique<bpfvm::Vm>();
  bpfvm::RunResult r = vm_->run(*progs_.front(), ctx);
  out.executed = r.executed;
  if (!r.ok()) {
    out.why = fmt::format("the interpreter stopped in {} at instruction {}: {} ({})",
                          r.last_program ? r.last_program->name() : "?", r.pc,
                          bpfvm::to_string(r.status), r.error);
    return out;
  }
  auto st = decode_state(state_->value(0), family_);
  if (!st) {
    out.why = "state after the run: " + st.error().message;
    return out;
  }
  out.after = *st;
  if (r.last_program == allow_stub_ && r.r0 == kAllowRc) {
    out.answer = PolicyAnswer::allow;
  } else if (r.last_program == deny_stub_ && r.r0 == kDenyRc) {
    out.answer = PolicyAnswer::deny;
  } else {
    out.why = fmt::format(
        "the policy program returned {} from {} without reaching the allowed or "
        "drop program (pol_rc {})",
        r.r0, r.last_program ? r.last_program->name() : "?", st->pol_rc);
  }
  return out;
}

}  // namespace dpi::ebpf
