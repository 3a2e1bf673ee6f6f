// The subcommands. Each reads dataplanes only through the registry it is given and writes only to
// the given streams, so that tests run them with backends of their own (cli/run.h).
#pragma once

#include <functional>
#include <ostream>

#include <CLI/CLI.hpp>

#include "cli/exit_codes.h"
#include "core/dataplane_registry.h"

namespace dpi::cli {

struct Context {
  const DataplaneRegistry& registry;
  std::ostream& out;
  std::ostream& err;
  // Prints "dpinspect: <message>" on one line of err and returns the error's exit code.
  int fail(const Error& e) const { return report_error(e, err); }
};

// Each command registers its subcommand and returns the function that runs it after parsing.
using Runner = std::function<int()>;
Runner add_inspect(CLI::App& app, const Context& c);
Runner add_detect(CLI::App& app, const Context& c);
Runner add_snapshot(CLI::App& app, const Context& c);
Runner add_compare(CLI::App& app, const Context& c);
Runner add_trace(CLI::App& app, const Context& c);
Runner add_watch(CLI::App& app, const Context& c);

}  // namespace dpi::cli
