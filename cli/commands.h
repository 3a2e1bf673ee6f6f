#pragma once

#include <CLI/CLI.hpp>

namespace dpi::cli {

// Each command registers its subcommand and returns the function that runs it after parsing.
using Runner = std::function<int()>;
Runner add_inspect(CLI::App& app);
Runner add_detect(CLI::App& app);
Runner add_snapshot(CLI::App& app);
Runner add_compare(CLI::App& app);

}  // namespace dpi::cli
