// The two engines on random Felix-shaped policies (issue 14): every program randpol.py wrote is
// loaded from its debug JSON into the interpreter (PolicyProgram) and into the kernel
// (KernelPolicyProgram: private maps, BPF_PROG_TEST_RUN); random flows, biased towards the IP-set
// members, CIDRs and ports the rules use, must get the same verdict, pol_rc, rules_hit, all 32
// rule-id slots and flags from both, every time.
//
//   dpinspect_ebpf_agree DIR [FLOWS_PER_PROGRAM]     exit 0 agreed, 1 differed, 77 not root
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <fmt/format.h>

#include "backends/ebpf/debug_json.h"
#include "backends/ebpf/kernel_policy.h"
#include "backends/ebpf/policy_runner.h"
#include "backends/ebpf/rule_index.h"
#include "backends/ebpf/state.h"
#include "tests/ebpf_agree/flows.h"

namespace dpi::ebpf::agree {
namespace {

struct Listed {
  std::string file;
  std::string version;
};

[[noreturn]] void die(const std::string& msg) {
  fmt::print(stderr, "ebpf_agree: {}\n", msg);
  std::exit(3);
}

template <class T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what + ": " + r.error().message);
  return std::move(*r);
}

std::vector<Listed> read_listing(const std::string& path) {
  std::ifstream in(path);
  if (!in) die("cannot read " + path);
  std::vector<Listed> out;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ss(line);
    Listed l;
    if (ss >> l.file >> l.version) out.push_back(l);
  }
  return out;
}

// Felix's state value size by release (maps.py STATE).
uint32_t state_size(const std::string& version) {
  if (version == "3.30" || version == "3.31") return 488;
  if (version == "3.32") return 512;
  die("no state layout for Calico " + version);
}

std::string show(const PolicyRun& r) {
  const char* a = r.answer == PolicyAnswer::allow  ? "allow"
                  : r.answer == PolicyAnswer::deny ? "deny"
                                                   : "cannot run";
  std::string ids;
  for (uint64_t id : r.after.recorded_ids()) ids += fmt::format(" {:#x}", id);
  return fmt::format("{} pol_rc {} rules_hit {} flags {:#x} ids [{} ]{}", a, r.after.pol_rc,
                     r.after.rules_hit, r.after.flags, ids,
                     r.why.empty() ? "" : " (" + r.why + ")");
}

bool same(const PolicyRun& a, const PolicyRun& b) {
  return a.answer == b.answer && a.after.pol_rc == b.after.pol_rc &&
         a.after.rules_hit == b.after.rules_hit && a.after.rule_ids == b.after.rule_ids &&
         a.after.flags == b.after.flags;
}

int run(const std::string& dir, int flows_per_program) {
  const Universe u = read_universe(dir);
  const auto vm_sets = must(build_ip_sets(u.entries, 20), "IP sets (interpreter)");
  const auto k_sets = must(build_kernel_ip_sets(u.entries), "IP sets (kernel)");
  fmt::print("ebpf_agree: {} IP-set members, {} CIDRs, {} ports\n", u.entries.size(),
             u.cidrs.size(), u.ports.size());

  FlowGen gen(u, 0x14a9);
  uint64_t flows = 0, allowed = 0, by_rule = 0, by_end = 0, multi = 0, insns = 0, split = 0;
  int differed = 0;
  for (const Listed& l : read_listing(dir + "/programs.txt")) {
    const auto prog = must(load_debug_json(dir + "/" + l.file), l.file);
    const auto rules = must(build_rule_index(prog), l.file + ": rule index");
    const StateLayout* layout = state_layout(state_size(l.version));
    if (!layout) die("no layout for " + l.version);
    const auto vm =
        must(PolicyProgram::load(prog, rules, *layout, vm_sets.get(), 0), l.file + ": interpreter");
    const auto kernel =
        must(KernelPolicyProgram::load(prog, rules, *layout, k_sets, 0), l.file + ": kernel");
    split += prog.subprograms.size() > 1;
    // Large programs cost the interpreter (and the verifier) most: fewer flows, still hundreds.
    const int n = prog.insns.size() > 50000 ? flows_per_program / 4 : flows_per_program;
    uint64_t p_allowed = 0;
    for (int i = 0; i < n; ++i) {
      const PolicyState in = gen.next();
      const PolicyRun a = vm->run(in);
      const PolicyRun b = kernel->run(in);
      ++flows;
      insns += a.executed;
      if (a.answer == PolicyAnswer::cannot_run || !same(a, b)) {
        ++differed;
        fmt::print("DIFFER {} flow {}: {}\n  interpreter: {}\n  kernel:      {}\n", l.file, i,
                   describe(in), show(a), show(b));
        if (differed >= 10) return 1;
        continue;
      }
      p_allowed += a.answer == PolicyAnswer::allow;
      multi += a.after.rules_hit > 1;
      const auto ids = a.after.recorded_ids();
      if (!ids.empty()) {
        for (const RuleSite* s : rules.find_id(ids.back())) {
          (s->kind == SiteKind::rule ? by_rule : by_end) += 1;
          break;
        }
      }
    }
    allowed += p_allowed;
    fmt::print(
        "  {} (Calico {}): {} instructions in {} sub-program(s), {} rules; {} flows, {} "
        "allowed\n",
        l.file, l.version, prog.insns.size(), prog.subprograms.size(), rules.sites.size(), n,
        p_allowed);
  }
  fmt::print(
      "ebpf_agree: {} flows, {} differed; {} allowed, {} denied; decided by a policy or profile "
      "rule {}, by an end of tier or no-profile {}; {} hit several rules; {} split programs; "
      "{:.0f} "
      "instructions per flow (interpreter)\n",
      flows, differed, allowed, flows - allowed, by_rule, by_end, multi, split,
      static_cast<double>(insns) / static_cast<double>(flows ? flows : 1));
  if (differed) return 1;
  // A comparison where one answer dominates, or where no rule decides, proves little.
  bool weak = false;
  auto need = [&](bool ok, const char* what) {
    if (!ok) {
      fmt::print("ebpf_agree: too weak: {}\n", what);
      weak = true;
    }
  };
  need(allowed * 10 > flows && allowed * 10 < flows * 9, "allow and deny each 10-90% of flows");
  need(by_rule * 5 > flows, "a policy or profile rule decides at least 20% of flows");
  need(by_end * 20 > flows, "an end of tier or no-profile decides at least 5% of flows");
  need(multi * 50 > flows, "at least 2% of flows hit several rules");
  need(split >= 2, "at least two programs split into sub-programs");
  return weak ? 1 : 0;
}

}  // namespace
}  // namespace dpi::ebpf::agree

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs("usage: dpinspect_ebpf_agree DIR [FLOWS_PER_PROGRAM]\n", stderr);
    return 3;
  }
  if (geteuid() != 0) {
    std::puts("ebpf_agree: skipped, needs root to load BPF programs");
    return 77;
  }
  return dpi::ebpf::agree::run(argv[1], argc > 2 ? std::atoi(argv[2]) : 8000);
}
