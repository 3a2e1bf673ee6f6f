// Issue 14's Calico-scale case, both engines in one run: one policy program of 300 policies x 70
// rules (split into sub-programs as Felix splits them), ~3,700 IP sets, ~256k members, written by
// tests/ebpf_agree/randpol.py --scale. Prints the interpreter's p50/p99 per verdict, the wall time
// of 1M flows on two threads in each engine (the same flows: same seeds), and their ratio. Each
// engine's verdict is PolicyProgram::run / KernelPolicyProgram::run as the backend calls them:
// state encoded, program run, state decoded. Asserts nothing (docs/performance.md).
//
//   python3 tests/ebpf_agree/randpol.py --scale --out /tmp/scale
//   build/bench/dpinspect_ebpf_scale_bench /tmp/scale [FLOWS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/kernel_policy.h"
#include "backends/ebpf/policy_runner.h"
#include "backends/ebpf/rule_index.h"
#include "backends/ebpf/state.h"
#include "tests/ebpf_agree/flows.h"

namespace {

using namespace dpi::ebpf;  // NOLINT(google-build-using-namespace)
using Clock = std::chrono::steady_clock;

template <class T>
T must(dpi::Result<T> r, const char* what) {
  if (!r) {
    fmt::print(stderr, "{}: {}\n", what, r.error().message);
    std::exit(1);
  }
  return std::move(*r);
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown CPU";
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// Runs `flows` flows split over two threads, each with its own engine instance (a run writes its
// private state) and its own flow generator seed; returns the wall time and the allowed count.
template <class Engine>
std::pair<double, uint64_t> two_threads(const std::vector<std::unique_ptr<Engine>>& engines,
                                        const agree::Universe& u, uint64_t flows) {
  std::vector<uint64_t> allowed(2, 0);
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      agree::FlowGen gen(u, 1000 + static_cast<uint64_t>(t));
      for (uint64_t i = 0; i < flows / 2; ++i) {
        allowed[t] += engines[t]->run(gen.next()).answer == PolicyAnswer::allow;
      }
    });
  }
  for (auto& th : threads) th.join();
  return {seconds_since(t0), allowed[0] + allowed[1]};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: dpinspect_ebpf_scale_bench DIR [FLOWS]\n", stderr);
    return 2;
  }
  const std::string dir = argv[1];
  const uint64_t flows = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000;
  const bool kernel = geteuid() == 0;
  fmt::print("dpinspect_ebpf_scale_bench on {} ({} CPUs online), load average {}\n", cpu_model(),
             sysconf(_SC_NPROCESSORS_ONLN), loadavg());

  const agree::Universe u = agree::read_universe(dir);
  const std::string file = dir + "/scale_egress_v4.json";
  auto t0 = Clock::now();
  const DebugProgram prog = must(load_debug_json(file), "debug JSON");
  const RuleIndex rules = must(build_rule_index(prog), "rule index");
  const StateLayout* layout = state_layout(512);
  fmt::print(
      "program: {} instructions in {} sub-programs, {} rule sites; {} IP-set members; "
      "parsed and indexed in {:.2f} s\n",
      prog.insns.size(), prog.subprograms.size(), rules.sites.size(), u.entries.size(),
      seconds_since(t0));

  t0 = Clock::now();
  const auto sets = must(build_ip_sets(u.entries, 20), "IP sets");
  std::vector<std::unique_ptr<PolicyProgram>> vms;
  for (int t = 0; t < 2; ++t)
    vms.push_back(must(PolicyProgram::load(prog, rules, *layout, sets.get(), 0), "interpreter"));
  fmt::print("interpreter: IP sets and two program instances loaded in {:.2f} s\n",
             seconds_since(t0));

  // Per-verdict latency, one thread: 100k flows timed one by one.
  {
    agree::FlowGen gen(u, 7);
    std::vector<double> ns;
    uint64_t executed = 0;
    constexpr int kTimed = 100'000;
    ns.reserve(kTimed);
    for (int i = 0; i < kTimed; ++i) {
      const PolicyState in = gen.next();
      const auto a = Clock::now();
      executed += vms[0]->run(in).executed;
      ns.push_back(std::chrono::duration<double, std::nano>(Clock::now() - a).count());
    }
    std::sort(ns.begin(), ns.end());
    double sum = 0;
    for (double v : ns) sum += v;
    fmt::print(
        "interpreter per verdict ({} flows, one thread): mean {:.0f} ns, p50 {:.0f} ns, p99 {:.0f} "
        "ns, max {:.0f} ns; {:.0f} instructions per verdict, {:.2f} ns per instruction (mean)\n",
        kTimed, sum / kTimed, ns[kTimed / 2], ns[kTimed * 99 / 100], ns.back(),
        static_cast<double>(executed) / kTimed, sum / static_cast<double>(executed));
  }

  const auto [vm_s, vm_allowed] = two_threads(vms, u, flows);
  fmt::print("interpreter: {} flows on two threads in {:.2f} s ({:.2f} M verdicts/s), {} allowed\n",
             flows, vm_s, static_cast<double>(flows) / vm_s / 1e6, vm_allowed);
  if (!kernel) {
    fmt::print("kernel engine: skipped (not root)\n");
    return 0;
  }
  t0 = Clock::now();
  const auto ksets = must(build_kernel_ip_sets(u.entries), "kernel IP sets");
  std::vector<std::unique_ptr<KernelPolicyProgram>> ks;
  for (int t = 0; t < 2; ++t)
    ks.push_back(must(KernelPolicyProgram::load(prog, rules, *layout, ksets, 0), "kernel"));
  fmt::print("kernel: IP sets and two program instances loaded (verified, JIT) in {:.2f} s\n",
             seconds_since(t0));
  const auto [k_s, k_allowed] = two_threads(ks, u, flows);
  fmt::print(
      "kernel BPF_PROG_TEST_RUN: {} flows on two threads in {:.2f} s ({:.2f} M verdicts/s), "
      "{} allowed{}\n",
      flows, k_s, static_cast<double>(flows) / k_s / 1e6, k_allowed,
      k_allowed == vm_allowed ? " (same as the interpreter)" : " (DIFFERS from the interpreter)");
  fmt::print("ratio: the interpreter is {:.2f}x the kernel engine's speed on the same flows\n",
             k_s / vm_s);
  return 0;
}
