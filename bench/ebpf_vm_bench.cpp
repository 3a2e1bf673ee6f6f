// The BPF interpreter against the kernel's BPF_PROG_TEST_RUN on the same programs and flows, in
// one run: verdicts per second, ns per executed instruction, IP-set (LPM) lookups at 256k members.
// Prints figures; asserts nothing (docs/performance.md). The kernel half needs root and is skipped
// without it.
#include <algorithm>
#include <ctime>
#include <fstream>
#include <random>
#include <string>
#include <unistd.h>

#include <fmt/format.h>

#include "backends/ebpf/kernel/runner.h"
#include "backends/ebpf/vm/assembler.h"
#include "backends/ebpf/vm/vm.h"
#include "bench/felix_policy.h"

namespace {

namespace b = dpi::bench;
namespace vm = dpi::bpfvm;
namespace k = dpi::bpfkernel;
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The machine is shared: time on this thread's CPU clock, in rounds of ~0.1 s, and keep the best
// round. `round` does some work and returns how many units it did.
template <class F>
double best_ns_per_unit(F round) {
  double best = 1e300;
  for (int i = 0; i < 7; ++i) {
    const double t0 = thread_cpu_seconds();
    uint64_t units = 0;
    double dt = 0;
    while (dt < 0.1) {
      units += round();
      dt = thread_cpu_seconds() - t0;
    }
    best = std::min(best, dt * 1e9 / static_cast<double>(units));
  }
  return best;
}

template <class T>
T must(dpi::Result<T> r, const char* what) {
  if (!r) {
    fmt::print(stderr, "{}: {}\n", what, r.error().message);
    std::exit(1);
  }
  return std::move(*r);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

// The stubs the footer tail-calls into, in both engines.
struct Stubs {
  std::unique_ptr<vm::Program> allow, deny;
  vm::ProgArray progs{8};
  std::array<uint8_t, 192> ctx{};
  Stubs() {
    const vm::RawInsn a[] = {vm::as::mov64_imm(0, 123), vm::as::exit()};
    const vm::RawInsn d[] = {vm::as::mov64_imm(0, 124), vm::as::exit()};
    allow = std::make_unique<vm::Program>(must(vm::Program::load(a, {}), "stub"));
    deny = std::make_unique<vm::Program>(must(vm::Program::load(d, {}), "stub"));
    progs.set(2, allow.get());
    progs.set(4, deny.get());
    ctx[48] = 2;
    ctx[52] = 4;
  }
};

struct KStubs {
  k::KernelMap progs = must(k::create_prog_array(8), "prog array");
  k::KernelProg allow = must(k::load_stub(123, "allow"), "stub");
  k::KernelProg deny = must(k::load_stub(124, "deny"), "stub");
  KStubs() {
    (void)k::prog_array_set(progs, 2, allow);
    (void)k::prog_array_set(progs, 4, deny);
  }
};

void bench_policy(int rules, bool kernel) {
  b::PolicySpec spec;
  spec.rules = rules;
  spec.ip_sets = 16;
  spec.members_per_set = 256;
  spec.seed = 42 + rules;
  b::SynthPolicy pol = b::make_policy(spec);
  std::vector<b::SynthFlow> flows = b::make_flows(pol, 4096, 99);

  Stubs stubs;
  vm::ArrayMap state(b::kStateSize, 2);
  vm::LpmMap ipsets = must(vm::LpmMap::create(b::kIpSetKeySize, 4), "lpm");
  const uint8_t one[4] = {1, 0, 0, 0};
  for (const auto& key : pol.members) (void)ipsets.insert(key, one);
  vm::MapTable maps = {{b::kStateFd, &state}, {b::kIpSetsFd, &ipsets}, {b::kProgsFd, &stubs.progs}};
  vm::Program prog = must(vm::Program::load(pol.insns, maps, "policy"), "load");

  // Interpreter: state filled per flow (as calico_tc_main would), then run.
  vm::Vm machine;
  uint64_t runs = 0, executed = 0, allowed = 0;
  const double vm_ns = best_ns_per_unit([&] {
    for (const b::SynthFlow& f : flows) {
      b::fill_state(state.value(0), f);
      vm::RunResult r = machine.run(prog, stubs.ctx);
      executed += r.executed;
      allowed += r.r0 == 123;
    }
    runs += flows.size();
    return flows.size();
  });
  const double insns_per_run = static_cast<double>(executed) / static_cast<double>(runs);
  fmt::print(
      "policy {:4} rules ({:5} insns): interpreter {:8.0f} ns/verdict = {:6.2f} M verdicts/s, "
      "{:5.1f} insns/verdict, {:5.2f} ns/insn, {:.0f}% allowed\n",
      rules, pol.insns.size(), vm_ns, 1e3 / vm_ns, insns_per_run, vm_ns / insns_per_run,
      100.0 * static_cast<double>(allowed) / static_cast<double>(runs));
  if (!kernel) return;

  KStubs ks;
  k::KernelMap kstate = must(k::create_array_map(b::kStateSize, 2), "state");
  k::KernelMap kipsets = must(k::create_lpm_map(b::kIpSetKeySize, 4, 1 << 20), "ipsets");
  for (const auto& key : pol.members) (void)k::map_update(kipsets, key, one);
  const k::FdBinding kmaps[] = {
      {b::kStateFd, &kstate}, {b::kIpSetsFd, &kipsets}, {b::kProgsFd, &ks.progs}};
  k::KernelProg kprog = must(k::load_program(pol.insns, kmaps, "policy"), "kernel load");
  const uint32_t key0 = 0;
  const auto key = std::span(reinterpret_cast<const uint8_t*>(&key0), 4);
  constexpr uint32_t kRepeat = 100;
  constexpr size_t kFlows = 512;
  // The kernel's own per-repetition duration (its timer runs only while the program does), best
  // of three passes over the flows.
  double k_ns = 1e300;
  for (int pass = 0; pass < 3; ++pass) {
    double sum = 0;
    for (size_t i = 0; i < kFlows; ++i) {
      b::fill_state(state.value(0), flows[i]);
      (void)k::map_update(kstate, key, state.value(0));
      sum += must(k::test_run(kprog, stubs.ctx, kRepeat), "test run").duration_ns;
    }
    k_ns = std::min(k_ns, sum / kFlows);
  }
  // What a kernel engine pays per flow: state update + one test run + the read-back.
  size_t next = 0;
  const double k_e2e = best_ns_per_unit([&] {
    for (int i = 0; i < 64; ++i) {
      b::fill_state(state.value(0), flows[next++ % flows.size()]);
      (void)k::map_update(kstate, key, state.value(0));
      (void)k::test_run(kprog, stubs.ctx, 1);
      (void)k::map_lookup(kstate, key);
    }
    return 64;
  });
  fmt::print(
      "  kernel BPF_PROG_TEST_RUN: {:8.0f} ns/verdict (kernel-reported, repeat {}), "
      "{:8.0f} ns/flow end to end (update + run + read back)\n",
      k_ns, kRepeat, k_e2e);
  fmt::print("  ratio: interpreter is {:.1f}x the kernel's in-run speed, {:.1f}x its end-to-end\n",
             k_ns / vm_ns, k_e2e / vm_ns);
}

// `n` IP-set lookups in one program, keys with addresses as immediates: the cost of a lookup in
// each engine, with the same few instructions of key setup around it.
std::vector<vm::RawInsn> lookup_program(const std::vector<std::array<uint8_t, 20>>& keys) {
  using namespace vm::as;  // NOLINT(google-build-using-namespace)
  using namespace vm::op;  // NOLINT(google-build-using-namespace)
  std::vector<vm::RawInsn> p = {mov64_imm(6, 0)};
  auto word = [](const std::array<uint8_t, 20>& key, int at) {
    int32_t w;
    std::memcpy(&w, &key[at], 4);
    return w;
  };
  for (const auto& key : keys) {
    for (int at = 0; at < 20; at += 4)
      p.push_back(st(kSizeW, 10, static_cast<int16_t>(-20 + at), word(key, at)));
    p.push_back(ld_map_fd_lo(1, b::kIpSetsFd));
    p.push_back(ld_map_fd_hi());
    p.push_back(mov64_reg(2, 10));
    p.push_back(alu64_imm(kAdd, 2, -20));
    p.push_back(call(kHelperMapLookupElem));
    p.push_back(jmp_imm(kJeq, 0, 0, 1));
    p.push_back(alu64_imm(kAdd, 6, 1));
  }
  p.push_back(mov64_reg(0, 6));
  p.push_back(exit());
  return p;
}

void bench_lpm(bool kernel) {
  constexpr int kSets = 3700;
  constexpr int kMembers = 256 * 1024;
  std::mt19937_64 rng(7);
  std::vector<uint64_t> ids(kSets);
  for (uint64_t& id : ids) id = rng() | 1;
  vm::LpmMap lpm = must(vm::LpmMap::create(b::kIpSetKeySize, 4), "lpm");
  std::vector<std::array<uint8_t, 20>> members;
  members.reserve(kMembers);
  const uint8_t one[4] = {1, 0, 0, 0};
  for (int i = 0; i < kMembers; ++i) {
    const uint64_t id = ids[rng() % kSets];
    const auto addr = static_cast<uint32_t>(rng());
    switch (rng() % 16) {
      case 0: members.push_back(b::ipset_key(64 + 24, id, addr & 0xffffff00u, 0, 0)); break;
      case 1: members.push_back(b::ipset_key(64 + 56, id, addr, 443, 6)); break;
      default: members.push_back(b::ipset_key(64 + 32, id, addr, 0, 0)); break;
    }
    (void)lpm.insert(members.back(), one);
  }
  // Queries: full-length keys (prefixlen 128) for members (hits) and random addresses (misses).
  std::vector<std::array<uint8_t, 20>> hits, misses;
  for (int i = 0; i < 64; ++i) {
    auto h = members[rng() % members.size()];
    const uint32_t full = 128;
    std::memcpy(&h[0], &full, 4);
    h[18] = 6;
    h[16] = 0xbb;
    h[17] = 0x01;  // port 443: named-port members match too, CIDR members ignore it
    hits.push_back(h);
    misses.push_back(b::ipset_key(128, ids[rng() % kSets], static_cast<uint32_t>(rng()), 443, 6));
  }
  // Direct lookups.
  for (const auto* qs : {&hits, &misses}) {
    uint64_t n = 0, found = 0;
    const double ns = best_ns_per_unit([&] {
      for (int rep = 0; rep < 1000; ++rep) {
        for (const auto& q : *qs) found += lpm.lookup(q.data()) != nullptr;
      }
      n += 1000 * qs->size();
      return 1000 * qs->size();
    });
    fmt::print("LPM {} members, {} sets: LpmMap::lookup {:6.1f} ns ({}, {:.0f}% found)\n", kMembers,
               kSets, ns, qs == &hits ? "members" : "non-members",
               100.0 * static_cast<double>(found) / static_cast<double>(n));
  }

  Stubs stubs;
  vm::MapTable maps = {{b::kIpSetsFd, &lpm}};
  std::unique_ptr<k::KernelMap> kl;
  if (kernel) {
    kl = std::make_unique<k::KernelMap>(
        must(k::create_lpm_map(b::kIpSetKeySize, 4, kMembers), "lpm"));
    for (const auto& m : members) (void)k::map_update(*kl, m, one);
  }
  for (const auto* qs : {&hits, &misses}) {
    std::vector<vm::RawInsn> insns = lookup_program(*qs);
    vm::Program prog = must(vm::Program::load(insns, maps), "lookup program");
    vm::Vm machine;
    uint64_t r0 = 0;
    const double vm_per = best_ns_per_unit([&] {
      for (int i = 0; i < 1000; ++i) r0 = machine.run(prog, stubs.ctx).r0;
      return 1000 * qs->size();
    });
    fmt::print("  {} lookups in a program: interpreter {:6.1f} ns/lookup ({} of {} found)",
               qs == &hits ? "member" : "non-member", vm_per, r0, qs->size());
    if (kernel) {
      const k::FdBinding kmaps[] = {{b::kIpSetsFd, kl.get()}};
      k::KernelProg kp = must(k::load_program(insns, kmaps, "lookups"), "kernel load");
      auto res = must(k::test_run(kp, stubs.ctx, 2000), "test run");
      const double k_per = static_cast<double>(res.duration_ns) / static_cast<double>(qs->size());
      fmt::print(", kernel lpm_trie {:6.1f} ns/lookup ({} found): {:.1f}x", k_per, res.retval,
                 k_per / vm_per);
    }
    fmt::print("\n");
  }
}

// Pure ALU/JMP: a counted loop of arithmetic, no memory, no helper: the dispatch cost alone.
void bench_alu(bool kernel) {
  using namespace vm::as;  // NOLINT(google-build-using-namespace)
  using namespace vm::op;  // NOLINT(google-build-using-namespace)
  constexpr int32_t kIterations = 10000;
  const std::vector<vm::RawInsn> insns = {mov64_imm(0, 0),
                                          mov64_imm(1, 1),
                                          mov64_imm(2, 7),
                                          alu64_reg(kAdd, 1, 0),
                                          alu64_imm(kMul, 2, 3),
                                          alu64_reg(kXor, 2, 1),
                                          alu32_imm(kRsh, 1, 1),
                                          alu64_imm(kAdd, 0, 1),
                                          jmp_imm(kJlt, 0, kIterations, -6),
                                          alu64_reg(kAdd, 0, 2),
                                          exit()};
  vm::Program prog = must(vm::Program::load(insns, {}), "alu program");
  vm::Vm machine;
  std::array<uint8_t, 192> ctx{};
  uint64_t executed = 0;
  const double per_run = best_ns_per_unit([&] {
    executed = machine.run(prog, ctx).executed;
    return 1;
  });
  fmt::print("ALU/JMP loop ({} insns executed): interpreter {:5.2f} ns/insn", executed,
             per_run / static_cast<double>(executed));
  if (kernel) {
    k::KernelProg kp = must(k::load_program(insns, {}, "alu_loop"), "kernel load");
    auto res = must(k::test_run(kp, ctx, 100), "test run");
    const double k_per = static_cast<double>(res.duration_ns) / static_cast<double>(executed);
    fmt::print(", kernel (JIT) {:5.2f} ns/insn", k_per);
  }
  fmt::print("\n");
}

}  // namespace

int main() {
  const bool kernel = geteuid() == 0;
  fmt::print("dpinspect_ebpf_vm_bench on {} ({} CPUs online), kernel engine {}\n", cpu_model(),
             sysconf(_SC_NPROCESSORS_ONLN), kernel ? "measured" : "skipped (not root)");
  bench_alu(kernel);
  for (int rules : {10, 50, 200}) bench_policy(rules, kernel);
  bench_lpm(kernel);
  return 0;
}
