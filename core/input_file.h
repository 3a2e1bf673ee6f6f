// Reading a file the operator names (a ruleset dump, iptables-save text, node info) with a size
// limit that holds for pipes and stdin too, so `--ruleset <(nft -j list ruleset)` works and a
// runaway producer cannot make dpinspect buffer gigabytes before it refuses.
#pragma once

#include <cstddef>
#include <string>

#include "core/result.h"

namespace dpi {

// The name an input is reported under: "<stdin>" for "-", else the path as given.
std::string input_origin(const std::string& path);

// Reads all of path ("-" is standard input). Refuses, with the path and the limit in the message:
// a directory, and anything longer than max_bytes (a regular file before reading it, a pipe as soon
// as it passes the limit). limit_hint names the option that raises the limit.
Result<std::string> read_input_file(const std::string& path, std::size_t max_bytes,
                                    const std::string& limit_hint = "--max-input-mb");

}  // namespace dpi
