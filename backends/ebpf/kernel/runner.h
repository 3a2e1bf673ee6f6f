// The kernel engine: the same instructions the interpreter runs, loaded as a private
// BPF_PROG_TYPE_SCHED_CLS program bound to private maps and run with BPF_PROG_TEST_RUN. Needs
// CAP_BPF + CAP_NET_ADMIN (root). Nothing is pinned; every map and program is an fd owned here and
// released on scope exit. libbpf errors become Result errors at this edge.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "backends/ebpf/kernel/unique_fd.h"
#include "backends/ebpf/vm/insn.h"
#include "core/result.h"

namespace dpi::bpfkernel {

struct KernelMap {
  UniqueFd fd;
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint32_t max_entries = 0;
};

Result<KernelMap> create_array_map(uint32_t value_size, uint32_t max_entries);
// BPF_MAP_TYPE_LPM_TRIE with BPF_F_NO_PREALLOC; key_size includes the u32 prefixlen.
Result<KernelMap> create_lpm_map(uint32_t key_size, uint32_t value_size, uint32_t max_entries);
Result<KernelMap> create_prog_array(uint32_t max_entries);

Status map_update(const KernelMap& map, std::span<const uint8_t> key,
                  std::span<const uint8_t> value);
Result<std::vector<uint8_t>> map_lookup(const KernelMap& map, std::span<const uint8_t> key);

struct KernelProg {
  UniqueFd fd;
  std::string name;
};

// An ld_imm64 src=1 immediate as written in the instructions -> the private map it stands for.
struct FdBinding {
  int32_t fd = 0;
  const KernelMap* map = nullptr;
};

// Loads as SCHED_CLS. On a verifier rejection the error carries the tail of the verifier log.
Result<KernelProg> load_program(std::span<const bpfvm::RawInsn> insns,
                                std::span<const FdBinding> maps, const std::string& name);
// `r0 = value; exit`: the allow/deny targets of a policy program's tail calls, as Calico's own
// policy tests use (123 allowed, 124 dropped).
Result<KernelProg> load_stub(int32_t value, const std::string& name);
Status prog_array_set(const KernelMap& prog_array, uint32_t index, const KernelProg& prog);

struct TestRunResult {
  uint32_t retval = 0;       // the kernel reports r0 truncated to 32 bits
  uint32_t duration_ns = 0;  // the kernel's average per repetition
};

// BPF_PROG_TEST_RUN with 64 zero bytes of packet data and `ctx` as the `struct __sk_buff` (only
// cb[], mark, priority and a few more may be non-zero; the kernel refuses the rest).
Result<TestRunResult> test_run(const KernelProg& prog, std::span<const uint8_t> ctx,
                               uint32_t repeat = 1);

}  // namespace dpi::bpfkernel
