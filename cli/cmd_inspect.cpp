#include <algorithm>
#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flow_args.h"
#include "cli/flow_file.h"
#include "cli/runtime_names.h"
#include "cli/source_options.h"
#include "core/calico/workload.h"
#include "core/dataplane_registry.h"
#include "core/input_file.h"
#include "core/k8s_names.h"
#include "core/layers.h"
#include "core/report_json.h"
#include "core/report_text.h"

namespace dpi::cli {

namespace {

struct InspectOptions {
  SourceOptions source;
  std::string src, dst, output = "text";
  // Ports and ICMP fields are read as wide integers and range-checked in build_flow, so that
  // "--dport 70000" gets an error that names the range instead of CLI11's conversion message.
  FlowArgs flow;
  std::string iface_prefix = "cali";
  std::string k8s;            // --k8s FILE
  std::string flows;          // --flows FILE
  bool runtime_names = true;  // crictl, unless --no-crictl
  bool verbose = false;
  bool counters = false;
  double interval = 5;
};

// --counters: reads the deciding rule's counter on the layer that decided, waits, reads again.
// The line on err says when the interval starts: the traffic to count is sent after it.
Status add_counter_delta(Report& rep, const LoadedDataplane& layer, double interval,
                         std::ostream& err) {
  if (!rep.decided_by.rule) {
    rep.counters =
        CounterDelta{{}, interval, {}, {}, {}, {}, "no rule decided: no counter to read", {}, {}};
    return Ok{};
  }
  CounterDelta d;
  d.rule = *rep.decided_by.rule;
  d.interval_s = interval;
  if (!d.rule.bpf() && !d.rule.nft().handle) {
    d.note = "a base chain's policy decided: policies have no counter";
    rep.counters = std::move(d);
    return Ok{};
  }
  auto before = layer.read_rule_counter(d.rule);
  if (!before) return before.error();
  if (!*before) {
    d.note = "the deciding rule has no counter";
    rep.counters = std::move(d);
    return Ok{};
  }
  err << fmt::format("dpinspect: counter read; reading it again in {:g} s (send the traffic now)\n",
                     interval)
      << std::flush;
  std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  auto after = layer.read_rule_counter(d.rule);
  if (!after) return after.error();
  d.packets_before = (*before)->packets;
  d.bytes_before = (*before)->bytes;
  auto related = [&d](const std::string& name) -> CounterDelta::Related& {
    for (auto& r : d.related)
      if (r.name == name) return r;
    return d.related.emplace_back(CounterDelta::Related{name, {}, {}});
  };
  for (const auto& [name, n] : (*before)->related) related(name).before = n;
  if (*after)
    for (const auto& [name, n] : (*after)->related) related(name).after = n;
  std::string unavailable = !(*before)->related_unavailable.empty()
                                ? (*before)->related_unavailable
                                : (*after ? (*after)->related_unavailable : std::string());
  if (!unavailable.empty()) d.related_note = "related counters unavailable: " + unavailable;
  if (*after) {
    d.packets_after = (*after)->packets;
    d.bytes_after = (*after)->bytes;
    if ((*after)->packets < (*before)->packets ||
        (*after)->bytes.value_or(0) < (*before)->bytes.value_or(0))
      d.note = "the counter went down during the interval (it was reset)";
  } else {
    d.note = "the rule lost its counter during the interval (the ruleset changed)";
  }
  rep.counters = std::move(d);
  return Ok{};
}

using Loaded = std::vector<std::unique_ptr<LoadedDataplane>>;

// Where pod and service names come from (--k8s, or the snapshot being read), if anywhere.
struct Names {
  std::optional<K8sNames> k8s;
  std::string source;
};

// One flow to explain: --src/--dst and the flow options, or one line of a --flows file (`where`
// then prefixes its errors with the file and line).
struct FlowInput {
  std::string src, dst;
  FlowArgs args;
  std::string where;
  Endpoint from, to;
  std::vector<std::string> notes;  // resolutions, printed as assumptions
};

Error at(const FlowInput& in, const Error& e) {
  return make_error(e.code, in.where + e.message);
}

// Everything but pod names is checked before the (possibly slow) read of the dataplane. `file`:
// the snapshot or dump being read, whose names may yet make ns/svc a service.
Status prepare(FlowInput& in, const Names& names, const std::string& file) {
  const bool line = !in.where.empty();
  auto from = parse_endpoint(in.src, line ? "src" : "--src");
  if (!from) return at(in, from.error());
  auto to = parse_endpoint(in.dst, line ? "dst" : "--dst");
  if (!to) return at(in, to.error());
  in.from = std::move(*from);
  in.to = std::move(*to);
  if (names.k8s)
    if (auto st =
            resolve_services(in.from, in.to, *names.k8s, names.source, in.args.dport, in.notes);
        !st)
      return at(in, st.error());
  // Only --k8s and a snapshot's names know services; a live read has no snapshot.
  for (const auto* e : {&in.from, &in.to})
    if (e->port && !e->addr && file.empty()) {
      const bool is_src = e == &in.from;
      return make_error(ErrorCode::bad_input,
                        fmt::format("{}{} {}: a service with a port needs --k8s FILE", in.where,
                                    line ? (is_src ? "src" : "dst") : (is_src ? "--src" : "--dst"),
                                    is_src ? in.src : in.dst));
    }
  const bool v6 = (in.from.addr && in.from.addr->is_v6()) || (in.to.addr && in.to.addr->is_v6());
  const IpAddr placeholder = *IpAddr::parse(v6 ? "::1" : "10.0.0.1");
  FlowArgs early = in.args;
  // A snapshot's names may yet make ns/svc a service whose port becomes the destination port.
  if (!names.k8s && !file.empty() && (!in.from.addr || !in.to.addr) && !early.dport)
    early.dport = 1;
  auto f = build_flow(early, in.from.addr.value_or(placeholder), in.to.addr.value_or(placeholder),
                      in.where);
  if (!f) return f.error();
  return Ok{};
}

// Pods resolved on the node that was read: the flow as the dataplane will judge it.
Result<Flow> resolve(FlowInput& in, const Names& names, const LoadedDataplane& first,
                     const std::string& iface_prefix) {
  if (names.k8s)
    if (auto st = resolve_k8s_pods(in.from, in.to, *names.k8s, names.source, first.node(),
                                   iface_prefix, in.notes);
        !st)
      return at(in, st.error());
  if (auto st = resolve_pods(in.from, in.to, first.node(), iface_prefix, in.notes); !st)
    return at(in, st.error());
  return build_flow(in.args, *in.from.addr, *in.to.addr, in.where);
}

// Every layer loaded judges the flow; core combines their answers (docs/design.md, "More than
// one dataplane on a node"). One layer's report is left as it is.
Result<Report> evaluate(const Context& c, const InspectOptions& o, const Loaded& loaded,
                        const Flow& flow) {
  std::vector<LayerAnswer> answers;
  for (const auto& layer : loaded) {
    auto one = layer->inspect(flow);
    if (!one) return one.error();
    LayerAnswer a{loaded.size() > 1 ? layer->detect().dataplane : "", Layer::netfilter,
                  std::move(*one)};
    if (const DataplaneBackend* b = c.registry.find(a.dataplane)) a.layer = b->layer();
    answers.push_back(std::move(a));
  }
  std::vector<std::string> layer_names;
  layer_names.reserve(answers.size());
  for (const auto& a : answers) layer_names.push_back(a.dataplane);
  Report rep = combine_layers(std::move(answers));
  if (o.counters) {
    // The deciding layer's rule: with one layer, that layer; else the first that decided.
    const LoadedDataplane* decider = loaded.front().get();
    for (const auto& l : rep.layers) {
      if (!l.decided) continue;
      for (std::size_t i = 0; i < layer_names.size(); ++i)
        if (layer_names[i] == l.dataplane) decider = loaded[i].get();
      break;
    }
    if (auto st = add_counter_delta(rep, *decider, o.interval, c.err); !st) return st.error();
  }
  return rep;
}

// The flows to explain: the --flows file's lines, or the one flow of --src/--dst.
Result<std::vector<FlowInput>> flow_inputs(const InspectOptions& o) {
  std::vector<FlowInput> inputs;
  if (o.flows.empty()) {
    for (const auto& [value, name] : {std::pair{&o.src, "--src"}, std::pair{&o.dst, "--dst"}})
      if (value->empty())
        return make_error(ErrorCode::bad_input,
                          fmt::format("{} is required (or --flows FILE for many flows)", name));
    inputs.push_back(FlowInput{o.src, o.dst, o.flow, "", {}, {}, {}});
    return inputs;
  }
  auto text = read_input_file(o.flows, o.source.resolved().max_bytes);
  if (!text) return text.error();
  auto specs = read_flow_specs(*text, input_origin(o.flows));
  if (!specs) return specs.error();
  for (auto& s : *specs)
    inputs.push_back(FlowInput{
        std::move(s.src), std::move(s.dst), std::move(s.args), std::move(s.where), {}, {}, {}});
  return inputs;
}

int run_inspect(const Context& c, const InspectOptions& o) {
  Names names{std::nullopt, "--k8s " + input_origin(o.k8s)};
  if (!o.k8s.empty()) {
    auto k8s = load_k8s_names(o.k8s, o.source.resolved().max_bytes);
    if (!k8s) return c.fail(k8s.error());
    names.k8s = std::move(*k8s);
  }
  auto inputs = flow_inputs(o);
  if (!inputs) return c.fail(inputs.error());
  for (auto& in : *inputs)
    if (auto st = prepare(in, names, o.source.request.file); !st) return c.fail(st.error());
  if (o.counters && !o.source.request.file.empty())
    return c.fail(make_error(ErrorCode::bad_input,
                             "--counters reads the live dataplane twice: it cannot be combined "
                             "with --ruleset (use --netns or the current namespace)"));
  auto loaded = c.registry.load(o.source.dataplane, o.source.resolved());
  if (!loaded) return c.fail(loaded.error());
  // The layer a packet meets first (docs/design.md, "More than one dataplane on a node").
  const LoadedDataplane& first = *loaded->front();
  // Names the read brought (a snapshot's), when --k8s gave none.
  if (!names.k8s) {
    auto k8s = snapshot_names(first, o.source.request.file, names.source);
    if (!k8s) return c.fail(k8s.error());
    names.k8s = std::move(*k8s);
    if (names.k8s)
      for (auto& in : *inputs)
        if (auto st =
                resolve_services(in.from, in.to, *names.k8s, names.source, in.args.dport, in.notes);
            !st)
          return c.fail(at(in, st.error()));
  }
  // This node's container runtime knows its pods: with --k8s, what --k8s lacks.
  std::vector<std::string> runtime_notes;
  if (o.runtime_names && o.source.reads_this_node()) {
    RuntimeNames rt = runtime_names(o.source.resolved().max_bytes);
    // A node without crictl is worth a note only when nothing else names the pods.
    if (rt.on_path || !names.k8s) runtime_notes = std::move(rt.notes);
    if (rt.names && names.k8s) {
      merge_k8s_names(*names.k8s, *rt.names);
      names.source += " and " + rt.source;
    } else if (rt.names) {
      names.k8s = std::move(rt.names);
      names.source = rt.source;
    }
  }
  // Every flow is resolved before any report is printed, so a bad line in a flows file gives
  // an error and no partial output.
  std::vector<Flow> flows;
  flows.reserve(inputs->size());
  for (auto& in : *inputs) {
    auto flow = resolve(in, names, first, o.iface_prefix);
    if (!flow) return c.fail(flow.error());
    flows.push_back(std::move(*flow));
  }
  const bool batch = !o.flows.empty();
  const NodeInfo* node = first.node() ? &*first.node() : nullptr;
  int exit_code = 0;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    auto rep = evaluate(c, o, *loaded, flows[i]);
    if (!rep) return c.fail(rep.error());
    const auto& notes = (*inputs)[i].notes;
    rep->assumptions.insert(rep->assumptions.begin(), notes.begin(), notes.end());
    if (names.k8s) apply_k8s_names(*rep, *names.k8s, names.source, o.iface_prefix, node);
    rep->assumptions.insert(rep->assumptions.end(), runtime_notes.begin(), runtime_notes.end());
    // Names and comments come from the input unchecked (iptables-save text, xt payloads); bytes
    // that are not UTF-8 are printed as U+FFFD instead of failing the whole report. Many flows
    // give JSON Lines: one report a line.
    if (o.output == "json")
      c.out << to_json(*rep).dump(batch ? -1 : 2, ' ', false,
                                  nlohmann::json::error_handler_t::replace)
            << "\n";
    else
      c.out << (i ? "\n" : "") << render_text(*rep, TextOptions{o.verbose});
    // The exit code of the worst answer: any indeterminate, else any denied, else allowed.
    exit_code = std::max(exit_code, dpi::exit_code_for(rep->verdict));
  }
  return exit_code;
}

}  // namespace

Runner add_inspect(CLI::App& app, const Context& c) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "Explain the verdict for a flow: allowed or denied, the deciding rule, its Calico "
      "meaning. --flows FILE explains many flows from one read of the dataplane.\n"
      "Exit code: 0 allowed, 1 denied, 2 indeterminate, 3 bad input, 4 no permission, 5 system "
      "error (with --flows: 2 if any flow is indeterminate, else 1 if any is denied).\n\n"
      "Examples:\n"
      "  dpinspect inspect --src 10.65.0.2 --dst 10.65.0.3 --proto tcp --dport 80\n"
      "  dpinspect inspect --netns node1 --src 10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001 "
      "-o json\n"
      "  dpinspect inspect --ruleset examples/seed/nftables.json --node examples/seed/node.json "
      "\\\n"
      "      --src 10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001\n"
      "  dpinspect inspect --ruleset dump.json --iif cali1234567890a --oif eth0 --src 10.65.0.2 "
      "\\\n"
      "      --dst 8.8.8.8 --proto udp --dport 53\n"
      "  dpinspect inspect --netns node1 --src 10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001 "
      "\\\n"
      "      --counters --interval 10\n"
      "  dpinspect inspect --netns node1 --flows flows.jsonl -o json");
  o->source.add_to(*cmd, c.registry, /*answers_flows=*/true);
  auto* src =
      cmd->add_option("--src", o->src,
                      "Source of the flow (required without --flows): an address, or a pod on "
                      "this node as namespace/name")
          ->type_name("ADDR|NS/POD");
  auto* dst = cmd->add_option("--dst", o->dst,
                              "Destination of the flow (required without --flows): an address, a "
                              "pod on this node as namespace/name, or with --k8s a service as "
                              "namespace/name[:port]")
                  ->type_name("ADDR|NS/POD|NS/SVC[:PORT]");
  auto* flows = cmd->add_option("--flows", o->flows,
                                "Many flows, one JSON object a line as compare's --flows: "
                                "{\"src\": ..., \"dst\": ..., \"proto\": \"tcp\", "
                                "\"dport\": 80}; one report each (-o json: one a line)")
                    ->type_name("FILE")
                    ->excludes(src)
                    ->excludes(dst);
  cmd->add_option("--k8s", o->k8s,
                  "Names for addresses: the output of `kubectl get pods,services,endpointslices "
                  "-A -o json`; reports name pods and services, --src/--dst take ns/svc[:port]")
      ->type_name("FILE");
  cmd->add_flag("!--no-crictl", o->runtime_names,
                "Live on this node: do not ask the container runtime (crictl on PATH) for the "
                "names of its pods");
  cmd->add_option("--iface-prefix", o->iface_prefix,
                  "Felix's workload interface prefix (FELIX_INTERFACEPREFIX), for pod names")
      ->capture_default_str();
  cmd->add_option("--proto", o->flow.proto, "tcp, udp, sctp, icmp, icmpv6 or a protocol number")
      ->capture_default_str()
      ->excludes(flows);
  cmd->add_option("--sport", o->flow.sport,
                  fmt::format("Source port (default: an ephemeral port, {})", kDefaultSourcePort))
      ->excludes(flows);
  cmd->add_option("--dport", o->flow.dport, "Destination port (required for tcp, udp, sctp)")
      ->excludes(flows);
  cmd->add_option("--icmp-type", o->flow.icmp_type, "ICMP type (default: echo request)")
      ->excludes(flows);
  cmd->add_option("--icmp-code", o->flow.icmp_code, "ICMP code (default: 0)")->excludes(flows);
  cmd->add_option("--iif", o->flow.iif,
                  "Interface the flow arrives on (default: from the node's routes)")
      ->type_name("IFACE")
      ->excludes(flows);
  cmd->add_option("--oif", o->flow.oif,
                  "Interface the flow leaves by (default: from the node's routes)")
      ->type_name("IFACE")
      ->excludes(flows);
  cmd->add_option("--ct", o->flow.ct,
                  "Conntrack state to assume: new, established, related, invalid, untracked")
      ->capture_default_str()
      ->excludes(flows);
  cmd->add_option("-o,--output", o->output,
                  "Report format: text or json (schema dpinspect.report/v1)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", o->verbose,
                "Text: list every matched rule in the path, not only verdicts");
  auto* counters = cmd->add_flag("--counters", o->counters,
                                 "Live sources: read the deciding rule's counter, wait --interval "
                                 "seconds, read it again and report how much it moved (nftables: "
                                 "the rule's counter; ebpf: Calico's rule counter of its rule id)")
                       ->excludes(flows);
  cmd->add_option("--interval", o->interval, "With --counters: seconds between the two reads")
      ->check(CLI::Range(0.1, 3600.0))
      ->needs(counters)
      ->capture_default_str();
  return [o, c] { return run_inspect(c, *o); };
}

}  // namespace dpi::cli
