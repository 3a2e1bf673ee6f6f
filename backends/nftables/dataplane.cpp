#include "backends/nftables/dataplane.h"

#include <fmt/format.h>

#include "backends/linux/kfree_skb.h"
#include "backends/linux/netns.h"
#include "backends/linux/nflog.h"
#include "backends/nftables/detect.h"
#include "backends/nftables/inspect.h"
#include "backends/nftables/rule_counter.h"
#include "backends/nftables/source.h"
#include "backends/nftables/trace.h"

namespace dpi::nft {

namespace {

constexpr const char* kIptablesSave = "iptables-save";
constexpr const char* kIpsetSave = "ipset-save";

SourceSpec spec_of(const SourceRequest& req) {
  SourceSpec s;
  s.ruleset_file = req.file;
  s.iptables_save_file = req.option(kIptablesSave);
  s.ipset_save_file = req.option(kIpsetSave);
  s.node_file = req.node_file_only_when_missing ? "" : req.node_file;
  s.netns = req.netns;
  s.load.max_bytes = req.max_bytes;
  return s;
}

nlohmann::json kube_proxy_mode(const nft::Detection& d) {
  if (d.kube_proxy_nft) return "nftables";
  if (d.kube_proxy_iptables) return "iptables";
  return nullptr;
}

class LoadedNftables final : public LoadedDataplane {
 public:
  explicit LoadedNftables(Loaded l) : l_(std::move(l)) { set_snapshot_k8s(std::move(l_.k8s)); }
  const std::string& description() const override { return l_.description; }
  const std::optional<NodeInfo>& node() const override { return l_.node; }
  void set_node(NodeInfo node) override { l_.node = std::move(node); }
  dpi::Detection detect() const override {
    nft::Detection d = nft::detect(*l_.ruleset);
    dpi::Detection out;
    out.dataplane = "nftables";
    out.kind = d.kind();
    out.found = out.kind != "none";
    out.layouts = d.layouts();
    out.version_hint = d.version_hint;
    out.looked_for = fmt::format(
        "Calico's chains (cali-* in table calico, or in iptables tables) in the ruleset ({}: {} "
        "tables, {} chains)",
        l_.description, d.tables, d.chains);
    out.clues = d.clues;
    out.dataplanes = {{"nftables", d.native_calico}, {"iptables_nft", d.iptables_calico}};
    out.details = {
        {"kube_proxy", kube_proxy_mode(d)},
        {"counts",
         {{"tables", d.tables}, {"chains", d.chains}, {"rules", d.rules}, {"sets", d.sets}}},
        {"xt_expressions", d.xt_expressions}};
    out.log_groups.assign(d.nflog_groups.begin(), d.nflog_groups.end());
    out.text_lines.emplace_back("size", fmt::format("{} tables, {} chains, {} rules, {} named sets",
                                                    d.tables, d.chains, d.rules, d.sets));
    return out;
  }
  Result<Report> inspect(const Flow& flow) const override { return nft::inspect(l_, flow); }
  Result<std::optional<RuleCounter>> read_rule_counter(const RuleRef& rule) const override {
    if (!l_.live_netns)
      return make_error(ErrorCode::bad_input,
                        "--counters reads the live ruleset: it needs a live source (the current "
                        "namespace or --netns), not " +
                            l_.description);
    if (rule.bpf()) return make_error(ErrorCode::bad_input, "--counters: not an nftables rule");
    const NftRuleLocation& at = rule.nft();
    return os::in_netns(*l_.live_netns, [&] { return nft::read_rule_counter(at); });
  }

 private:
  Loaded l_;
};

}  // namespace

std::vector<SourceOption> NftablesDataplane::source_options() const {
  return {
      {kIptablesSave, "FILE",
       "Read `iptables-save` (or ip6tables-save, iptables-restore input) text from FILE (- for "
       "stdin) instead of the live kernel, for nodes where only text was captured; rule handles "
       "are line numbers in FILE",
       ""},
      {kIpsetSave, "FILE",
       "With --iptables-save: the node's ipsets as `ipset save` text, for its -m set matches", ""},
  };
}

bool NftablesDataplane::claims(const SourceRequest& req) const {
  return req.has(kIptablesSave) || req.has(kIpsetSave);
}

Status NftablesDataplane::check(const SourceRequest& req) const {
  const std::string& ipt = req.option(kIptablesSave);
  const std::string& ipset = req.option(kIpsetSave);
  if (!req.node_file_only_when_missing && !req.node_file.empty() && req.file.empty() && ipt.empty())
    return make_error(
        ErrorCode::bad_input,
        "--node applies only with --ruleset or --iptables-save: a live read takes the "
        "node's routes from the kernel");
  if (!ipt.empty() && !req.file.empty())
    return make_error(ErrorCode::bad_input,
                      "--iptables-save and --ruleset are two rulesets: give one");
  if (!ipset.empty() && ipt.empty())
    return make_error(
        ErrorCode::bad_input,
        "--ipset-save applies only with --iptables-save (live reads and snapshots carry the "
        "ipsets)");
  if (ipt == "-" && ipset == "-")
    return make_error(ErrorCode::bad_input,
                      "--iptables-save and --ipset-save cannot both read stdin");
  return Ok{};
}

Result<std::unique_ptr<LoadedDataplane>> NftablesDataplane::load(const SourceRequest& req) const {
  SourceSpec spec = spec_of(req);
  auto src = load_source(spec);
  if (!src) return src.error();
  // compare: a plain dump gets --node; a snapshot or a live read carries its own.
  if (req.node_file_only_when_missing && !src->node && !req.node_file.empty()) {
    auto node = read_node_file(req.node_file, spec.load);
    if (!node) return node.error();
    src->node = std::move(*node);
  }
  return std::unique_ptr<LoadedDataplane>(std::make_unique<LoadedNftables>(std::move(*src)));
}

Result<std::optional<nlohmann::json>> NftablesDataplane::snapshot(const SourceRequest& req) const {
  auto snap = snapshot_live(spec_of(req));
  if (!snap) return snap.error();
  return std::optional<nlohmann::json>(std::move(*snap));
}

Result<KernelPath> NftablesDataplane::trace(const SourceRequest& req, const TraceRequest& t) const {
  auto path = os::in_netns(req.netns, [&] { return trace_here(t); });
  if (!path) return path.error();
  path->source = req.netns.empty() ? "live ruleset" : fmt::format("live netns {}", req.netns);
  return path;
}

Result<std::vector<std::unique_ptr<WatchSource>>> NftablesDataplane::watch(
    const SourceRequest& req, const WatchRequest& w) const {
  using Sources = std::vector<std::unique_ptr<WatchSource>>;
  // Opened inside the namespace: the NFLOG socket and the kfree_skb filter belong to it.
  return os::in_netns(req.netns, [&]() -> Result<Sources> {
    Sources out;
    if (w.nflog) {
      auto s = os::open_nflog_source(w.groups);
      if (!s) return s.error();
      out.push_back(std::move(*s));
    }
    if (w.kfree_skb) {
      auto s = os::open_kfree_skb_source(w.ifindexes);
      if (!s) return s.error();
      out.push_back(std::move(*s));
    }
    return out;
  });
}

std::string NftablesDataplane::describe_snapshot(const nlohmann::json& section) const {
  // Counted as `detect` counts a ruleset: named sets only (anonymous ones are not listed).
  std::size_t tables = 0, chains = 0, rules = 0, sets = 0;
  const nlohmann::json* items = nullptr;
  if (auto r = section.find("ruleset"); r != section.end() && r->is_object())
    if (auto n = r->find("nftables"); n != r->end() && n->is_array()) items = &*n;
  if (items)
    for (const auto& item : *items) {
      if (!item.is_object()) continue;
      tables += item.contains("table");
      chains += item.contains("chain");
      rules += item.contains("rule");
      sets += item.contains("set");
    }
  auto size_of = [&](const char* key, const char* inner) -> std::size_t {
    auto it = section.find(key);
    if (it == section.end()) return 0;
    if (inner) {
      auto in = it->find(inner);
      return in == it->end() ? 0 : in->size();
    }
    return it->size();
  };
  return fmt::format(
      "{} tables, {} chains, {} rules, {} sets; {} rules with iptables-nft (xt) expressions, {} "
      "ipsets; {} interfaces, {} routes",
      tables, chains, rules, sets, size_of("xt", nullptr), size_of("ipsets", nullptr),
      size_of("node", "interfaces"), size_of("node", "routes"));
}

}  // namespace dpi::nft
