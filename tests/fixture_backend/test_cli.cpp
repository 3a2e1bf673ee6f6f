// The CLI against the fixture backend: --dataplane selection, exit codes (0 allowed, 1 denied,
// 2 indeterminate, 3 bad input, 4 no permission, 5 system error), one-line errors, detect,
// snapshot sections and compare, with no kernel dataplane involved.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cli/run.h"
#include "core/dataplane_registry.h"
#include "tests/fixture_backend/cli_run.h"
#include "tests/fixture_backend/fixture_backend.h"

namespace {

using dpi::DataplaneRegistry;
using dpi::fixture::FixtureDataplane;

const FixtureDataplane kFixture;
const FixtureDataplane kFixtureTc("fixture-tc", dpi::Layer::tc);
// The registry line: this binary's one backend (and the names the real program knows, so that
// asking for them is refused as "not supported yet" rather than unknown).
const DataplaneRegistry kOne({&kFixture}, {"nftables", "ebpf"});
// A node with two dataplane layers: fixture-tc is met first.
const DataplaneRegistry kTwo({&kFixture, &kFixtureTc});

using dpi::fixture::CliOutput;
using dpi::fixture::kFixtureDir;
using dpi::fixture::run_cli;

// "@NODE@" and the like in a case's arguments: the fixture folders and the snapshots written by
// the first test case.
std::string expand(std::string s, const std::string& tmp) {
  const std::pair<std::string, std::string> subst[] = {{"@NODE@", kFixtureDir + "/node"},
                                                       {"@TC@", kFixtureDir + "/tc-node"},
                                                       {"@QUIET@", kFixtureDir + "/quiet-node"},
                                                       {"@FLOWS@", kFixtureDir + "/flows.jsonl"},
                                                       {"@TMP@", tmp}};
  for (const auto& [k, v] : subst)
    for (auto at = s.find(k); at != std::string::npos; at = s.find(k)) s.replace(at, k.size(), v);
  return s;
}

std::string temp_dir() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("dpi-fixture-backend-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

const std::vector<std::string> kAllowed = {"--src",   "10.65.0.2", "--dst",   "10.65.0.3",
                                           "--proto", "tcp",       "--dport", "80"};

std::vector<std::string> with(std::vector<std::string> head, const std::vector<std::string>& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

// Writes the snapshots the cases read: both sections, each alone, and a quiet tc layer.
void write_snapshots() {
  const std::string tmp = temp_dir();
  struct Snap {
    std::vector<std::string> args;
    const char* file;
  };
  const Snap snaps[] = {
      {{"--fixture-dir", kFixtureDir + "/node", "--fixture-tc-dir", kFixtureDir + "/tc-node"},
       "both.json"},
      {{"--fixture-dir", kFixtureDir + "/node"}, "fixture-only.json"},
      {{"--fixture-tc-dir", kFixtureDir + "/tc-node"}, "tc-only.json"},
      {{"--fixture-dir", kFixtureDir + "/node", "--fixture-tc-dir", kFixtureDir + "/quiet-node"},
       "quiet-tc.json"},
  };
  for (const auto& s : snaps) {
    auto o = run_cli(kTwo, with(with({"snapshot"}, s.args), {"-o", tmp + "/" + s.file}));
    REQUIRE(o.code == 0);
    REQUIRE(o.err.empty());
  }
}

}  // namespace

TEST_CASE("snapshot: one section per dataplane, each written by its backend", "[unit]") {
  write_snapshots();
  std::ifstream in(temp_dir() + "/both.json");
  nlohmann::json doc = nlohmann::json::parse(in);
  CHECK(doc["schema"] == "dpinspect.snapshot/v2");
  CHECK(doc["source"] == "live");
  REQUIRE(doc.contains("fixture"));
  REQUIRE(doc.contains("fixture-tc"));
  CHECK(doc["fixture"]["flows"].size() == 5);
  CHECK(doc["fixture-tc"]["flows"].size() == 1);
  // A dataplane that is not on the node (no --fixture-tc-dir) has no section.
  std::ifstream one(temp_dir() + "/fixture-only.json");
  nlohmann::json only = nlohmann::json::parse(one);
  CHECK(only.contains("fixture"));
  CHECK_FALSE(only.contains("fixture-tc"));
}

TEST_CASE("the CLI with the fixture backend: selection, exit codes, errors", "[unit]") {
  write_snapshots();
  struct Case {
    const char* name;
    const DataplaneRegistry* reg;
    std::vector<std::string> args;
    int code;
    std::string out_has;  // "" = stdout must be empty
    std::string err_has;  // "" = stderr must be empty
  };
  const std::vector<std::string> denied = {"--src",   "10.65.0.2", "--dst",   "10.65.0.5",
                                           "--proto", "tcp",       "--dport", "9001"};
  const Case cases[] = {
      // Exit codes from the verdict.
      {"allowed", &kOne, with({"inspect", "--fixture-dir", "@NODE@"}, kAllowed), 0, "ALLOWED", ""},
      {"denied", &kOne, with({"inspect", "--fixture-dir", "@NODE@"}, denied), 1, "DENIED", ""},
      {"indeterminate row",
       &kOne,
       {"inspect", "--fixture-dir", "@NODE@", "--src", "10.65.0.2", "--dst", "10.65.0.4", "--proto",
        "udp", "--dport", "53"},
       2,
       "the fixture cannot tell which way numgen goes",
       ""},
      {"no row: indeterminate, never a guess",
       &kOne,
       {"inspect", "--fixture-dir", "@NODE@", "--src", "10.65.0.2", "--dst", "10.65.0.99",
        "--proto", "tcp", "--dport", "80"},
       2,
       "the fixture table has no row for this flow",
       ""},
      {"json report", &kOne, with({"inspect", "--fixture-dir", "@NODE@", "-o", "json"}, denied), 1,
       "\"verdict\": \"deny\"", ""},
      // Errors: >2, one line on stderr naming the problem, nothing on stdout.
      {"backend error: permission",
       &kOne,
       {"inspect", "--fixture-dir", "@NODE@", "--src", "10.65.0.2", "--dst", "10.65.0.6", "--proto",
        "tcp", "--dport", "22"},
       4,
       "",
       "dpinspect: fixture: reading the conntrack table needs CAP_NET_ADMIN\n"},
      {"backend error: system",
       &kOne,
       {"inspect", "--fixture-dir", "@NODE@", "--src", "10.65.0.2", "--dst", "10.65.0.7", "--proto",
        "tcp", "--dport", "22"},
       5,
       "",
       "dpinspect: fixture: the table went away\n"},
      {"bad flow before any read",
       &kOne,
       {"inspect", "--fixture-dir", "@NODE@", "--src", "10.65.0.2", "--dst", "10.65.0.3", "--proto",
        "tcp", "--dport", "70000"},
       3,
       "",
       "--dport"},
      {"a known dataplane without a backend", &kOne,
       with({"inspect", "--dataplane", "nftables", "--fixture-dir", "@NODE@"}, kAllowed), 3, "",
       "looked for a backend named \"nftables\" among this dpinspect's backends (fixture) and "
       "found none: reading this dataplane is not supported yet"},
      {"an unknown dataplane", &kOne,
       with({"inspect", "--dataplane", "bogus", "--fixture-dir", "@NODE@"}, kAllowed), 3, "",
       "--dataplane"},
      {"auto with nothing to read", &kOne, with({"inspect"}, kAllowed), 3, "",
       "dpinspect: no fixture node here (--fixture-dir DIR)\n"},
      {"a missing snapshot file", &kOne,
       with({"inspect", "--ruleset", "@TMP@/missing.json"}, kAllowed), 3, "", "missing.json"},
      {"a snapshot without this dataplane's section", &kOne,
       with({"inspect", "--ruleset", "@TMP@/tc-only.json"}, kAllowed), 3, "",
       "the snapshot has no fixture section"},
      {"the backend's own option with --ruleset", &kOne,
       with({"inspect", "--ruleset", "@TMP@/both.json", "--fixture-dir", "@NODE@"}, kAllowed), 3,
       "", "--fixture-dir reads a live node; --ruleset a snapshot: give one"},
      // The command line: an unknown command, none, a parse error; all with the prefix.
      {"no command",
       &kOne,
       {},
       3,
       "",
       "dpinspect: a command is required: inspect, detect, snapshot, compare, trace, watch\n"},
      {"an unknown command",
       &kOne,
       {"frobnicate"},
       3,
       "",
       "dpinspect: unknown command 'frobnicate'; commands: inspect, detect, snapshot, compare, "
       "trace, watch\n"},
      {"a required option missing",
       &kOne,
       {"inspect", "--src", "10.65.0.2"},
       3,
       "",
       "dpinspect: --dst is required (or --flows FILE for many flows)\n"},
      {"an option no command has", &kOne, {"detect", "--frob"}, 3, "", "dpinspect: "},
      {"a value CLI11 refuses",
       &kOne,
       {"detect", "-o", "yaml"},
       3,
       "",
       "dpinspect: --output: yaml"},
      // snapshot -o FILE says what it wrote, section by section.
      {"snapshot -o FILE: the file and its size",
       &kTwo,
       {"snapshot", "--fixture-dir", "@NODE@", "-o", "@TMP@/said.json"},
       0,
       "wrote @TMP@/said.json (",
       ""},
      {"snapshot -o FILE: each section's count",
       &kTwo,
       {"snapshot", "--fixture-dir", "@NODE@", "-o", "@TMP@/said.json"},
       0,
       "\n  fixture-tc: no section (no fixture-tc dataplane found)\n  fixture:   5 flows\n",
       ""},
      // --dataplane auto with two dataplanes on the node.
      {"auto: both find Calico, both judge, the tc layer denies", &kTwo,
       with({"inspect", "--ruleset", "@TMP@/both.json"}, kAllowed), 1, "tc-deny-frontend", ""},
      {"auto: the option given names the backend", &kTwo,
       with({"inspect", "--fixture-dir", "@NODE@"}, kAllowed), 0, "allow-frontend", ""},
      {"auto: a section missing is not an error", &kTwo,
       with({"inspect", "--ruleset", "@TMP@/fixture-only.json"}, kAllowed), 0, "allow-frontend",
       ""},
      {"auto: a layer without Calico is passed over", &kTwo,
       with({"inspect", "--ruleset", "@TMP@/quiet-tc.json"}, kAllowed), 0, "allow-frontend", ""},
      {"--dataplane NAME takes that one", &kTwo,
       with({"inspect", "--dataplane", "fixture", "--ruleset", "@TMP@/both.json"}, kAllowed), 0,
       "allow-frontend", ""},
      // detect and compare.
      {"detect", &kOne, {"detect", "--fixture-dir", "@NODE@"}, 0, "dataplane: fixture\n", ""},
      {"detect names what it did not check",
       &kOne,
       {"detect", "--fixture-dir", "@NODE@", "-o", "json"},
       0,
       "\"nftables\": null",
       ""},
      {"detect says what it looked for and did not find",
       &kTwo,
       {"detect", "--ruleset", "@TMP@/fixture-only.json"},
       0,
       "fixture-tc: not found: ",
       ""},
      {"detect: the same in JSON",
       &kTwo,
       {"detect", "--ruleset", "@TMP@/fixture-only.json", "-o", "json"},
       0,
       "\"not_found\": {\n    \"fixture-tc\": \"not found: ",
       ""},
      {"detect: two layers",
       &kTwo,
       {"detect", "--ruleset", "@TMP@/both.json"},
       0,
       "dataplane: fixture-tc\n",
       ""},
      {"compare: a verdict changed",
       &kTwo,
       {"compare", "--before", "@TMP@/fixture-only.json", "--after", "@TMP@/tc-only.json",
        "--flows", "@FLOWS@"},
       1,
       "10.65.0.3",
       ""},
      {"compare has no --dataplane (each side is read as auto)",
       &kTwo,
       {"compare", "--before", "@TMP@/fixture-only.json", "--after", "@TMP@/both.json",
        "--dataplane", "fixture", "--flows", "@FLOWS@"},
       3,
       "",
       "--dataplane"},
      {"compare: the same node",
       &kTwo,
       {"compare", "--before", "@TMP@/fixture-only.json", "--after", "@TMP@/quiet-tc.json",
        "--flows", "@FLOWS@"},
       0,
       "",
       ""},
  };
  for (const Case& c : cases) {
    SECTION(c.name) {
      std::vector<std::string> args;
      for (const auto& a : c.args) args.push_back(expand(a, temp_dir()));
      CliOutput o = run_cli(*c.reg, args);
      INFO("stdout: " << o.out);
      INFO("stderr: " << o.err);
      CHECK(o.code == c.code);
      if (c.out_has.empty())
        CHECK((o.out.empty() || c.code == 0));
      else
        CHECK(o.out.find(expand(c.out_has, temp_dir())) != std::string::npos);
      if (c.err_has.empty())
        CHECK(o.err.empty());
      else
        CHECK(o.err.find(c.err_has) != std::string::npos);
      // Errors are one line.
      if (c.code > 2) CHECK(std::count(o.err.begin(), o.err.end(), '\n') <= 2);
    }
  }
}
