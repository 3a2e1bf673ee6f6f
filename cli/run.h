// dpinspect as a function: the program is main.cpp calling this with the built-in backends; tests
// call it with a registry of their own (tests/fixture_backend).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "core/dataplane_registry.h"

namespace dpi::cli {

// args: the command line without the program name. Reports go to out, errors (one line) and
// usage messages to err. Returns the exit code: 0 allowed, 1 denied, 2 indeterminate, 3 bad
// input, 4 no permission, 5 system error (cli/exit_codes.h).
int run(const DataplaneRegistry& registry, const std::vector<std::string>& args, std::ostream& out,
        std::ostream& err);

}  // namespace dpi::cli
