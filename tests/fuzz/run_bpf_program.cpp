// Fuzz target: the BPF interpreter. The input is a program (8-byte instructions); the validator
// must refuse it with a one-line error naming the instruction, or the interpreter must run it to an
// end (exit, memory error, instruction limit) without touching memory outside its regions, which
// ASan would report. The maps are the ones a Felix policy program sees: the state array, an IP-set
// LPM map, the static programs array (empty: allow/deny tail calls fall through) and the policy
// jump map holding the program itself. The fds are the ones the lab's generator writes (3-6), so
// the seed corpus (programs of the committed debug-JSON fixtures) loads.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "backends/ebpf/vm/insn.h"
#include "backends/ebpf/vm/lpm_map.h"
#include "backends/ebpf/vm/maps.h"
#include "backends/ebpf/vm/program.h"
#include "backends/ebpf/vm/vm.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

namespace bv = dpi::bpfvm;

DPI_FUZZ_ONE_INPUT(run_bpf_program) {
  auto raw = bv::decode_bytes(std::span<const uint8_t>(data, size));
  if (!raw) return 0;
  bv::ArrayMap state(512, 2);
  auto ipsets = bv::LpmMap::create(20, 4);
  FUZZ_CHECK(static_cast<bool>(ipsets), "LPM map of Calico's v4 IP-set key");
  const std::array<uint8_t, 20> member = {96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 10, 65, 0, 2};
  const std::array<uint8_t, 4> one = {1, 0, 0, 0};
  FUZZ_CHECK(static_cast<bool>(ipsets->insert(member, one)), "IP-set member");
  bv::ProgArray statics(8);
  bv::ProgArray jumps(4);
  const bv::MapTable maps = {{3, &state}, {4, &*ipsets}, {5, &statics}, {6, &jumps}};
  auto prog = bv::Program::load(*raw, maps, "fuzz");
  if (!prog) {
    FUZZ_CHECK(prog.error().message.find('\n') == std::string::npos, "one-line load error");
    return 0;
  }
  jumps.set(1, &*prog);
  std::array<uint8_t, 192> ctx{};
  ctx[48] = 1;  // cb[0], cb[1]: indices into the static programs array
  ctx[52] = 2;
  bv::Vm vm;
  auto r = vm.run(*prog, ctx, bv::RunOptions{10'000});
  FUZZ_CHECK(r.executed <= 10'000 + 1, "instruction limit honoured");
  FUZZ_CHECK(r.ok() == r.error.empty(), "an error says what went wrong, a success says nothing");
  FUZZ_CHECK(r.chain_len <= bv::kMaxTailCalls, "tail-call chain bounded");
  return 0;
}
