// iptables-nft compat payloads and ipsets read live from a throwaway network namespace.
// Also holds the (hidden) case that captures tests/fixtures/xt/captured.json:
//   dpinspect_privileged_tests "[.xtcapture]"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends/linux/netns.h"
#include "backends/nftables/xt/decode.h"
#include "backends/nftables/xt/ipsets.h"
#include "backends/nftables/xt/nl_dump.h"
#include "backends/nftables/xt/xt_payloads.h"
#include "privileged.h"

namespace {

using nlohmann::json;
using namespace dpi::nft;
using dpi::os::in_netns;

std::string fixture(const std::string& name) {
  return std::string(DPI_SOURCE_DIR) + "/tests/fixtures/xt/" + name;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs cmd with input on stdin; returns its exit status.
int run_in(const std::string& cmd, const std::string& input) {
  FILE* p = popen(cmd.c_str(), "w");
  if (!p) return -1;
  std::fwrite(input.data(), 1, input.size(), p);
  return dpi::test::exit_status(pclose(p));
}

std::string run_out(const std::string& cmd) {
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "";
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

class XtNetns {
 public:
  XtNetns() : name_(fmt::format("dpi-xt-{}", getpid())) {
    created_ = dpi::test::exit_status(std::system(("ip netns add " + name_).c_str())) == 0;
  }
  XtNetns(const XtNetns&) = delete;
  XtNetns& operator=(const XtNetns&) = delete;
  ~XtNetns() {
    if (created_) std::system(("ip netns del " + name_).c_str());
  }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }
  std::string exec(const std::string& cmd) const { return "ip netns exec " + name_ + " " + cmd; }

 private:
  std::string name_;
  bool created_ = false;
};

// "-A CHAIN rest" lines of a restore file: chain -> rule text.
std::map<std::string, std::string> rule_lines(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("-A ", 0) != 0) continue;
    auto sp = line.find(' ', 3);
    out[line.substr(3, sp - 3)] = line.substr(sp + 1);
  }
  return out;
}

void load(const XtNetns& ns) {
  REQUIRE(run_in(ns.exec("ipset restore"), slurp(fixture("capture.ipsets"))) == 0);
  REQUIRE(run_in(ns.exec("iptables-nft-restore"), slurp(fixture("capture-v4.rules"))) == 0);
  REQUIRE(run_in(ns.exec("ip6tables-nft-restore"), slurp(fixture("capture-v6.rules"))) == 0);
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string s;
  for (uint8_t b : v) s += fmt::format("{:02x}", b);
  return s;
}

}  // namespace

TEST_CASE("xt payloads and ipsets read over netlink match what was loaded", "[privileged]") {
  DPI_REQUIRE_ROOT();
  XtNetns ns;
  REQUIRE(ns.created());
  load(ns);

  auto payloads = in_netns(ns.name(), read_xt_payloads);
  REQUIRE(payloads.ok());
  auto ipsets = in_netns(ns.name(), read_ipsets);
  REQUIRE(ipsets.ok());

  // Every rule nft lists with xt statements has the same xt names, in order, under the same
  // handle; no payload belongs to a rule nft does not list.
  json doc = json::parse(run_out(ns.exec("nft -j -a list ruleset")));
  std::size_t rules_with_xt = 0;
  for (const auto& item : doc.at("nftables")) {
    if (!item.contains("rule")) continue;
    const json& r = item["rule"];
    std::vector<std::string> names;
    for (const auto& st : r.at("expr"))
      if (st.contains("xt")) names.push_back(st["xt"].value("name", ""));
    RuleKey key{r.at("family"), r.at("table"), r.at("chain"), r.at("handle").get<uint64_t>()};
    auto it = payloads->find(key);
    if (names.empty()) {
      CHECK(it == payloads->end());
      continue;
    }
    ++rules_with_xt;
    INFO(key.family << " " << key.table << " " << key.chain << " handle " << key.handle);
    REQUIRE(it != payloads->end());
    REQUIRE(it->second.size() == names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      CHECK(it->second[i].name == names[i]);
      CHECK_FALSE(it->second[i].info.empty());
    }
  }
  CHECK(payloads->size() == rules_with_xt);
  CHECK(rules_with_xt > 30);

  // A few payloads by content.
  auto chain_xt = [&](const std::string& family, const std::string& table,
                      const std::string& chain) {
    for (const auto& [k, v] : *payloads)
      if (k.family == family && k.table == table && k.chain == chain) return v;
    return std::vector<XtExpr>{};
  };
  auto mark = chain_xt("ip", "filter", "x-mark-xmark");
  REQUIRE(mark.size() == 1);
  CHECK(mark[0].target);
  CHECK(mark[0].name == "MARK");
  CHECK(mark[0].rev == 2);
  CHECK(hex(mark[0].info) == "0000010000000100");  // mark 0x10000, mask 0x10000 (host order)
  auto cmt = chain_xt("ip", "filter", "x-comment");
  REQUIRE(cmt.size() == 1);
  CHECK(std::string(reinterpret_cast<const char*>(cmt[0].info.data())) == "cali:abc");

  // ipsets: names, types, families, members (nomatch included), list:set members, and the
  // kernel index in creation order (a fresh namespace never destroyed a set). `ipset save`
  // prints list:set sets last, so its numbering only agrees among the other sets.
  std::string saved = run_out(ns.exec("ipset save"));
  auto from_save = parse_ipset_save(saved, "ipset save");
  REQUIRE(from_save.ok());
  REQUIRE(ipsets->sets.size() == 6);
  REQUIRE(from_save->sets.size() == ipsets->sets.size());
  const std::vector<std::string> order = {"cali40s:xyz", "cali40n:web", "cali40all-hosts-net",
                                          "cali40list",  "cali60s:v6",  "cali60n:web"};
  for (std::size_t i = 0; i < order.size(); ++i) {
    INFO(order[i]);
    const Ipset* s = ipsets->by_name(order[i]);
    REQUIRE(s);
    CHECK(s->index == i);
    const Ipset* t = from_save->by_name(order[i]);
    REQUIRE(t);
    if (s->type != "list:set") {
      const Ipset* next = i + 1 < order.size() ? ipsets->by_name(order[i + 1]) : nullptr;
      const Ipset* next_saved = next ? from_save->by_name(order[i + 1]) : nullptr;
      if (next && next->type != "list:set")
        CHECK((next_saved->index > t->index) == (next->index > s->index));
    }
    CHECK(t->type == s->type);
    CHECK(t->family == s->family);
    CHECK(t->key_types == s->key_types);
    CHECK(t->list_members == s->list_members);
    REQUIRE(t->members.size() == s->members.size());
    // Both list members in the kernel's order.
    for (std::size_t m = 0; m < s->members.size(); ++m) {
      CHECK(t->members[m].nomatch == s->members[m].nomatch);
      REQUIRE(t->members[m].key.size() == s->members[m].key.size());
      for (std::size_t k = 0; k < s->members[m].key.size(); ++k) {
        CHECK(t->members[m].key[k].lo == s->members[m].key[k].lo);
        CHECK(t->members[m].key[k].hi == s->members[m].key[k].hi);
      }
    }
  }
  const Ipset* xyz = ipsets->by_name("cali40s:xyz");
  CHECK(xyz->type == "hash:net");
  CHECK(xyz->family == 2);
  CHECK(std::count_if(xyz->members.begin(), xyz->members.end(),
                      [](const IpsetMember& m) { return m.nomatch; }) == 1);
  CHECK(ipsets->by_name("cali40list")->list_members ==
        std::vector<std::string>{"cali40s:xyz", "cali40all-hosts-net"});
  // The restore input, in creation order, numbers sets as the kernel does.
  auto from_restore = parse_ipset_save(slurp(fixture("capture.ipsets")), "capture.ipsets");
  REQUIRE(from_restore.ok());
  for (const auto& s : ipsets->sets) CHECK(from_restore->by_name(s.name)->index == s.index);
  CHECK(ipsets->by_name("cali60n:web")->key_types ==
        std::vector<Type>{Type::ipv6, Type::inet_proto, Type::inet_service});

  // The live set match decodes against the live catalog.
  Ruleset rs;
  std::string fam = "ip", table = "filter";
  XtContext ctx{rs, &*ipsets, fam, table};
  auto set_src = chain_xt("ip", "filter", "x-set-src");
  REQUIRE(set_src.size() == 1);
  std::string why;
  auto d = decode_xt(set_src[0], ctx, &why);
  REQUIRE(d);
  REQUIRE(d->stmts.size() == 1);
  auto* m = std::get_if<MatchStmt>(&d->stmts[0]);
  REQUIRE(m);
  REQUIRE(m->set);
  auto ip = [](uint8_t a, uint8_t b, uint8_t c, uint8_t e) {
    return Bytes::from_uint((uint32_t(a) << 24) | (uint32_t(b) << 16) | (uint32_t(c) << 8) | e, 4);
  };
  CHECK(m->set->find(ip(10, 65, 0, 1)));
  CHECK_FALSE(m->set->find(ip(10, 65, 1, 1)));  // nomatch 10.65.1.0/24
  CHECK(m->set->find(ip(10, 65, 1, 7)));        // more specific than the nomatch entry
}

TEST_CASE("read_ipsets in a namespace without sets is empty", "[privileged]") {
  DPI_REQUIRE_ROOT();
  XtNetns ns;
  REQUIRE(ns.created());
  auto c = in_netns(ns.name(), read_ipsets);
  REQUIRE(c.ok());
  CHECK(c->sets.empty());
  auto p = in_netns(ns.name(), read_xt_payloads);
  REQUIRE(p.ok());
  CHECK(p->empty());
}

TEST_CASE("capture xt fixture payloads", "[.xtcapture]") {
  DPI_REQUIRE_ROOT();
  XtNetns ns;
  REQUIRE(ns.created());
  load(ns);
  auto payloads = in_netns(ns.name(), read_xt_payloads);
  REQUIRE(payloads.ok());
  auto lines4 = rule_lines(slurp(fixture("capture-v4.rules")));
  auto lines6 = rule_lines(slurp(fixture("capture-v6.rules")));
  json cases = json::object();
  for (const auto& [k, xs] : *payloads) {
    const auto& lines = k.family == "ip6" ? lines6 : lines4;
    auto it = lines.find(k.chain);
    if (it == lines.end()) continue;
    json list = json::array();
    for (const auto& x : xs)
      list.push_back(
          {{"target", x.target}, {"name", x.name}, {"rev", x.rev}, {"info", hex(x.info)}});
    cases[k.chain] = {{"family", k.family}, {"table", k.table}, {"rule", it->second}, {"xt", list}};
  }
  json out = {
      {"captured_with", run_out("iptables-nft --version") + "kernel " + run_out("uname -r")},
      {"ipset_save", run_out(ns.exec("ipset save"))},
      {"cases", cases}};
  const char* dest = std::getenv("DPI_XT_CAPTURE_OUT");
  std::ofstream(dest ? dest : fixture("captured.json")) << out.dump(1) << "\n";
  CHECK(cases.size() > 30);
}

namespace {

// Reply messages as nl_dump received them, each padded to netlink alignment, as one buffer.
struct DumpCapture {
  std::vector<uint32_t> words;  // 4-byte aligned storage, like a receive buffer
  std::size_t bytes = 0;
  void add(const nlmsghdr* nlh) {
    std::size_t len = NLMSG_ALIGN(nlh->nlmsg_len);
    words.resize((bytes + len) / 4);
    std::memcpy(reinterpret_cast<char*>(words.data()) + bytes, nlh, nlh->nlmsg_len);
    bytes += len;
  }
  const void* data() const { return words.data(); }
};

// Runs read in ns with every reply message captured.
template <class F>
auto captured_read(const XtNetns& ns, F read, DumpCapture& cap) {
  xt::g_nl_capture = [&](const nlmsghdr* nlh) { cap.add(nlh); };
  auto r = in_netns(ns.name(), read);
  xt::g_nl_capture = nullptr;
  return r;
}

// Saves a capture as a fuzz seed of tests/fuzz/parse_netlink_dump.cpp: one selector byte, then
// the messages.
void save_seed(const DumpCapture& cap, uint8_t selector, const std::string& file) {
  const char* dir = std::getenv("DPI_NL_CAPTURE_DIR");
  if (!dir) return;
  std::ofstream out(std::string(dir) + "/" + file, std::ios::binary);
  out.put(static_cast<char>(selector));
  out.write(static_cast<const char*>(cap.data()), static_cast<std::streamsize>(cap.bytes));
}

}  // namespace

// The offline parsers (fuzzed at the message level) are the live readers' own: the bytes the
// kernel sent, replayed, give the same payloads and sets.
TEST_CASE("saved netlink dumps replay to what the live read gave", "[privileged]") {
  DPI_REQUIRE_ROOT();
  XtNetns ns;
  REQUIRE(ns.created());
  load(ns);
  DumpCapture xt_cap, set_cap;
  auto payloads = captured_read(ns, read_xt_payloads, xt_cap);
  auto ipsets = captured_read(ns, read_ipsets, set_cap);
  REQUIRE(payloads.ok());
  REQUIRE(ipsets.ok());
  REQUIRE(xt_cap.bytes > 0);
  REQUIRE(set_cap.bytes > 0);

  auto replayed = xt_payloads_from_dump(xt_cap.data(), xt_cap.bytes);
  REQUIRE(replayed.ok());
  CHECK(payloads->size() > 30);
  CHECK(*replayed == *payloads);
  auto sets = ipsets_from_dump(set_cap.data(), set_cap.bytes);
  REQUIRE(sets.ok());
  REQUIRE(sets->sets.size() == 6);
  CHECK(sets->sets == ipsets->sets);

  // A dump cut in the middle of a message is refused, naming where.
  auto cut = xt_payloads_from_dump(xt_cap.data(), xt_cap.bytes - 3);
  REQUIRE_FALSE(cut.ok());
  CHECK_THAT(cut.error().message, Catch::Contains("cut short"));

  save_seed(xt_cap, 0, "seed-xt-rules.bin");
  save_seed(set_cap, 1, "seed-ipsets.bin");
}
