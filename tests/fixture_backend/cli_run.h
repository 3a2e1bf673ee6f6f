// The CLI run in-process against a registry of fixture backends, as the tests of this folder
// drive it.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "cli/run.h"
#include "core/dataplane_registry.h"

namespace dpi::fixture {

// This folder: its node tables and snapshots.
inline const std::string kFixtureDir = DPI_FIXTURE_BACKEND_DIR;

struct CliOutput {
  int code = -1;
  std::string out, err;
};

inline CliOutput run_cli(const DataplaneRegistry& reg, const std::vector<std::string>& args) {
  std::ostringstream out, err;
  CliOutput o;
  o.code = cli::run(reg, args, out, err);
  o.out = out.str();
  o.err = err.str();
  return o;
}

}  // namespace dpi::fixture
