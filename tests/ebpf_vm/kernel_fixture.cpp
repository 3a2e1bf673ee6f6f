#include "tests/ebpf_vm/kernel_fixture.h"

#include <stdexcept>

#include "backends/ebpf/vm/assembler.h"
#include "tests/ebpf_vm/fixture.h"

namespace dpi::bpfvm::test {

namespace {

template <class T>
T must(Result<T> r) {
  if (!r) throw std::runtime_error(r.error().message);
  return std::move(*r);
}

}  // namespace

KernelFixture::KernelFixture()
    : state(must(bpfkernel::create_array_map(kStateValueSize, 2))),
      ipsets(must(bpfkernel::create_lpm_map(kIpSetKeySize, 4, 1024))),
      progs(must(bpfkernel::create_prog_array(8))),
      allow_stub(must(bpfkernel::load_stub(123, "allow_stub"))),
      deny_stub(must(bpfkernel::load_stub(124, "deny_stub"))) {
  const uint8_t one[4] = {1, 0, 0, 0};
  for (const auto& k : fixture_members()) {
    if (auto s = bpfkernel::map_update(ipsets, k, one); !s)
      throw std::runtime_error(s.error().message);
  }
  for (auto [idx, prog] :
       {std::pair{kAllowIndex, &allow_stub}, std::pair{kDenyIndex, &deny_stub}}) {
    if (auto s = bpfkernel::prog_array_set(progs, idx, *prog); !s) {
      throw std::runtime_error(s.error().message);
    }
  }
  bindings = {{kStateFd, &state}, {kIpSetsFd, &ipsets}, {kProgsFd, &progs}};
}

std::vector<RawInsn> high_half_variant(const std::vector<RawInsn>& insns) {
  std::vector<RawInsn> out = insns;
  const auto end = static_cast<int32_t>(insns.size());
  bool second_half = false;
  for (int32_t i = 0; i < end; ++i) {
    if (second_half) {
      second_half = false;
      continue;
    }
    if (out[i].code == op::kLdImm64) second_half = true;
    if (out[i].code == (op::kClassJmp | op::kExit))
      out[i] = as::ja(static_cast<int16_t>(end - i - 1));
  }
  out.push_back(as::alu64_imm(op::kRsh, 0, 32));
  out.push_back(as::exit());
  return out;
}

}  // namespace dpi::bpfvm::test
