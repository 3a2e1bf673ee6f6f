#include "backends/ebpf/kernel/runner.h"

#include <cctype>
#include <cerrno>
#include <cstring>

#include <bpf/bpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>

#include "backends/ebpf/vm/assembler.h"

namespace dpi::bpfkernel {

namespace {

Error sys_error(const std::string& what, int err) {
  err = err < 0 ? -err : err;
  return make_error(err == EPERM || err == EACCES ? ErrorCode::permission : ErrorCode::system,
                    fmt::format("{}: {}", what, std::strerror(err)));
}

Result<KernelMap> create(bpf_map_type type, const char* name, uint32_t key_size,
                         uint32_t value_size, uint32_t max_entries, uint32_t flags) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
  int fd = bpf_map_create(type, name, key_size, value_size, max_entries, &opts);
  if (fd < 0) return sys_error(fmt::format("bpf_map_create({})", name), errno);
  KernelMap m;
  m.fd = UniqueFd(fd);
  m.key_size = key_size;
  m.value_size = value_size;
  m.max_entries = max_entries;
  return m;
}

Result<KernelProg> load_raw(std::vector<bpf_insn> insns, const std::string& name) {
  // Kernel object names: at most 15 characters of [A-Za-z0-9_.].
  std::string kname = name.substr(0, 15);
  for (char& c : kname) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.') c = '_';
  }
  int fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, kname.c_str(), "Apache-2.0", insns.data(),
                         insns.size(), nullptr);
  if (fd >= 0) return KernelProg{UniqueFd(fd), name};
  int err = errno;
  if (err != EACCES && err != EINVAL) return sys_error("bpf_prog_load " + name, err);
  // Load again with the verifier's log, only to say why.
  std::string log(1 << 20, '\0');
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_level = 1, .log_size = static_cast<__u32>(log.size()),
              .log_buf = log.data());
  fd = bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, kname.c_str(), "Apache-2.0", insns.data(),
                     insns.size(), &opts);
  if (fd >= 0) return KernelProg{UniqueFd(fd), name};
  log.resize(std::strlen(log.c_str()));
  while (!log.empty() && log.back() == '\n') log.pop_back();
  size_t cut = log.size() > 600 ? log.rfind('\n', log.size() - 600) : std::string::npos;
  std::string tail = cut == std::string::npos ? log : "..." + log.substr(cut);
  return make_error(ErrorCode::bad_input, fmt::format("the kernel verifier rejected {}: {}\n{}",
                                                      name, std::strerror(err), tail));
}

}  // namespace

Result<KernelMap> create_array_map(uint32_t value_size, uint32_t max_entries) {
  return create(BPF_MAP_TYPE_ARRAY, "dpi_state", 4, value_size, max_entries, 0);
}

Result<KernelMap> create_lpm_map(uint32_t key_size, uint32_t value_size, uint32_t max_entries) {
  return create(BPF_MAP_TYPE_LPM_TRIE, "dpi_ipsets", key_size, value_size, max_entries,
                BPF_F_NO_PREALLOC);
}

Result<KernelMap> create_prog_array(uint32_t max_entries) {
  return create(BPF_MAP_TYPE_PROG_ARRAY, "dpi_progs", 4, 4, max_entries, 0);
}

Status map_update(const KernelMap& map, std::span<const uint8_t> key,
                  std::span<const uint8_t> value) {
  if (key.size() != map.key_size || value.size() != map.value_size) {
    return make_error(ErrorCode::bad_input, "map_update: key or value of the wrong size");
  }
  if (bpf_map_update_elem(map.fd.get(), key.data(), value.data(), BPF_ANY) != 0) {
    return sys_error("bpf_map_update_elem", errno);
  }
  return Ok{};
}

Result<std::vector<uint8_t>> map_lookup(const KernelMap& map, std::span<const uint8_t> key) {
  if (key.size() != map.key_size) {
    return make_error(ErrorCode::bad_input, "map_lookup: key of the wrong size");
  }
  std::vector<uint8_t> value(map.value_size);
  if (bpf_map_lookup_elem(map.fd.get(), key.data(), value.data()) != 0) {
    return sys_error("bpf_map_lookup_elem", errno);
  }
  return value;
}

Result<KernelProg> load_program(std::span<const bpfvm::RawInsn> insns,
                                std::span<const FdBinding> maps, const std::string& name) {
  std::vector<bpf_insn> out(insns.size());
  for (size_t i = 0; i < insns.size(); ++i) {
    const bpfvm::RawInsn& in = insns[i];
    out[i].code = in.code;
    out[i].dst_reg = in.dst & 0x0f;
    out[i].src_reg = in.src & 0x0f;
    out[i].off = in.off;
    out[i].imm = in.imm;
    if (in.code == (BPF_LD | BPF_IMM | BPF_DW) && in.src == BPF_PSEUDO_MAP_FD) {
      const FdBinding* b = nullptr;
      for (const FdBinding& m : maps) {
        if (m.fd == in.imm) b = &m;
      }
      if (b == nullptr || b->map == nullptr) {
        return make_error(
            ErrorCode::bad_input,
            fmt::format("{}: insn {}: map fd {} has no private map", name, i, in.imm));
      }
      out[i].imm = b->map->fd.get();
    }
  }
  return load_raw(std::move(out), name);
}

Result<KernelProg> load_stub(int32_t value, const std::string& name) {
  const bpfvm::RawInsn raw[] = {bpfvm::as::mov64_imm(0, value), bpfvm::as::exit()};
  return load_program(raw, {}, name);
}

Status prog_array_set(const KernelMap& prog_array, uint32_t index, const KernelProg& prog) {
  uint32_t fd = static_cast<uint32_t>(prog.fd.get());
  if (bpf_map_update_elem(prog_array.fd.get(), &index, &fd, BPF_ANY) != 0) {
    return sys_error(fmt::format("prog array slot {} <- {}", index, prog.name), errno);
  }
  return Ok{};
}

Result<TestRunResult> test_run(const KernelProg& prog, std::span<const uint8_t> ctx,
                               uint32_t repeat) {
  uint8_t data[64] = {};
  std::vector<uint8_t> ctx_copy(ctx.begin(), ctx.end());
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = data, .data_size_in = sizeof data,
              .ctx_in = ctx_copy.empty() ? nullptr : ctx_copy.data(),
              .ctx_size_in = static_cast<__u32>(ctx_copy.size()),
              .repeat = static_cast<int>(repeat));
  if (bpf_prog_test_run_opts(prog.fd.get(), &opts) != 0) {
    return sys_error("BPF_PROG_TEST_RUN " + prog.name, errno);
  }
  return TestRunResult{opts.retval, opts.duration};
}

}  // namespace dpi::bpfkernel
