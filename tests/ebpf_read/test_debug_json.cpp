#include <string>

#include <catch2/catch.hpp>

#include "backends/ebpf/debug_json.h"

using namespace dpi::ebpf;

TEST_CASE("debug JSON: file names", "[unit]") {
  struct Row {
    const char* name;
    bool ok;
    const char* iface;
    PolicyDir dir;
    int family;
  };
  const Row rows[] = {
      {"cali12345678901_egress_v4.json", true, "cali12345678901", PolicyDir::egress, 4},
      {"/var/run/calico/bpf/policy/eth0_ingress_v6.json", true, "eth0", PolicyDir::ingress, 6},
      {"bond_0_xdp_v4.json", true, "bond_0", PolicyDir::xdp, 4},
      {"cali1_egress_v5.json", false, "", PolicyDir::ingress, 0},
      {"cali1_sideways_v4.json", false, "", PolicyDir::ingress, 0},
      {"_egress_v4.json", false, "", PolicyDir::ingress, 0},
      {"cali1_egress_v4.txt", false, "", PolicyDir::ingress, 0},
  };
  for (const Row& r : rows) {
    INFO(r.name);
    auto n = parse_debug_file_name(r.name);
    REQUIRE(n.ok() == r.ok);
    if (!r.ok) continue;
    CHECK(n->iface == r.iface);
    CHECK(n->dir == r.dir);
    CHECK(n->family == r.family);
  }
  CHECK(debug_file_name({"cali9", PolicyDir::ingress, 6}) == "cali9_ingress_v6.json");
}

TEST_CASE("debug JSON: instructions, labels, comments", "[unit]") {
  const char* text = R"({"ifacename":"cali1","hook":"tc egress","policyInfo":[
    {"inst":[191,22,0,0,0,0,0,0],"labels":["start"],"comments":null,"annotation":"R6 = R1"},
    {"inst":[24,17,0,0,5,0,0,0],"labels":null,"comments":["Load packet metadata saved by previous program"]},
    {"inst":[0,0,0,0,0,0,0,0]},
    {"inst":[183,0,0,0,2,0,0,0],"comments":["##### Start of program 1 #####"]},
    {"inst":[149,0,0,0,0,0,0,0]}],"error":"load failed: x"})";
  auto p = parse_debug_json(text, "f.json");
  REQUIRE(p.ok());
  CHECK(p->iface == "cali1");
  CHECK(p->hook == "tc egress");
  CHECK(p->error == "load failed: x");
  REQUIRE(p->insns.size() == 5);
  CHECK(p->insns[0].labels == std::vector<std::string>{"start"});
  CHECK(p->insns[0].annotation == "R6 = R1");
  CHECK(p->insns[1].insn.code() == 0x18);
  CHECK(p->insns[1].insn.dst() == 1);
  CHECK(p->insns[1].insn.src() == 1);
  CHECK(p->insns[1].insn.imm() == 5);
  REQUIRE(p->subprograms.size() == 2);
  CHECK(p->subprograms[0].count == 3);
  CHECK(p->subprograms[1].first == 3);
  CHECK(p->subprograms[1].count == 2);
  auto sub1 = p->program(1);
  REQUIRE(sub1.size() == 2);
  CHECK(sub1[1].code() == 0x95);
  CHECK(p->subprogram_of(4)->k == 1);
}

TEST_CASE("debug JSON: bad input is one line naming file and item", "[unit]") {
  struct Row {
    const char* text;
    const char* message;
  };
  const Row rows[] = {
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[1,2,3)",
       "x.json: JSON: parse error at line 1, column 57: syntax error while parsing array - "
       "unexpected end of input; expected ']'"},
      {R"([1,2])", "x.json: document: not a JSON object"},
      {R"({"hook":"h","policyInfo":[]})", "x.json: ifacename: missing"},
      {R"({"ifacename":7,"hook":"h","policyInfo":[]})", "x.json: ifacename: not a string"},
      {R"({"ifacename":"c","hook":"h"})", "x.json: policyInfo: missing"},
      {R"({"ifacename":"c","hook":"h","policyInfo":{}})", "x.json: policyInfo: not an array"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[1,2,3,4,5,6,7]}]})",
       "x.json: policyInfo[0].inst: 7 numbers (want 8)"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[1,2,3,4,5,6,7,256]}]})",
       "x.json: policyInfo[0].inst[7]: not a byte (0-255)"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[1,2,3,4,5,6,7,-1]}]})",
       "x.json: policyInfo[0].inst[7]: not a byte (0-255)"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":"AQIDBAUGBwg="}]})",
       "x.json: policyInfo[0].inst: not an array"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{}]})", "x.json: policyInfo[0].inst: missing"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[0,0,0,0,0,0,0,0],"comments":[1]}]})",
       "x.json: policyInfo[0].comments[0]: not a string"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[{"inst":[0,0,0,0,0,0,0,0],"labels":"a"}]})",
       "x.json: policyInfo[0].labels: not an array"},
      {R"({"ifacename":"c","hook":"h","policyInfo":[
          {"inst":[0,0,0,0,0,0,0,0]},
          {"inst":[0,0,0,0,0,0,0,0],"comments":["##### Start of program 2 #####"]}]})",
       "x.json: policyInfo[1]: sub-program 2 starts here, expected 1"},
  };
  for (const Row& r : rows) {
    INFO(r.text);
    auto p = parse_debug_json(r.text, "x.json");
    REQUIRE_FALSE(p.ok());
    CHECK(p.error().message == r.message);
    CHECK(p.error().message.find('\n') == std::string::npos);
  }
  auto missing = load_debug_json("/nonexistent/cali1_egress_v4.json");
  REQUIRE_FALSE(missing.ok());
}
