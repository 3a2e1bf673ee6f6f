#include <chrono>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flow_args.h"
#include "core/dataplane_registry.h"
#include "core/trace.h"

namespace dpi::cli {

namespace {

struct TraceOptions {
  std::string src, dst, output = "text", netns;
  FlowArgs flow;
  std::string iface_prefix = "cali";
  double timeout = 30;
};

int run_trace(const Context& c, const TraceOptions& o) {
  auto from = parse_endpoint(o.src, "--src");
  if (!from) return c.fail(from.error());
  auto to = parse_endpoint(o.dst, "--dst");
  if (!to) return c.fail(to.error());
  const bool v6 = (from->addr && from->addr->is_v6()) || (to->addr && to->addr->is_v6());
  const IpAddr placeholder = *IpAddr::parse(v6 ? "::1" : "10.0.0.1");
  if (auto f = build_flow(o.flow, from->addr.value_or(placeholder), to->addr.value_or(placeholder));
      !f)
    return c.fail(f.error());

  // The prediction: the live dataplane, read as `inspect --netns` reads it.
  SourceRequest req;
  req.netns = o.netns;
  auto loaded = c.registry.load("auto", req);
  if (!loaded) return c.fail(loaded.error());
  // Tracing is the netfilter layer's (nft trace): its backend traces and its report predicts.
  const LoadedDataplane* layer = nullptr;
  const DataplaneBackend* tracer = nullptr;
  for (const auto& l : *loaded) {
    const DataplaneBackend* b = c.registry.find(l->detect().dataplane);
    if (b && b->traces()) {
      layer = l.get();
      tracer = b;
      break;
    }
  }
  if (!tracer)
    return c.fail(make_error(ErrorCode::bad_input,
                             "trace: no dataplane on this node that dpinspect can trace (nftables "
                             "tracing only)"));
  std::vector<std::string> notes;
  if (auto st = resolve_pods(*from, *to, layer->node(), o.iface_prefix, notes); !st)
    return c.fail(st.error());
  auto flow = build_flow(o.flow, *from->addr, *to->addr);
  if (!flow) return c.fail(flow.error());
  auto predicted = layer->inspect(*flow);
  if (!predicted) return c.fail(predicted.error());
  predicted->assumptions.insert(predicted->assumptions.begin(), notes.begin(), notes.end());

  TraceRequest t;
  t.flow = *flow;
  t.match_sport = o.flow.sport.has_value();
  t.match_icmp = o.flow.icmp_type.has_value();
  t.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000));
  t.on_ready = [&](const std::string& what) {
    c.err << fmt::format(
                 "dpinspect: tracing {} with temporary {} (removed when dpinspect exits); "
                 "waiting up to {:g} s for a packet\n",
                 describe(*flow), what, o.timeout)
          << std::flush;
  };
  auto kernel = tracer->trace(req, t);
  if (!kernel) return c.fail(kernel.error());
  auto diffs = trace_differences(*predicted, *kernel);
  if (o.output == "json")
    c.out << trace_json(*predicted, *kernel, diffs)
                 .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
  else
    c.out << render_trace_text(*predicted, *kernel, diffs);
  if (!kernel->seen) {
    c.err << fmt::format("dpinspect: trace: no packet of this flow within {:g} s (--timeout)\n",
                         o.timeout);
    return exit_code_for(Verdict::indeterminate);
  }
  return exit_code_for(kernel->verdict);
}

}  // namespace

Runner add_trace(CLI::App& app, const Context& c) {
  auto o = std::make_shared<TraceOptions>();
  auto* cmd = app.add_subcommand(
      "trace",
      "Trace the next real packet of a flow through the kernel (nftables trace) and print its path "
      "beside dpinspect's prediction, flagging any difference.\n"
      "This is the one command that CHANGES THE RULESET: it adds a temporary table (owned by "
      "dpinspect's netlink socket; the kernel removes it when dpinspect exits, even when killed) "
      "that marks this flow's packets for tracing.\n"
      "Exit code: the kernel's verdict, 0 allowed, 1 denied, 2 no packet before the timeout; 3 "
      "bad input, 4 no permission, 5 system error.\n\n"
      "Examples:\n"
      "  dpinspect trace --netns node1 --src 10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001\n"
      "  dpinspect trace --src 10.65.0.2 --dst 10.96.0.10 --proto udp --dport 53 --timeout 60 -o "
      "json");
  cmd->add_option("--netns", o->netns,
                  "Trace in this network namespace (a name under /run/netns or a path); default: "
                  "the current one")
      ->type_name("NAME|PATH");
  cmd->add_option("--src", o->src,
                  "Source of the flow: an address, or a pod on this node as namespace/name")
      ->required()
      ->type_name("ADDR|NS/POD");
  cmd->add_option("--dst", o->dst,
                  "Destination of the flow: an address, or a pod on this node as namespace/name")
      ->required()
      ->type_name("ADDR|NS/POD");
  cmd->add_option("--iface-prefix", o->iface_prefix,
                  "Felix's workload interface prefix (FELIX_INTERFACEPREFIX), for pod names")
      ->capture_default_str();
  cmd->add_option("--proto", o->flow.proto, "tcp, udp, sctp, icmp, icmpv6 or a protocol number")
      ->capture_default_str();
  cmd->add_option("--sport", o->flow.sport,
                  "Source port (default: any; the prediction assumes an ephemeral port)");
  cmd->add_option("--dport", o->flow.dport, "Destination port (required for tcp, udp, sctp)");
  cmd->add_option("--icmp-type", o->flow.icmp_type,
                  "ICMP type (default: any; the prediction assumes echo request)");
  cmd->add_option("--icmp-code", o->flow.icmp_code, "ICMP code (with --icmp-type)");
  cmd->add_option("--iif", o->flow.iif,
                  "Prediction: interface the flow arrives on (default: from the node's routes)")
      ->type_name("IFACE");
  cmd->add_option("--oif", o->flow.oif,
                  "Prediction: interface the flow leaves by (default: from the node's routes)")
      ->type_name("IFACE");
  cmd->add_option("--timeout", o->timeout, "Seconds to wait for a packet of the flow")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output, "Output format: text or json (dpinspect.trace/v1)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return [o, c] { return run_trace(c, *o); };
}

}  // namespace dpi::cli
