#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flow_args.h"
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
  bool runtime_names = true;  // crictl, unless --no-crictl
  bool verbose = false;
  bool counters = false;
  double interval = 5;
};

// --counters: reads the deciding rule's counter on the layer that decided, waits, reads again.
Status add_counter_delta(Report& rep, const LoadedDataplane& layer, double interval) {
  if (!rep.decided_by.rule) {
    rep.counters =
        CounterDelta{{}, interval, {}, {}, {}, {}, "no rule decided: no counter to read"};
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
  std::this_thread::sleep_for(std::chrono::duration<double>(interval));
  auto after = layer.read_rule_counter(d.rule);
  if (!after) return after.error();
  d.packets_before = (*before)->packets;
  d.bytes_before = (*before)->bytes;
  if (*after) {
    d.packets_after = (*after)->packets;
    d.bytes_after = (*after)->bytes;
    if ((*after)->packets < (*before)->packets || (*after)->bytes < (*before)->bytes)
      d.note = "the counter went down during the interval (it was reset)";
  } else {
    d.note = "the rule lost its counter during the interval (the ruleset changed)";
  }
  rep.counters = std::move(d);
  return Ok{};
}

int run_inspect(const Context& c, const InspectOptions& opts) {
  InspectOptions o = opts;  // a service's port may become --dport
  auto from = parse_endpoint(o.src, "--src");
  if (!from) return c.fail(from.error());
  auto to = parse_endpoint(o.dst, "--dst");
  if (!to) return c.fail(to.error());
  std::vector<std::string> notes;
  std::optional<K8sNames> k8s;
  std::string k8s_source = "--k8s " + input_origin(o.k8s);
  if (!o.k8s.empty()) {
    auto names = load_k8s_names(o.k8s, o.source.resolved().max_bytes);
    if (!names) return c.fail(names.error());
    k8s = std::move(*names);
    if (auto st = resolve_services(*from, *to, *k8s, k8s_source, o.flow.dport, notes); !st)
      return c.fail(st.error());
  }
  // Only --k8s and a snapshot's names know services; a live read has no snapshot.
  for (const auto* e : {&*from, &*to})
    if (e->port && !e->addr && o.source.request.file.empty())
      return c.fail(
          make_error(ErrorCode::bad_input,
                     fmt::format("{} {}: a service with a port needs --k8s FILE",
                                 e == &*from ? "--src" : "--dst", e == &*from ? o.src : o.dst)));
  // Everything but pod names is checked before the (possibly slow) read of the dataplane.
  const bool v6 = (from->addr && from->addr->is_v6()) || (to->addr && to->addr->is_v6());
  const IpAddr placeholder = *IpAddr::parse(v6 ? "::1" : "10.0.0.1");
  FlowArgs early = o.flow;
  // A snapshot's names may yet make ns/svc a service whose port becomes --dport.
  if (!k8s && !o.source.request.file.empty() && (!from->addr || !to->addr) && !early.dport)
    early.dport = 1;
  if (auto f = build_flow(early, from->addr.value_or(placeholder), to->addr.value_or(placeholder));
      !f)
    return c.fail(f.error());
  if (o.counters && !o.source.request.file.empty())
    return c.fail(make_error(ErrorCode::bad_input,
                             "--counters reads the live dataplane twice: it cannot be combined "
                             "with --ruleset (use --netns or the current namespace)"));
  auto loaded = c.registry.load(o.source.dataplane, o.source.resolved());
  if (!loaded) return c.fail(loaded.error());
  // The layer a packet meets first (docs/design.md, "More than one dataplane on a node").
  const LoadedDataplane& src = *loaded->front();
  // Names the read brought (a snapshot's), when --k8s gave none.
  if (!k8s) {
    auto names = snapshot_names(src, o.source.request.file, k8s_source);
    if (!names) return c.fail(names.error());
    k8s = std::move(*names);
    if (k8s)
      if (auto st = resolve_services(*from, *to, *k8s, k8s_source, o.flow.dport, notes); !st)
        return c.fail(st.error());
  }
  // This node's container runtime knows its pods: with --k8s, what --k8s lacks.
  std::vector<std::string> runtime_notes;
  if (o.runtime_names && o.source.reads_this_node()) {
    RuntimeNames rt = runtime_names(o.source.resolved().max_bytes);
    // A node without crictl is worth a note only when nothing else names the pods.
    if (rt.on_path || !k8s) runtime_notes = std::move(rt.notes);
    if (rt.names && k8s) {
      merge_k8s_names(*k8s, *rt.names);
      k8s_source += " and " + rt.source;
    } else if (rt.names) {
      k8s = std::move(rt.names);
      k8s_source = rt.source;
    }
  }
  if (k8s)
    if (auto st = resolve_k8s_pods(*from, *to, *k8s, k8s_source, src.node(), o.iface_prefix, notes);
        !st)
      return c.fail(st.error());
  if (auto st = resolve_pods(*from, *to, src.node(), o.iface_prefix, notes); !st)
    return c.fail(st.error());
  auto flow = build_flow(o.flow, *from->addr, *to->addr);
  if (!flow) return c.fail(flow.error());
  // Every layer loaded judges the flow; core combines their answers (docs/design.md, "More than
  // one dataplane on a node"). One layer's report is left as it is.
  std::vector<LayerAnswer> answers;
  for (const auto& layer : *loaded) {
    auto one = layer->inspect(*flow);
    if (!one) return c.fail(one.error());
    LayerAnswer a{loaded->size() > 1 ? layer->detect().dataplane : "", Layer::netfilter,
                  std::move(*one)};
    if (const DataplaneBackend* b = c.registry.find(a.dataplane)) a.layer = b->layer();
    answers.push_back(std::move(a));
  }
  std::vector<std::string> names;
  names.reserve(answers.size());
  for (const auto& a : answers) names.push_back(a.dataplane);
  Report rep = combine_layers(std::move(answers));
  if (o.counters) {
    // The deciding layer's rule: with one layer, that layer; else the first that decided.
    const LoadedDataplane* decider = loaded->front().get();
    for (const auto& l : rep.layers) {
      if (!l.decided) continue;
      for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == l.dataplane) decider = (*loaded)[i].get();
      break;
    }
    if (auto st = add_counter_delta(rep, *decider, o.interval); !st) return c.fail(st.error());
  }
  rep.assumptions.insert(rep.assumptions.begin(), notes.begin(), notes.end());
  if (k8s)
    apply_k8s_names(rep, *k8s, k8s_source, o.iface_prefix, src.node() ? &*src.node() : nullptr);
  rep.assumptions.insert(rep.assumptions.end(), runtime_notes.begin(), runtime_notes.end());
  if (o.output == "json")
    // Names and comments come from the input unchecked (iptables-save text, xt payloads); bytes
    // that are not UTF-8 are printed as U+FFFD instead of failing the whole report.
    c.out << to_json(rep).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  else
    c.out << render_text(rep, TextOptions{o.verbose});
  return dpi::exit_code_for(rep.verdict);
}

}  // namespace

Runner add_inspect(CLI::App& app, const Context& c) {
  auto o = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "Explain the verdict for one flow: allowed or denied, the deciding rule, its Calico "
      "meaning.\n"
      "Exit code: 0 allowed, 1 denied, 2 indeterminate, 3 bad input, 4 no permission, 5 system "
      "error.\n\n"
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
      "      --counters --interval 10");
  o->source.add_to(*cmd, c.registry, /*answers_flows=*/true);
  cmd->add_option("--src", o->src,
                  "Source of the flow: an address, or a pod on this node as namespace/name")
      ->required()
      ->type_name("ADDR|NS/POD");
  cmd->add_option("--dst", o->dst,
                  "Destination of the flow: an address, a pod on this node as namespace/name, or "
                  "with --k8s a service as namespace/name[:port]")
      ->required()
      ->type_name("ADDR|NS/POD|NS/SVC[:PORT]");
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
      ->capture_default_str();
  cmd->add_option("--sport", o->flow.sport,
                  fmt::format("Source port (default: an ephemeral port, {})", kDefaultSourcePort));
  cmd->add_option("--dport", o->flow.dport, "Destination port (required for tcp, udp, sctp)");
  cmd->add_option("--icmp-type", o->flow.icmp_type, "ICMP type (default: echo request)");
  cmd->add_option("--icmp-code", o->flow.icmp_code, "ICMP code (default: 0)");
  cmd->add_option("--iif", o->flow.iif,
                  "Interface the flow arrives on (default: from the node's routes)")
      ->type_name("IFACE");
  cmd->add_option("--oif", o->flow.oif,
                  "Interface the flow leaves by (default: from the node's routes)")
      ->type_name("IFACE");
  cmd->add_option("--ct", o->flow.ct,
                  "Conntrack state to assume: new, established, related, invalid, untracked")
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output,
                  "Report format: text or json (schema dpinspect.report/v1)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  cmd->add_flag("-v,--verbose", o->verbose,
                "Text: list every matched rule in the path, not only verdicts");
  auto* counters = cmd->add_flag(
      "--counters", o->counters,
      "Live sources: read the deciding rule's counter, wait --interval seconds, read it "
      "again and report how much it moved (nftables)");
  cmd->add_option("--interval", o->interval, "With --counters: seconds between the two reads")
      ->check(CLI::Range(0.1, 3600.0))
      ->needs(counters)
      ->capture_default_str();
  return [o, c] { return run_inspect(c, *o); };
}

}  // namespace dpi::cli
