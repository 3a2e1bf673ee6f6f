// The seam between the commands and the backends: what a dataplane backend (nftables, eBPF, a
// test fixture) implements. The CLI sees only this interface and the registry
// (core/dataplane_registry.h); it names no backend.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/flow.h"
#include "core/node_info.h"
#include "core/report.h"
#include "core/result.h"
#include "core/trace.h"
#include "core/watch.h"

namespace dpi {

// A source option a backend needs on every command that reads a dataplane (`--iptables-save
// FILE`, later `--bpffs DIR`). The CLI adds them generically, in registry order.
struct SourceOption {
  std::string name;           // without the dashes: "iptables-save"
  std::string type_name;      // FILE, DIR, ...
  std::string help;           // one sentence for --help
  std::string default_value;  // empty: none (the option is then unset unless given)
  // How flows are answered (the eBPF backend's --engine), not where the dataplane is read:
  // offered by the commands that answer flows (inspect) only.
  bool answers_flows = false;
};

// Where the user wants the dataplane read from, backend-neutral. Options a backend declared
// arrive by name in `options`; `given` says which ones the user actually typed (a default does
// not count), which is how `--dataplane auto` knows that `--iptables-save` means nftables.
struct SourceRequest {
  std::string file;       // --ruleset: a snapshot or a backend's own dump; "-" for stdin
  std::string node_file;  // --node: the node's interfaces, addresses, routes (offline use)
  // inspect: --node replaces what the source carries; compare: it fills in only when the source
  // (a plain dump) carries no node information.
  bool node_file_only_when_missing = false;
  std::string netns;  // live: this network namespace; empty = the current one
  std::size_t max_bytes = std::size_t{256} << 20;
  std::map<std::string, std::string> options;  // backend-declared options by name
  std::set<std::string> given;                 // the ones the user typed

  // A backend option's value ("" when neither given nor defaulted).
  const std::string& option(const std::string& name) const;
  bool has(const std::string& name) const { return given.count(name) > 0; }
};

// Who decides a flow when a node runs more than one dataplane layer (an eBPF node still has
// nftables rules for host traffic): the layer the packet meets first judges first, a later
// layer judges only what the earlier one let through. Backends say where they sit.
enum class Layer {
  tc,         // tc/TCX programs on the interfaces: before netfilter on ingress
  netfilter,  // nftables / iptables-nft hooks
};

// What `detect` prints for one backend.
struct Detection {
  std::string dataplane;  // the backend's name
  bool found = false;     // Calico's dataplane of this kind is on the node
  std::string kind;       // "nftables", "iptables-nft", "nftables+iptables-nft", "none"...
  std::vector<std::string> layouts;
  std::string version_hint;  // empty: no clue
  // What the backend looked for ("Calico's pinned maps (cali_*) in /sys/fs/bpf/tc/globals"), for
  // `detect` to say when it was not found.
  std::string looked_for;
  std::vector<std::string> clues;
  // The detect/v1 JSON's "dataplanes" entries this backend answers ({"nftables": true, ...}).
  nlohmann::json dataplanes = nlohmann::json::object();
  // Further members of the detect/v1 JSON (counts, kube_proxy, ...), merged at the top level.
  nlohmann::json details = nlohmann::json::object();
  // Further lines of the text output, as (label, value), after the layouts and version.
  std::vector<std::pair<std::string, std::string>> text_lines;
  // The NFLOG groups of Calico's log rules (flow logs), for `watch`; not printed by detect.
  std::vector<int> log_groups;
};

// One read of a rule's counter (`inspect --counters`).
struct RuleCounter {
  uint64_t packets = 0;
  // nullopt where the dataplane counts packets only (Calico's eBPF rule counters).
  std::optional<uint64_t> bytes;
  // Other counters read at the same time that count the rule's endpoint (eBPF: the deciding
  // hook's DROPPED_BY_POLICY / ACCEPTED_BY_POLICY from cali_counters*), by name.
  std::vector<std::pair<std::string, uint64_t>> related;
  // Why `related` is empty when they could not be read (the rule's own count still is).
  std::string related_unavailable;
};

// A dataplane read from one source, ready to answer flows.
class LoadedDataplane {
 public:
  virtual ~LoadedDataplane() = default;
  // "live netns node1", "snapshot node1.json", ...
  virtual const std::string& description() const = 0;
  // The node's interfaces and routes, when the source carried them.
  virtual const std::optional<NodeInfo>& node() const = 0;
  // Use this node information (compare's --node for a plain dump).
  virtual void set_node(NodeInfo node) = 0;
  virtual Detection detect() const = 0;
  // flow must be normalized (core/flow.h).
  virtual Result<Report> inspect(const Flow& flow) const = 0;
  // Reads the counter of `rule` (a rule this dataplane reported) from the live dataplane now:
  // nullopt when the rule counts nothing. Only a live source can: a file or a snapshot gives
  // ErrorCode::bad_input, as does a backend that reads no live counters.
  virtual Result<std::optional<RuleCounter>> read_rule_counter(const RuleRef& rule) const {
    (void)rule;
    return make_error(ErrorCode::bad_input, "--counters: the " + detect().dataplane +
                                                " dataplane reads no live counters");
  }
  // Every rule counter of the live dataplane now, each attributed to its rule (the RuleRef's text
  // names it in Calico's terms where the backend can). Meant to be polled (a watch): a backend
  // keeps what it needs open between calls. Same errors as read_rule_counter.
  virtual Result<std::vector<std::pair<RuleRef, RuleCounter>>> read_rule_counters() const {
    return make_error(ErrorCode::bad_input,
                      "counters: the " + detect().dataplane + " dataplane reads no live counters");
  }

  // The names a snapshot carries (`snapshot --k8s`: kubectl's document as stored, the
  // kSnapshotK8sMember of core/snapshot.h), handed on by the backend that parsed the snapshot so
  // that nothing reads the file again for them; nullopt for other sources.
  const std::optional<nlohmann::json>& snapshot_k8s() const { return snapshot_k8s_; }
  void set_snapshot_k8s(std::optional<nlohmann::json> k8s) { snapshot_k8s_ = std::move(k8s); }

 private:
  std::optional<nlohmann::json> snapshot_k8s_;
};

class DataplaneBackend {
 public:
  virtual ~DataplaneBackend() = default;
  // The --dataplane value: "nftables", "ebpf".
  virtual std::string_view name() const = 0;
  // For --help: "native nft and iptables-nft".
  virtual std::string_view summary() const = 0;
  virtual Layer layer() const = 0;
  // Source options only this backend reads.
  virtual std::vector<SourceOption> source_options() const = 0;
  // Whether the request can only mean this backend (one of its own options was given).
  virtual bool claims(const SourceRequest& req) const = 0;
  // Checks the combination of options; the error names the option at fault.
  virtual Status check(const SourceRequest& req) const = 0;
  // Reads the dataplane: live (in req.netns), or from req.file (a snapshot or a dump).
  virtual Result<std::unique_ptr<LoadedDataplane>> load(const SourceRequest& req) const = 0;
  // Reads the live dataplane of req.netns for `dpinspect snapshot`: this backend's section of the
  // document (core/snapshot.h), which the command files under name(); nullopt when there is
  // nothing of this dataplane on the node. load() finds the section there again
  // (snapshot_section()).
  virtual Result<std::optional<nlohmann::json>> snapshot(const SourceRequest& req) const = 0;
  // `dpinspect trace`: whether this backend can have the kernel trace a real packet, and doing it
  // live in req.netns. The one thing a backend does that changes the dataplane: what it adds must
  // go away by itself when dpinspect ends, however it ends.
  virtual bool traces() const { return false; }
  virtual Result<KernelPath> trace(const SourceRequest& req, const TraceRequest& t) const {
    (void)req;
    (void)t;
    return make_error(ErrorCode::bad_input,
                      "trace: the " + std::string(name()) + " dataplane cannot trace packets");
  }
  // `dpinspect watch`: the sources this backend offers (WatchRequest: "nflog", "kfree_skb",
  // "counters"), its default first; empty when it offers none.
  virtual std::vector<std::string> watch_sources() const { return {}; }
  // `dpinspect watch`: opens the live event sources `w` asks for in req.netns (core/watch.h).
  // Read-only: a log subscription or a tracepoint program, all released with the sources.
  virtual Result<std::vector<std::unique_ptr<WatchSource>>> watch(const SourceRequest& req,
                                                                  const WatchRequest& w) const {
    (void)req;
    (void)w;
    return make_error(ErrorCode::bad_input,
                      "watch: the " + std::string(name()) + " dataplane has no live event source");
  }
  // What a section snapshot() wrote holds, for `snapshot -o FILE` to say in one line ("2 tables,
  // 81 chains, 174 rules, 9 sets"); empty when the backend has nothing to count.
  virtual std::string describe_snapshot(const nlohmann::json& /*section*/) const { return {}; }
};

}  // namespace dpi
