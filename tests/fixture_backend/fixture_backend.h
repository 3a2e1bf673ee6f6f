// A test-only dataplane backend: it answers flows from a small table instead of a kernel, so that
// the CLI's selection (--dataplane auto), exit codes and errors are tested without nftables or
// eBPF. It is one folder and one registry line (test_cli.cpp), as a real backend is.
//
// Its "node" is a table (table.json in this folder):
//   {"calico": true, "flows": [{"src": ADDR, "dst": ADDR, "proto": "tcp", "dport": 80,
//     "verdict": "allow|deny|indeterminate", "rule": NAME, "tier": T, "policy": P, "why": TEXT}
//     or {..., "error": "bad_input|not_found|permission|system", "why": TEXT}, ...]}
// read live from --fixture-dir DIR (DIR/table.json) or from the `fixture` section of a snapshot
// (--ruleset FILE), which `dpinspect snapshot --fixture-dir DIR` writes.
#pragma once

#include <string>

#include "core/dataplane.h"

namespace dpi::fixture {

class FixtureDataplane final : public DataplaneBackend {
 public:
  // name: its --dataplane name and snapshot section; two with different names and layers make a
  // node with two dataplanes.
  explicit FixtureDataplane(std::string name = "fixture", Layer layer = Layer::netfilter)
      : name_(std::move(name)), layer_(layer) {}
  std::string_view name() const override { return name_; }
  std::string_view summary() const override { return "test fixture table"; }
  Layer layer() const override { return layer_; }
  std::vector<SourceOption> source_options() const override;
  bool claims(const SourceRequest& req) const override;
  Status check(const SourceRequest& req) const override;
  Result<std::unique_ptr<LoadedDataplane>> load(const SourceRequest& req) const override;
  Result<std::optional<nlohmann::json>> snapshot(const SourceRequest& req) const override;
  std::string describe_snapshot(const nlohmann::json& section) const override;

 private:
  // --<name>-dir: the live node's table.
  std::string dir_option() const { return name_ + "-dir"; }
  Result<nlohmann::json> read_live_table(const SourceRequest& req) const;

  std::string name_;
  Layer layer_;
};

}  // namespace dpi::fixture
