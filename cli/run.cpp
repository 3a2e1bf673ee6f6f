#include "cli/run.h"

#include <map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/version.h"

namespace dpi::cli {

int run(const DataplaneRegistry& registry, const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err) {
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
  app.set_version_flag("--version", std::string("dpinspect ") + kVersion);
  app.require_subcommand(1);
  app.fallthrough();
  // Set before the subcommands are added: each copies it. Every error line starts "dpinspect: ",
  // as the commands' own errors do, and names the help of the command that failed.
  app.failure_message([](const CLI::App* failed, const CLI::Error& e) {
    std::string cmd = "dpinspect";
    for (const CLI::App* sub : failed->get_subcommands()) cmd += " " + sub->get_name();
    return fmt::format("dpinspect: {}\nRun `{} --help` for more information.\n", e.what(), cmd);
  });
  const Context c{registry, out, err};
  std::map<std::string, Runner> runners{
      {"inspect", add_inspect(app, c)},   {"detect", add_detect(app, c)},
      {"snapshot", add_snapshot(app, c)}, {"compare", add_compare(app, c)},
      {"trace", add_trace(app, c)},       {"watch", add_watch(app, c)}};
  std::vector<std::string> names;
  const CLI::App& registered = app;
  for (const CLI::App* sub : registered.get_subcommands([](const CLI::App*) { return true; }))
    names.push_back(sub->get_name());
  // CLI11 would call a word that is no command "A subcommand is required"; a newcomer's typo
  // deserves the list of commands.
  if (!args.empty() && !args.front().empty() && args.front()[0] != '-' &&
      !runners.count(args.front())) {
    err << fmt::format("dpinspect: unknown command '{}'; commands: {}\n", args.front(),
                       fmt::join(names, ", "));
    return kExitBadInput;
  }
  const std::string no_command = fmt::format(
      "dpinspect: a command is required: {}\nRun `dpinspect --help` for more information.\n",
      fmt::join(names, ", "));
  if (args.empty()) {
    err << no_command;
    return kExitBadInput;
  }
  // CLI11 takes a vector of arguments last first.
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e, out, err);
  } catch (const CLI::RequiredError& e) {
    if (!app.get_subcommands().empty()) {
      app.exit(e, out, err);
    } else {
      err << no_command;
    }
    return kExitBadInput;
  } catch (const CLI::ParseError& e) {
    app.exit(e, out, err);
    return kExitBadInput;
  }
  return runners.at(app.get_subcommands().front()->get_name())();
}

}  // namespace dpi::cli
