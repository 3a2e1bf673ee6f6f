// Options shared by every command that reads a dataplane.
#pragma once

#include <CLI/CLI.hpp>

#include "backends/nftables/source.h"

namespace dpi::cli {

struct SourceOptions {
  std::string dataplane = "auto";
  nft::SourceSpec spec;
  std::size_t max_input_mb = 256;
  // Upper bound for --max-input-mb (1 TiB), so that the limit in bytes cannot overflow.
  static constexpr std::size_t kMaxInputMbLimit = std::size_t{1} << 20;

  void add_to(CLI::App& cmd);
  // Checks the combination of options; the error names the option at fault.
  Result<nft::SourceSpec> resolved() const;
};

}  // namespace dpi::cli
