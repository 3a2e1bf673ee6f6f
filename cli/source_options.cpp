#include "cli/source_options.h"

namespace dpi::cli {

void SourceOptions::add_to(CLI::App& cmd, const DataplaneRegistry& registry, bool answers_flows) {
  std::vector<std::string> choices = {"auto"};
  for (const auto& n : registry.known()) choices.push_back(n);
  cmd.add_option("--dataplane", dataplane, "Which dataplane to read: " + registry.choices_help())
      ->check(CLI::IsMember(choices))
      ->capture_default_str();
  cmd.add_option("--ruleset", request.file,
                 "Read the output of `nft -j list ruleset` from FILE (- for stdin) instead of the "
                 "live kernel; no root needed")
      ->type_name("FILE");
  add_backend_options(cmd, registry, answers_flows, true);
  cmd.add_option("--node", request.node_file,
                 "With --ruleset or --iptables-save: the node's interfaces, addresses and routes "
                 "as JSON (see "
                 "docs/inspect.md), so the flow's path is derived as on the node")
      ->type_name("FILE");
  cmd.add_option("--netns", request.netns,
                 "Read the dataplane of this network namespace (name under /run/netns or a path "
                 "such as /proc/PID/ns/net)")
      ->type_name("NAME|PATH");
  add_max_input(cmd, "Refuse any input (file, stdin, pipe) larger than this many MiB");
}

void SourceOptions::add_backend_options(CLI::App& cmd, const DataplaneRegistry& registry,
                                        bool answers_flows, bool files) {
  for (const DataplaneBackend* d : registry.backends())
    for (const SourceOption& so : d->source_options()) {
      if (backend_options_.count(so.name)) continue;  // two backends reading the same option
      if (so.answers_flows && !answers_flows) continue;
      if (so.type_name == "FILE" && !files) continue;
      std::string& value = request.options[so.name];
      value = so.default_value;
      CLI::Option* opt = cmd.add_option("--" + so.name, value, so.help)->type_name(so.type_name);
      if (!so.default_value.empty()) opt->capture_default_str();
      backend_options_[so.name] = opt;
      if (so.type_name == "FILE") file_options_.push_back(so.name);
    }
}

void SourceOptions::add_live_options(CLI::App& cmd, const DataplaneRegistry& registry) {
  add_backend_options(cmd, registry, false, false);
}

void SourceOptions::add_max_input(CLI::App& cmd, const std::string& help) {
  cmd.add_option("--max-input-mb", max_input_mb, help)
      ->check(CLI::Range(std::size_t{1}, kMaxInputMbLimit))
      ->capture_default_str();
}

SourceRequest SourceOptions::resolved() const {
  SourceRequest r = request;
  r.max_bytes = max_input_mb << 20;
  for (const auto& [name, opt] : backend_options_)
    if (opt->count() > 0) r.given.insert(name);
  return r;
}

bool SourceOptions::reads_this_node() const {
  if (!request.file.empty() || !request.node_file.empty() || !request.netns.empty()) return false;
  for (const auto& name : file_options_)
    if (backend_options_.at(name)->count() > 0) return false;
  return true;
}

}  // namespace dpi::cli
