// dpinspect_bench: load, index and evaluate a live ruleset at Calico scale (see
// docs/performance.md).
//
//   dpinspect_bench --netns NS --topology DIR/topology.json [--json OUT] [options]
//
// Prints one table for one ruleset; bench/run drives it over several sizes. The figures:
//   1. nft -j list ruleset wall time vs dpinspect's live load (read | parse | compile | index)
//   2. single-thread verdicts/s (fast mode) over a fixed random flow set, and the full-report rate
//   3. 2-thread fast-mode wall time over --evals flows
//   4. peak RSS vs the JSON size, each measured in a fresh child process
//   5. eBPF: not measured (no eBPF backend yet)
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <iostream>
#include <random>
#include <sched.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/linux/netns.h"
#include "backends/nftables/evaluator.h"
#include "backends/nftables/json_loader.h"
#include "backends/nftables/live_ruleset.h"

using namespace dpi;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

double secs(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// kB from /proc/self/status (VmHWM = peak RSS, VmRSS = now).
long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field) + 1);
  return -1;
}

// Wall time of `nft -j list ruleset` run in the namespace, output to /dev/null.
double time_nft_list(const std::string& ns) {
  auto t0 = Clock::now();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(os::netns_path(ns).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) _exit(127);
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    execlp("nft", "nft", "-j", "list", "ruleset", static_cast<char*>(nullptr));
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  auto t1 = Clock::now();
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    throw std::runtime_error("nft -j list ruleset failed");
  return secs(t0, t1);
}

// Runs this binary again with args and returns its last stdout line parsed as JSON.
json run_child(const std::vector<std::string>& args) {
  int p[2];
  if (pipe(p) != 0) throw std::runtime_error("pipe");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    std::vector<char*> argv;
    std::string self = "/proc/self/exe";
    argv.push_back(self.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    throw std::runtime_error(fmt::format("child {} failed: {}", args.empty() ? "" : args[0], out));
  auto pos = out.find_last_of('{');
  pos = out.rfind('\n', pos);
  return json::parse(out.substr(pos == std::string::npos ? 0 : pos));
}

// ---- child modes: each measures peak RSS in a fresh process -------------------------------

int rss_probe(const std::string& mode, const std::string& arg) {
  long base = status_kb("VmRSS");
  std::size_t json_bytes = 0;
  std::size_t rules = 0;
  if (mode == "live") {
    auto text = os::in_netns(arg, nft::list_ruleset_json);
    if (!text) throw std::runtime_error(text.error().message);
    json_bytes = text->size();
    long after_read = status_kb("VmHWM");
    auto rs = nft::load_ruleset_json(*text, "live");
    if (!rs) throw std::runtime_error(rs.error().message);
    rules = (*rs)->rule_count;
    std::cout << json{{"base_kb", base},
                      {"read_peak_kb", after_read},
                      {"peak_kb", status_kb("VmHWM")},
                      {"rss_kb", status_kb("VmRSS")},
                      {"json_bytes", json_bytes},
                      {"rules", rules}}
              << "\n";
    return 0;
  }
  // "file": the JSON text from a file, parsed and compiled (no libnftables in this process).
  std::ifstream in(arg, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  json_bytes = text.size();
  long with_text = status_kb("VmRSS");
  auto rs = nft::load_ruleset_json(text, arg);
  if (!rs) throw std::runtime_error(rs.error().message);
  long model_and_text = status_kb("VmRSS");
  std::cout << json{{"base_kb", base},
                    {"text_kb", with_text - base},
                    {"peak_kb", status_kb("VmHWM")},
                    {"model_kb", model_and_text - with_text},
                    {"json_bytes", json_bytes},
                    {"rules", (*rs)->rule_count}}
            << "\n";
  return 0;
}

// ---- flows ------------------------------------------------------------------------------

IpAddr ip(const std::string& s) {
  auto a = IpAddr::parse(s);
  if (!a) throw std::runtime_error("bad address " + s);
  return *a;
}

// The node as the lab would build it: eth0 with the node address and a default route, one /32
// route per workload on its cali interface.
NodeInfo node_from_topology(const json& topo) {
  NodeInfo n;
  const json& node = topo["node"];
  std::string uplink = node.value("uplink", "eth0");
  n.interfaces.push_back({1, "lo", true, {*IpPrefix::parse("127.0.0.1/8")}});
  n.interfaces.push_back({2,
                          uplink,
                          true,
                          {*IpPrefix::parse(fmt::format("{}/{}", node["ip"].get<std::string>(),
                                                        node.value("prefix", 24)))}});
  Route lo;
  lo.dst = *IpPrefix::parse("127.0.0.0/8");
  lo.type = "local";
  lo.dev = "lo";
  lo.table = 255;
  n.routes.push_back(lo);
  Route self;
  self.dst = *IpPrefix::parse(node["ip"].get<std::string>() + "/32");
  self.type = "local";
  self.dev = uplink;
  self.table = 255;
  n.routes.push_back(self);
  Route def;
  def.dst = *IpPrefix::parse("0.0.0.0/0");
  def.dev = uplink;
  def.gateway = ip(node["remote_ip"]);
  n.routes.push_back(def);
  Route net;
  net.dst = *IpPrefix::parse(
      fmt::format("{}/{}", node["ip"].get<std::string>(), node.value("prefix", 24)));
  net.dst.addr.bytes[3] = 0;
  net.dev = uplink;
  n.routes.push_back(net);
  int idx = 3;
  for (const auto& p : topo["pods"]) {
    n.interfaces.push_back({idx++, p["iface"], true, {}});
    Route r;
    r.dst = *IpPrefix::parse(p["ip"].get<std::string>() + "/32");
    r.dev = p["iface"];
    n.routes.push_back(r);
  }
  return n;
}

struct FlowCase {
  Flow flow;
  nft::FlowPath path;
};

// A fixed random mix: pod->pod 45%, pod->service 15%, world->pod 15% (half from the network
// sets' address space), pod->world 10%, pod->host 5%, host->pod 5%, established 5%.
std::vector<FlowCase> make_flows(const json& topo, const nft::Evaluator& ev, std::size_t count,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  const json& pods = topo["pods"];
  const json& svcs = topo["services"];
  std::vector<std::string> netset_ips;
  if (topo.contains("netsets"))
    for (const auto& [name, members] : topo["netsets"].items())
      for (const auto& m : members) {
        std::string s = m;
        netset_ips.push_back(s.substr(0, s.find('/')));
      }
  const uint16_t kPorts[] = {80, 443, 8080, 5432, 6379, 9000, 9100, 22, 23, 53};
  std::string node_ip = topo["node"]["ip"];
  std::vector<FlowCase> out;
  out.reserve(count);
  while (out.size() < count) {
    Flow f;
    f.l4proto = 6;
    const json& dst_pod = pods[pick(pods.size())];
    const json& src_pod = pods[pick(pods.size())];
    f.dport = rng() % 2 ? dst_pod["serve"][0]["port"].get<uint16_t>() : kPorts[pick(10)];
    unsigned k = static_cast<unsigned>(rng() % 100);
    if (k < 45) {
      f.src = ip(src_pod["ip"]);
      f.dst = ip(dst_pod["ip"]);
    } else if (k < 60 && !svcs.empty()) {
      const json& s = svcs[pick(svcs.size())];
      f.src = ip(src_pod["ip"]);
      f.dst = ip(s["cluster_ip"]);
      f.dport = s["ports"][0]["port"].get<uint16_t>();
    } else if (k < 75) {
      if (!netset_ips.empty() && rng() % 2)
        f.src = ip(netset_ips[pick(netset_ips.size())]);
      else
        f.src = ip(fmt::format("100.{}.{}.{}", 64 + pick(64), pick(256), pick(256)));
      f.dst = ip(dst_pod["ip"]);
    } else if (k < 85) {
      f.src = ip(src_pod["ip"]);
      f.dst = ip(fmt::format("203.0.113.{}", pick(256)));
    } else if (k < 90) {
      f.src = ip(src_pod["ip"]);
      f.dst = ip(node_ip);
    } else if (k < 95) {
      f.src = ip(node_ip);
      f.dst = ip(dst_pod["ip"]);
    } else {
      f.src = ip(src_pod["ip"]);
      f.dst = ip(dst_pod["ip"]);
      f.ct = CtState::established;
    }
    if (rng() % 10 == 0) {
      f.l4proto = 17;
      f.dport = 53;
    }
    if (!normalize(f)) continue;
    auto fp = ev.plan(f);
    if (!fp) continue;
    out.push_back({std::move(f), std::move(*fp)});
  }
  return out;
}

// ---- the benchmark ----------------------------------------------------------------------

struct Options {
  std::string netns, topology, json_out, tmpdir = "/tmp";
  std::size_t distinct = 100000, evals = 1000000, check = 20000;
  unsigned threads = 2;
  int repeat = 3;
  double seconds = 2.0;
  std::string label;
};

int bench(const Options& o) {
  json out;
  out["label"] = o.label;
  std::ifstream tin(o.topology);
  if (!tin) throw std::runtime_error("cannot open " + o.topology);
  json topo = json::parse(tin);
  out["workloads"] = topo["pods"].size();
  out["services"] = topo["services"].size();

  // 4. Peak RSS, measured first and in fresh children so nothing here inflates them.
  json live_rss = run_child({"--rss-probe", "live", o.netns});
  std::string dump = fmt::format("{}/dpinspect-bench-{}.json", o.tmpdir, getpid());
  {
    auto text = os::in_netns(o.netns, nft::list_ruleset_json);
    if (!text) throw std::runtime_error(text.error().message);
    std::ofstream(dump, std::ios::binary) << *text;
  }
  json file_rss = run_child({"--rss-probe", "file", dump});
  std::remove(dump.c_str());

  // 1. Listing vs loading, same namespace, alternating so both see the same machine state.
  std::vector<double> t_nft, t_read, t_parse, t_compile, t_index, t_total;
  std::unique_ptr<nft::Ruleset> rs;
  std::size_t json_bytes = 0;
  for (int i = 0; i < o.repeat; ++i) {
    t_nft.push_back(time_nft_list(o.netns));
    auto t0 = Clock::now();
    auto text = os::in_netns(o.netns, nft::list_ruleset_json);
    if (!text) throw std::runtime_error(text.error().message);
    auto t1 = Clock::now();
    auto loaded = nft::load_ruleset_json(*text, "live netns " + o.netns);
    if (!loaded) throw std::runtime_error(loaded.error().message);
    auto t2 = Clock::now();
    nft::Evaluator ev(**loaded, nullptr);  // route index: none here; kept for the cost of setup
    auto t3 = Clock::now();
    // Parse alone, to split load_ruleset_json into parse and compile.
    auto p0 = Clock::now();
    { json doc = json::parse(*text); }
    auto p1 = Clock::now();
    t_read.push_back(secs(t0, t1));
    t_parse.push_back(secs(p0, p1));
    t_compile.push_back(std::max(0.0, secs(t1, t2) - secs(p0, p1)));
    t_index.push_back(secs(t2, t3));
    t_total.push_back(secs(t0, t3));
    json_bytes = text->size();
    rs = std::move(*loaded);
  }
  double nft_s = median(t_nft), total_s = median(t_total);
  out["json_bytes"] = json_bytes;
  out["rules"] = rs->rule_count;
  out["chains"] = rs->chains.size();
  std::size_t elems = 0;
  for (const auto& s : rs->sets)
    if (!s.name.empty()) elems += s.elems.size();
  out["set_elements"] = elems;
  out["load"] = {{"nft_list_s", nft_s},        {"read_s", median(t_read)},
                 {"parse_s", median(t_parse)}, {"compile_s", median(t_compile)},
                 {"index_s", median(t_index)}, {"total_s", total_s},
                 {"ratio", total_s / nft_s}};

  // 2. Verdicts.
  NodeInfo node = node_from_topology(topo);
  nft::Evaluator ev(*rs, &node);
  auto flows = make_flows(topo, ev, o.distinct, 42);
  nft::EvalScratch scratch;
  std::size_t allow = 0, deny = 0, indet = 0, multi = 0, rules_run = 0;
  for (const auto& fc : flows) {
    auto v = ev.verdict(fc.flow, fc.path, scratch);
    rules_run += v.rules;
    (v.verdict == Verdict::allow ? allow : v.verdict == Verdict::deny ? deny : indet)++;
    if (v.outcomes > 1) ++multi;
  }
  // Fast and full mode must agree (verdict and deciding rule) on every flow checked.
  std::size_t checked = std::min(o.check, flows.size()), mismatches = 0;
  auto c0 = Clock::now();
  for (std::size_t i = 0; i < checked; ++i) {
    auto runs = ev.evaluate(flows[i].flow, flows[i].path);
    auto fast = ev.verdict(flows[i].flow, flows[i].path, scratch);
    Verdict full = runs.front().verdict;
    for (const auto& r : runs)
      if (r.verdict != full) full = Verdict::indeterminate;
    bool same = full == fast.verdict && runs.size() == fast.outcomes;
    if (same && runs.size() == 1 && full != Verdict::indeterminate) {
      const auto& r = runs.front();
      if (r.deciding_step) {
        const auto& ref = r.path[*r.deciding_step].rule;
        same = fast.rule && fast.chain && fast.chain->name == ref.nft().chain && ref.nft().handle &&
               fast.rule->handle == *ref.nft().handle;
      } else if (r.deciding_policy) {
        same = !fast.rule && fast.chain && fast.chain->name == r.deciding_policy->nft().chain;
      }
    }
    if (!same) {
      if (mismatches < 5)
        std::cerr << "mismatch: " << describe(flows[i].flow) << ": full " << verdict_name(full)
                  << ", fast " << verdict_name(fast.verdict) << "\n";
      ++mismatches;
    }
  }
  double full_rate = checked / secs(c0, Clock::now());  // both modes; full dominates
  // Full mode alone.
  std::size_t full_n = std::min<std::size_t>(checked, 5000);
  auto f0 = Clock::now();
  for (std::size_t i = 0; i < full_n; ++i) (void)ev.evaluate(flows[i].flow, flows[i].path);
  full_rate = full_n / secs(f0, Clock::now());

  std::size_t n = 0;
  auto s0 = Clock::now();
  double elapsed = 0;
  do {
    for (std::size_t j = 0; j < 1024; ++j, ++n) {
      const auto& fc = flows[n % flows.size()];
      auto v = ev.verdict(fc.flow, fc.path, scratch);
      asm volatile("" : : "r"(v.rule) : "memory");
    }
    elapsed = secs(s0, Clock::now());
  } while (elapsed < o.seconds);
  out["verdicts"] = {{"distinct_flows", flows.size()},
                     {"allow", allow},
                     {"deny", deny},
                     {"indeterminate", indet},
                     {"random_choice", multi},
                     {"rules_per_flow", double(rules_run) / flows.size()},
                     {"checked_vs_full", checked},
                     {"mismatches", mismatches},
                     {"fast_per_s", n / elapsed},
                     {"full_per_s", full_rate}};

  // 3. Threads.
  std::atomic<std::size_t> sink{0};
  auto m0 = Clock::now();
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < o.threads; ++t)
    ts.emplace_back([&, t] {
      nft::EvalScratch sc;
      std::size_t local = 0;
      for (std::size_t i = t; i < o.evals; i += o.threads) {
        const auto& fc = flows[i % flows.size()];
        local += ev.verdict(fc.flow, fc.path, sc).verdict == Verdict::deny;
      }
      sink += local;
    });
  for (auto& t : ts) t.join();
  out["threads"] = {{"threads", o.threads}, {"evals", o.evals}, {"wall_s", secs(m0, Clock::now())}};

  out["rss"] = {{"json_mb", json_bytes / 1e6},
                {"live_load_peak_mb", live_rss["peak_kb"].get<double>() / 1024},
                {"live_read_peak_mb", live_rss["read_peak_kb"].get<double>() / 1024},
                {"parse_compile_peak_mb", file_rss["peak_kb"].get<double>() / 1024},
                {"model_mb", file_rss["model_kb"].get<double>() / 1024},
                {"base_mb", file_rss["base_kb"].get<double>() / 1024}};
  out["ebpf"] = "not measured: dpinspect has no eBPF backend yet";

  // Report.
  const auto& L = out["load"];
  const auto& V = out["verdicts"];
  const auto& R = out["rss"];
  fmt::print(
      "== {} : {} workloads, {} services, {} rules, {} chains, {} set elements, JSON {:.1f} MB\n",
      o.label, out["workloads"].get<int>(), out["services"].get<int>(), rs->rule_count,
      rs->chains.size(), elems, json_bytes / 1e6);
  fmt::print(
      "1. load+index {:.3f} s = read {:.3f} + parse {:.3f} + compile {:.3f} + index {:.4f}"
      "  vs  nft -j list ruleset {:.3f} s  -> ratio {:.2f} (target <= 1.2)\n",
      total_s, L["read_s"].get<double>(), L["parse_s"].get<double>(), L["compile_s"].get<double>(),
      L["index_s"].get<double>(), nft_s, total_s / nft_s);
  fmt::print(
      "2. fast mode {:.0f} verdicts/s single thread (target >= 1,000,000); full report {:.0f}/s;"
      " {} flows ({:.0f} rules evaluated per flow): {} allow, {} deny, {} indeterminate, {} with "
      "random choice;"
      " fast == full on {} flows, {} mismatches\n",
      V["fast_per_s"].get<double>(), V["full_per_s"].get<double>(), flows.size(),
      V["rules_per_flow"].get<double>(), allow, deny, indet, multi, checked, mismatches);
  fmt::print("3. {} threads, {} verdicts: {:.3f} s (target <= 3 s)\n", o.threads, o.evals,
             out["threads"]["wall_s"].get<double>());
  fmt::print(
      "4. peak RSS: parse+compile {:.0f} MB = {:.2f}x JSON (model {:.0f} MB + text {:.0f} MB);"
      " whole live load in-process {:.0f} MB = {:.2f}x (libnftables listing alone {:.0f} MB)"
      " (target <= 2x)\n",
      R["parse_compile_peak_mb"].get<double>(),
      R["parse_compile_peak_mb"].get<double>() * 1024 * 1024 / json_bytes,
      R["model_mb"].get<double>(), json_bytes / 1048576.0, R["live_load_peak_mb"].get<double>(),
      R["live_load_peak_mb"].get<double>() * 1024 * 1024 / json_bytes,
      R["live_read_peak_mb"].get<double>());
  fmt::print("5. eBPF: not measured: dpinspect has no eBPF backend yet\n");
  if (!o.json_out.empty()) std::ofstream(o.json_out) << out.dump(2) << "\n";
  return mismatches ? 3 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 4 && std::string(argv[1]) == "--rss-probe") return rss_probe(argv[2], argv[3]);
    Options o;
    CLI::App app{"dpinspect benchmark: live load, indexing and verdict throughput"};
    app.add_option("--netns", o.netns, "network namespace holding the ruleset")->required();
    app.add_option("--topology", o.topology, "topology.json written by bench/scale.py")->required();
    app.add_option("--json", o.json_out, "write the figures as JSON here");
    app.add_option("--label", o.label, "name of this run in the output");
    app.add_option("--distinct", o.distinct, "distinct random flows (default 100000)");
    app.add_option("--evals", o.evals, "verdicts for the multi-thread run (default 1000000)");
    app.add_option("--threads", o.threads, "threads for the multi-thread run (default 2)");
    app.add_option("--check", o.check, "flows compared between fast and full mode (default 20000)");
    app.add_option("--repeat", o.repeat, "load repetitions; medians are reported (default 3)");
    app.add_option("--seconds", o.seconds, "duration of the single-thread run (default 2)");
    app.add_option("--tmpdir", o.tmpdir, "where the JSON dump for the RSS probe goes");
    CLI11_PARSE(app, argc, argv);
    if (o.label.empty()) o.label = o.netns;
    return bench(o);
  } catch (const std::exception& e) {
    std::cerr << "dpinspect_bench: " << e.what() << "\n";
    return 1;
  }
}
