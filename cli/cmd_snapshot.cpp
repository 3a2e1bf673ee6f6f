#include <filesystem>
#include <fstream>
#include <map>
#include <system_error>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/source_options.h"
#include "core/dataplane_registry.h"
#include "core/input_file.h"
#include "core/k8s_names.h"
#include "core/snapshot.h"

namespace dpi::cli {

namespace {

struct SnapshotOptions {
  std::string netns;
  std::string output = "-";
  std::string k8s;  // --k8s FILE, stored as the "k8s" member
  // Where a backend finds its live dataplane (--bpffs ...), declared by the backends.
  std::map<std::string, std::string> backend;
  std::map<std::string, CLI::Option*> given;
};

int run_snapshot(const Context& c, const SnapshotOptions& o) {
  SourceRequest req;
  req.netns = o.netns;
  req.options = o.backend;
  for (const auto& [name, opt] : o.given)
    if (opt->count() > 0) req.given.insert(name);
  // One section per dataplane found, each written by its backend under the backend's name.
  nlohmann::json doc =
      new_snapshot(o.netns.empty() ? std::string("live") : fmt::format("live netns {}", o.netns));
  // Checked before the (possibly slow) read of the dataplane.
  std::optional<nlohmann::json> k8s;
  if (!o.k8s.empty()) {
    auto text = read_input_file(o.k8s, SourceOptions::kDefaultMaxInputMb << 20);
    if (!text) return c.fail(make_error(text.error().code, "--k8s " + text.error().message));
    auto names = parse_k8s_names(*text, input_origin(o.k8s));
    if (!names) return c.fail(make_error(names.error().code, "--k8s " + names.error().message));
    k8s = nlohmann::json::parse(*text);
  }
  for (const DataplaneBackend* d : c.registry.backends()) {
    auto section = d->snapshot(req);
    if (!section) return c.fail(section.error());
    if (*section) doc[std::string(d->name())] = std::move(**section);
  }
  if (k8s) doc[kSnapshotK8sMember] = std::move(*k8s);
  const nlohmann::json* snap = &doc;
  if (o.output == "-") {
    c.out << snap->dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  std::ofstream out(o.output);
  if (!out)
    return c.fail(make_error(ErrorCode::bad_input, fmt::format("{}: cannot write", o.output)));
  out << snap->dump(1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  if (!out.flush())
    return c.fail(make_error(ErrorCode::system, fmt::format("{}: write failed", o.output)));
  out.close();
  // Written to a file, the snapshot leaves standard output free to say what it holds.
  std::error_code ec;
  auto bytes = std::filesystem::file_size(o.output, ec);
  c.out << fmt::format("wrote {} ({} bytes, {}, {})\n", o.output, ec ? 0 : bytes, kSnapshotSchema,
                       doc["source"].get<std::string>());
  for (const DataplaneBackend* d : c.registry.backends()) {
    auto section = doc.find(std::string(d->name()));
    if (section == doc.end()) {
      c.out << fmt::format("  {:<10} no section (no {} dataplane found)\n",
                           std::string(d->name()) + ":", d->name());
      continue;
    }
    std::string what = d->describe_snapshot(*section);
    c.out << fmt::format("  {:<10} {}\n", std::string(d->name()) + ":",
                         what.empty() ? "written" : what);
  }
  if (auto names = doc.find(kSnapshotK8sMember); names != doc.end())
    if (auto n = parse_k8s_names(*names))
      c.out << fmt::format("  {:<10} {} pods, {} services (from --k8s {})\n",
                           "k8s:", n->pods.size(), n->services.size(), input_origin(o.k8s));
  return 0;
}

}  // namespace

Runner add_snapshot(CLI::App& app, const Context& c) {
  auto o = std::make_shared<SnapshotOptions>();
  auto* cmd = app.add_subcommand("snapshot",
                                 "Capture a node's dataplane in one file (schema "
                                 "dpinspect.snapshot/v2), one section per dataplane found: the\n"
                                 "nftables ruleset with the iptables-nft match/target parameters "
                                 "and ipsets that `nft -j` leaves\n"
                                 "out and the node's interfaces and routes; Calico's eBPF maps and "
                                 "programs. Read-only. Give the file to `inspect "
                                 "--ruleset` anywhere, no root needed.\n\n"
                                 "Examples:\n"
                                 "  dpinspect snapshot -o node1.snapshot.json\n"
                                 "  dpinspect snapshot --netns node1 > node1.snapshot.json\n"
                                 "  dpinspect inspect --ruleset node1.snapshot.json --src "
                                 "10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001");
  cmd->add_option("--netns", o->netns,
                  "Read this network namespace (name under /run/netns or a path)")
      ->type_name("NAME|PATH");
  cmd->add_option("-o,--output", o->output, "Write to FILE instead of standard output")
      ->type_name("FILE");
  cmd->add_option("--k8s", o->k8s,
                  "Store the output of `kubectl get pods,services,endpointslices -A -o json` in "
                  "the snapshot: inspect and compare name pods and services from it")
      ->type_name("FILE");
  // Backend options that locate a live dataplane (a DIR); file inputs are not snapshotted.
  for (const DataplaneBackend* d : c.registry.backends())
    for (const SourceOption& so : d->source_options()) {
      if (so.type_name != "DIR" || o->given.count(so.name)) continue;
      std::string& value = o->backend[so.name];
      value = so.default_value;
      o->given[so.name] = cmd->add_option("--" + so.name, value, so.help)->type_name(so.type_name);
    }
  return [o, c] { return run_snapshot(c, *o); };
}

}  // namespace dpi::cli
