#include <algorithm>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/source_options.h"
#include "core/dataplane_registry.h"

namespace dpi::cli {

namespace {

struct DetectOptions {
  SourceOptions source;
  std::string output = "text";
};

int run_detect(const Context& c, const DetectOptions& o) {
  auto loaded = c.registry.load(o.source.dataplane, o.source.resolved());
  if (!loaded) return c.fail(loaded.error());
  std::vector<Detection> found;
  for (const auto& l : *loaded) found.push_back(l->detect());
  const Detection& d = found.front();
  const std::string& source = loaded->front()->description();
  // A dataplane dpinspect knows of but did not look at (no backend, or not chosen) is null.
  nlohmann::json dataplanes = nlohmann::json::object();
  std::vector<std::string> unchecked;
  for (const auto& name : c.registry.known()) {
    bool checked = std::any_of(found.begin(), found.end(),
                               [&](const Detection& x) { return x.dataplane == name; });
    if (!checked) {
      dataplanes[name] = nullptr;
      unchecked.push_back(name);
    }
  }
  for (const auto& x : found)
    for (const auto& [k, v] : x.dataplanes.items()) dataplanes[k] = v;
  if (o.output == "json") {
    nlohmann::json j = {
        {"schema", "dpinspect.detect/v1"},
        {"source", source},
        {"dataplanes", dataplanes},
        {"kind", d.kind},
        {"layouts", d.layouts},
        {"calico_version_hint",
         d.version_hint.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.version_hint)},
        {"clues", d.clues}};
    for (const auto& [k, v] : d.details.items()) j[k] = v;
    // Clues quote chain names from the input: bytes that are not UTF-8 become U+FFFD.
    c.out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    c.out << fmt::format("dataplane: {}\nsource:    {}\n", d.kind, source);
    for (const auto& l : d.layouts) c.out << "layout:    " << l << "\n";
    if (!d.version_hint.empty()) c.out << "calico:    " << d.version_hint << "\n";
    for (const auto& [label, value] : d.text_lines)
      c.out << fmt::format("{:<11}{}\n", label + ":", value);
    for (const auto& name : unchecked)
      c.out << fmt::format(
          "{:<11}not checked ({})\n", name + ":",
          c.registry.find(name) ? "not selected" : "no backend for it in this build");
    for (const auto& clue : d.clues) c.out << "  - " << clue << "\n";
  }
  return 0;
}

}  // namespace

Runner add_detect(CLI::App& app, const Context& c) {
  auto o = std::make_shared<DetectOptions>();
  auto* cmd = app.add_subcommand(
      "detect",
      "Say which Calico dataplane(s) a node runs (native nftables, iptables through iptables-nft)\n"
      "and the version clues seen (mark layout, NFLOG rules, chain naming).\n\n"
      "Examples:\n"
      "  dpinspect detect\n"
      "  dpinspect detect --netns node1 -o json\n"
      "  dpinspect detect --ruleset examples/seed/iptables-nft.json");
  o->source.add_to(*cmd, c.registry, /*answers_flows=*/false);
  cmd->add_option("-o,--output", o->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  return [o, c] { return run_detect(c, *o); };
}

}  // namespace dpi::cli
