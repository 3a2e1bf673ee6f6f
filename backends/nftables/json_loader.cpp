#include "backends/nftables/json_loader.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <set>

#include <fmt/format.h>

#include "backends/nftables/facts.h"
#include "backends/nftables/json_util.h"
#include "backends/nftables/random_match.h"
#include "backends/nftables/rule_text.h"
#include "backends/nftables/xt/decode.h"
#include "core/input_file.h"

namespace dpi::nft {

using nlohmann::json;

namespace {

struct KeyDef {
  Key key;
  Type type;
};

std::optional<KeyDef> meta_key(const std::string& k) {
  if (k == "mark") return KeyDef{Key::meta_mark, Type::mark};
  if (k == "l4proto") return KeyDef{Key::meta_l4proto, Type::inet_proto};
  if (k == "nfproto") return KeyDef{Key::meta_nfproto, Type::nfproto};
  if (k == "iifname") return KeyDef{Key::meta_iifname, Type::ifname};
  if (k == "oifname") return KeyDef{Key::meta_oifname, Type::ifname};
  // Interface indexes are printed as names, so they are compared by name.
  if (k == "iif") return KeyDef{Key::meta_iif, Type::ifname};
  if (k == "oif") return KeyDef{Key::meta_oif, Type::ifname};
  if (k == "pkttype") return KeyDef{Key::meta_pkttype, Type::pkttype};
  if (k == "random") return KeyDef{Key::meta_random, Type::integer};
  return std::nullopt;
}

std::optional<KeyDef> ct_key(const std::string& k) {
  if (k == "state") return KeyDef{Key::ct_state, Type::ct_state};
  if (k == "status") return KeyDef{Key::ct_status, Type::ct_status};
  if (k == "mark") return KeyDef{Key::ct_mark, Type::mark};
  if (k == "direction") return KeyDef{Key::ct_direction, Type::ct_dir};
  if (k == "l3proto") return KeyDef{Key::ct_l3proto, Type::nfproto};
  if (k == "protocol") return KeyDef{Key::ct_protocol, Type::inet_proto};
  return std::nullopt;
}

std::optional<KeyDef> payload_key(const std::string& proto, const std::string& field) {
  static const std::map<std::pair<std::string, std::string>, KeyDef> kPayload = {
      {{"ip", "saddr"}, {Key::ip_saddr, Type::ipv4}},
      {{"ip", "daddr"}, {Key::ip_daddr, Type::ipv4}},
      {{"ip", "protocol"}, {Key::ip_protocol, Type::inet_proto}},
      {{"ip6", "saddr"}, {Key::ip6_saddr, Type::ipv6}},
      {{"ip6", "daddr"}, {Key::ip6_daddr, Type::ipv6}},
      {{"ip6", "nexthdr"}, {Key::ip6_nexthdr, Type::inet_proto}},
      {{"th", "sport"}, {Key::th_sport, Type::inet_service}},
      {{"th", "dport"}, {Key::th_dport, Type::inet_service}},
      {{"tcp", "sport"}, {Key::tcp_sport, Type::inet_service}},
      {{"tcp", "dport"}, {Key::tcp_dport, Type::inet_service}},
      {{"tcp", "flags"}, {Key::tcp_flags, Type::tcp_flags}},
      {{"udp", "sport"}, {Key::udp_sport, Type::inet_service}},
      {{"udp", "dport"}, {Key::udp_dport, Type::inet_service}},
      {{"sctp", "sport"}, {Key::sctp_sport, Type::inet_service}},
      {{"sctp", "dport"}, {Key::sctp_dport, Type::inet_service}},
      {{"icmp", "type"}, {Key::icmp_type, Type::icmp_type}},
      {{"icmp", "code"}, {Key::icmp_code, Type::icmp_code}},
      {{"icmpv6", "type"}, {Key::icmpv6_type, Type::icmpv6_type}},
      {{"icmpv6", "code"}, {Key::icmpv6_code, Type::icmp_code}},
  };
  auto it = kPayload.find({proto, field});
  if (it == kPayload.end()) return std::nullopt;
  return it->second;
}

std::optional<KeyDef> fib_key(const json& v) {
  std::set<std::string> flags;
  for (const auto& f : v.value("flags", json::array()))
    if (f.is_string()) flags.insert(f.get<std::string>());
  std::string result = v.value("result", "");
  if (result == "type" && flags == std::set<std::string>{"daddr"})
    return KeyDef{Key::fib_daddr_type, Type::fib_addrtype};
  if (result == "type" && flags == std::set<std::string>{"saddr"})
    return KeyDef{Key::fib_saddr_type, Type::fib_addrtype};
  if (result == "oif" && flags.count("saddr") && flags.count("iif") && !flags.count("daddr") &&
      !flags.count("oif"))
    return KeyDef{flags.count("mark") ? Key::fib_saddr_mark_iif_oif : Key::fib_saddr_iif_oif,
                  Type::ifname};
  if (result == "oif" && flags == std::set<std::string>{"daddr"})
    return KeyDef{Key::fib_daddr_oif, Type::ifname};
  return std::nullopt;
}

class Loader {
 public:
  Loader(std::string origin, const LoadOptions& opts)
      : rs_(std::make_unique<Ruleset>()), opts_(opts) {
    rs_->origin = std::move(origin);
  }

  Result<std::unique_ptr<Ruleset>> run(const json& doc);

 private:
  Error err(const std::string& where, const std::string& what) {
    return make_error(ErrorCode::bad_input, fmt::format("{}: {}: {}", rs_->origin, where, what));
  }
  std::string chain_key(const std::string& f, const std::string& t, const std::string& c) {
    return f + '\0' + t + '\0' + c;
  }

  Status add_table(const json& o, const std::string& where);
  Status add_chain(const json& o, const std::string& where);
  Status add_set(const json& o, bool is_map, const std::string& where);
  Status add_rule(const json& o, const std::string& where);
  Status fill_set_elems(SetDef& s, const json& elems, const std::string& where);
  Status finish();

  // Statement compilers. On something not understood they return an UnknownStmt rather than
  // failing the load: the verdict becomes indeterminate only if a flow reaches it.
  Stmt compile_stmt(const json& st, const std::string& family, const std::string& table,
                    const std::string& where, std::string* load_error);
  bool compile_operand(const json& e, Operand& out, std::string* why);
  bool compile_selector(const json& e, Selector& out, std::string* why);
  const SetDef* resolve_set(const json& rhs, const Selector& lhs, const std::string& family,
                            const std::string& table, bool want_map, std::string* why);
  std::optional<VerdictStmt> compile_verdict(const json& v, const std::string& family,
                                             const std::string& table, std::string* why);
  Stmt compile_match(const json& v, const std::string& family, const std::string& table);
  Stmt compile_plain_match(const json& v, const std::string& family, const std::string& table);
  Stmt compile_mangle(const json& v);
  Stmt compile_nat(const std::string& kind, const json& v, const std::string& family,
                   const std::string& table);

  void add_xt(Rule& r, const json& st, const RuleKey& key, std::size_t index);

  std::unique_ptr<Ruleset> rs_;
  const LoadOptions& opts_;
  std::unordered_map<std::string, Chain*> chains_;
  std::unordered_map<std::string, SetDef*> sets_;
  std::unordered_map<std::string, Table*> tables_;
};

Status Loader::add_table(const json& o, const std::string& where) {
  std::string family = o.value("family", ""), name = o.value("name", "");
  if (family.empty() || name.empty()) return err(where, "table without family or name");
  static const std::set<std::string> kFamilies = {"ip", "ip6", "inet", "arp", "bridge", "netdev"};
  if (!kFamilies.count(family)) return err(where, fmt::format("unknown family '{}'", family));
  rs_->tables.push_back(Table{family, name, {}});
  tables_[family + '\0' + name] = &rs_->tables.back();
  return Ok{};
}

Status Loader::add_chain(const json& o, const std::string& where) {
  Chain c;
  c.family = o.value("family", "");
  c.table = o.value("table", "");
  c.name = o.value("name", "");
  auto t = tables_.find(c.family + '\0' + c.table);
  if (t == tables_.end())
    return err(where, fmt::format("chain {} names table {} {} which is not defined", c.name,
                                  c.family, c.table));
  if (o.contains("hook")) {
    c.base = true;
    static const std::map<std::string, Hook> kHooks = {{"prerouting", Hook::prerouting},
                                                       {"input", Hook::input},
                                                       {"forward", Hook::forward},
                                                       {"output", Hook::output},
                                                       {"postrouting", Hook::postrouting}};
    auto h = kHooks.find(o.value("hook", ""));
    c.hook = h == kHooks.end() ? Hook::other : h->second;
    c.type = o.value("type", "filter");
    const json& prio = o.contains("prio") ? o["prio"] : json(0);
    if (!prio.is_number_integer())
      return err(where, fmt::format("chain {}: priority {} is not a number", c.name, prio.dump()));
    c.priority = prio.get<int>();
    std::string policy = o.value("policy", "accept");
    c.policy = policy == "drop" ? VerdictKind::drop : VerdictKind::accept;
  }
  if (chains_.count(chain_key(c.family, c.table, c.name)))
    return err(where, fmt::format("chain {} {} {} defined twice", c.family, c.table, c.name));
  rs_->chains.push_back(std::move(c));
  Chain* p = &rs_->chains.back();
  chains_[chain_key(p->family, p->table, p->name)] = p;
  t->second->chains.push_back(p);
  return Ok{};
}

Status Loader::fill_set_elems(SetDef& s, const json& elems, const std::string& where) {
  if (!elems.is_array()) return err(where, fmt::format("set {}: 'elem' is not a list", s.name));
  for (const auto& raw : elems) {
    SetElem e;
    const json* key = &raw;
    const json* data = nullptr;
    if (s.is_map) {
      if (!raw.is_array() || raw.size() != 2)
        return err(where, fmt::format("map {}: element {} is not a [key, value] pair", s.name,
                                      raw.dump()));
      key = &raw[0];
      data = &raw[1];
    }
    if (key->is_object() && key->contains("elem")) key = &(*key)["elem"]["val"];
    std::vector<const json*> parts;
    if (key->is_object() && key->contains("concat")) {
      for (const auto& p : (*key)["concat"]) parts.push_back(&p);
    } else {
      parts.push_back(key);
    }
    if (parts.size() != s.key_types.size())
      return err(where, fmt::format("set {}: element {} has {} parts, the set type has {}", s.name,
                                    key->dump(), parts.size(), s.key_types.size()));
    for (std::size_t i = 0; i < parts.size(); ++i) {
      std::string why;
      auto r = parse_range(s.key_types[i], s.key_widths[i], *parts[i], &why);
      if (!r) return err(where, fmt::format("set {}: element {}: {}", s.name, key->dump(), why));
      e.key.push_back(*r);
    }
    if (data) {
      if (s.verdict_map) {
        std::string why;
        auto v = compile_verdict(*data, s.family, s.table, &why);
        if (!v) return err(where, fmt::format("map {}: {}", s.name, why));
        e.verdict = *v;
      } else {
        std::string why;
        const json* dv = data;
        if (dv->is_object() && dv->contains("concat")) {
          Bytes all;
          for (const auto& p : (*dv)["concat"]) {
            auto b =
                parse_constant(p.is_string() && p.get<std::string>().find('.') != std::string::npos
                                   ? Type::ipv4
                                   : Type::inet_service,
                               0, p, &why);
            if (!b) return err(where, fmt::format("map {}: value {}: {}", s.name, dv->dump(), why));
            all.append(*b);
          }
          e.data = all;
        } else {
          auto b = parse_constant(s.data_type.value_or(Type::integer), 0, *dv, &why);
          if (!b) return err(where, fmt::format("map {}: value {}: {}", s.name, dv->dump(), why));
          e.data = *b;
        }
      }
    }
    s.elems.push_back(std::move(e));
  }
  return Ok{};
}

Status Loader::add_set(const json& o, bool is_map, const std::string& where) {
  SetDef s;
  s.family = o.value("family", "");
  s.table = o.value("table", "");
  s.name = o.value("name", "");
  s.is_map = is_map;
  const json& type = o.contains("type") ? o["type"] : json();
  std::vector<std::string> names;
  if (type.is_string())
    names.push_back(type.get<std::string>());
  else if (type.is_array())
    for (const auto& t : type) names.push_back(t.is_string() ? t.get<std::string>() : t.dump());
  for (const auto& n : names) {
    auto t = type_from_name(n);
    if (!t) return err(where, fmt::format("set {}: key type '{}' is not supported", s.name, n));
    s.key_types.push_back(*t);
    s.key_widths.push_back(static_cast<uint8_t>(type_width(*t)));
  }
  if (s.key_types.empty()) return err(where, fmt::format("set {} has no type", s.name));
  for (const auto& f : o.value("flags", json::array()))
    if (f == "interval") s.interval = true;
  if (is_map) {
    std::string data = o.value("map", "");
    if (data == "verdict") {
      s.verdict_map = true;
    } else {
      auto t = type_from_name(data);
      s.data_type = t.value_or(Type::integer);
    }
  }
  if (o.contains("elem")) {
    if (auto st = fill_set_elems(s, o["elem"], where); !st) return st.error();
  }
  s.build_index();
  rs_->sets.push_back(std::move(s));
  SetDef* p = &rs_->sets.back();
  sets_[p->family + '\0' + p->table + '\0' + p->name] = p;
  return Ok{};
}

std::optional<VerdictStmt> Loader::compile_verdict(const json& v, const std::string& family,
                                                   const std::string& table, std::string* why) {
  if (!v.is_object() || v.size() != 1) {
    *why = fmt::format("{} is not a verdict", v.dump());
    return std::nullopt;
  }
  const auto [k, arg] = only_member(v);
  VerdictStmt vs;
  if (k == "accept")
    vs.kind = VerdictKind::accept;
  else if (k == "drop")
    vs.kind = VerdictKind::drop;
  else if (k == "continue")
    vs.kind = VerdictKind::cont;
  else if (k == "return")
    vs.kind = VerdictKind::ret;
  else if (k == "queue")
    vs.kind = VerdictKind::queue;
  else if (k == "jump" || k == "goto") {
    vs.kind = k == "jump" ? VerdictKind::jump : VerdictKind::go_to;
    std::string target = arg.is_object() ? arg.value("target", "") : "";
    auto it = chains_.find(chain_key(family, table, target));
    if (it == chains_.end()) {
      *why = fmt::format("{} to chain '{}', which does not exist in table {} {}", k, target, family,
                         table);
      return std::nullopt;
    }
    vs.target = it->second;
  } else {
    *why = fmt::format("unknown verdict '{}'", k);
    return std::nullopt;
  }
  return vs;
}

}  // namespace
}  // namespace dpi::nft

namespace dpi::nft {
namespace {

bool Loader::compile_operand(const json& e, Operand& out, std::string* why) {
  if (!e.is_object() || e.size() != 1) {
    *why = fmt::format("expression {} is not understood", e.dump());
    return false;
  }
  const auto [k, v] = only_member(e);
  std::optional<KeyDef> kd;
  if (k == "meta") {
    kd = meta_key(v.value("key", ""));
  } else if (k == "ct") {
    if (!v.contains("dir")) kd = ct_key(v.value("key", ""));
  } else if (k == "payload") {
    if (v.contains("protocol")) kd = payload_key(v.value("protocol", ""), v.value("field", ""));
  } else if (k == "fib") {
    kd = fib_key(v);
  } else if (k == "numgen") {
    out.key = Key::numgen;
    out.type = Type::integer;
    out.width = 4;
    out.numgen_mod = v.value("mod", 0u);
    out.numgen_offset = v.value("offset", 0u);
    if (out.numgen_mod == 0 || out.numgen_mod > 4096) {
      *why = fmt::format("numgen modulus {} is out of range", out.numgen_mod);
      return false;
    }
    return true;
  } else if (k == "&" || k == "|" || k == "^") {
    if (!v.is_array() || v.size() != 2 || !compile_operand(v[0], out, why)) {
      if (why->empty()) *why = fmt::format("expression {} is not understood", e.dump());
      return false;
    }
    Bytes mask;
    if (v[1].is_array()) {  // a flag list, e.g. tcp flags & (syn|ack)
      uint64_t acc = 0;
      for (const auto& f : v[1]) {
        auto b = parse_constant(out.type, out.width, f, why);
        if (!b) return false;
        acc |= b->as_uint();
      }
      mask = Bytes::from_uint(acc, out.width);
    } else {
      auto b = parse_constant(out.type, out.width, v[1], why);
      if (!b) return false;
      mask = *b;
    }
    out.binops.emplace_back(k[0], mask);
    return true;
  }
  if (!kd) {
    *why = fmt::format("expression {} is not supported", e.dump());
    return false;
  }
  out.key = kd->key;
  out.type = kd->type;
  out.width = static_cast<uint8_t>(type_width(kd->type));
  return true;
}

bool Loader::compile_selector(const json& e, Selector& out, std::string* why) {
  if (e.is_object() && e.contains("concat")) {
    for (const auto& p : e["concat"]) {
      Operand o;
      if (!compile_operand(p, o, why)) return false;
      out.parts.push_back(o);
    }
    return !out.parts.empty();
  }
  Operand o;
  if (!compile_operand(e, o, why)) return false;
  out.parts.push_back(o);
  return true;
}

const SetDef* Loader::resolve_set(const json& rhs, const Selector& lhs, const std::string& family,
                                  const std::string& table, bool want_map, std::string* why) {
  if (rhs.is_string()) {
    std::string name = rhs.get<std::string>().substr(1);
    auto it = sets_.find(family + '\0' + table + '\0' + name);
    if (it == sets_.end()) {
      *why = fmt::format("set @{} does not exist in table {} {}", name, family, table);
      return nullptr;
    }
    const SetDef* s = it->second;
    if (s->key_types.size() != lhs.parts.size()) {
      *why = fmt::format("set @{} has {} key parts but the lookup gives {}", name,
                         s->key_types.size(), lhs.parts.size());
      return nullptr;
    }
    for (std::size_t i = 0; i < lhs.parts.size(); ++i) {
      if (s->key_widths[i] != lhs.parts[i].width) {
        *why = fmt::format("set @{} key part {} is {} but the lookup gives {}", name, i,
                           type_name(s->key_types[i]), type_name(lhs.parts[i].type));
        return nullptr;
      }
    }
    if (want_map && !s->is_map) {
      *why = fmt::format("@{} is a set, not a map", name);
      return nullptr;
    }
    return s;
  }
  // Anonymous set or map: typed by the selector it is looked up with.
  SetDef s;
  s.family = family;
  s.table = table;
  s.is_map = want_map;
  s.verdict_map = want_map;
  for (const auto& p : lhs.parts) {
    s.key_types.push_back(p.type);
    s.key_widths.push_back(p.width);
  }
  const json& elems = rhs.is_object() && rhs.contains("set") ? rhs["set"] : rhs;
  json list = elems.is_array() ? elems : json::array({elems});
  s.interval = true;
  if (auto st = fill_set_elems(s, list, "anonymous set"); !st) {
    *why = st.error().message;
    return nullptr;
  }
  s.build_index();
  rs_->sets.push_back(std::move(s));
  return &rs_->sets.back();
}

// A comparison that reads `meta random` is a random choice; compiled as a plain match it would
// compare whatever value the evaluator made up.
Stmt random_choice(Stmt s) {
  auto* m = std::get_if<MatchStmt>(&s);
  if (!m) return s;
  bool random = false;
  for (const auto& p : m->lhs.parts) random = random || p.key == Key::meta_random;
  if (!random) return s;
  std::string why;
  auto r = random_sides(*m, &why);
  if (!r) return UnknownStmt{"", why};
  return *r;
}

Stmt Loader::compile_match(const json& v, const std::string& family, const std::string& table) {
  return random_choice(compile_plain_match(v, family, table));
}

Stmt Loader::compile_plain_match(const json& v, const std::string& family,
                                 const std::string& table) {
  MatchStmt m;
  std::string why;
  if (!compile_selector(v.value("left", json()), m.lhs, &why)) return UnknownStmt{"", why};
  std::string op = v.value("op", "==");
  static const std::map<std::string, Op> kOps = {
      {"==", Op::eq}, {"!=", Op::ne}, {"<", Op::lt},        {">", Op::gt},
      {"<=", Op::le}, {">=", Op::ge}, {"in", Op::flags_any}};
  auto o = kOps.find(op);
  if (o == kOps.end()) return UnknownStmt{"", fmt::format("operator '{}' is not supported", op)};
  m.op = o->second;
  const json& rhs = v.value("right", json());
  bool single = m.lhs.parts.size() == 1;
  if (m.op == Op::flags_any) {
    if (!single || !is_flag_type(m.lhs.type())) {
      // nft prints "in" only for flag types; anything else would be a misread.
      return UnknownStmt{"", fmt::format("'in' on a {} value", type_name(m.lhs.type()))};
    }
    uint64_t acc = 0;
    for (const auto& f : rhs.is_array() ? rhs : json::array({rhs})) {
      auto b = parse_constant(m.lhs.type(), m.lhs.parts[0].width, f, &why);
      if (!b) return UnknownStmt{"", why};
      acc |= b->as_uint();
    }
    m.rhs_kind = MatchStmt::RhsKind::flags;
    m.flags = Bytes::from_uint(acc, m.lhs.parts[0].width);
    return m;
  }
  bool is_set =
      (rhs.is_string() && !rhs.get<std::string>().empty() && rhs.get<std::string>()[0] == '@') ||
      (rhs.is_object() && rhs.contains("set")) || rhs.is_array();
  if (is_set) {
    if (m.op != Op::eq && m.op != Op::ne)
      return UnknownStmt{"", "ordering comparison against a set"};
    m.rhs_kind = MatchStmt::RhsKind::set;
    m.set = resolve_set(rhs, m.lhs, family, table, false, &why);
    if (!m.set) return UnknownStmt{"", why};
    return m;
  }
  if (!single) {
    // A concatenation compared with one concatenated constant.
    if (!rhs.is_object() || !rhs.contains("concat") || rhs["concat"].size() != m.lhs.parts.size())
      return UnknownStmt{"", fmt::format("concatenation compared with {}", rhs.dump())};
    Bytes all;
    for (std::size_t i = 0; i < m.lhs.parts.size(); ++i) {
      auto b = parse_constant(m.lhs.parts[i].type, m.lhs.parts[i].width, rhs["concat"][i], &why);
      if (!b) return UnknownStmt{"", why};
      all.append(*b);
    }
    m.range = Range{all, all};
    return m;
  }
  auto r = parse_range(m.lhs.type(), m.lhs.parts[0].width, rhs, &why);
  if (!r) return UnknownStmt{"", why};
  if ((m.op != Op::eq && m.op != Op::ne) && !(r->lo == r->hi))
    return UnknownStmt{"", "ordering comparison against a range"};
  m.range = *r;
  return m;
}

Stmt Loader::compile_mangle(const json& v) {
  MangleStmt ms;
  const json& key = v.value("key", json());
  if (key == json{{"meta", {{"key", "mark"}}}})
    ms.target = MangleStmt::Target::meta_mark;
  else if (key == json{{"ct", {{"key", "mark"}}}})
    ms.target = MangleStmt::Target::ct_mark;
  else if (key == json{{"meta", {{"key", "nftrace"}}}})
    return NoopStmt{};
  else
    return UnknownStmt{"", fmt::format("setting {} is not supported", key.dump())};
  const json& val = v.value("value", json());
  std::string why;
  if (val.is_number()) {
    ms.constant = Bytes::from_uint(val.get<uint64_t>(), 4);
    return ms;
  }
  if (!compile_operand(val, ms.value, &why)) return UnknownStmt{"", why};
  if (ms.value.width != 4 || (ms.value.key != Key::meta_mark && ms.value.key != Key::ct_mark))
    return UnknownStmt{"", fmt::format("mark value {} is not supported", val.dump())};
  return ms;
}

Stmt Loader::compile_nat(const std::string& kind, const json& v, const std::string& family,
                         const std::string& table) {
  NatStmt n;
  n.kind = kind == "dnat"         ? NatStmt::Kind::dnat
           : kind == "snat"       ? NatStmt::Kind::snat
           : kind == "masquerade" ? NatStmt::Kind::masquerade
                                  : NatStmt::Kind::redirect;
  if (!v.is_object()) return n;
  std::string why;
  Type at = family == "ip6" || v.value("family", "") == "ip6" ? Type::ipv6 : Type::ipv4;
  if (v.contains("addr")) {
    const json& a = v["addr"];
    if (a.is_object() && a.contains("map")) {
      n.map_key.emplace();
      if (!compile_selector(a["map"].value("key", json()), *n.map_key, &why))
        return UnknownStmt{"", why};
      n.map = resolve_set(a["map"].value("data", json()), *n.map_key, family, table, true, &why);
      if (!n.map || n.map->verdict_map)
        return UnknownStmt{"", why.empty() ? "nat map is a verdict map" : why};
    } else {
      auto b = parse_constant(at, 0, a, &why);
      if (!b) return UnknownStmt{"", fmt::format("nat address {}: {}", a.dump(), why)};
      n.addr = *b;
    }
  }
  if (v.contains("port")) {
    if (!v["port"].is_number())
      return UnknownStmt{"", fmt::format("nat port {} is not a number", v["port"].dump())};
    n.port = v["port"].get<uint16_t>();
  }
  return n;
}

Stmt Loader::compile_stmt(const json& st, const std::string& family, const std::string& table,
                          const std::string& where, std::string* load_error) {
  if (!st.is_object() || st.size() != 1) return UnknownStmt{st.dump(), "not a statement"};
  const auto [k, v] = only_member(st);
  auto with_text = [&](Stmt s) {
    if (auto* u = std::get_if<UnknownStmt>(&s)) u->expression = stmt_text(st);
    if (auto* r = std::get_if<RandomStmt>(&s)) r->expression = stmt_text(st);
    return s;
  };
  if (k == "match") return with_text(compile_match(v, family, table));
  if (k == "accept" || k == "drop" || k == "continue" || k == "return" || k == "jump" ||
      k == "goto" || k == "queue") {
    std::string why;
    auto vs = compile_verdict(st, family, table, &why);
    if (!vs) {
      *load_error = fmt::format("{}: {}", where, why);
      return NoopStmt{};
    }
    return *vs;
  }
  if (k == "counter") {
    CounterStmt c;
    if (v.is_object()) {
      c.packets = v.value("packets", uint64_t{0});
      c.bytes = v.value("bytes", uint64_t{0});
    }
    return c;
  }
  if (k == "log") {
    LogStmt l;
    if (v.is_object()) {
      l.prefix = v.value("prefix", "");
      if (v.contains("group")) l.group = v["group"].get<int>();
      if (v.contains("snaplen")) l.snaplen = v["snaplen"].get<int>();
      l.level = v.value("level", "");
    }
    return l;
  }
  if (k == "reject") return RejectStmt{v.is_object() ? v.value("type", "") : ""};
  if (k == "mangle") return with_text(compile_mangle(v));
  if (k == "vmap") {
    VmapStmt vm;
    std::string why;
    if (!compile_selector(v.value("key", json()), vm.key, &why))
      return with_text(UnknownStmt{"", why});
    vm.map = resolve_set(v.value("data", json()), vm.key, family, table, true, &why);
    if (!vm.map || !vm.map->verdict_map)
      return with_text(UnknownStmt{"", why.empty() ? "vmap data is not a verdict map" : why});
    return vm;
  }
  if (k == "dnat" || k == "snat" || k == "masquerade" || k == "redirect")
    return with_text(compile_nat(k, v, family, table));
  if (k == "notrack") return NotrackStmt{};
  if (k == "limit") {
    bool over = v.is_object() && v.value("inv", false);
    return AssumeStmt{fmt::format("rate limit `{}` not exceeded", stmt_text(st)), !over};
  }
  if (k == "quota") {
    bool over = v.is_object() && v.value("inv", false);
    return AssumeStmt{fmt::format("quota `{}` not exhausted", stmt_text(st)), !over};
  }
  if (k == "ct count") {
    bool over = v.is_object() && v.value("inv", false);
    return AssumeStmt{fmt::format("connection count `{}` not exceeded", stmt_text(st)), !over};
  }
  // A set update affects later packets, not this one's verdict.
  if (k == "set") return NoopStmt{};
  if (k == "xt") {
    std::string type = v.value("type", ""), name = v.value("name", "");
    // The comment match always matches; its text only documents the rule.
    if (type == "match" && name == "comment") return NoopStmt{};
    return UnknownStmt{stmt_text(st),
                       fmt::format("iptables-nft compat {} \"{}\": its parameters are not in nft's "
                                   "JSON output; a live read (inspect on the node) or a "
                                   "`dpinspect snapshot` of the node carries them",
                                   type, name)};
  }
  return UnknownStmt{stmt_text(st), fmt::format("statement '{}' is not supported", k)};
}

Status Loader::add_rule(const json& o, const std::string& where) {
  std::string family = o.value("family", ""), table = o.value("table", ""),
              chain = o.value("chain", "");
  auto it = chains_.find(chain_key(family, table, chain));
  if (it == chains_.end())
    return err(where,
               fmt::format("rule in chain {} {} {}, which is not defined", family, table, chain));
  Rule r;
  r.handle = o.value("handle", uint64_t{0});
  r.comment = o.value("comment", "");
  const json& exprs = o.contains("expr") ? o["expr"] : json::array();
  if (!exprs.is_array()) return err(where, "rule 'expr' is not a list");
  std::string rwhere =
      fmt::format("{} (rule {} {} {} handle {})", where, family, table, chain, r.handle);
  RuleKey key{family, table, chain, r.handle};
  std::size_t xt_index = 0;
  for (const auto& st : exprs) {
    if (st.is_object() && st.contains("xt") && opts_.xt) {
      add_xt(r, st, key, xt_index++);
      continue;
    }
    std::string load_error;
    r.stmts.push_back(compile_stmt(st, family, table, rwhere, &load_error));
    if (!load_error.empty())
      return make_error(ErrorCode::bad_input, rs_->origin + ": " + load_error);
    if (auto* c = std::get_if<CounterStmt>(&r.stmts.back())) {
      r.packets = c->packets;
      r.bytes = c->bytes;
    }
  }
  r.text = rule_text(exprs);
  it->second->rules.push_back(std::move(r));
  ++rs_->rule_count;
  return Ok{};
}

// An xt expression is decoded from the payload the kernel holds for the same rule and position.
void Loader::add_xt(Rule& r, const json& st, const RuleKey& key, std::size_t index) {
  const json& v = st["xt"];
  std::string type = v.is_object() ? v.value("type", "") : "",
              name = v.is_object() ? v.value("name", "") : "";
  std::string text = stmt_text(st);
  auto it = opts_.xt->find(key);
  if (it == opts_.xt->end() || index >= it->second.size()) {
    r.stmts.push_back(UnknownStmt{
        text, fmt::format("no kernel payload for xt {} \"{}\" (the ruleset changed between reads?)",
                          type, name)});
    return;
  }
  const XtExpr& x = it->second[index];
  if (x.name != name || x.target != (type == "target")) {
    r.stmts.push_back(
        UnknownStmt{text, fmt::format("kernel payload is xt {} \"{}\", JSON says {} \"{}\"",
                                      x.target ? "target" : "match", x.name, type, name)});
    return;
  }
  XtContext ctx{*rs_, opts_.ipsets, key.family, key.table};
  std::string why;
  auto decoded = decode_xt(x, ctx, &why);
  if (!decoded) {
    r.stmts.push_back(UnknownStmt{fmt::format("xt {} \"{}\" revision {}", type, name, x.rev), why});
    return;
  }
  if (!decoded->comment.empty()) r.comment += (r.comment.empty() ? "" : "; ") + decoded->comment;
  for (auto& d : decoded->stmts) r.stmts.push_back(std::move(d));
}

// Jump loops make the kernel reject a ruleset, so a file with one is not a real dump.
Status check_loops(const Ruleset& rs, const std::string& origin) {
  std::unordered_map<const Chain*, int> state;  // 1 = on stack, 2 = done
  std::vector<const Chain*> stack;
  std::function<std::optional<std::string>(const Chain*)> visit =
      [&](const Chain* c) -> std::optional<std::string> {
    state[c] = 1;
    stack.push_back(c);
    auto follow = [&](const Chain* t) -> std::optional<std::string> {
      if (!t) return std::nullopt;
      if (state[t] == 1) {
        std::string cycle;
        bool on = false;
        for (const Chain* s : stack) {
          if (s == t) on = true;
          if (on) cycle += s->name + " -> ";
        }
        return cycle + t->name;
      }
      if (state[t] == 0) return visit(t);
      return std::nullopt;
    };
    for (const auto& r : c->rules)
      for (const auto& st : r.stmts) {
        if (auto* v = std::get_if<VerdictStmt>(&st))
          if (auto l = follow(v->target)) return l;
        if (auto* vm = std::get_if<VmapStmt>(&st))
          for (const auto& e : vm->map->elems)
            if (auto l = follow(e.verdict.target)) return l;
      }
    stack.pop_back();
    state[c] = 2;
    return std::nullopt;
  };
  for (const auto& c : rs.chains)
    if (state[&c] == 0)
      if (auto loop = visit(&c))
        return make_error(ErrorCode::bad_input, fmt::format("{}: jump loop in table {} {}: {}",
                                                            origin, c.family, c.table, *loop));
  return Ok{};
}

// NAT chains do not run at their own priority: the kernel's NAT core calls them from its hook at
// NF_IP_PRI_NAT_DST (-100) before routing and NF_IP_PRI_NAT_SRC (100) after, in their priority
// order among themselves.
std::pair<int, int> effective_priority(const Chain& c, Hook h) {
  if (c.type != "nat") return {c.priority, 0};
  int nat = (h == Hook::prerouting || h == Hook::output) ? -100 : 100;
  return {nat, c.priority};
}

Status Loader::finish() {
  return finalize_ruleset(*rs_);
}

}  // namespace

Status finalize_ruleset(Ruleset& rs) {
  if (auto st = check_loops(rs, rs.origin); !st) return st;
  for (auto& c : rs.chains) derive_chain_facts(c);
  rs.marks = infer_mark_bits(rs);
  if (!rs.marks.is_default()) {
    const auto& b = rs.marks.bits;
    for (auto& c : rs.chains) derive_chain_facts(c, b.accept | b.pass | b.drop);
  }
  for (auto& c : rs.chains) {
    if (!c.base || c.hook == Hook::other) continue;
    if (c.family == "ip" || c.family == "inet") rs.v4_hooks[c.hook].push_back(&c);
    if (c.family == "ip6" || c.family == "inet") rs.v6_hooks[c.hook].push_back(&c);
  }
  for (auto* hooks : {&rs.v4_hooks, &rs.v6_hooks})
    for (auto& [h, list] : *hooks)
      std::stable_sort(list.begin(), list.end(), [h = h](const Chain* a, const Chain* b) {
        return effective_priority(*a, h) < effective_priority(*b, h);
      });
  rs.prepare();  // the evaluator's integer forms (model.cpp)
  return Ok{};
}

namespace {

// nft prints only integers; a fractional or huge float would otherwise reach integer casts.
std::optional<std::string> find_float(const json& j, std::string& path) {
  if (j.is_number_float()) return path;
  std::size_t len = path.size();
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      path += "/" + it.key();
      if (auto f = find_float(it.value(), path)) return f;
      path.resize(len);
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) {
      path += "/" + std::to_string(i);
      if (auto f = find_float(j[i], path)) return f;
      path.resize(len);
    }
  }
  return std::nullopt;
}

Result<std::unique_ptr<Ruleset>> Loader::run(const json& doc) {
  std::string path;
  if (auto f = find_float(doc, path))
    return err(*f, "a fractional number; nft's JSON has only integers here");
  if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array())
    return err("top level",
               "expected an object {\"nftables\": [...]} as printed by `nft -j list ruleset`");
  const json& items = doc["nftables"];
  // Four passes so that references never depend on the order nft printed objects in.
  for (int pass = 0; pass < 4; ++pass) {
    for (std::size_t i = 0; i < items.size(); ++i) {
      const json& it = items[i];
      std::string where = fmt::format("nftables[{}]", i);
      if (!it.is_object() || it.size() != 1) return err(where, "expected an object with one key");
      const auto [k, o] = only_member(it);
      if (!o.is_object() && k != "metainfo")
        return err(where, fmt::format("'{}' is not an object", k));
      Status st = Ok{};
      try {
        if (pass == 0 && k == "metainfo")
          rs_->nft_version = o.value("version", "");
        else if (pass == 0 && k == "table")
          st = add_table(o, where);
        else if (pass == 1 && k == "chain")
          st = add_chain(o, where);
        else if (pass == 2 && (k == "set" || k == "map")) {
          if (!tables_.count(o.value("family", "") + '\0' + o.value("table", "")))
            st = err(where, fmt::format("{} {} names a table that is not defined", k,
                                        o.value("name", "")));
          else
            st = add_set(o, k == "map", where);
        } else if (pass == 3 && k == "rule")
          st = add_rule(o, where);
      } catch (const json::exception& e) {
        // A member of the wrong JSON type where a reader asked for a string or number.
        return err(where, fmt::format("{} has the wrong JSON shape: {}", k, e.what()));
      }
      if (!st) return st.error();
    }
  }
  if (auto st = finish(); !st) return st.error();
  return std::move(rs_);
}

std::pair<std::size_t, std::size_t> line_col(std::string_view text, std::size_t byte) {
  std::size_t line = 1, col = 1;
  for (std::size_t i = 0; i < byte && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
  }
  return {line, col};
}

}  // namespace

namespace {

Result<json> parse_json_text(std::string_view text, const std::string& origin,
                             const LoadOptions& opts) {
  if (text.size() > opts.max_bytes)
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: {} bytes is larger than the {} MiB limit for a ruleset",
                                  origin, text.size(), opts.max_bytes >> 20));
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    auto [line, col] = line_col(text, e.byte ? e.byte - 1 : 0);
    std::string msg = e.what();
    auto pos = msg.find(": ", msg.find("parse error"));
    std::string detail = pos == std::string::npos ? msg : msg.substr(pos + 2);
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}:{}:{}: not valid JSON: {}", origin, line, col, detail));
  } catch (const json::exception& e) {
    // e.g. a number too large for any JSON number type (out_of_range.406).
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
}

}  // namespace

Result<std::unique_ptr<Ruleset>> load_ruleset_doc(const json& doc, const std::string& origin,
                                                  const LoadOptions& opts) {
  try {
    return Loader(origin, opts).run(doc);
  } catch (const json::exception& e) {
    // A field of the wrong JSON type somewhere we read it with get<>().
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: wrong JSON shape: {}", origin, e.what()));
  }
}

Result<std::unique_ptr<Ruleset>> load_ruleset_json(std::string_view text, const std::string& origin,
                                                   const LoadOptions& opts) {
  auto doc = parse_json_text(text, origin, opts);
  if (!doc) return doc.error();
  return load_ruleset_doc(*doc, origin, opts);
}

Result<json> read_json_file(const std::string& path, const LoadOptions& opts) {
  auto text = read_input_file(path, opts.max_bytes);
  if (!text) return text.error();
  return parse_json_text(*text, input_origin(path), opts);
}

}  // namespace dpi::nft
