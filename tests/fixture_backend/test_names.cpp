// Pod and service names the CLI finds by itself: a snapshot's (`snapshot --k8s`, handed on by the
// backend that parsed the snapshot, so that a pipe read once still names them), each side's in
// compare, and the node's container runtime (a fake `crictl` on PATH replaying what crictl
// printed on the seed's node1: tests/fixtures/crictl).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "core/dataplane_registry.h"
#include "tests/fixture_backend/cli_run.h"
#include "tests/fixture_backend/fixture_backend.h"

namespace {

using dpi::fixture::kFixtureDir;
using dpi::fixture::run_cli;
using nlohmann::json;

const dpi::fixture::FixtureDataplane kNamesFixture;
const dpi::DataplaneRegistry kNamesRegistry({&kNamesFixture});

const std::string kSourceDir = std::filesystem::path(kFixtureDir).parent_path().parent_path();
const std::string kSeedK8s = kSourceDir + "/tests/fixtures/k8s/seed.json";
const std::string kFakeCrictlDir = kSourceDir + "/tests/fixtures/crictl";

std::string names_temp_dir() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() /
             ("dpi-fixture-names-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  return dir;
}

// The fixture node's live table as a snapshot carrying the seed's kubectl names.
std::string k8s_snapshot() {
  const std::string path = names_temp_dir() + "/k8s.json";
  auto o = run_cli(kNamesRegistry, {"snapshot", "--fixture-dir", kFixtureDir + "/node", "--k8s",
                                    kSeedK8s, "-o", path});
  REQUIRE(o.code == 0);
  return path;
}

// PATH (and FAKE_CRICTL) for one scope: the fake crictl first, or no crictl at all.
class Env {
 public:
  Env(bool fake_crictl, const char* mode) : path_(std::getenv("PATH") ? std::getenv("PATH") : "") {
    // Without the fake: a PATH where no crictl can be (the machine may have a real one).
    ::setenv("PATH", fake_crictl ? (kFakeCrictlDir + ":" + path_).c_str() : "/nonexistent", 1);
    if (mode)
      ::setenv("FAKE_CRICTL", mode, 1);
    else
      ::unsetenv("FAKE_CRICTL");
  }
  Env(const Env&) = delete;
  Env& operator=(const Env&) = delete;
  ~Env() {
    ::setenv("PATH", path_.c_str(), 1);
    ::unsetenv("FAKE_CRICTL");
  }

 private:
  std::string path_;
};

json report(const std::vector<std::string>& args, int want_code = 0) {
  auto o = run_cli(kNamesRegistry, args);
  INFO(o.err);
  REQUIRE(o.code == want_code);
  return json::parse(o.out);
}

bool has_line(const json& rep, const std::string& prefix) {
  for (const auto& a : rep["assumptions"])
    if (a.get<std::string>().rfind(prefix, 0) == 0) return true;
  return false;
}

std::vector<std::string> live(std::vector<std::string> tail) {
  std::vector<std::string> a = {"inspect", "--fixture-dir", kFixtureDir + "/node", "-o", "json"};
  a.insert(a.end(), tail.begin(), tail.end());
  return a;
}

}  // namespace

TEST_CASE("names: a snapshot's k8s member, read once, even through a pipe", "[unit]") {
  const std::string snap = k8s_snapshot();
  Env env(true, nullptr);  // a snapshot is not this node: crictl is not asked
  json rep = report({"inspect", "--ruleset", snap, "--src", "client/client", "--dst",
                     "stars/frontend", "--dport", "80", "-o", "json"});
  CHECK(rep["verdict"] == "allow");
  CHECK(rep["flow"]["src_name"] == "client/client");
  CHECK(rep["flow"]["dst_name"] == "stars/frontend");
  CHECK(has_line(rep, "pod and service names from the snapshot " + snap + " (snapshot --k8s)"));
  CHECK_FALSE(has_line(rep, "no pod names from the container runtime"));

  // A FIFO can be read once: the names come from the one read the backend made.
  const std::string fifo = names_temp_dir() + "/k8s.fifo";
  ::unlink(fifo.c_str());
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  std::thread writer([&] {
    std::ifstream in(snap, std::ios::binary);
    std::ofstream out(fifo, std::ios::binary);
    out << in.rdbuf();
  });
  auto o = run_cli(kNamesRegistry, {"inspect", "--ruleset", fifo, "--src", "10.65.0.2", "--dst",
                                    "10.65.0.3", "--dport", "80", "-o", "json"});
  writer.join();
  INFO(o.err);
  REQUIRE(o.code == 0);
  json piped = json::parse(o.out);
  CHECK(piped["flow"]["src_name"] == "client/client");
  CHECK(piped["flow"]["dst_name"] == "stars/frontend");
}

TEST_CASE("names: compare names the flows from each side's snapshot", "[unit]") {
  const std::string snap = k8s_snapshot();
  const std::string plain = names_temp_dir() + "/plain.json";
  REQUIRE(run_cli(kNamesRegistry, {"snapshot", "--fixture-dir", kFixtureDir + "/node", "-o", plain})
              .code == 0);
  const std::string flows = names_temp_dir() + "/flows.jsonl";
  std::ofstream(flows) << R"({"src": "client/client", "dst": "stars/frontend", "dport": 80})"
                       << "\n"
                       << R"({"src": "10.65.0.2", "dst": "10.65.0.5", "dport": 9001})"
                       << "\n";
  struct Case {
    std::string before, after, names_source;
  };
  for (const auto& c : std::vector<Case>{
           {snap, snap, "pod and service names from the snapshot " + snap + " (snapshot --k8s)"},
           // Only the after side carries names: both sides are named from them.
           {plain, snap, "pod and service names from the snapshot " + snap + " (snapshot --k8s)"},
       }) {
    INFO(c.before << " -> " << c.after);
    auto o = run_cli(kNamesRegistry, {"compare", "--before", c.before, "--after", c.after,
                                      "--flows", flows, "--all", "-o", "json"});
    INFO(o.err);
    REQUIRE(o.code == 0);
    json cmp = json::parse(o.out);
    CHECK(cmp["names_source"] == c.names_source);
    REQUIRE(cmp["flows"].size() == 2);
    CHECK(cmp["flows"][0]["flow"]["src_name"] == "client/client");
    CHECK(cmp["flows"][0]["flow"]["dst_name"] == "stars/frontend");
    CHECK(cmp["flows"][1]["flow"]["dst_name"] == "management-ui/management-ui");
    auto text = run_cli(kNamesRegistry, {"compare", "--before", c.before, "--after", c.after,
                                         "--flows", flows, "--all"});
    CHECK_THAT(text.out, Catch::Contains("client/client -> stars/frontend"));
  }
  // Without names on either side, a flow that names a pod says what is missing.
  auto none =
      run_cli(kNamesRegistry, {"compare", "--before", plain, "--after", plain, "--flows", flows});
  CHECK(none.code == 3);
  CHECK_THAT(none.err, Catch::Contains("client/client"));
}

TEST_CASE("names: the container runtime (crictl) on a live node", "[unit]") {
  const std::vector<std::string> by_addr = {"--src",     "10.65.0.2", "--dst",
                                            "10.65.0.3", "--dport",   "80"};
  SECTION("the pods and addresses crictl lists name the flow") {
    Env env(true, nullptr);
    json rep = report(live(by_addr));
    CHECK(rep["flow"]["src_name"] == "client/client");
    CHECK(rep["flow"]["dst_name"] == "stars/frontend");
    CHECK(has_line(rep, "pod names from the container runtime (crictl, 5 pods on this node)"));
    // ns/pod from the runtime's address (the fixture node has no interfaces to find it by).
    json by_name =
        report(live({"--src", "client/client", "--dst", "stars/frontend", "--dport", "80"}));
    CHECK(by_name["verdict"] == "allow");
    CHECK(has_line(by_name, "--src pod client/client is 10.65.0.2 (from the container runtime"));
  }
  SECTION("with --k8s, --k8s wins and the runtime adds what it lacks") {
    Env env(true, nullptr);
    json rep = report(live({"--src", "10.65.0.2", "--dst", "stars/frontend:80", "--k8s", kSeedK8s}),
                      2);  // the service's ClusterIP: no row in the fixture's table
    CHECK(rep["flow"]["dst_name"] == "service stars/frontend");
    CHECK(has_line(rep, "pod and service names from --k8s " + kSeedK8s +
                            " and the container runtime (crictl, 5 pods on this node)"));
  }
  SECTION("a failing crictl is a note, not an error") {
    Env env(true, "down");
    json rep = report(live(by_addr));
    CHECK_FALSE(rep["flow"].contains("src_name"));
    CHECK(has_line(rep,
                   "no pod names from the container runtime: `crictl pods --state ready -o "
                   "...` failed (exit 1: time="));
  }
  SECTION("inspectp failing leaves names without addresses") {
    Env env(true, "no-inspectp");
    json rep = report(live(by_addr));
    CHECK_FALSE(rep["flow"].contains("src_name"));  // no address, and no routes to hash
    CHECK(has_line(rep, "pods of the container runtime without addresses"));
    CHECK(has_line(rep, "pod names from the container runtime (crictl, 5 pods on this node)"));
  }
  SECTION("no crictl on PATH, or --no-crictl") {
    Env env(false, nullptr);
    json rep = report(live(by_addr));
    CHECK(has_line(rep, "no pod names from the container runtime: crictl is not on PATH"));
    // --k8s names them: no crictl is then nothing to mention.
    std::vector<std::string> with_k8s = by_addr;
    with_k8s.insert(with_k8s.end(), {"--k8s", kSeedK8s});
    json named = report(live(with_k8s));
    CHECK(named["flow"]["src_name"] == "client/client");
    for (const auto& a : named["assumptions"])
      CHECK_THAT(a.get<std::string>(), !Catch::Contains("crictl"));
    Env fake(true, nullptr);
    std::vector<std::string> args = by_addr;
    args.push_back("--no-crictl");
    json off = report(live(args));
    CHECK_FALSE(off["flow"].contains("src_name"));
    for (const auto& a : off["assumptions"])
      CHECK_THAT(a.get<std::string>(), !Catch::Contains("crictl"));
  }
}
