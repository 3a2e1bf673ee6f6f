// dpinspect: why was this flow dropped (or allowed) on a Calico node?
#include <map>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/version.h"

int main(int argc, char** argv) {
  CLI::App app{
      "dpinspect explains why Calico allowed or dropped a flow on a Kubernetes node: the verdict,\n"
      "the deciding rule, what it means in Calico terms (tier, policy, rule) and the path that\n"
      "led there, read from the node's real dataplane.\n\n"
      "Examples:\n"
      "  dpinspect inspect --src 10.65.0.2 --dst 10.65.0.5 --proto tcp --dport 9001\n"
      "  dpinspect inspect --ruleset node.json --node routes.json --src 10.65.0.2 --dst 10.65.0.3 "
      "\\\n"
      "      --proto tcp --dport 80 -o json\n"
      "  dpinspect detect --netns node1\n",
      "dpinspect"};
  app.set_version_flag("--version", std::string("dpinspect ") + dpi::cli::kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  std::map<std::string, dpi::cli::Runner> runners{{"inspect", dpi::cli::add_inspect(app)},
                                                  {"detect", dpi::cli::add_detect(app)},
                                                  {"snapshot", dpi::cli::add_snapshot(app)},
                                                  {"compare", dpi::cli::add_compare(app)}};
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return dpi::cli::kExitBadInput;
  }
  return runners.at(app.get_subcommands().front()->get_name())();
}
