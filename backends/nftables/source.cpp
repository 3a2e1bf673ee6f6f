#include "backends/nftables/source.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/linux/netlink_node.h"
#include "backends/linux/netns.h"
#include "backends/nftables/iptables_save/iptables_save.h"
#include "backends/nftables/live_ruleset.h"
#include "backends/nftables/snapshot.h"
#include "core/input_file.h"
#include "core/snapshot.h"

namespace dpi::nft {

namespace {

struct LiveRead {
  std::string json;
  XtPayloads xt;
  IpsetCatalog ipsets;
  NodeInfo node;
  uint32_t generation = 0;
};

// The ruleset and routes are read in one visit to the namespace; a ruleset that changed while
// being read is read again so the model never mixes two generations.
Result<LiveRead> read_live() {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto before = ruleset_generation();
    if (!before) return before.error();
    auto text = list_ruleset_json();
    if (!text) return text.error();
    // iptables-nft keeps match and target parameters where only netlink shows them.
    auto xt = read_xt_payloads();
    if (!xt) return xt.error();
    auto ipsets = read_ipsets();
    if (!ipsets) return ipsets.error();
    auto after = ruleset_generation();
    if (!after) return after.error();
    if (*before != *after) continue;
    auto node = os::read_node_info();
    if (!node) return node.error();
    return LiveRead{std::move(*text), std::move(*xt), std::move(*ipsets), std::move(*node), *after};
  }
  return make_error(ErrorCode::system, "the ruleset kept changing while it was read (5 attempts)");
}

// iptables-save text (no handles: rules are named by line number) and optionally ipset save text.
Result<Loaded> load_iptables_save_source(const SourceSpec& spec) {
  Loaded out;
  if (!spec.ipset_save_file.empty()) {
    auto text = read_input_file(spec.ipset_save_file, spec.load.max_bytes);
    if (!text) return text.error();
    auto sets = parse_ipset_save(*text, spec.ipset_save_file);
    if (!sets) return sets.error();
    out.ipsets = std::make_shared<IpsetCatalog>(std::move(*sets));
  }
  auto text = read_input_file(spec.iptables_save_file, spec.load.max_bytes);
  if (!text) return text.error();
  std::string origin = spec.iptables_save_file == "-" ? "<stdin>" : spec.iptables_save_file;
  IptablesSaveOptions opts;
  opts.ipsets = out.ipsets.get();
  auto rs = load_iptables_save(*text, origin, opts);
  if (!rs) return rs.error();
  out.ruleset = std::move(*rs);
  out.description = fmt::format("iptables-save {} (handles are line numbers)", origin);
  if (!spec.node_file.empty()) {
    auto node = read_node_file(spec.node_file, spec.load);
    if (!node) return node.error();
    out.node = std::move(*node);
  } else if (!spec.netns.empty()) {
    auto node = os::in_netns(spec.netns, os::read_node_info);
    if (!node) return node.error();
    out.node = std::move(*node);
  }
  return out;
}

}  // namespace

Result<NodeInfo> read_node_file(const std::string& path, const LoadOptions& load) {
  auto j = read_json_file(path, load);
  if (!j) return j.error();
  // A snapshot may carry the node info: in its nftables section, or (version 1 and files written
  // by hand) as "node" at the top.
  if (j->is_object() && j->contains("node")) return node_info_from_json((*j)["node"], path);
  if (is_snapshot(*j)) {
    auto snap = read_snapshot(*j, path);
    if (!snap) return snap.error();
    if (!snap->node)
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}: the snapshot carries no node information", path));
    return std::move(*snap->node);
  }
  return node_info_from_json(*j, path);
}

Result<Loaded> load_source(const SourceSpec& spec) {
  if (!spec.iptables_save_file.empty()) return load_iptables_save_source(spec);
  Loaded out;
  if (!spec.ruleset_file.empty()) {
    auto doc = read_json_file(spec.ruleset_file, spec.load);
    if (!doc) return doc.error();
    std::string origin = spec.ruleset_file == "-" ? "<stdin>" : spec.ruleset_file;
    out.description = fmt::format("file {}", origin);
    LoadOptions opts = spec.load;
    const nlohmann::json* ruleset = &*doc;
    if (is_snapshot(*doc)) {
      out.k8s = take_snapshot_k8s(*doc);
      auto snap = read_snapshot(*doc, origin);
      if (!snap) return snap.error();
      out.xt = std::make_shared<XtPayloads>(std::move(snap->xt));
      out.ipsets = std::make_shared<IpsetCatalog>(std::move(snap->ipsets));
      opts.xt = out.xt.get();
      opts.ipsets = out.ipsets.get();
      out.node = std::move(snap->node);
      ruleset = snap->ruleset;
      out.description = fmt::format("snapshot {}", origin);
    }
    auto rs = load_ruleset_doc(*ruleset, origin, opts);
    if (!rs) return rs.error();
    out.ruleset = std::move(*rs);
    if (!spec.node_file.empty()) {
      auto node = read_node_file(spec.node_file, spec.load);
      if (!node) return node.error();
      out.node = std::move(*node);
    } else if (!spec.netns.empty() && !out.node) {
      auto node = os::in_netns(spec.netns, os::read_node_info);
      if (!node) return node.error();
      out.node = std::move(*node);
    }
    return out;
  }
  auto live = os::in_netns(spec.netns, read_live);
  if (!live) return live.error();
  std::string origin =
      spec.netns.empty() ? "live ruleset" : fmt::format("live netns {}", spec.netns);
  out.xt = std::make_shared<XtPayloads>(std::move(live->xt));
  out.ipsets = std::make_shared<IpsetCatalog>(std::move(live->ipsets));
  LoadOptions opts = spec.load;
  opts.xt = out.xt.get();
  opts.ipsets = out.ipsets.get();
  auto rs = load_ruleset_json(live->json, origin, opts);
  if (!rs) return rs.error();
  out.ruleset = std::move(*rs);
  out.node = std::move(live->node);
  out.generation = live->generation;
  out.live_netns = spec.netns;
  out.description = origin;
  return out;
}

Result<nlohmann::json> snapshot_live(const SourceSpec& spec) {
  auto live = os::in_netns(spec.netns, read_live);
  if (!live) return live.error();
  nlohmann::json ruleset;
  try {
    ruleset = nlohmann::json::parse(live->json);
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::system,
                      fmt::format("libnftables printed JSON that does not parse: {}", e.what()));
  }
  return make_snapshot(SnapshotParts{std::move(ruleset), &live->xt, &live->ipsets, &live->node});
}

}  // namespace dpi::nft
