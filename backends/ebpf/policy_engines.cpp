#include "backends/ebpf/policy_engines.h"

#include <unistd.h>

#include <fmt/format.h>

#include "backends/ebpf/kernel_policy.h"

namespace dpi::ebpf {

namespace {

const char* answer_name(PolicyAnswer a) {
  switch (a) {
    case PolicyAnswer::allow: return "allow";
    case PolicyAnswer::deny: return "deny";
    case PolicyAnswer::cannot_run: return "cannot run";
  }
  return "?";
}

std::vector<std::string> id_texts(const PolicyRun& r) {
  std::vector<std::string> out;
  for (uint64_t id : r.after.recorded_ids()) out.push_back(fmt::format("{:#x}", id));
  return out;
}

std::string answer_text(const PolicyRun& r) {
  if (r.answer == PolicyAnswer::cannot_run) return fmt::format("cannot run ({})", r.why);
  return fmt::format("{}, pol_rc {}, rules hit {}, rule ids [{}]", answer_name(r.answer),
                     r.after.pol_rc, r.after.rules_hit, fmt::join(id_texts(r), " "));
}

nlohmann::json answer_json(const PolicyRun& r) {
  nlohmann::json j = {{"answer", answer_name(r.answer)}};
  if (r.answer == PolicyAnswer::cannot_run) {
    j["why"] = r.why;
    return j;
  }
  j["pol_rc"] = r.after.pol_rc;
  j["rules_hit"] = r.after.rules_hit;
  j["rule_ids"] = id_texts(r);
  return j;
}

// What both engines must agree on: the answer, and everything the program wrote back that
// attribution reads (pol_rc, rules_hit, all 32 rule-id slots).
bool same(const PolicyRun& a, const PolicyRun& b) {
  if (a.answer != b.answer) return false;
  if (a.answer == PolicyAnswer::cannot_run) return true;
  return a.after.pol_rc == b.after.pol_rc && a.after.rules_hit == b.after.rules_hit &&
         a.after.rule_ids == b.after.rule_ids;
}

PolicyRun refused(const std::string& why) {
  PolicyRun r;
  r.why = why;
  return r;
}

}  // namespace

// The kernel's private LPM trie of the node's IP sets (an fd; never the node's map).
class KernelIpSets {
 public:
  explicit KernelIpSets(bpfkernel::KernelMap m) : map(std::move(m)) {}
  bpfkernel::KernelMap map;
};

std::optional<Engine> parse_engine(std::string_view s) {
  if (s == "interp") return Engine::interp;
  if (s == "kernel") return Engine::kernel;
  if (s == "both") return Engine::both;
  return std::nullopt;
}

const char* engine_name(Engine e) {
  switch (e) {
    case Engine::interp: return "interp";
    case Engine::kernel: return "kernel";
    case Engine::both: return "both";
  }
  return "?";
}

std::string engine_assumption(Engine e) {
  switch (e) {
    case Engine::interp:
      return "policy programs run from their policy-debug JSON in dpinspect's interpreter, "
             "checked against the live programs' tags; nothing is loaded into the kernel";
    case Engine::kernel:
      return "policy programs run from their policy-debug JSON in the kernel (--engine kernel: "
             "private copies bound to private maps, BPF_PROG_TEST_RUN, released at exit), checked "
             "against the live programs' tags";
    case Engine::both:
      return "policy programs run from their policy-debug JSON in dpinspect's interpreter and in "
             "the kernel (--engine both: private copies bound to private maps, "
             "BPF_PROG_TEST_RUN, released at exit), checked against the live programs' tags; the "
             "two answers must agree";
  }
  return "";
}

nlohmann::json EngineRuns::evidence() const {
  nlohmann::json j = nlohmann::json::object();
  if (interp) {
    j["interp"] = answer_json(*interp);
    j["interp"]["executed"] = interp->executed;
  }
  if (kernel) j["kernel"] = answer_json(*kernel);
  if (interp && kernel) j["agree"] = disagreement.empty();
  return j;
}

EnginePrograms::EnginePrograms() = default;
EnginePrograms::~EnginePrograms() = default;

EngineRuns EnginePrograms::run(const PolicyState& in) const {
  EngineRuns out;
  if (want_interp_) out.interp = interp_ ? interp_->run(in) : refused(interp_error_);
  if (want_kernel_) out.kernel = kernel_ ? kernel_->run(in) : refused(kernel_error_);
  if (out.interp && out.kernel && !same(*out.interp, *out.kernel))
    out.disagreement = fmt::format("the engines disagree: interpreter: {}; kernel: {}",
                                   answer_text(*out.interp), answer_text(*out.kernel));
  return out;
}

PolicyEngines::PolicyEngines(Engine e) : engine_(e) {}
PolicyEngines::~PolicyEngines() = default;

Result<std::unique_ptr<PolicyEngines>> PolicyEngines::create(
    Engine e, const std::vector<RawEntry>& ip_sets4) {
  std::unique_ptr<PolicyEngines> p(new PolicyEngines(e));
  if (!uses_kernel(e)) return p;
  if (geteuid() != 0)
    return make_error(ErrorCode::permission,
                      fmt::format("--engine {} loads private copies of the policy programs into "
                                  "the kernel: it needs root (CAP_BPF, CAP_NET_ADMIN); --engine "
                                  "interp needs none",
                                  engine_name(e)));
  auto m = build_kernel_ip_sets(ip_sets4);
  if (!m)
    return make_error(m.error().code,
                      "--engine " + std::string(engine_name(e)) +
                          ": the kernel engine's private IP-set map: " + m.error().message);
  p->kernel_ip_sets_ = std::make_unique<KernelIpSets>(std::move(*m));
  return p;
}

Result<std::unique_ptr<EnginePrograms>> PolicyEngines::load(const DebugProgram& prog,
                                                            const RuleIndex& rules,
                                                            const StateLayout& layout,
                                                            const bpfvm::LpmMap* ip_sets,
                                                            uint32_t index) const {
  auto out = std::make_unique<EnginePrograms>();
  out->want_interp_ = uses_interp(engine_);
  out->want_kernel_ = uses_kernel(engine_);
  std::optional<Error> first_error;
  if (out->want_interp_) {
    auto p = PolicyProgram::load(prog, rules, layout, ip_sets, index);
    if (p) {
      out->interp_ = std::move(*p);
    } else {
      out->interp_error_ = "the interpreter refused the program: " + p.error().message;
      first_error = p.error();
    }
  }
  // The kernel engine's private copy binds the IPv4 IP-set map and reads the state's IPv4
  // address slots back; a v6 program is refused by name rather than run against the wrong map.
  auto fname = parse_debug_file_name(prog.file);
  if (out->want_kernel_ && fname && fname->family == 6) {
    out->kernel_error_ =
        "the kernel engine runs IPv4 policy programs only; " + prog.file + " is an IPv6 program";
    if (!first_error) first_error = make_error(ErrorCode::bad_input, out->kernel_error_);
  } else if (out->want_kernel_) {
    auto p = KernelPolicyProgram::load(prog, rules, layout, kernel_ip_sets_->map, index);
    if (p) {
      out->kernel_ = std::move(*p);
    } else {
      out->kernel_error_ = "the kernel refused the program: " + p.error().message;
      if (!first_error) first_error = p.error();
    }
  }
  if (!out->interp_ && !out->kernel_) return *first_error;
  return out;
}

}  // namespace dpi::ebpf
