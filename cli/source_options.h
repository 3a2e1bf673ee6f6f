// Options shared by every command that reads a dataplane.
#pragma once

#include <CLI/CLI.hpp>

#include "backends/nftables/source.h"

namespace dpi::cli {

struct SourceOptions {
  std::string dataplane = "auto";
  nft::SourceSpec spec;
  std::size_t max_input_mb = 256;

  void add_to(CLI::App& cmd);
  nft::SourceSpec resolved() const;
};

}  // namespace dpi::cli
