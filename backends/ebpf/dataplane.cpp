#include "backends/ebpf/dataplane.h"

#include <algorithm>
#include <sys/stat.h>

#include <fmt/format.h>

#include "backends/ebpf/attach.h"
#include "backends/ebpf/counters.h"
#include "backends/ebpf/inspect.h"
#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/live_rule_counters.h"
#include "backends/ebpf/node_state.h"
#include "backends/ebpf/policy_engines.h"
#include "backends/ebpf/watch_counters.h"
#include "backends/linux/netns.h"
#include "core/input_file.h"
#include "core/snapshot.h"

namespace dpi::ebpf {

namespace {

std::string bpffs_of(const SourceRequest& req) {
  const std::string& v = req.option(kBpffsOption);
  return v.empty() ? kDefaultBpffs : v;
}

std::string debug_dir_of(const SourceRequest& req) {
  const std::string& v = req.option(kPolicyDebugDirOption);
  return v.empty() ? kDefaultPolicyDebugDir : v;
}

// --engine: checked in check(), so a value here is known.
Engine engine_of(const SourceRequest& req) {
  return parse_engine(req.option(kEngineOption)).value_or(Engine::interp);
}

// A file that is no snapshot has no eBPF maps; say where they would be.
constexpr const char* kNoEbpfMaps =
    ", so no eBPF maps in it (an eBPF node's maps are in the ebpf section of its `dpinspect "
    "snapshot`)";

// The backend's own options that locate a live node (not --engine, which also runs snapshots).
bool names_live_node(const SourceRequest& req) {
  return req.has(kBpffsOption) || req.has(kPolicyDebugDirOption);
}

class LoadedEbpf final : public LoadedDataplane {
 public:
  explicit LoadedEbpf(NodeState n) : model_(std::move(n)), desc_(model_.state().source) {}
  Status set_engine(Engine e) { return model_.set_engine(e); }
  const std::string& description() const override { return desc_; }
  const std::optional<NodeInfo>& node() const override { return node_; }
  void set_node(NodeInfo node) override { node_ = std::move(node); }
  dpi::Detection detect() const override;
  Result<Report> inspect(const Flow& flow) const override { return model_.inspect(flow); }
  // detect --netns: the programs attached to the cali* interfaces there, read when detect()
  // first asks (inspect does not need them).
  void set_netns(std::string netns) { netns_ = std::move(netns); }
  // Loaded from a live node's bpffs (not a snapshot): its counters can be read.
  void set_live() { live_ = true; }
  Result<std::optional<RuleCounter>> read_rule_counter(const RuleRef& rule) const override;
  Result<std::vector<std::pair<RuleRef, RuleCounter>>> read_rule_counters() const override;

 private:
  // cali_rule_ctrs2, opened at the first read and kept open for the next ones.
  Result<const LiveRuleCounters*> rule_counter_map() const;

  // The deciding hook's policy verdict counters (cali_counters*), named for the report; empty
  // when the location names no interface this node knows.
  Result<std::vector<std::pair<std::string, uint64_t>>> hook_counters(const BpfLocation& at) const;

  bool live_ = false;
  mutable std::optional<LiveRuleCounters> counters_;
  mutable std::optional<PinnedMap> hook_counters_;
  NodeModel model_;
  std::string desc_;
  std::optional<NodeInfo> node_;
  std::string netns_;
  mutable std::optional<Result<Attachments>> attach_;
};

dpi::Detection LoadedEbpf::detect() const {
  const NodeState& n = model_.state();
  dpi::Detection d;
  d.dataplane = "ebpf";
  std::size_t cali = 0;
  for (const auto& m : n.maps)
    if (m.name.rfind("cali_", 0) == 0 || m.name.rfind("xdp_cali_", 0) == 0) ++cali;
  d.found = n.release.has_value() || cali > 0;
  d.looked_for = fmt::format("Calico's pinned maps (cali_*, xdp_cali_*) in {}", n.bpffs);
  d.kind = n.release ? "ebpf" : (cali ? "ebpf (unknown layout)" : "none");
  if (n.release) {
    d.layouts.push_back(fmt::format("eBPF maps of Calico {}", n.release->releases.str()));
    d.version_hint = n.release->releases.str();
    for (const auto& note : n.release->notes) d.clues.push_back(note);
  }
  if (!n.layout_error.empty() && cali) d.clues.push_back(n.layout_error);
  d.clues.push_back(fmt::format("{} Calico maps pinned in {}", cali, n.bpffs));
  std::size_t progs = 0;
  for (const auto& s : n.jump_slots)
    if (s.prog) ++progs;
  d.clues.push_back(fmt::format("{} policy programs reached from cali_iface, {} debug JSON files",
                                progs, n.debug_json.size()));
  d.dataplanes = {{"ebpf", d.found}};
  d.details = {{"ebpf",
                {{"bpffs", n.bpffs},
                 {"release", n.release ? n.release->releases.str() : ""},
                 {"layout_error", n.layout_error},
                 {"maps", cali},
                 {"policy_programs", progs}}}};
  d.text_lines.emplace_back("bpffs", n.bpffs);
  if (!netns_.empty()) {
    if (!attach_) attach_ = read_attachments(netns_);
    add_attachments(d, *attach_);
  }
  return d;
}

Result<const LiveRuleCounters*> LoadedEbpf::rule_counter_map() const {
  if (counters_) return &*counters_;
  const NodeState& n = model_.state();
  if (!live_)
    return make_error(ErrorCode::bad_input,
                      fmt::format("counters: {} holds no live counters (read the node itself: "
                                  "--bpffs DIR)",
                                  n.source));
  const MapSpec* spec = n.spec(MapRole::rule_counters);
  if (!spec)
    return make_error(ErrorCode::bad_input,
                      fmt::format("counters: {}: no known Calico layout, so no known rule "
                                  "counters map ({})",
                                  n.bpffs, n.layout_error));
  auto m = LiveRuleCounters::open(n.bpffs, *spec);
  if (!m) return make_error(m.error().code, "counters: " + m.error().message);
  counters_ = std::move(*m);
  return &*counters_;
}

Result<std::optional<RuleCounter>> LoadedEbpf::read_rule_counter(const RuleRef& rule) const {
  // Only a rule id the policy program recorded is counted (update_rule_counters counts the
  // recorded ids): a BPF rule without one, or another backend's rule, counts nothing here.
  const BpfLocation* at = rule.bpf();
  if (!at || at->calico_rule_id.empty()) return std::optional<RuleCounter>{};
  auto id = parse_rule_id(at->calico_rule_id);
  if (!id)
    return make_error(ErrorCode::bad_input,
                      fmt::format("counters: rule id {}: not a hex id", at->calico_rule_id));
  auto map = rule_counter_map();
  if (!map) return map.error();
  auto packets = (*map)->read(*id);
  if (!packets) return packets.error();
  // The hook's counters only add to the rule's count: a failed read of them is said, and the
  // rule's count still reported.
  auto related = hook_counters(*at);
  RuleCounter out{*packets, std::nullopt, {}, {}};
  if (related)
    out.related = std::move(*related);
  else
    out.related_unavailable = related.error().message;
  return std::optional<RuleCounter>{std::move(out)};
}

Result<std::vector<std::pair<std::string, uint64_t>>> LoadedEbpf::hook_counters(
    const BpfLocation& at) const {
  std::vector<std::pair<std::string, uint64_t>> out;
  const NodeState& n = model_.state();
  // attach is "tc ingress <iface>" / "tc egress <iface>" (inspect's BpfLocation).
  CounterHook hook = CounterHook::tc_ingress;
  std::string iface;
  for (auto [prefix, h] : {std::pair{"tc ingress ", CounterHook::tc_ingress},
                           std::pair{"tc egress ", CounterHook::tc_egress}})
    if (at.attach.rfind(prefix, 0) == 0) {
      hook = h;
      iface = at.attach.substr(std::string_view(prefix).size());
    }
  auto ifindex = iface.empty() ? std::nullopt : model_.ifindex_of(iface);
  const MapSpec* spec = n.spec(MapRole::counters);
  if (!ifindex || !spec || !n.release) return out;
  if (!hook_counters_) {
    auto m = PinnedMap::open(n.bpffs, spec->pin_name);
    if (!m) return make_error(m.error().code, "counters: " + m.error().message);
    hook_counters_ = std::move(*m);
  }
  auto v = hook_counters_->lookup(encode_counters_key({*ifindex, hook}));
  if (!v) return v.error();
  if (!*v) return out;  // no entry: Calico's programs drop everything there (reference §1.7)
  auto sums = decode_counters_value(**v, hook_counters_->info().value_size, hook_counters_->cpus(),
                                    n.release->releases.first);
  if (!sums)
    return make_error(sums.error().code,
                      fmt::format("{}: {}", hook_counters_->path(), sums.error().message));
  // enum calico_reason: the same indices in every release (counters.h).
  for (uint32_t reason : {4u, 2u})
    out.emplace_back(
        fmt::format("{} {}", at.attach, counter_name(n.release->releases.first, reason)),
        (*sums)[reason]);
  return out;
}

Result<std::vector<std::pair<RuleRef, RuleCounter>>> LoadedEbpf::read_rule_counters() const {
  auto map = rule_counter_map();
  if (!map) return map.error();
  auto all = (*map)->read_all();
  if (!all) return all.error();
  std::sort(all->begin(), all->end());
  const auto& refs = model_.rule_refs();
  std::vector<std::pair<RuleRef, RuleCounter>> out;
  out.reserve(all->size());
  for (const auto& [id, packets] : *all) {
    auto it = refs.find(id);
    if (it != refs.end()) {
      out.emplace_back(it->second, RuleCounter{packets, std::nullopt, {}, {}});
      continue;
    }
    // A removed policy's id (Felix deletes them, but not before its next sync) or one whose
    // program's debug JSON is missing or stale.
    BpfLocation b;
    b.calico_rule_id = fmt::format("{:#x}", id);
    out.emplace_back(
        RuleRef(b,
                fmt::format("rule id {}: in no live policy program's debug JSON", b.calico_rule_id),
                ""),
        RuleCounter{packets, std::nullopt, {}, {}});
  }
  return out;
}

}  // namespace

std::vector<SourceOption> EbpfDataplane::source_options() const {
  return {
      {kBpffsOption, "DIR", "eBPF dataplane: the directory of Calico's pinned maps (read-only)",
       kDefaultBpffs},
      {kPolicyDebugDirOption, "DIR",
       "eBPF dataplane: Felix's policy-debug JSON directory (<iface>_<ingress|egress>_v4.json)",
       kDefaultPolicyDebugDir},
      {kEngineOption, "interp|kernel|both",
       "eBPF dataplane: what runs the policy programs: dpinspect's interpreter (interp), the "
       "kernel (kernel: private copies with BPF_PROG_TEST_RUN, root only), or both, which must "
       "agree (indeterminate with both answers otherwise)",
       kDefaultEngine, true},
  };
}

bool EbpfDataplane::claims(const SourceRequest& req) const {
  return names_live_node(req) || req.has(kEngineOption);
}

Status EbpfDataplane::check(const SourceRequest& req) const {
  if (!parse_engine(req.option(kEngineOption)) && !req.option(kEngineOption).empty())
    return make_error(ErrorCode::bad_input, fmt::format("--engine {}: want interp, kernel or both",
                                                        req.option(kEngineOption)));
  if (!req.file.empty() && names_live_node(req))
    return make_error(ErrorCode::bad_input,
                      "--bpffs/--policy-debug-dir read a live node; --ruleset reads a snapshot: "
                      "give one");
  return Ok{};
}

Result<std::unique_ptr<LoadedDataplane>> EbpfDataplane::load(const SourceRequest& req) const {
  if (!req.file.empty()) {
    std::string origin = input_origin(req.file);
    // Standard input or a pipe can be read once, and the other backends read the same --ruleset:
    // snapshots are read from regular files only.
    struct stat sb {};
    if (req.file != "-" && stat(req.file.c_str(), &sb) != 0) {
      auto missing = read_input_file(req.file, req.max_bytes);  // the usual message
      if (!missing) return missing.error();
    }
    if (req.file == "-" || !S_ISREG(sb.st_mode))
      return make_error(
          ErrorCode::not_found,
          fmt::format("{}: the eBPF backend reads snapshots from regular files only", origin));
    auto text = read_input_file(req.file, req.max_bytes);
    if (!text) return text.error();
    nlohmann::json doc = nlohmann::json::parse(*text, nullptr, false);
    // Not a snapshot or none with an eBPF section: not this backend's input (not_found), so that
    // --dataplane auto reports the other backends' reading of it.
    if (doc.is_discarded() || !doc.is_object())
      return make_error(ErrorCode::not_found,
                        fmt::format("{}: not a JSON snapshot{}", origin, kNoEbpfMaps));
    if (!is_snapshot(doc))
      return make_error(ErrorCode::not_found,
                        fmt::format("{}: not a snapshot{}", origin, kNoEbpfMaps));
    auto section = snapshot_section(doc, kSnapshotSection, V1Section::member, origin);
    if (!section) return section.error();
    auto n = node_state_from_json(**section, "snapshot " + origin);
    if (!n) return n.error();
    auto loaded = std::make_unique<LoadedEbpf>(std::move(*n));
    if (auto st = loaded->set_engine(engine_of(req)); !st) return st.error();
    loaded->set_snapshot_k8s(take_snapshot_k8s(doc));
    return std::unique_ptr<LoadedDataplane>(std::move(loaded));
  }
  // The pinned maps are in a mount, not a network namespace; --netns is where detect lists the
  // programs attached to cali* interfaces, and one that does not exist is the user's mistake.
  if (!req.netns.empty()) {
    std::string ns = os::netns_path(req.netns);
    struct stat nsb {};
    if (stat(ns.c_str(), &nsb) != 0)
      return make_error(ErrorCode::not_found,
                        fmt::format("network namespace {}: {} does not exist", req.netns, ns));
  }
  auto n = read_live_node(bpffs_of(req), debug_dir_of(req));
  if (!n)
    return make_error(n.error().code, fmt::format("ebpf: {} (Calico's pinned maps: --bpffs DIR)",
                                                  n.error().message));
  // Unasked (--dataplane auto) and nothing of Calico's pinned: not an eBPF node, so auto keeps
  // to the other dataplanes.
  if (!claims(req) && !n->release && n->layout_error.find("no Calico eBPF maps") == 0)
    return make_error(ErrorCode::not_found, fmt::format("{}: {}", n->bpffs, n->layout_error));
  auto loaded = std::make_unique<LoadedEbpf>(std::move(*n));
  if (auto st = loaded->set_engine(engine_of(req)); !st) return st.error();
  loaded->set_netns(req.netns);
  loaded->set_live();
  return std::unique_ptr<LoadedDataplane>(std::move(loaded));
}

Result<std::optional<nlohmann::json>> EbpfDataplane::snapshot(const SourceRequest& req) const {
  auto n = read_live_node(bpffs_of(req), debug_dir_of(req));
  // A node without Calico's eBPF maps gets no section; the snapshot is still the other
  // dataplanes'.
  if (!n) {
    if (claims(req)) return n.error();
    return std::optional<nlohmann::json>();
  }
  if (!n->release && n->maps.empty() && !claims(req)) return std::optional<nlohmann::json>();
  return std::optional<nlohmann::json>(node_state_to_json(*n));
}

Result<std::vector<std::unique_ptr<WatchSource>>> EbpfDataplane::watch(
    const SourceRequest& req, const WatchRequest& w) const {
  if (w.nflog || w.kfree_skb || !w.counters)
    return make_error(ErrorCode::bad_input,
                      "watch: the eBPF dataplane's source is its rule counters (--source "
                      "counters); its programs log nothing to NFLOG");
  if (!req.file.empty())
    return make_error(ErrorCode::bad_input,
                      "watch: counters are read from a live node, not a file");
  // The pinned maps are in a mount, not a network namespace: accepting --netns would read this
  // mount namespace's maps while the user believes they watch another node's.
  if (!req.netns.empty())
    return make_error(ErrorCode::bad_input,
                      "watch --source counters: --netns does not select the pinned maps (they "
                      "live in a mount namespace); run dpinspect in the node's mount namespace "
                      "(nsenter -m) with --bpffs instead");
  auto s = open_counters_source(bpffs_of(req), debug_dir_of(req), w.interval);
  if (!s) return s.error();
  std::vector<std::unique_ptr<WatchSource>> out;
  out.push_back(std::move(*s));
  return out;
}

std::string EbpfDataplane::describe_snapshot(const nlohmann::json& section) const {
  auto size_of = [&](const char* key) -> std::size_t {
    auto it = section.find(key);
    return it == section.end() ? 0 : it->size();
  };
  std::string release = "unknown";
  if (auto r = section.find("release"); r != section.end() && r->is_string())
    release = r->get<std::string>();
  return fmt::format(
      "Calico {} maps: {} maps, {} programs in the policy jump maps, {} policy-debug JSON files",
      release, size_of("maps"), size_of("jump_slots"), size_of("debug_json"));
}

}  // namespace dpi::ebpf
