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

// A dataplane the report does not show: what was looked for and not found, or why it was not
// looked for. Text after "NAME: ".
struct Elsewhere {
  std::string name;
  std::string text;
  nlohmann::json found = nullptr;  // the detect/v1 "dataplanes" answers, when looked for
};

// Under --dataplane auto with no option naming a backend, every backend of this build looks at
// the same source; each one that did not find Calico says what it looked for.
Elsewhere look_elsewhere(const Context& c, const DetectOptions& o, const SourceRequest& req,
                         const std::string& name) {
  const DataplaneBackend* d = c.registry.find(name);
  if (!d) return {name, "not checked: this dpinspect has no backend for it"};
  if (o.source.dataplane != "auto")
    return {name, fmt::format("not checked (--dataplane {})", o.source.dataplane)};
  for (const DataplaneBackend* other : c.registry.backends())
    if (other->claims(req))
      return {name,
              fmt::format("not checked (the options given read the {} dataplane)", other->name())};
  if (auto st = d->check(req); !st) return {name, "not checked: " + st.error().message};
  auto l = d->load(req);
  if (!l) {
    std::string why = l.error().message;
    if (why.rfind(name + ": ", 0) == 0) why.erase(0, name.size() + 2);  // said once is enough
    return {name,
            fmt::format("{}: {}", l.error().code == ErrorCode::not_found ? "not found" : "not read",
                        why)};
  }
  Detection x = (*l)->detect();
  return {name, x.found ? "found" : "not found: looked for " + x.looked_for, x.dataplanes};
}

int run_detect(const Context& c, const DetectOptions& o) {
  const SourceRequest req = o.source.resolved();
  auto loaded = c.registry.load(o.source.dataplane, req);
  if (!loaded) return c.fail(loaded.error());
  std::vector<Detection> found;
  for (const auto& l : *loaded) found.push_back(l->detect());
  const Detection& d = found.front();
  const std::string& source = loaded->front()->description();
  // A dataplane dpinspect knows of but did not look at (no backend, or not chosen) is null.
  nlohmann::json dataplanes = nlohmann::json::object();
  nlohmann::json not_found = nlohmann::json::object();
  std::vector<Elsewhere> elsewhere;
  for (const auto& name : c.registry.known()) {
    bool checked = std::any_of(found.begin(), found.end(),
                               [&](const Detection& x) { return x.dataplane == name; });
    if (checked) continue;
    Elsewhere e = look_elsewhere(c, o, req, name);
    dataplanes[name] = nullptr;
    if (e.found.is_object())
      for (const auto& [k, v] : e.found.items()) dataplanes[k] = v;
    else if (e.text.rfind("not found", 0) == 0)
      dataplanes[name] = false;
    if (e.text != "found") not_found[name] = e.text;
    elsewhere.push_back(std::move(e));
  }
  for (const auto& x : found) {
    for (const auto& [k, v] : x.dataplanes.items()) dataplanes[k] = v;
    if (!x.found) not_found[x.dataplane] = "not found: looked for " + x.looked_for;
  }
  if (o.output == "json") {
    nlohmann::json j = {
        {"schema", "dpinspect.detect/v1"},
        {"source", source},
        {"dataplanes", dataplanes},
        {"kind", d.kind},
        {"layouts", d.layouts},
        {"calico_version_hint",
         d.version_hint.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.version_hint)},
        {"clues", d.clues},
        {"not_found", not_found}};
    for (const auto& [k, v] : d.details.items()) j[k] = v;
    // Clues quote chain names from the input: bytes that are not UTF-8 become U+FFFD.
    c.out << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    c.out << fmt::format("dataplane: {}\nsource:    {}\n", d.kind, source);
    for (const auto& l : d.layouts) c.out << "layout:    " << l << "\n";
    if (!d.version_hint.empty()) c.out << "calico:    " << d.version_hint << "\n";
    for (const auto& [label, value] : d.text_lines)
      c.out << fmt::format("{:<11}{}\n", label + ":", value);
    for (const auto& x : found)
      if (!x.found)
        c.out << fmt::format("{:<10} not found: looked for {}\n", x.dataplane + ":", x.looked_for);
    for (const auto& e : elsewhere) c.out << fmt::format("{:<10} {}\n", e.name + ":", e.text);
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
