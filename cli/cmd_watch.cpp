#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <poll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/source_options.h"
#include "core/calico/workload.h"
#include "core/dataplane_registry.h"
#include "core/watch.h"

namespace dpi::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct WatchOptions {
  std::string netns, endpoint, source = "auto", output = "text";
  std::vector<int> groups;
  std::string iface_prefix = "cali";
  bool all = false;
  uint64_t count = 0;  // 0: no limit
  double timeout = 0;  // 0: until interrupted
  unsigned rate = 100;
  double interval = 1;  // counters: seconds between polls
  // The backends' options that locate a live dataplane (--bpffs, --policy-debug-dir).
  SourceOptions backend;
};

// SIGINT and SIGTERM become readable on a descriptor for the duration of the command, so the
// loop ends cleanly (sources released, summary printed) however it is stopped.
class StopSignals {
 public:
  StopSignals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
    fd_ = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (fd_ < 0) {
      // Without the descriptor a blocked SIGINT would never arrive: Ctrl-C must still stop us,
      // if without the summary.
      error_ = errno;
      pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  ~StopSignals() {
    // A signal that came after the loop ended (a second Ctrl-C, during the summary) is taken
    // here, so restoring the mask does not kill the command after its summary.
    if (fd_ >= 0) {
      signalfd_siginfo info{};
      while (::read(fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info))) {
      }
      close(fd_);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  int fd() const { return fd_; }
  // errno of a failed signalfd(), else 0.
  int error() const { return error_; }

 private:
  sigset_t old_{};
  int fd_ = -1;
  int error_ = 0;
};

// The interface name --endpoint means: an interface, or a pod's Felix veth name.
std::string endpoint_name(const WatchOptions& o) {
  if (auto pod = calico::parse_pod_ref(o.endpoint))
    return calico::workload_iface(*pod, o.iface_prefix);
  return o.endpoint;
}

// The interface --endpoint names on this node.
Result<const Interface*> endpoint_iface(const WatchOptions& o,
                                        const std::optional<NodeInfo>& node) {
  const std::string name = endpoint_name(o);
  if (node)
    for (const auto& i : node->interfaces)
      if (i.name == name) return &i;
  return make_error(ErrorCode::bad_input,
                    name == o.endpoint
                        ? fmt::format("--endpoint: no interface {} on this node", name)
                        : fmt::format("--endpoint: pod {} has no interface {} on this node (is "
                                      "it scheduled here? another --iface-prefix?)",
                                      o.endpoint, name));
}

// The readers' permission errors suggest --ruleset FILE, which watch has not: say what it needs.
Error watch_permission(Error e) {
  if (e.code != ErrorCode::permission) return e;
  e.message = e.message.substr(0, e.message.find("; ")) +
              "; watch needs root, or CAP_NET_ADMIN (the ruleset, NFLOG), CAP_BPF and "
              "CAP_PERFMON (kfree_skb), CAP_SYS_ADMIN (--netns) and CAP_BPF with read access to "
              "the pinned maps (the eBPF dataplane's counters)";
  return e;
}

int run_watch(const Context& c, const WatchOptions& o) {
  StopSignals stop;
  if (stop.error())
    c.err << fmt::format("dpinspect: watch: signalfd: {}: Ctrl-C ends watch without its summary\n",
                         std::strerror(stop.error()));
  SourceRequest req = o.backend.resolved();
  req.netns = o.netns;
  auto loaded = c.registry.load("auto", req);
  if (!loaded) return c.fail(watch_permission(loaded.error()));
  // The layer that holds Calico's dataplane explains the events; a node without one still
  // answers through the first (a host firewall's drops).
  const LoadedDataplane* layer = loaded->front().get();
  for (const auto& l : *loaded)
    if (l->detect().found) {
      layer = l.get();
      break;
    }
  const Detection det = layer->detect();
  const DataplaneBackend* backend = c.registry.find(det.dataplane);
  if (!backend)
    return c.fail(make_error(ErrorCode::bad_input, "watch: no backend for " + det.dataplane));

  const std::vector<std::string> offered = backend->watch_sources();
  auto offers = [&](const std::string& s) {
    return std::find(offered.begin(), offered.end(), s) != offered.end();
  };
  if (offered.empty())
    return c.fail(make_error(ErrorCode::bad_input, "watch: the " + det.dataplane +
                                                       " dataplane has no live event source"));
  std::string source = o.source;
  if (source != "auto" && !offers(source)) {
    std::string list;
    for (const auto& s : offered) list += (list.empty() ? "" : ", ") + s;
    return c.fail(make_error(
        ErrorCode::bad_input,
        fmt::format("watch --source {}: the {} dataplane offers {}", source, det.dataplane, list)));
  }
  const std::vector<int>& found = det.log_groups;
  if (source == "auto" && !offers("nflog")) {
    source = offered.front();
  } else if (source == "auto") {
    source = found.empty() ? "kfree_skb" : "nflog";
    if (found.empty())
      c.err << "dpinspect: watch: no Calico log (NFLOG) rules in the ruleset: Felix renders them "
               "only with flow logs on (v3.30+); watching kernel drops (kfree_skb) instead\n";
  } else if (source == "nflog" && found.empty() && o.groups.empty()) {
    c.err << "dpinspect: watch: no Calico log (NFLOG) rules in the ruleset, so nothing will be "
             "logged: start Felix with flow logs on, or use --source kfree_skb\n";
  }
  // A rule counter's place names its interface; a packet event's interfaces are the node's.
  const Interface* only = nullptr;
  const std::string only_name = o.endpoint.empty() ? "" : endpoint_name(o);
  if (!o.endpoint.empty() && source != "counters") {
    auto i = endpoint_iface(o, layer->node());
    if (!i) return c.fail(i.error());
    only = *i;
  }
  WatchRequest w;
  if (source == "counters") {
    w.counters = true;
    w.interval = std::chrono::milliseconds(static_cast<int64_t>(o.interval * 1000));
  } else if (source == "nflog") {
    w.nflog = true;
    w.groups = !o.groups.empty() ? o.groups : !found.empty() ? found : std::vector<int>{1, 2};
  } else {
    w.kfree_skb = true;
    if (only) {
      w.ifindexes.push_back(only->index);
    } else if (layer->node()) {
      for (const auto& i : layer->node()->interfaces)
        if (i.name.rfind(o.iface_prefix, 0) == 0) w.ifindexes.push_back(i.index);
    }
    if (w.ifindexes.empty())
      c.err << fmt::format(
          "dpinspect: watch: no workload interfaces ({}*) on this node: kfree_skb will report "
          "nothing (use --endpoint IFACE)\n",
          o.iface_prefix);
  }
  auto sources = backend->watch(req, w);
  if (!sources) return c.fail(watch_permission(sources.error()));

  const std::string where = o.netns.empty() ? "this namespace" : "netns " + o.netns;
  if (w.counters) {
    c.err << fmt::format(
        "dpinspect: watching the rule counters of {} every {:g} s (the first read is the "
        "baseline)",
        layer->description(), o.interval);
  } else if (w.nflog) {
    std::string groups;
    for (int g : w.groups) groups += (groups.empty() ? "" : ",") + std::to_string(g);
    c.err << fmt::format("dpinspect: watching NFLOG group(s) {} in {}", groups, where);
  } else {
    c.err << fmt::format("dpinspect: watching kernel drops on {} interface(s) in {}",
                         w.ifindexes.size(), where);
  }
  c.err << fmt::format("{}; Ctrl-C to stop\n",
                       only_name.empty() ? "" : " (endpoint " + only_name + ")")
        << std::flush;

  WatchExplainer explainer(*layer);
  WatchRateLimit limit(o.rate);
  WatchSummary summary;
  std::map<std::string, uint64_t> lost_seen;
  const bool json = o.output == "json";
  const auto start = Clock::now();
  const auto deadline =
      o.timeout > 0 ? start + std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000))
                    : Clock::time_point::max();
  auto note = [&](const std::string& type, const std::string& source_name, uint64_t n) {
    if (json)
      c.out << nlohmann::json{{"schema", kWatchSchema},
                              {"type", type},
                              {"source", source_name},
                              {"count", n}}
                   .dump()
            << "\n";
    else if (type == "lost")
      c.out << fmt::format("# {} event(s) lost by {} (the kernel could not hand them over)\n", n,
                           source_name);
    else
      c.out << fmt::format("# {} event(s) not shown (--rate {}/s)\n", n, o.rate);
  };
  auto report_losses = [&] {
    for (const auto& s : *sources) {
      const uint64_t now = s->lost();
      uint64_t& seen = lost_seen[std::string(s->name())];
      if (now > seen) note("lost", std::string(s->name()), now - seen);
      seen = now;
      summary.set_lost(std::string(s->name()), now);
    }
    if (uint64_t n = limit.take_suppressed()) {
      note("suppressed", "", n);
      summary.add_suppressed(n);
    }
    c.out << std::flush;
  };

  std::vector<WatchEvent> events;
  auto next_housekeeping = Clock::now() + std::chrono::seconds(1);
  bool done = false;
  int status = 0;
  while (!done) {
    std::vector<pollfd> fds{{stop.fd(), POLLIN, 0}};
    for (const auto& s : *sources) fds.push_back({s->fd(), POLLIN, 0});
    const auto now = Clock::now();
    if (now >= deadline) break;
    auto until = std::min(deadline, next_housekeeping);
    for (const auto& s : *sources)
      if (auto p = s->poll_interval()) until = std::min(until, now + *p);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count();
    const int r = poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(ms, 1, 1000)));
    if (r < 0 && errno != EINTR) {
      status = c.fail(make_error(
          ErrorCode::system, fmt::format("watch: waiting for events: {}", std::strerror(errno))));
      break;
    }
    if (r > 0 && (fds[0].revents & POLLIN)) {  // SIGINT / SIGTERM
      // Read, so it is no longer pending when the mask is restored (it would kill us then).
      signalfd_siginfo info{};
      (void)!::read(stop.fd(), &info, sizeof(info));
      break;
    }
    std::vector<WatchNotice> notices;
    for (const auto& s : *sources) {
      auto st = s->read(events);
      s->take_notices(notices);
      if (!st) {
        status = c.fail(st.error());
        done = true;
        break;
      }
    }
    // Before the events they concern (a re-created map's line comes before its new deltas);
    // never rate-limited: a source says each once.
    for (const auto& n : notices) {
      summary.add_notice(n);
      c.out << (json ? watch_notice_json(n).dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace)
                     : watch_notice_text(n))
            << "\n";
    }
    if (!notices.empty()) c.out << std::flush;
    for (const auto& e : events) {
      if (!o.all && !is_denial(e)) continue;
      if (only && e.in_ifindex != only->index && e.out_ifindex != only->index) continue;
      // A rule no program names may belong to the endpoint: shown, never hidden (docs/watch.md).
      if (e.counter && !only_name.empty() && e.rule && e.rule->endpoint != only_name) continue;
      if (!limit.admit(Clock::now())) continue;
      WatchLine l = explainer.explain(e);
      summary.add(l);
      if (json)
        c.out << watch_line_json(l).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
      else
        c.out << watch_line_text(l) << "\n";
      c.out << std::flush;
      if (o.count && summary.events() >= o.count) {
        done = true;
        break;
      }
    }
    events.clear();
    if (Clock::now() >= next_housekeeping) {
      report_losses();
      next_housekeeping = Clock::now() + std::chrono::seconds(1);
    }
  }
  report_losses();
  if (json)
    c.out << summary.as_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
          << "\n";
  else
    c.out << summary.text();
  c.out << std::flush;
  return status;
}

}  // namespace

Runner add_watch(CLI::App& app, const Context& c) {
  auto o = std::make_shared<WatchOptions>();
  auto* cmd = app.add_subcommand(
      "watch",
      "Stream the flows the node denies (with --all, also those it allows) as they happen, each "
      "explained like `inspect` explains a flow: tier, policy, rule, endpoint. Sources: Calico's "
      "flow-log NFLOG rules, or the kernel's drops (skb:kfree_skb tracepoint, a BPF program) "
      "where Calico logs nothing; on Calico's eBPF dataplane, its rule counters (polled: the "
      "packets each rule counted since the last poll). Read-only: it changes no rule.\n"
      "Ctrl-C (SIGINT, SIGTERM), --count or --timeout end it with a summary of the top reasons.\n"
      "Exit code: 0 after the summary; 3 bad input, 4 no permission, 5 system error.\n\n"
      "Examples:\n"
      "  dpinspect watch\n"
      "  dpinspect watch --netns node1 --endpoint client/client --source kfree_skb -o json\n"
      "  dpinspect watch --group 1 --all --count 20\n"
      "  dpinspect watch --source counters --bpffs /sys/fs/bpf/tc/globals --interval 2");
  cmd->add_option("--netns", o->netns,
                  "Watch this network namespace (a name under /run/netns or a path); default: "
                  "the current one")
      ->type_name("NAME|PATH");
  cmd->add_option("--source", o->source,
                  "nflog (Calico's log rules; needs flow logs), kfree_skb (the kernel's drops on "
                  "workload interfaces), counters (eBPF dataplane: Calico's rule counters, "
                  "polled), or auto: counters on an eBPF node, else nflog when the ruleset has "
                  "log rules, else kfree_skb")
      ->check(CLI::IsMember({"auto", "nflog", "kfree_skb", "counters"}))
      ->capture_default_str();
  cmd->add_option("--group", o->groups,
                  "NFLOG group to listen to (repeatable); default: the groups of the ruleset's "
                  "Calico log rules, else 1 and 2")
      ->check(CLI::Range(0, 65535))
      ->type_name("G");
  cmd->add_option("--endpoint", o->endpoint,
                  "Only events on this interface, or on this pod's interface (namespace/name); "
                  "counters: only the rules of that interface's policy programs")
      ->type_name("IFACE|NS/POD");
  cmd->add_option("--iface-prefix", o->iface_prefix,
                  "Felix's workload interface prefix (FELIX_INTERFACEPREFIX): the interfaces "
                  "kfree_skb watches, and pod names")
      ->capture_default_str();
  cmd->add_flag("--all", o->all,
                "Also the flows Calico's log rules record as allowed or passed (counters: also "
                "the allow and pass rules' counters)");
  cmd->add_option("--interval", o->interval,
                  "counters: seconds between two reads of the rule counters (the first read is "
                  "the baseline)")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str()
      ->type_name("S");
  cmd->add_option("--count", o->count, "Stop after N events shown")->type_name("N");
  cmd->add_option("--timeout", o->timeout, "Stop after S seconds")
      ->check(CLI::Range(0.1, 31536000.0))
      ->type_name("S");
  cmd->add_option("--rate", o->rate,
                  "Show at most N events per second; the rest are counted in the summary")
      ->check(CLI::Range(1U, 1000000U))
      ->capture_default_str();
  cmd->add_option("-o,--output", o->output,
                  "Output format: text, or json (dpinspect.watch/v1: one JSON object per line)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  o->backend.add_live_options(*cmd, c.registry);
  return [o, c] { return run_watch(c, *o); };
}

}  // namespace dpi::cli
