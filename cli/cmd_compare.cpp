#include <cctype>
#include <fstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flow_args.h"
#include "cli/flow_file.h"
#include "cli/source_options.h"
#include "core/compare.h"
#include "core/compare_html.h"
#include "core/compare_markdown.h"
#include "core/dataplane_registry.h"
#include "core/input_file.h"
#include "core/k8s_names.h"

namespace dpi::cli {

namespace {

struct CompareOptions {
  std::string before, after;  // a snapshot, `nft -j list ruleset` output, or "live"
  std::string flows, output = "text", iface_prefix = "cali";
  std::string output_file;  // --output-file FILE; standard output without it
  std::vector<std::string> ports;
  std::string k8s;  // --k8s FILE
  bool all = false;
  // --node, --netns and --max-input-mb, as every command that reads a dataplane has them.
  SourceOptions source;
};

Result<std::unique_ptr<LoadedDataplane>> load_side(const Context& c, const CompareOptions& o,
                                                   const std::string& which,
                                                   const std::string& value) {
  SourceRequest req = o.source.resolved();
  if (value != "live") {
    req.file = value;
    req.netns.clear();  // --netns is where a live side is read, not a file's node
  }
  // A snapshot (or a live read) carries its own node; --node is for plain dumps.
  req.node_file_only_when_missing = true;
  auto loaded = c.registry.load(o.source.dataplane, req);
  if (!loaded)
    return make_error(loaded.error().code, fmt::format("{}: {}", which, loaded.error().message));
  return std::move(loaded->front());
}

// --port tcp/80, udp/53, 80 (tcp), icmp.
Result<FlowArgs> parse_port(const std::string& s) {
  FlowArgs a;
  auto slash = s.find('/');
  std::string proto = slash == std::string::npos ? "" : s.substr(0, slash);
  std::string port = slash == std::string::npos ? s : s.substr(slash + 1);
  if (slash == std::string::npos && parse_l4proto(s) &&
      !std::isdigit(static_cast<unsigned char>(s[0]))) {
    a.proto = s;
    return a;
  }
  a.proto = proto.empty() ? "tcp" : proto;
  try {
    std::size_t used = 0;
    a.dport = std::stoll(port, &used);
    if (used != port.size()) throw std::invalid_argument(port);
  } catch (const std::exception&) {
    return make_error(ErrorCode::bad_input,
                      fmt::format("--port {}: expected PROTO/PORT (tcp/80), PORT or icmp", s));
  }
  return a;
}

// Every ordered pair of the node's local workloads (host routes through prefix* interfaces).
std::vector<IpAddr> local_workloads(const NodeInfo& node, const std::string& prefix) {
  std::vector<IpAddr> out;
  for (const auto& r : node.routes)
    if (r.dev.rfind(prefix, 0) == 0 && r.type == "unicast" && r.dst.addr.is_v4() && r.dst.len == 32)
      out.push_back(r.dst.addr);
  return out;
}

Result<std::vector<Flow>> flows_to_compare(const CompareOptions& o, const LoadedDataplane& before,
                                           const LoadedDataplane& after,
                                           const std::optional<K8sNames>& k8s,
                                           const std::string& k8s_source) {
  std::vector<Flow> flows;
  const std::optional<NodeInfo>& node = before.node() ? before.node() : after.node();
  if (!o.flows.empty()) {
    auto text = read_input_file(o.flows, o.source.resolved().max_bytes);
    if (!text) return text.error();
    auto specs = read_flow_specs(*text, input_origin(o.flows));
    if (!specs) return specs.error();
    for (auto& s : *specs) {
      auto from = parse_endpoint(s.src, "src");
      auto to = from ? parse_endpoint(s.dst, "dst") : from;
      if (!from || !to) {
        const Error& e = !from ? from.error() : to.error();
        return make_error(e.code, s.where + e.message);
      }
      std::vector<std::string> notes;
      if (k8s) {
        auto st = resolve_services(*from, *to, *k8s, k8s_source, s.args.dport, notes);
        if (st) st = resolve_k8s_pods(*from, *to, *k8s, k8s_source, node, o.iface_prefix, notes);
        if (!st) return make_error(st.error().code, s.where + st.error().message);
      }
      if (auto st = resolve_pods(*from, *to, node, o.iface_prefix, notes); !st)
        return make_error(st.error().code, s.where + st.error().message);
      auto f = build_flow(s.args, *from->addr, *to->addr, s.where);
      if (!f) return f.error();
      flows.push_back(*f);
    }
    return flows;
  }
  if (!node)
    return make_error(ErrorCode::bad_input,
                      "--port builds the flows from the node's workloads, which a ruleset file "
                      "without node information does not list: give snapshots, --node, or --flows");
  auto pods = local_workloads(*node, o.iface_prefix);
  if (pods.size() < 2)
    return make_error(
        ErrorCode::bad_input,
        fmt::format("--port: the node has {} local workload(s) ({}* interfaces with a "
                    "/32 route); give --flows",
                    pods.size(), o.iface_prefix));
  for (const auto& p : o.ports) {
    auto args = parse_port(p);
    if (!args) return args.error();
    for (const auto& s : pods)
      for (const auto& d : pods) {
        if (s == d) continue;
        auto f = build_flow(*args, s, d, fmt::format("--port {}: ", p));
        if (!f) return f.error();
        flows.push_back(*f);
      }
  }
  return flows;
}

int run_compare(const Context& c, const CompareOptions& o) {
  if (o.flows.empty() == o.ports.empty())
    return c.fail(make_error(ErrorCode::bad_input,
                             "give the flows to compare: --flows FILE, or --port for every "
                             "pair of the node's workloads"));
  if (!o.source.request.netns.empty() && o.before != "live" && o.after != "live")
    return c.fail(
        make_error(ErrorCode::bad_input, "--netns applies only to a side given as \"live\""));
  auto before = load_side(c, o, "before", o.before);
  if (!before) return c.fail(before.error());
  auto after = load_side(c, o, "after", o.after);
  if (!after) return c.fail(after.error());
  // Names per side: --k8s for both, else what each side's snapshot carries (snapshot --k8s).
  std::optional<K8sNames> k8s, before_names, after_names;
  std::string k8s_source = "--k8s " + input_origin(o.k8s), before_source, after_source;
  if (!o.k8s.empty()) {
    auto names = load_k8s_names(o.k8s, o.source.resolved().max_bytes);
    if (!names) return c.fail(names.error());
    k8s = std::move(*names);
  } else {
    auto b = snapshot_names(**before, o.before, before_source);
    if (!b) return c.fail(make_error(b.error().code, "before: " + b.error().message));
    auto a = snapshot_names(**after, o.after, after_source);
    if (!a) return c.fail(make_error(a.error().code, "after: " + a.error().message));
    before_names = std::move(*b);
    after_names = std::move(*a);
    // The flows' ns/pod and ns/svc: the before side's names, then what only the after side has.
    if (before_names || after_names) {
      k8s = before_names ? *before_names : *after_names;
      if (before_names && after_names) merge_k8s_names(*k8s, *after_names);
      k8s_source = before_source.empty()           ? after_source
                   : after_source.empty()          ? before_source
                   : before_source == after_source ? before_source
                                                   : before_source + " and " + after_source;
    }
  }
  for (auto [names, source] :
       {std::pair{&before_names, &before_source}, std::pair{&after_names, &after_source}})
    if (!*names && k8s) {
      *names = k8s;
      *source = k8s_source;
    }
  auto flows = flows_to_compare(o, **before, **after, k8s, k8s_source);
  if (!flows) return c.fail(flows.error());

  Comparison cmp;
  cmp.before_source = (*before)->description();
  cmp.after_source = (*after)->description();
  if (k8s)
    cmp.names_source = fmt::format("{} names from {}",
                                   k8s->services.empty() ? "pod" : "pod and service", k8s_source);
  const auto node_of = [](const LoadedDataplane& l) { return l.node() ? &*l.node() : nullptr; };
  for (const Flow& f : *flows) {
    auto b = (*before)->inspect(f);
    if (!b) return c.fail(make_error(b.error().code, "before: " + b.error().message));
    auto a = (*after)->inspect(f);
    if (!a) return c.fail(make_error(a.error().code, "after: " + a.error().message));
    if (before_names)
      apply_k8s_names(*b, *before_names, before_source, o.iface_prefix, node_of(**before));
    if (after_names)
      apply_k8s_names(*a, *after_names, after_source, o.iface_prefix, node_of(**after));
    FlowComparison fc{std::move(*b), std::move(*a)};
    fc.change = compare_reports(fc.before, fc.after);
    cmp.flows.push_back(std::move(fc));
  }
  std::string page;
  if (o.output == "json")
    page = to_json(cmp).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  else if (o.output == "markdown")
    page = render_markdown(cmp, o.all);
  else if (o.output == "html")
    page = render_html(cmp);
  else
    page = render_text(cmp, o.all);
  if (o.output_file.empty()) {
    c.out << page;
  } else {
    std::ofstream file(o.output_file, std::ios::binary);
    if (!file)
      return c.fail(
          make_error(ErrorCode::bad_input, fmt::format("{}: cannot write", o.output_file)));
    if (!file.write(page.data(), static_cast<std::streamsize>(page.size())).flush())
      return c.fail(make_error(ErrorCode::system, fmt::format("{}: write failed", o.output_file)));
    // Standard output stays empty: the page is in the file, and this line says what it holds.
    c.err << fmt::format(
        "wrote {} ({} bytes, {}): {} flows, {} same, {} verdict changed, {} same verdict "
        "decided differently, {} indeterminate\n",
        o.output_file, page.size(), o.output, cmp.flows.size(), cmp.count(Change::same),
        cmp.count(Change::verdict), cmp.count(Change::meaning), cmp.count(Change::indeterminate));
  }
  // As inspect's codes: 1 "something is denied that was not" (or the reverse), 2 undecided.
  if (cmp.count(Change::verdict)) return exit_code_for(Verdict::deny);
  if (cmp.count(Change::indeterminate)) return exit_code_for(Verdict::indeterminate);
  return exit_code_for(Verdict::allow);
}

}  // namespace

Runner add_compare(CLI::App& app, const Context& c) {
  auto o = std::make_shared<CompareOptions>();
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare two dataplanes flow by flow: does every flow keep its verdict, and is it decided\n"
      "the same way in Calico's terms (stage, tier, policy, rule)? For migrations (iptables to\n"
      "nftables, an upgrade, a policy change). Read-only.\n"
      "Exit code: 0 every verdict the same, 1 some verdict changed, 2 none changed but some flow\n"
      "is indeterminate, 3 bad input, 4 no permission, 5 system error.\n\n"
      "Examples:\n"
      "  dpinspect compare --before before.snapshot.json --after after.snapshot.json --port "
      "tcp/80\n"
      "  dpinspect compare --before before.snapshot.json --after live --flows flows.jsonl\n"
      "  dpinspect compare --before examples/seed/nftables.json --after "
      "examples/seed/iptables-nft.json \\\n"
      "      --node examples/seed/node.json --port tcp/80 --port tcp/9001\n"
      "  dpinspect compare --before examples/seed/iptables-nft.snapshot.json \\\n"
      "      --after examples/seed/platform-iptables-nft.snapshot.json --port tcp/80 \\\n"
      "      -o html --output-file compare.html");
  cmd->add_option("--before", o->before,
                  "The dataplane before: a snapshot, `nft -j list ruleset` output, or live")
      ->required()
      ->type_name("FILE|live");
  cmd->add_option("--after", o->after, "The dataplane after, as --before")
      ->required()
      ->type_name("FILE|live");
  cmd->add_option("--node", o->source.request.node_file,
                  "Interfaces and routes for a side given as plain `nft -j` output (snapshots "
                  "carry their own)")
      ->type_name("FILE");
  cmd->add_option("--netns", o->source.request.netns,
                  "The network namespace a live side is read from")
      ->type_name("NAME|PATH");
  cmd->add_option("--flows", o->flows,
                  "Flows to compare, one JSON object a line: {\"src\": ADDR|NS/POD, \"dst\": ..., "
                  "\"proto\": \"tcp\", \"dport\": 80}")
      ->type_name("FILE");
  cmd->add_option("--port", o->ports,
                  "Compare every pair of the node's workloads on this port (tcp/80, udp/53, 80, "
                  "icmp); repeatable")
      ->type_name("PROTO/PORT");
  cmd->add_option("--iface-prefix", o->iface_prefix,
                  "Felix's workload interface prefix (FELIX_INTERFACEPREFIX), for pods")
      ->capture_default_str();
  cmd->add_option("--k8s", o->k8s,
                  "Names for addresses: the output of `kubectl get pods,services,endpointslices "
                  "-A -o json`; flows name pods and services, --flows take ns/svc[:port]")
      ->type_name("FILE");
  cmd->add_flag("--all", o->all, "List every flow, not only the ones that changed");
  cmd->add_option("-o,--output", o->output,
                  "Report format: text, json (schema dpinspect.compare/v1), markdown (counts "
                  "and the changed flows), or html (one self-contained page: a source x "
                  "destination matrix per port, coloured by outcome)")
      ->check(CLI::IsMember({"text", "json", "markdown", "html"}))
      ->capture_default_str();
  cmd->add_option("--output-file", o->output_file,
                  "Write the report to FILE instead of standard output, and say on standard "
                  "error what was written")
      ->type_name("FILE");
  o->source.add_max_input(*cmd, "Refuse any input larger than this many MiB");
  return [o, c] { return run_compare(c, *o); };
}

}  // namespace dpi::cli
