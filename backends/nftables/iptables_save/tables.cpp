// Assembles tables, chains and rules from iptables-save text: "*table", ":CHAIN POLICY [p:b]",
// "-A CHAIN ...", "COMMIT". Base chains get the hooks, types and priorities iptables-nft gives
// the legacy tables, so hook order and NAT handling match the live path.
#include <map>
#include <set>

#include <fmt/format.h>

#include "backends/nftables/iptables_save/internal.h"
#include "backends/nftables/iptables_save/iptables_save.h"
#include "backends/nftables/json_loader.h"
#include "backends/nftables/xt/decoders.h"

namespace dpi::nft {

namespace ipt {
namespace {

struct Builtin {
  const char* name;
  Hook hook;
  int priority;
  const char* type;
};

// NF_IP_PRI_*: raw -300, mangle -150, nat dstnat -100 / srcnat 100, filter 0, security 50.
const std::vector<Builtin>* builtins(std::string_view table) {
  static const std::map<std::string, std::vector<Builtin>, std::less<>> k = {
      {"filter",
       {{"INPUT", Hook::input, 0, "filter"},
        {"FORWARD", Hook::forward, 0, "filter"},
        {"OUTPUT", Hook::output, 0, "filter"}}},
      {"nat",
       {{"PREROUTING", Hook::prerouting, -100, "nat"},
        {"INPUT", Hook::input, 100, "nat"},
        {"OUTPUT", Hook::output, -100, "nat"},
        {"POSTROUTING", Hook::postrouting, 100, "nat"}}},
      {"mangle",
       {{"PREROUTING", Hook::prerouting, -150, "filter"},
        {"INPUT", Hook::input, -150, "filter"},
        {"FORWARD", Hook::forward, -150, "filter"},
        {"OUTPUT", Hook::output, -150, "route"},
        {"POSTROUTING", Hook::postrouting, -150, "filter"}}},
      {"raw",
       {{"PREROUTING", Hook::prerouting, -300, "filter"},
        {"OUTPUT", Hook::output, -300, "filter"}}},
      {"security",
       {{"INPUT", Hook::input, 50, "filter"},
        {"FORWARD", Hook::forward, 50, "filter"},
        {"OUTPUT", Hook::output, 50, "filter"}}},
  };
  auto it = k.find(table);
  return it == k.end() ? nullptr : &it->second;
}

// Extension targets iptables knows but dpinspect does not model: "-j NAME" with one of these is
// an unknown statement; any other name must be a chain of the table.
bool unmodelled_target(std::string_view n) {
  static const std::set<std::string, std::less<>> k = {
      "AUDIT",   "CHECKSUM", "CLASSIFY", "CLUSTERIP", "CONNSECMARK", "DNPT",
      "DSCP",    "ECN",      "HL",       "HMARK",     "IDLETIMER",   "LED",
      "MIRROR",  "NETMAP",   "NFQUEUE",  "QUEUE",     "RATEEST",     "SAME",
      "SECMARK", "SET",      "SNPT",     "SYNPROXY",  "TCPMSS",      "TCPOPTSTRIP",
      "TEE",     "TOS",      "TPROXY",   "TRACE",     "TTL",         "ULOG"};
  return k.count(n) != 0;
}

std::string quote(const std::string& s) {
  if (!s.empty() && s.find_first_of(" \t\"\\") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + '"';
}

struct PendingJump {
  Chain* chain;
  std::size_t rule, stmt;
  std::string target;
  bool go_to;
  int line;
};

class Parser {
 public:
  Parser(std::string origin, const IptablesSaveOptions& opts)
      : origin_(std::move(origin)), opts_(opts), rs_(std::make_unique<Ruleset>()) {
    rs_->origin = origin_;
  }

  Result<std::unique_ptr<Ruleset>> run(std::string_view text);

 private:
  Error err(int line, const std::string& what) {
    return make_error(ErrorCode::bad_input, fmt::format("{}:{}: {}", origin_, line, what));
  }
  std::string where(int line) const { return fmt::format("{}:{}", origin_, line); }
  Status start_table(int line, const std::string& name);
  Status declare_chain(int line, const std::vector<Token>& t);
  Result<Chain*> chain_for_rule(int line, const std::string& name);
  Status add_rule(int line, std::string_view text, std::vector<Token> t);
  Status commit(int line);

  std::string origin_;
  const IptablesSaveOptions& opts_;
  std::unique_ptr<Ruleset> rs_;
  std::string family_ = "ip";
  // The table being read.
  Table* table_ = nullptr;
  int table_line_ = 0;
  std::map<std::string, Chain*> chains_;
  std::vector<PendingJump> pending_;
  std::set<std::string> done_tables_;
};

Status Parser::start_table(int line, const std::string& name) {
  if (table_)
    return err(line, fmt::format("'*{}' while table {} (line {}) has no COMMIT yet", name,
                                 table_->name, table_line_));
  if (!builtins(name))
    return err(
        line,
        fmt::format("unknown table '{}' (expected filter, nat, mangle, raw or security)", name));
  if (!done_tables_.insert(name).second)
    return err(line, fmt::format("table {} appears twice", name));
  rs_->tables.push_back(Table{family_, name, {}});
  table_ = &rs_->tables.back();
  table_line_ = line;
  chains_.clear();
  pending_.clear();
  return Ok{};
}

Chain* make_chain(Ruleset& rs, Table& t, const std::string& name) {
  Chain c;
  c.family = t.family;
  c.table = t.name;
  c.name = name;
  for (const auto& b : *builtins(t.name))
    if (name == b.name) {
      c.base = true;
      c.hook = b.hook;
      c.priority = b.priority;
      c.type = b.type;
    }
  rs.chains.push_back(std::move(c));
  t.chains.push_back(&rs.chains.back());
  return &rs.chains.back();
}

bool is_builtin(std::string_view table, std::string_view chain) {
  for (const auto& b : *builtins(table))
    if (chain == b.name) return true;
  return false;
}

Status Parser::declare_chain(int line, const std::vector<Token>& t) {
  // ":NAME POLICY [packets:bytes]"
  std::string name = t[0].s.substr(1);
  if (name.empty() || t.size() < 2 || t.size() > 3)
    return err(line, fmt::format("expected ':CHAIN POLICY [packets:bytes]', got '{}'", t[0].s));
  if (chains_.count(name))
    return err(line, fmt::format("chain {} is declared twice in table {}", name, table_->name));
  const std::string& policy = t[1].s;
  bool builtin = is_builtin(table_->name, name);
  if (builtin && policy != "ACCEPT" && policy != "DROP")
    return err(line, fmt::format("chain {}: policy '{}' (expected ACCEPT or DROP)", name, policy));
  if (!builtin && policy != "-")
    return err(
        line,
        fmt::format(
            "chain {} is not a built-in chain of table {}, so its policy must be '-', not '{}'",
            name, table_->name, policy));
  Chain* c = make_chain(*rs_, *table_, name);
  if (builtin) c->policy = policy == "DROP" ? VerdictKind::drop : VerdictKind::accept;
  chains_[name] = c;
  return Ok{};
}

Result<Chain*> Parser::chain_for_rule(int line, const std::string& name) {
  auto it = chains_.find(name);
  if (it != chains_.end()) return it->second;
  // Built-in chains exist without a declaration; user chains need ":NAME - [0:0]" (or -N).
  if (!is_builtin(table_->name, name))
    return err(
        line,
        fmt::format(
            "rule for chain {}, which is not declared in table {} (expected ':{} - [0:0]' first)",
            name, table_->name, name));
  Chain* c = make_chain(*rs_, *table_, name);
  chains_[name] = c;
  return c;
}

Status Parser::add_rule(int line, std::string_view text, std::vector<Token> t) {
  // [packets:bytes] prefix from iptables-save -c.
  std::optional<std::pair<uint64_t, uint64_t>> counters;
  if (!t.empty() && !t[0].quoted && t[0].s.size() > 2 && t[0].s.front() == '[' &&
      t[0].s.back() == ']') {
    unsigned long long p = 0, b = 0;
    if (std::sscanf(t[0].s.c_str(), "[%llu:%llu]", &p, &b) != 2)
      return err(line, fmt::format("'{}' is not a [packets:bytes] counter", t[0].s));
    counters = {p, b};
    t.erase(t.begin());
    auto dash = text.find('-');
    text = text.substr(dash == std::string_view::npos ? 0 : dash);
  }
  if (t.empty()) return err(line, "empty rule");
  const std::string& cmd = t[0].s;
  if (cmd == "-N" || cmd == "--new-chain") {
    if (t.size() != 2) return err(line, "expected '-N CHAIN'");
    std::vector<Token> decl{Token{":" + t[1].s}, Token{"-"}};
    return declare_chain(line, decl);
  }
  bool insert = cmd == "-I" || cmd == "--insert";
  if (cmd != "-A" && cmd != "--append" && !insert)
    return err(
        line,
        fmt::format(
            "'{}': expected ':CHAIN POLICY [p:b]', '-A CHAIN ...', '-I CHAIN ...', '-N CHAIN' or "
            "'COMMIT'",
            cmd));
  if (t.size() < 2) return err(line, fmt::format("'{}' without a chain name", cmd));
  auto chain = chain_for_rule(line, t[1].s);
  if (!chain) return chain.error();
  std::size_t i = 2, pos = (*chain)->rules.size();
  if (insert) {
    pos = 0;
    if (i < t.size() && !t[i].quoted && !t[i].s.empty() &&
        std::isdigit(static_cast<unsigned char>(t[i].s[0]))) {
      std::string why;
      auto n = parse_u32(t[i].s, &why);
      if (!n || *n == 0 || *n > (*chain)->rules.size() + 1)
        return err(line, fmt::format("-I {} {}: rule number out of range", t[1].s, t[i].s));
      pos = *n - 1;
      ++i;
    }
  }

  XtContext xtc{*rs_, opts_.ipsets, table_->family, table_->name};
  RuleCtx ctx{xtc, family_ == "ip6", std::nullopt, where(line)};
  std::vector<Stmt> generic;
  std::vector<Module> modules;
  std::vector<bool> module_known;
  std::optional<Module> target;
  bool go_to = false;
  std::string why;

  auto value = [&](const std::string& opt, bool* inv) -> Result<std::string> {
    if (i < t.size() && t[i].is("!")) {  // old "-s ! addr" form
      *inv = !*inv;
      ++i;
    }
    if (i >= t.size()) return err(line, fmt::format("{} needs a value", opt));
    return t[i++].s;
  };
  auto take_args = [&](Opt& o, int n) -> Status {
    for (int k = 0; k < n; ++k) {
      if (i >= t.size() || (t[i].is("!") && k == 0))
        return err(line, fmt::format("{} needs {} value{}", o.name, n, n == 1 ? "" : "s"));
      o.args.push_back(t[i++].s);
    }
    return Ok{};
  };
  auto add_text = [](std::string& text, const Opt& o) {
    text += (o.invert ? " ! " : " ") + o.name;
    for (const auto& a : o.args) text += " " + quote(a);
  };
  // An option a known module takes: its canonical name and values, added to the module's text.
  auto attach = [&](Module& m, Opt opt, const auto& spec) -> Status {
    opt.name = spec.canonical;
    if (auto st = take_args(opt, spec.nargs); !st) return st;
    add_text(m.text, opt);
    m.opts.push_back(std::move(opt));
    return Ok{};
  };

  while (i < t.size()) {
    bool inv = false;
    if (t[i].is("!")) {
      inv = true;
      if (++i >= t.size()) return err(line, "'!' at the end of the rule");
    }
    const Token& tok = t[i++];
    const std::string& o = tok.s;
    if (tok.quoted || o.empty() || o[0] != '-')
      return err(line, fmt::format("unexpected '{}' (expected an option)", o));
    if (o == "-s" || o == "--source" || o == "-d" || o == "--destination") {
      auto v = value(o, &inv);
      if (!v) return v.error();
      auto r = parse_addr(*v, ctx.v6, &why);
      if (!r) return err(line, fmt::format("{} {}: {}", o, *v, why));
      // 0.0.0.0/0 tests nothing (iptables-nft adds no expression for it).
      bool any = r->lo == Bytes::from_uint(0, r->lo.len);
      for (std::size_t b = 0; b < r->hi.len; ++b) any = any && r->hi.d[b] == 0xff;
      if (any && !inv) continue;
      bool src = o == "-s" || o == "--source";
      Key k =
          ctx.v6 ? (src ? Key::ip6_saddr : Key::ip6_daddr) : (src ? Key::ip_saddr : Key::ip_daddr);
      MatchStmt m = xt::match_range(xt::operand(k, ctx.v6 ? Type::ipv6 : Type::ipv4), 0, 0);
      m.range = *r;
      if (inv) m.op = Op::ne;
      generic.push_back(std::move(m));
    } else if (o == "-p" || o == "--protocol") {
      auto v = value(o, &inv);
      if (!v) return v.error();
      if (*v == "all" || *v == "0") {
        if (inv)
          generic.push_back(
              xt::match_range(xt::operand(Key::meta_l4proto, Type::inet_proto), 0, 255, true));
        continue;
      }
      auto p = parse_proto(*v, &why);
      if (!p) return err(line, fmt::format("{} {}: {}", o, *v, why));
      MatchStmt m = xt::match_range(xt::operand(Key::meta_l4proto, Type::inet_proto), *p, *p);
      if (inv)
        m.op = Op::ne;
      else
        ctx.proto = *p;
      generic.push_back(std::move(m));
    } else if (o == "-i" || o == "--in-interface" || o == "-o" || o == "--out-interface") {
      auto v = value(o, &inv);
      if (!v) return v.error();
      auto r = parse_iface(*v, &why);
      if (!r) return err(line, fmt::format("{} {}: {}", o, *v, why));
      bool in = o == "-i" || o == "--in-interface";
      MatchStmt m = xt::match_range(
          xt::operand(in ? Key::meta_iifname : Key::meta_oifname, Type::ifname), 0, 0);
      m.range = *r;
      if (inv) m.op = Op::ne;
      generic.push_back(std::move(m));
    } else if (o == "-f" || o == "--fragment") {
      generic.push_back(UnknownStmt{inv ? "! -f" : "-f", "fragment matching (-f) is not modelled"});
    } else if (o == "-4" || o == "--ipv4" || o == "-6" || o == "--ipv6") {
      continue;
    } else if (o == "-c" || o == "--set-counters") {
      if (i + 1 >= t.size()) return err(line, fmt::format("{} needs packets and bytes", o));
      i += 2;
    } else if (o == "-m" || o == "--match") {
      if (inv) return err(line, "'!' before -m");
      if (i >= t.size()) return err(line, "-m needs a match name");
      std::string name = t[i++].s;
      modules.push_back(Module{name, {}, "-m " + name});
      module_known.push_back(match_known(name));
    } else if (o == "-j" || o == "--jump" || o == "-g" || o == "--goto") {
      if (inv) return err(line, fmt::format("'!' before {}", o));
      if (target) return err(line, "more than one -j/-g");
      if (i >= t.size()) return err(line, fmt::format("{} needs a target", o));
      go_to = o == "-g" || o == "--goto";
      std::string name = t[i++].s;
      target = Module{name, {}, (go_to ? "-g " : "-j ") + name};
    } else {
      // A match or target option: the target's, else the latest match that knows it, else the
      // implicit protocol match of -p, else the latest unknown match takes it as text.
      Opt opt{o, inv, {}};
      if (target && target_known(target->name)) {
        if (auto spec = target_option(target->name, o)) {
          if (auto st = attach(*target, std::move(opt), *spec); !st) return st;
          continue;
        }
      }
      Module* owner = nullptr;
      for (std::size_t k = modules.size(); k-- > 0 && !owner;)
        if (module_known[k] && match_option(modules[k].name, o)) owner = &modules[k];
      if (!owner && ctx.proto) {
        static const std::map<int, std::string> kImplicit = {
            {6, "tcp"}, {17, "udp"}, {132, "sctp"}, {1, "icmp"}, {58, "icmp6"}};
        auto im = kImplicit.find(*ctx.proto);
        if (im != kImplicit.end() && match_option(im->second, o)) {
          auto existing = std::find_if(modules.begin(), modules.end(),
                                       [&](const Module& m) { return m.name == im->second; });
          if (existing != modules.end()) {
            owner = &*existing;
          } else {
            modules.push_back(Module{im->second, {}, ""});
            module_known.push_back(true);
            owner = &modules.back();
          }
        }
      }
      if (owner) {
        if (auto st = attach(*owner, std::move(opt), *match_option(owner->name, o)); !st) return st;
        continue;
      }
      Module* unknown = nullptr;
      if (target && !target_known(target->name))
        unknown = &*target;
      else if (!target && !modules.empty() && !module_known.back())
        unknown = &modules.back();
      if (!unknown) {
        std::string ctxname = target            ? "-j " + target->name
                              : modules.empty() ? std::string("the rule")
                                                : "-m " + modules.back().name;
        return err(line, fmt::format("unknown option '{}' for {}", o, ctxname));
      }
      // Not modelled: keep the text; its values are the words up to the next option.
      while (i < t.size() && (t[i].quoted || t[i].s.empty() || (t[i].s[0] != '-' && !t[i].is("!"))))
        opt.args.push_back(t[i++].s);
      add_text(unknown->text, opt);
      unknown->opts.push_back(std::move(opt));
    }
  }

  Rule r;
  r.handle = static_cast<uint64_t>(line);
  r.text = std::string(text);
  while (!r.text.empty() &&
         (r.text.back() == ' ' || r.text.back() == '\t' || r.text.back() == '\r'))
    r.text.pop_back();
  if (counters) {
    r.packets = counters->first;
    r.bytes = counters->second;
  }
  r.stmts = std::move(generic);
  for (auto& m : modules) {
    if (m.text.empty()) {  // implicit: "--dport 80" after "-p tcp"
      for (const auto& o : m.opts) add_text(m.text, o);
      m.text.erase(0, 1);
    }
    if (auto st = compile_match(m, ctx, r.stmts, &r.comment); !st) return st;
  }
  std::optional<PendingJump> jump;
  if (target) {
    const std::string& n = target->name;
    if (n == "ACCEPT" || n == "DROP" || n == "RETURN") {
      if (go_to) return err(line, fmt::format("-g {}: goto needs a chain", n));
      if (!target->opts.empty()) return err(line, fmt::format("-j {} takes no options", n));
      r.stmts.push_back(VerdictStmt{n == "ACCEPT" ? VerdictKind::accept
                                    : n == "DROP" ? VerdictKind::drop
                                                  : VerdictKind::ret,
                                    nullptr});
    } else if (target_known(n) || unmodelled_target(n)) {
      if (go_to) return err(line, fmt::format("-g {}: goto needs a chain", n));
      if (unmodelled_target(n))
        r.stmts.push_back(
            UnknownStmt{target->text, fmt::format("target \"{}\" is not modelled", n)});
      else if (auto st = compile_target(*target, ctx, r.stmts); !st)
        return st;
    } else {
      if (!target->opts.empty())
        return err(line,
                   fmt::format("unknown option '{}' for {}", target->opts[0].name, target->text));
      if (is_builtin(table_->name, n))
        return err(line, fmt::format("{}: cannot jump to built-in chain {}", target->text, n));
      jump = PendingJump{*chain, pos, r.stmts.size(), n, go_to, line};
      r.stmts.push_back(VerdictStmt{go_to ? VerdictKind::go_to : VerdictKind::jump, nullptr});
    }
  }
  Chain* c = *chain;
  // Pending jumps into this chain after pos move down by one on an insert.
  if (insert)
    for (auto& p : pending_)
      if (p.chain == c && p.rule >= pos) ++p.rule;
  c->rules.insert(c->rules.begin() + static_cast<std::ptrdiff_t>(pos), std::move(r));
  if (jump) pending_.push_back(*jump);
  ++rs_->rule_count;
  return Ok{};
}

Status Parser::commit(int line) {
  if (!table_) return err(line, "COMMIT without a '*table' line before it");
  for (const auto& p : pending_) {
    auto it = chains_.find(p.target);
    if (it == chains_.end())
      return err(p.line, fmt::format("{} {}: no chain {} in table {} (and no such target)",
                                     p.go_to ? "-g" : "-j", p.target, p.target, table_->name));
    std::get<VerdictStmt>(p.chain->rules[p.rule].stmts[p.stmt]).target = it->second;
  }
  (void)line;
  table_ = nullptr;
  pending_.clear();
  chains_.clear();
  return Ok{};
}

std::string detect_family(std::string_view text) {
  if (text.find("ip6tables-save") != std::string_view::npos ||
      text.find("ip6tables-restore") != std::string_view::npos)
    return "ip6";
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    std::string_view l =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    if (l.empty() || l[0] == '#' || l[0] == '*' || l[0] == ':') continue;
    std::string why;
    auto toks = tokenize(l, &why);
    if (!toks) continue;
    for (std::size_t i = 0; i < toks->size(); ++i) {
      const Token& t = (*toks)[i];
      if (t.is("ipv6-icmp") || t.is("icmpv6") || t.is("icmp6") || t.is("--icmpv6-type"))
        return "ip6";
      if (i + 1 >= toks->size()) continue;
      if (t.is("-s") || t.is("-d") || t.is("--source") || t.is("--destination") ||
          t.is("--to-destination") || t.is("--to-source")) {
        const Token& v =
            (*toks)[i + 1].is("!") && i + 2 < toks->size() ? (*toks)[i + 2] : (*toks)[i + 1];
        // An IPv6 address has at least two ':'; "a.b.c.d:port" has one.
        auto colon = v.s.find(':');
        if (colon != std::string::npos && v.s.find(':', colon + 1) != std::string::npos)
          return "ip6";
        if (t.s[1] != '-' || t.is("--source") || t.is("--destination")) return "ip";
      }
    }
  }
  return "ip";
}

Result<std::unique_ptr<Ruleset>> Parser::run(std::string_view text) {
  family_ = opts_.family.empty() ? detect_family(text) : opts_.family;
  if (family_ != "ip" && family_ != "ip6")
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: family '{}' (expected ip or ip6)", origin_, family_));
  int line = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    std::string_view l =
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? text.size() : end + 1;
    ++line;
    while (!l.empty() && (l.back() == '\r' || l.back() == ' ' || l.back() == '\t'))
      l.remove_suffix(1);
    std::size_t lead = 0;
    while (lead < l.size() && (l[lead] == ' ' || l[lead] == '\t')) ++lead;
    l.remove_prefix(lead);
    if (l.empty() || l[0] == '#') continue;
    if (l[0] == '*') {
      if (auto st = start_table(line, std::string(l.substr(1))); !st) return st.error();
      continue;
    }
    if (l == "COMMIT") {
      if (auto st = commit(line); !st) return st.error();
      continue;
    }
    std::string why;
    auto toks = tokenize(l, &why);
    if (!toks) return err(line, why);
    if (!table_)
      return err(
          line,
          fmt::format("'{}' before any '*table' line (expected *filter, *nat, *mangle or *raw)",
                      l.substr(0, std::min<std::size_t>(l.size(), 40))));
    if (l[0] == ':') {
      if (auto st = declare_chain(line, *toks); !st) return st.error();
      continue;
    }
    if (auto st = add_rule(line, l, std::move(*toks)); !st) return st.error();
  }
  if (table_)
    return err(line,
               fmt::format("table {} (line {}) ends without COMMIT", table_->name, table_line_));
  if (rs_->tables.empty())
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: no '*table' section: not iptables-save output", origin_));
  if (auto st = finalize_ruleset(*rs_); !st) return st.error();
  return std::move(rs_);
}

}  // namespace
}  // namespace ipt

Result<std::unique_ptr<Ruleset>> load_iptables_save(std::string_view text,
                                                    const std::string& origin,
                                                    const IptablesSaveOptions& opts) {
  return ipt::Parser(origin, opts).run(text);
}

}  // namespace dpi::nft
