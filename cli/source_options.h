// Options shared by every command that reads a dataplane: --dataplane, the source (--ruleset,
// --node, --netns), the input size limit, and every option a registered backend declares.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "core/dataplane_registry.h"

namespace dpi::cli {

struct SourceOptions {
  std::string dataplane = "auto";
  SourceRequest request;
  std::size_t max_input_mb = kDefaultMaxInputMb;
  static constexpr std::size_t kDefaultMaxInputMb = 256;
  // Upper bound for --max-input-mb (1 TiB), so that the limit in bytes cannot overflow.
  static constexpr std::size_t kMaxInputMbLimit = std::size_t{1} << 20;

  // Every source option (inspect, detect), with those the registry's backends declare; with
  // answers_flows (inspect) also the backends' options of how flows are answered.
  void add_to(CLI::App& cmd, const DataplaneRegistry& registry, bool answers_flows);
  // Only the backends' options that locate a live dataplane (watch: --bpffs, --policy-debug-dir):
  // none that names a file or says how flows are answered.
  void add_live_options(CLI::App& cmd, const DataplaneRegistry& registry);
  // Only --max-input-mb (compare, whose sides are --before/--after).
  void add_max_input(CLI::App& cmd, const std::string& help);
  // The request for the backends, with the size limit in bytes and the backend options the user
  // typed marked as given.
  SourceRequest resolved() const;
  // Whether the dataplane is read live from this node's own network namespace: no --ruleset,
  // --node or --netns, and no backend option that names a file (--iptables-save). Only then do
  // this node's other sources (its container runtime) describe what is inspected.
  bool reads_this_node() const;

 private:
  std::map<std::string, CLI::Option*> backend_options_;
  std::vector<std::string> file_options_;  // backend options of type FILE

  // The backends' options; files: also those of type FILE.
  void add_backend_options(CLI::App& cmd, const DataplaneRegistry& registry, bool answers_flows,
                           bool files);
};

}  // namespace dpi::cli
