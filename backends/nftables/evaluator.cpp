#include "backends/nftables/evaluator.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/overloaded.h"

namespace dpi::nft {

namespace {

// The packet as the ruleset sees it at one point of its path; NAT and marks change it.
struct Packet {
  IpAddr src, dst;
  uint8_t l4proto = 0;
  uint16_t sport = 0, dport = 0;
  bool has_ports = false;
  uint8_t icmp_type = 0, icmp_code = 0;
  // Names point into the FlowPath, the NodeInfo or the run's result; the integers are the
  // 16-byte register values the kernel compares (name, NUL padded).
  std::string_view iif, oif;
  U128 iif_v = 0, oif_v = 0;
  uint32_t mark = 0;
  uint32_t ct_state = 8;
  uint32_t ct_status = 0;
  uint32_t ct_mark = 0;
  Hook hook = Hook::prerouting;
};

uint32_t ct_state_bits(CtState s) {
  switch (s) {
    case CtState::new_: return 8;
    case CtState::established: return 2;
    case CtState::related: return 4;
    case CtState::invalid: return 1;
    case CtState::untracked: return 64;
  }
  return 8;
}

U128 ifname_value(std::string_view n) {
  U128 v = 0;
  for (std::size_t i = 0; i < 16; ++i)
    v = (v << 8) | (i < 15 && i < n.size() ? static_cast<uint8_t>(n[i]) : 0);
  return v;
}

U128 addr_value(const IpAddr& a) {
  U128 v = 0;
  for (std::size_t i = 0; i < a.size(); ++i) v = (v << 8) | a.bytes[i];
  return v;
}

Bytes value_bytes(U128 v, std::size_t width) {
  Bytes b;
  b.len = static_cast<uint8_t>(width);
  for (std::size_t i = 0; i < width; ++i) b.d[width - 1 - i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

IpAddr bytes_addr(const Bytes& b) {
  IpAddr a;
  a.family = b.len == 4 ? 2 : 10;
  std::copy_n(b.d.begin(), b.len, a.bytes.begin());
  return a;
}

// Walks forced choices first, then records new choice points, so a depth-first enumeration of
// all outcomes only needs to re-run the flow with a longer prefix.
struct Chooser {
  Chooser(const std::vector<uint32_t>* f, std::vector<uint32_t>* a, bool d = true)
      : forced(f), arity(a), describe(d) {}
  const std::vector<uint32_t>* forced;
  std::vector<uint32_t>* arity;
  bool describe = true;
  std::size_t next = 0;
  std::string described;
  std::vector<std::string> kinds;  // "numgen", "meta random": what chose, once each

  // One of n values; the first run takes 0 everywhere.
  uint32_t choose(uint32_t n) {
    uint32_t v = next < forced->size() ? (*forced)[next] : 0;
    if (next >= arity->size()) arity->push_back(n);
    ++next;
    return v;
  }
  uint32_t numgen(uint32_t mod) {
    uint32_t v = choose(mod);
    if (describe) note("numgen", fmt::format("numgen mod {} = {}", mod, v));
    return v;
  }
  // Whether a `meta random` comparison that can go either way matches (it does first).
  bool random(const RandomStmt& r) {
    bool hit = choose(2) == 0;
    if (describe)
      note("meta random", fmt::format("{} {}", r.expression, hit ? "matched" : "not matched"));
    return hit;
  }
  void note(std::string_view kind, const std::string& text) {
    if (!described.empty()) described += ", ";
    described += text;
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.emplace_back(kind);
  }
};

// Computes the next forced prefix of a depth-first walk over all choice combinations; false
// when every combination was run.
bool advance(const std::vector<uint32_t>& arity, std::vector<uint32_t>& forced,
             std::vector<uint32_t>& next) {
  next.assign(arity.size(), 0);
  for (std::size_t i = 0; i < arity.size(); ++i) next[i] = i < forced.size() ? forced[i] : 0;
  int i = static_cast<int>(next.size()) - 1;
  while (i >= 0 && next[i] + 1 >= arity[i]) --i;
  if (i < 0) return false;
  next[i]++;
  next.resize(i + 1);
  forced.swap(next);
  return true;
}

enum class Rd : uint8_t { ok, absent, error };

// One run of a flow through the hooks. Full records the path, NAT steps, assumptions and
// explanations (evaluate()); otherwise only the verdict and deciding rule (verdict()).
template <bool Full>
class Run {
 public:
  Run(const Ruleset& rs, const NodeInfo* node, const RouteIndex& routes, const Flow& flow,
      const FlowPath& fp, Chooser& chooser, const EvalLimits& limits)
      : rs_(rs),
        node_(node),
        routes_(routes),
        flow_(flow),
        fp_(fp),
        chooser_(chooser),
        limits_(limits) {}

  RunResult go();
  FastVerdict go_fast();

 private:
  enum class Outcome { accept, drop, stop };  // stop: indeterminate or error already recorded

  Outcome start();
  Outcome run_hook(Hook h);
  Outcome run_base_chain(const Chain& base);
  // Evaluates one rule; returns the verdict it issued (none when it did not match or fell
  // through), with the jump target for jump/goto.
  VerdictStmt run_rule(const Chain& chain, const Rule& rule, bool& matched, bool& stop);
  // The same for a rule's compact form (Ruleset::prepare), verdict-only mode.
  VerdictStmt run_fast_rule(const FastOp* op, const FastOp* end, bool& matched);

  // The key's value at its natural width (key_read_width); why_ is set on error.
  Rd read_key(Key k, U128& v);
  std::optional<Bytes> read(const Operand& o, std::string* why);
  std::optional<Bytes> read(const Selector& s, std::string* why);
  bool eval_match(const MatchStmt& m, bool& stop, const Rule& rule, const Chain& chain);
  void apply_nat(const NatStmt& n, const Rule& rule, const Chain& chain, bool& stop);
  std::optional<uint32_t> fib_type(const IpAddr& a);
  // A fib expression's route (null: none); nullopt with why_ set when the ip rules cannot say.
  std::optional<const Route*> fib_lookup(const IpAddr& dst, const RouteKey& key) {
    RouteResult res = routes_.lookup(dst, key);
    if (res.unsupported.empty()) return res.route;
    why_buf_ = std::move(res.unsupported);
    why_ = why_buf_.c_str();
    return std::nullopt;
  }
  void indeterminate(const Chain& c, const Rule* r, const std::string& expr,
                     const std::string& why);
  void indeterminate(const Chain& c, const Rule* r, const char* why);
  RuleRef ref(const Chain& c, const Rule& r) const;
  // false: no routes to decide with, or route_refused_ says why the route cannot be told.
  bool route_after_prerouting();
  Outcome refuse_route() {
    res_.verdict = Verdict::indeterminate;
    if constexpr (Full)
      res_.indeterminate = IndeterminateReason{RuleRef{}, "route lookup", route_refused_};
    return Outcome::stop;
  }
  void set_oif(std::string_view name) {
    p_.oif = name;
    p_.oif_v = ifname_value(name);
  }

  const Ruleset& rs_;
  const NodeInfo* node_;
  const RouteIndex& routes_;
  const Flow& flow_;
  const FlowPath& fp_;
  Chooser& chooser_;
  const EvalLimits& limits_;
  Packet p_;
  RunResult res_;  // Full only, apart from verdict
  std::string route_refused_;
  const char* why_ = nullptr;
  std::string why_buf_;  // storage for a why_ that is built at run time
  std::size_t steps_ = 0;
  int next_invocation_ = 0;
  Hook policy_hook_ = Hook::forward;
  std::optional<std::size_t> last_accept_step_;
  std::optional<RuleRef> last_accept_policy_;
  // Verdict-only bookkeeping (both modes keep it; it is cheap).
  bool local_delivery_ = false;
  bool no_route_ = false;
  std::string_view route_oif_;
  const Chain* decided_chain_ = nullptr;
  const Rule* decided_rule_ = nullptr;
  const Chain* accept_chain_ = nullptr;
  const Rule* accept_rule_ = nullptr;

  struct Frame {
    const Chain* chain;
    std::size_t next;
    int invocation;
    int parent;
  };
  Frame stack_[17];
};

template <bool Full>
RuleRef Run<Full>::ref(const Chain& c, const Rule& r) const {
  return RuleRef{c.family, c.table, c.name, r.handle, r.text, r.comment, r.packets, r.bytes};
}

template <bool Full>
void Run<Full>::indeterminate(const Chain& c, const Rule* r, const std::string& expr,
                              const std::string& why) {
  decided_chain_ = &c;
  decided_rule_ = r;
  res_.verdict = Verdict::indeterminate;
  if constexpr (Full) {
    IndeterminateReason ir;
    if (r)
      ir.rule = ref(c, *r);
    else
      ir.rule = RuleRef{c.family, c.table, c.name, std::nullopt, "", "", {}, {}};
    ir.expression = expr;
    ir.why = why;
    res_.indeterminate = ir;
  }
}

template <bool Full>
void Run<Full>::indeterminate(const Chain& c, const Rule* r, const char* why) {
  if constexpr (Full) {
    indeterminate(c, r, r ? r->text : std::string(), why);
  } else {
    decided_chain_ = &c;
    decided_rule_ = r;
    res_.verdict = Verdict::indeterminate;
  }
}

template <bool Full>
std::optional<uint32_t> Run<Full>::fib_type(const IpAddr& a) {
  if (!node_) {
    why_ =
        "fib lookups need the node's addresses and routes (use --netns, or --node FILE with a "
        "ruleset file)";
    return std::nullopt;
  }
  if (routes_.is_local(a)) return 2;
  if (a.is_v4() && a.bytes[0] >= 224 && a.bytes[0] < 240) return 5;
  if (a.is_v6() && a.bytes[0] == 0xff) return 5;
  if (a.is_v4()) {
    // nft_fib4 asks the local table only (inet_dev_addr_type): no entry there means unicast.
    const bool limited_broadcast =
        std::all_of(a.bytes.begin(), a.bytes.begin() + 4, [](uint8_t b) { return b == 0xff; });
    if (a.bytes[0] == 0 || limited_broadcast) return 3;
    const Route* r = routes_.table_lookup(255, a);
    return r && r->type == "broadcast" ? 3 : 1;
  }
  // nft_fib6 does a full route lookup.
  auto found = fib_lookup(a, RouteKey{});
  if (!found) return std::nullopt;
  const Route* r = *found;
  if (!r) return 7;
  if (r->type == "broadcast") return 3;
  if (r->type == "blackhole") return 6;
  if (r->type == "unreachable") return 7;
  if (r->type == "prohibit") return 8;
  return 1;
}

template <bool Full>
Rd Run<Full>::read_key(Key k, U128& v) {
  bool v4 = p_.src.is_v4();
  bool tcp = p_.l4proto == 6, udp = p_.l4proto == 17, sctp = p_.l4proto == 132;
  switch (k) {
    case Key::meta_mark: v = p_.mark; return Rd::ok;
    case Key::meta_l4proto:
    case Key::ct_protocol: v = p_.l4proto; return Rd::ok;
    case Key::meta_nfproto:
    case Key::ct_l3proto: v = v4 ? 2 : 10; return Rd::ok;
    case Key::meta_iifname:
    case Key::meta_iif: v = p_.iif_v; return Rd::ok;
    case Key::meta_oifname:
    case Key::meta_oif: v = p_.oif_v; return Rd::ok;
    case Key::meta_pkttype: {
      bool mc = (v4 && p_.dst.bytes[0] >= 224 && p_.dst.bytes[0] < 240) ||
                (!v4 && p_.dst.bytes[0] == 0xff);
      v = mc ? 2 : 0;
      return Rd::ok;
    }
    case Key::ct_state: v = p_.ct_state; return Rd::ok;
    case Key::ct_status: v = p_.ct_status; return Rd::ok;
    case Key::ct_mark: v = p_.ct_mark; return Rd::ok;
    case Key::ct_direction: v = 0; return Rd::ok;
    case Key::ip_saddr:
      if (!v4) return Rd::absent;
      v = addr_value(p_.src);
      return Rd::ok;
    case Key::ip_daddr:
      if (!v4) return Rd::absent;
      v = addr_value(p_.dst);
      return Rd::ok;
    case Key::ip_protocol:
      if (!v4) return Rd::absent;
      v = p_.l4proto;
      return Rd::ok;
    case Key::ip6_saddr:
      if (v4) return Rd::absent;
      v = addr_value(p_.src);
      return Rd::ok;
    case Key::ip6_daddr:
      if (v4) return Rd::absent;
      v = addr_value(p_.dst);
      return Rd::ok;
    case Key::ip6_nexthdr:
      if (v4) return Rd::absent;
      v = p_.l4proto;
      return Rd::ok;
    case Key::th_sport:
      if (!p_.has_ports) return Rd::absent;
      v = p_.sport;
      return Rd::ok;
    case Key::th_dport:
      if (!p_.has_ports) return Rd::absent;
      v = p_.dport;
      return Rd::ok;
    case Key::tcp_sport:
      if (!tcp) return Rd::absent;
      v = p_.sport;
      return Rd::ok;
    case Key::tcp_dport:
      if (!tcp) return Rd::absent;
      v = p_.dport;
      return Rd::ok;
    case Key::udp_sport:
      if (!udp) return Rd::absent;
      v = p_.sport;
      return Rd::ok;
    case Key::udp_dport:
      if (!udp) return Rd::absent;
      v = p_.dport;
      return Rd::ok;
    case Key::sctp_sport:
      if (!sctp) return Rd::absent;
      v = p_.sport;
      return Rd::ok;
    case Key::sctp_dport:
      if (!sctp) return Rd::absent;
      v = p_.dport;
      return Rd::ok;
    case Key::tcp_flags:
      if (!tcp) return Rd::absent;
      // SYN for a new connection, ACK otherwise: the first packet the user would send.
      v = flow_.ct == CtState::new_ ? 0x02 : 0x10;
      return Rd::ok;
    case Key::icmp_type:
      if (p_.l4proto != 1) return Rd::absent;
      v = p_.icmp_type;
      return Rd::ok;
    case Key::icmp_code:
      if (p_.l4proto != 1) return Rd::absent;
      v = p_.icmp_code;
      return Rd::ok;
    case Key::icmpv6_type:
      if (p_.l4proto != 58) return Rd::absent;
      v = p_.icmp_type;
      return Rd::ok;
    case Key::icmpv6_code:
      if (p_.l4proto != 58) return Rd::absent;
      v = p_.icmp_code;
      return Rd::ok;
    case Key::fib_daddr_type:
    case Key::fib_saddr_type: {
      auto t = fib_type(k == Key::fib_daddr_type ? p_.dst : p_.src);
      if (!t) return Rd::error;
      v = *t;
      return Rd::ok;
    }
    case Key::fib_saddr_iif_oif:
    case Key::fib_saddr_mark_iif_oif: {
      if (!node_) {
        why_ =
            "the reverse-path (fib saddr . iif oif) lookup needs the node's routes (use --netns or "
            "--node)";
        return Rd::error;
      }
      // Strict RPF: the route back to the source must leave through the interface it came in.
      // The reverse lookup goes from this node's address to the source; with "mark" it carries
      // the packet's mark, which ip rules may select on.
      RouteKey key;
      key.src = p_.dst;
      if (k == Key::fib_saddr_mark_iif_oif) key.mark = p_.mark;
      auto found = fib_lookup(p_.src, key);
      if (!found) return Rd::error;
      const Route* r = *found;
      bool ok = r && r->type == "unicast" && r->dev == p_.iif;
      v = ok ? p_.iif_v : 0;
      return Rd::ok;
    }
    case Key::fib_daddr_oif: {
      if (!node_) {
        why_ = "fib daddr oif needs the node's routes (use --netns or --node)";
        return Rd::error;
      }
      RouteKey key;
      key.src = p_.src;
      auto found = fib_lookup(p_.dst, key);
      if (!found) return Rd::error;
      const Route* r = *found;
      v = r && r->type == "unicast" ? ifname_value(r->dev) : 0;
      return Rd::ok;
    }
    case Key::numgen: return Rd::error;  // needs the operand: handled by the callers
    case Key::meta_random:
      // A comparison with constants is a RandomStmt; a value used as a key or data is not
      // something one branch per value could cover.
      why_ =
          "meta random used as a value, not compared with constants: its outcomes are not explored";
      return Rd::error;
    case Key::meta_protocol:
    case Key::meta_iiftype:
    case Key::meta_oiftype:
    case Key::meta_length: why_ = "field not supported by the evaluator"; return Rd::error;
  }
  why_ = "field not supported by the evaluator";
  return Rd::error;
}

template <bool Full>
std::optional<Bytes> Run<Full>::read(const Operand& o, std::string* why) {
  U128 v = 0;
  std::size_t w = key_read_width(o.key);
  if (o.key == Key::numgen) {
    v = static_cast<uint32_t>(chooser_.numgen(o.numgen_mod) + o.numgen_offset);
  } else {
    why_ = nullptr;
    Rd r = read_key(o.key, v);
    if (r != Rd::ok) {
      if (r == Rd::error && why) *why = why_ ? why_ : "field not supported by the evaluator";
      return std::nullopt;
    }
  }
  Bytes b = value_bytes(v, w);
  for (const auto& [op, c] : o.binops)
    for (std::size_t i = 0; i < b.len && i < c.len; ++i) {
      if (op == '&')
        b.d[i] &= c.d[i];
      else if (op == '|')
        b.d[i] |= c.d[i];
      else
        b.d[i] ^= c.d[i];
    }
  return b;
}

template <bool Full>
std::optional<Bytes> Run<Full>::read(const Selector& s, std::string* why) {
  if (s.parts.size() == 1) return read(s.parts[0], why);
  Bytes all;
  for (const auto& p : s.parts) {
    auto b = read(p, why);
    if (!b || !all.append(*b)) return std::nullopt;
  }
  return all;
}

template <bool Full>
bool Run<Full>::eval_match(const MatchStmt& m, bool& stop, const Rule& rule, const Chain& chain) {
  if (m.fast != MatchStmt::Fast::none) {
    // Integer path: the same reads and comparisons on at most 16 bytes.
    U128 v = 0;
    for (const auto& o : m.lhs.parts) {
      U128 part = 0;
      if (o.key == Key::numgen) {
        part = static_cast<uint32_t>(chooser_.numgen(o.numgen_mod) + o.numgen_offset);
      } else {
        why_ = nullptr;
        Rd r = read_key(o.key, part);
        if (r != Rd::ok) {
          if (r == Rd::error) {
            indeterminate(chain, &rule, why_ ? why_ : "field not supported by the evaluator");
            stop = true;
          }
          return false;  // the field does not exist in this packet: the kernel breaks the rule
        }
      }
      part = (part & o.and_mask) ^ o.xor_mask;
      v = m.lhs.parts.size() == 1 ? part : (v << (8 * o.read_width)) | part;
    }
    switch (m.fast) {
      case MatchStmt::Fast::flags: return (v & m.lo_int) != 0;
      case MatchStmt::Fast::set: {
        bool found = m.set->find_int(v) != nullptr;
        return m.op == Op::eq ? found : !found;
      }
      case MatchStmt::Fast::range:
      case MatchStmt::Fast::none: break;
    }
    switch (m.op) {
      case Op::eq: return m.lo_int <= v && v <= m.hi_int;
      case Op::ne: return !(m.lo_int <= v && v <= m.hi_int);
      case Op::lt: return v < m.lo_int;
      case Op::gt: return v > m.lo_int;
      case Op::le: return v <= m.lo_int;
      case Op::ge: return v >= m.lo_int;
      case Op::flags_any: return false;
    }
    return false;
  }
  std::string why;
  auto v = read(m.lhs, &why);
  if (!v) {
    if (!why.empty()) {
      indeterminate(chain, &rule, rule.text, why);
      stop = true;
    }
    return false;  // the field does not exist in this packet: the kernel breaks the rule too
  }
  switch (m.rhs_kind) {
    case MatchStmt::RhsKind::flags: {
      for (std::size_t i = 0; i < v->len; ++i)
        if (v->d[i] & m.flags.d[i]) return true;
      return false;
    }
    case MatchStmt::RhsKind::set: {
      bool found = m.set->find(*v) != nullptr;
      return m.op == Op::eq ? found : !found;
    }
    case MatchStmt::RhsKind::range: break;
  }
  switch (m.op) {
    case Op::eq: return m.range.contains(*v);
    case Op::ne: return !m.range.contains(*v);
    case Op::lt: return v->compare(m.range.lo) < 0;
    case Op::gt: return v->compare(m.range.lo) > 0;
    case Op::le: return v->compare(m.range.lo) <= 0;
    case Op::ge: return v->compare(m.range.lo) >= 0;
    case Op::flags_any: return false;
  }
  return false;
}

template <bool Full>
void Run<Full>::apply_nat(const NatStmt& n, const Rule& rule, const Chain& chain, bool& stop) {
  std::optional<Bytes> addr = n.addr;
  std::optional<uint16_t> port = n.port;
  if (n.map) {
    std::string why;
    auto key = read(*n.map_key, &why);
    const SetElem* e = key ? n.map->find(*key) : nullptr;
    if (!e || !e->data) {
      if (!why.empty())
        indeterminate(chain, &rule, rule.text, why);
      else
        indeterminate(chain, &rule, "NAT map has no element for this flow");
      stop = true;
      return;
    }
    Bytes d = *e->data;
    std::size_t alen = p_.src.size();
    addr = d;
    addr->len = static_cast<uint8_t>(std::min<std::size_t>(alen, d.len));
    if (d.len >= alen + 2) port = static_cast<uint16_t>((d.d[alen] << 8) | d.d[alen + 1]);
  }
  if (n.kind == NatStmt::Kind::dnat) {
    if (addr) p_.dst = bytes_addr(*addr);
    if (port && p_.has_ports) p_.dport = *port;
    p_.ct_status |= 32;  // IPS_DST_NAT: later "ct status dnat" matches see it
    // A locally sent packet is routed again right after DNAT in output (ip_route_me_harder),
    // so later chains on the hook see the translated destination's interface.
    if (p_.hook == Hook::output && addr && !fp_.forced_oif && !fp_.forced_local && node_) {
      local_delivery_ = false;
      no_route_ = false;
      if (!route_after_prerouting() && !route_refused_.empty()) {
        refuse_route();
        stop = true;
        return;
      }
      set_oif(local_delivery_ ? std::string_view("lo") : route_oif_);
    }
  } else if (n.kind == NatStmt::Kind::snat) {
    if (addr) p_.src = bytes_addr(*addr);
    if (port && p_.has_ports) p_.sport = *port;
    p_.ct_status |= 16;
  } else if (n.kind == NatStmt::Kind::masquerade) {
    p_.ct_status |= 16;
  } else {
    if (port && p_.has_ports) p_.dport = *port;
    p_.ct_status |= 32;
    local_delivery_ = true;
  }
  if constexpr (Full) {
    NatStep ns;
    ns.hook = std::string(hook_name(p_.hook));
    ns.rule = ref(chain, rule);
    static const char* kNames[] = {"dnat", "snat", "masquerade", "redirect"};
    ns.kind = kNames[static_cast<int>(n.kind)];
    if (addr && port)
      ns.to = addr_port(bytes_addr(*addr), *port);
    else if (addr)
      ns.to = bytes_addr(*addr).str();
    else if (port)
      ns.to = fmt::format(":{}", *port);
    res_.nat.push_back(ns);
  }
}

template <bool Full>
VerdictStmt Run<Full>::run_rule(const Chain& chain, const Rule& rule, bool& matched, bool& stop) {
  matched = false;
  // Each statement either lets the rule go on (nullopt) or ends it with a verdict; `matched`
  // says whether that verdict applies. Every statement kind has its own case: a new kind that
  // is not handled here does not compile.
  using Step = std::optional<VerdictStmt>;
  auto end_rule = [&](VerdictStmt v, bool applies) -> Step {
    matched = applies;
    return v;
  };
  auto give_up = [&](const std::string& expression, const std::string& why) -> Step {
    indeterminate(chain, &rule, expression, why);
    stop = true;
    return end_rule({}, false);
  };
  for (const auto& st : rule.stmts) {
    Step done = std::visit(
        Overloaded{
            [&](const MatchStmt& m) -> Step {
              bool hit = eval_match(m, stop, rule, chain);
              if (stop || hit == m.invert) return end_rule({}, false);
              return std::nullopt;
            },
            [&](const VerdictStmt& v) -> Step { return end_rule(v, true); },
            [&](const CounterStmt&) -> Step { return std::nullopt; },
            [&](const LogStmt&) -> Step { return std::nullopt; },
            [&](const NoopStmt&) -> Step { return std::nullopt; },
            [&](const MangleStmt& ms) -> Step {
              uint32_t val;
              if (ms.constant) {
                val = static_cast<uint32_t>(ms.constant->as_uint());
              } else {
                std::string why;
                auto b = read(ms.value, &why);
                if (!b) return give_up(rule.text, why);
                val = static_cast<uint32_t>(b->as_uint());
              }
              (ms.target == MangleStmt::Target::ct_mark ? p_.ct_mark : p_.mark) = val;
              return std::nullopt;
            },
            [&](const VmapStmt& vm) -> Step {
              std::string why;
              auto key = read(vm.key, &why);
              if (!key) {
                if (!why.empty()) return give_up(rule.text, why);
                return end_rule({}, false);
              }
              const SetElem* e = vm.map->find(*key);
              if (!e) return end_rule({}, false);  // a lookup miss ends the rule, as in the kernel
              return end_rule(e->verdict, true);
            },
            [&](const RejectStmt&) -> Step {
              return end_rule(VerdictStmt{VerdictKind::drop, nullptr}, true);
            },
            [&](const NatStmt& n) -> Step {
              apply_nat(n, rule, chain, stop);
              if (stop) return end_rule({}, false);
              // NAT statements are terminal: the kernel accepts the packet in this chain.
              return end_rule(VerdictStmt{VerdictKind::accept, nullptr}, true);
            },
            [&](const NotrackStmt&) -> Step {
              p_.ct_state = 64;
              return std::nullopt;
            },
            [&](const AssumeStmt& a) -> Step {
              if constexpr (Full) res_.assumptions.push_back(a.assumption);
              if (!a.matches) return end_rule({}, false);
              return std::nullopt;
            },
            [&](const UnknownStmt& u) -> Step { return give_up(u.expression, u.why); },
            [&](const RandomStmt& r) -> Step {
              bool hit = r.can_match && r.can_miss ? chooser_.random(r) : r.can_match;
              if (!hit) return end_rule({}, false);
              return std::nullopt;
            },
        },
        st);
    if (done) return *done;
  }
  matched = true;
  return {};
}

template <bool Full>
VerdictStmt Run<Full>::run_fast_rule(const FastOp* op, const FastOp* end, bool& matched) {
  matched = false;
  for (; op != end; ++op) {
    switch (op->kind) {
      case FastOp::Kind::match:
      case FastOp::Kind::set:
      case FastOp::Kind::flags: {
        U128 v = 0;
        if (read_key(op->key, v) != Rd::ok) return {};  // plain keys: absent field only
        v = (v & op->a) ^ op->b;
        bool hit = false;
        if (op->kind == FastOp::Kind::flags) {
          hit = (v & op->lo) != 0;
        } else if (op->kind == FastOp::Kind::set) {
          bool found = static_cast<const SetDef*>(op->ptr)->find_int(v) != nullptr;
          hit = op->op == Op::eq ? found : !found;
        } else {
          switch (op->op) {
            case Op::eq: hit = op->lo <= v && v <= op->hi; break;
            case Op::ne: hit = !(op->lo <= v && v <= op->hi); break;
            case Op::lt: hit = v < op->lo; break;
            case Op::gt: hit = v > op->lo; break;
            case Op::le: hit = v <= op->lo; break;
            case Op::ge: hit = v >= op->lo; break;
            case Op::flags_any: hit = false; break;
          }
        }
        if (hit == op->invert) return {};
        break;
      }
      case FastOp::Kind::mark_const: p_.mark = static_cast<uint32_t>(op->a); break;
      case FastOp::Kind::mark_op:
        p_.mark = static_cast<uint32_t>((U128{p_.mark} & op->a) ^ op->b);
        break;
      case FastOp::Kind::verdict:
        matched = true;
        return VerdictStmt{op->verdict, static_cast<const Chain*>(op->ptr)};
      case FastOp::Kind::skip: break;
    }
  }
  matched = true;
  return {};
}

template <bool Full>
typename Run<Full>::Outcome Run<Full>::run_base_chain(const Chain& base) {
  std::size_t depth = 0;
  stack_[depth++] = Frame{&base, 0, next_invocation_++, -1};
  const bool nat = base.type == "nat";
  std::string hook;
  if constexpr (Full) hook = std::string(hook_name(p_.hook));
  while (depth > 0) {
    Frame& f = stack_[depth - 1];
    if (f.next >= f.chain->rules.size()) {
      --depth;  // falling off a regular chain returns to its caller
      continue;
    }
    const std::size_t pos = f.next++;
    const Rule& rule = f.chain->rules[pos];
    if (++steps_ > limits_.max_steps) {
      indeterminate(*f.chain, &rule, "", "evaluation step limit reached");
      return Outcome::stop;
    }
    bool matched = false, stop = false;
    VerdictStmt v;
    if constexpr (!Full) {
      const FastRule* fr = f.chain->fast_count == f.chain->rules.size()
                               ? &rs_.fast_rules[f.chain->fast_first + pos]
                               : nullptr;
      if (fr && !fr->slow) {
        const FastOp* ops = rs_.fast_ops.data() + fr->first;
        v = run_fast_rule(ops, ops + fr->count, matched);
      } else {
        v = run_rule(*f.chain, rule, matched, stop);
      }
    } else {
      v = run_rule(*f.chain, rule, matched, stop);
    }
    if (stop) return Outcome::stop;
    if (!matched) continue;
    std::size_t idx = 0;
    if constexpr (Full) {
      PathStep step{hook,       f.invocation,          f.parent, ref(*f.chain, rule),
                    rule.facts, f.chain->first_comment};
      // A reject is a drop that also answers the sender; keep its name for the report.
      if (!(v.kind == VerdictKind::drop && rule.facts.action == "reject"))
        step.facts.action =
            v.kind == VerdictKind::none ? "continue" : std::string(verdict_kind_name(v.kind));
      if (v.target) step.facts.target = v.target->name;
      res_.path.push_back(std::move(step));
      idx = res_.path.size() - 1;
    }
    switch (v.kind) {
      case VerdictKind::none:
      case VerdictKind::cont: break;
      case VerdictKind::accept:
        // NAT chains accept to say "translated"; the filter verdict is decided elsewhere.
        if (p_.hook == policy_hook_ && !nat) {
          if constexpr (Full) {
            last_accept_step_ = idx;
            last_accept_policy_.reset();
          }
          accept_chain_ = f.chain;
          accept_rule_ = &rule;
        }
        return Outcome::accept;
      case VerdictKind::drop:
        if constexpr (Full) res_.deciding_step = idx;
        decided_chain_ = f.chain;
        decided_rule_ = &rule;
        return Outcome::drop;
      case VerdictKind::queue:
        indeterminate(*f.chain, &rule, rule.text,
                      "the packet is queued to a userspace program, which decides");
        return Outcome::stop;
      case VerdictKind::ret: --depth; break;
      case VerdictKind::jump: {
        if (depth >= 16) {
          indeterminate(*f.chain, &rule, rule.text,
                        "jump stack deeper than the kernel's limit of 16");
          return Outcome::stop;
        }
        int parent = f.invocation;
        stack_[depth++] = Frame{v.target, 0, next_invocation_++, parent};
        break;
      }
      case VerdictKind::go_to: {
        // goto replaces the current frame: a return from the target skips this chain.
        int parent = f.invocation;
        f = Frame{v.target, 0, next_invocation_++, parent};
        break;
      }
    }
  }
  // Back in (or returned from) the base chain: its policy decides.
  if (base.policy == VerdictKind::drop) {
    if constexpr (Full)
      res_.deciding_policy = RuleRef{base.family,
                                     base.table,
                                     base.name,
                                     std::nullopt,
                                     fmt::format("policy {}", verdict_kind_name(base.policy)),
                                     "",
                                     {},
                                     {}};
    decided_chain_ = &base;
    decided_rule_ = nullptr;
    return Outcome::drop;
  }
  if (p_.hook == policy_hook_ && !nat) {
    if constexpr (Full) {
      last_accept_policy_ = RuleRef{base.family,
                                    base.table,
                                    base.name,
                                    std::nullopt,
                                    fmt::format("policy {}", verdict_kind_name(base.policy)),
                                    "",
                                    {},
                                    {}};
      last_accept_step_.reset();
    }
    accept_chain_ = &base;
    accept_rule_ = nullptr;
  }
  return Outcome::accept;
}

template <bool Full>
typename Run<Full>::Outcome Run<Full>::run_hook(Hook h) {
  p_.hook = h;
  const auto& hooks = p_.src.is_v4() ? rs_.v4_hooks : rs_.v6_hooks;
  auto it = hooks.find(h);
  if (it == hooks.end()) return Outcome::accept;
  for (const Chain* c : it->second) {
    // NAT chains only see the first packet of a connection.
    if (p_.ct_state != 8 && c->type == "nat") continue;
    Outcome o = run_base_chain(*c);
    if (o != Outcome::accept) return o;
  }
  return Outcome::accept;
}

template <bool Full>
bool Run<Full>::route_after_prerouting() {
  if (fp_.forced_local) {
    local_delivery_ = local_delivery_ || *fp_.forced_local;
    if (!local_delivery_) route_oif_ = fp_.forced_oif ? std::string_view(*fp_.forced_oif) : "";
    return true;
  }
  if (fp_.forced_oif) {
    route_oif_ = *fp_.forced_oif;
    return true;
  }
  if (local_delivery_) return true;
  if (!node_) return false;
  if (routes_.is_local(p_.dst)) {
    local_delivery_ = true;
    return true;
  }
  RouteKey key;
  key.src = p_.src;
  key.mark = p_.mark;
  key.l4proto = p_.l4proto;
  key.has_ports = p_.has_ports;
  key.sport = p_.sport;
  key.dport = p_.dport;
  // Packets the node sends are routed as coming from loopback ("iif lo" rules match them).
  key.iif = fp_.from_host ? std::string_view("lo") : p_.iif;
  RouteResult res = routes_.lookup(p_.dst, key);
  if (!res.unsupported.empty()) {
    route_refused_ = res.unsupported;
    return false;
  }
  const Route* r = res.route;
  if constexpr (Full)
    res_.route_rule = res.rule && !is_default_ip_rule(*res.rule) ? ip_rule_text(*res.rule) : "";
  if (!r || r->type != "unicast" || r->dev.empty()) {
    no_route_ = true;
    if constexpr (Full) {
      res_.no_route = r ? fmt::format("route type {} for {}", r->type, p_.dst.str())
                        : fmt::format("no route to {}", p_.dst.str());
      if (!res_.route_rule.empty()) res_.no_route += " (ip rule " + res_.route_rule + ")";
    }
    return true;
  }
  route_oif_ = r->dev;
  return true;
}

// Runs the hooks; the verdict bookkeeping is left in the members.
template <bool Full>
typename Run<Full>::Outcome Run<Full>::start() {
  p_.src = flow_.src;
  p_.dst = flow_.dst;
  p_.l4proto = flow_.l4proto;
  p_.has_ports = flow_.has_ports();
  p_.sport = flow_.sport.value_or(0);
  p_.dport = flow_.dport.value_or(0);
  p_.icmp_type = flow_.icmp_type.value_or(0);
  p_.icmp_code = flow_.icmp_code.value_or(0);
  p_.mark = flow_.mark;
  p_.ct_state = ct_state_bits(flow_.ct);
  // An established connection has seen a reply and is confirmed.
  p_.ct_status = flow_.ct == CtState::new_ ? 0 : (2 | 4 | 8);

  if (fp_.from_host) {
    policy_hook_ = Hook::output;
    if (!route_after_prerouting()) {
      if (!route_refused_.empty()) return refuse_route();
      if constexpr (Full)
        res_.no_route = "the node's routes are unknown: pass --oif or --netns/--node";
      return Outcome::stop;
    }
    set_oif(local_delivery_ ? std::string_view("lo") : route_oif_);
    Outcome o = run_hook(Hook::output);
    if (o != Outcome::accept) return o;
    if (no_route_) return Outcome::drop;
    return run_hook(Hook::postrouting);
  }
  p_.iif = fp_.iif;
  p_.iif_v = ifname_value(p_.iif);
  set_oif("");
  Outcome o = run_hook(Hook::prerouting);
  if (o != Outcome::accept) {
    policy_hook_ = Hook::prerouting;
    return o;
  }
  if (!route_after_prerouting()) {
    if (!route_refused_.empty()) return refuse_route();
    if constexpr (Full)
      res_.no_route = "the node's routes are unknown: pass --oif (forwarded), or --netns/--node";
    return Outcome::stop;
  }
  if (no_route_) return Outcome::drop;
  if (local_delivery_) {
    policy_hook_ = Hook::input;
    return run_hook(Hook::input);
  }
  policy_hook_ = Hook::forward;
  set_oif(route_oif_);
  o = run_hook(Hook::forward);
  if (o != Outcome::accept) return o;
  Hook saved = policy_hook_;
  o = run_hook(Hook::postrouting);
  policy_hook_ = saved;
  return o;
}

template <bool Full>
RunResult Run<Full>::go() {
  Outcome o = start();
  if (o == Outcome::drop) res_.verdict = Verdict::deny;
  if (o == Outcome::accept) {
    res_.verdict = Verdict::allow;
    res_.deciding_step = last_accept_step_;
    res_.deciding_policy = last_accept_policy_;
  }
  res_.local_delivery = local_delivery_;
  res_.oif = std::string(route_oif_);
  res_.policy_hook = std::string(hook_name(policy_hook_));
  res_.choice = chooser_.described;
  res_.choice_kinds = chooser_.kinds;
  return std::move(res_);
}

template <bool Full>
FastVerdict Run<Full>::go_fast() {
  Outcome o = start();
  FastVerdict out;
  out.rules = static_cast<uint32_t>(steps_);
  if (o == Outcome::drop) {
    out.verdict = Verdict::deny;
    out.chain = decided_chain_;
    out.rule = decided_rule_;
  } else if (o == Outcome::accept) {
    out.verdict = Verdict::allow;
    out.chain = accept_chain_;
    out.rule = accept_rule_;
  } else {
    out.verdict = Verdict::indeterminate;
    out.chain = decided_chain_;
    out.rule = decided_rule_;
  }
  return out;
}

}  // namespace

Result<FlowPath> Evaluator::plan(const Flow& flow) const {
  FlowPath fp;
  if (!flow.oif.empty()) {
    fp.forced_oif = flow.oif;
    fp.notes.push_back(fmt::format("output interface {} (given)", flow.oif));
  }
  if (!flow.iif.empty()) {
    fp.iif = flow.iif;
    fp.notes.push_back(fmt::format("input interface {} (given)", flow.iif));
    if (flow.iif == "lo" && node_ && node_->is_local(flow.src)) fp.from_host = true;
  } else if (node_ && node_->is_local(flow.src)) {
    fp.from_host = true;
    fp.notes.push_back(
        fmt::format("{} is an address of the node: the node itself sends the flow (output hook)",
                    flow.src.str()));
  } else if (node_) {
    // The reply's route: from the flow's destination, sent by the node.
    RouteKey back;
    back.src = flow.dst;
    back.iif = "lo";
    RouteResult res = routes_.lookup(flow.src, back);
    const Route* r = res.route;
    if (!r || r->dev.empty())
      return make_error(
          ErrorCode::bad_input,
          fmt::format(
              "cannot tell which interface {} arrives on: {}; pass --iif", flow.src.str(),
              res.unsupported.empty() ? "the node has no route back to it" : res.unsupported));
    fp.iif = r->dev;
    fp.notes.push_back(
        fmt::format("input interface {} (the node's route back to {})", r->dev, flow.src.str()));
  } else {
    return make_error(
        ErrorCode::bad_input,
        "with a ruleset file and no node info, say where the flow enters: --iif IFACE "
        "(and --oif IFACE when it is forwarded), or pass --node FILE");
  }
  if (!node_ && !fp.forced_oif) {
    fp.forced_local = true;
    fp.notes.push_back(
        "no --oif and no node routes: the destination is taken to be the node itself (input hook)");
  }
  return fp;
}

std::vector<RunResult> Evaluator::evaluate(const Flow& flow, const FlowPath& fp) const {
  std::vector<RunResult> out;
  std::vector<uint32_t> forced, arity, next;
  for (;;) {
    arity.clear();
    Chooser ch(&forced, &arity);
    out.push_back(Run<true>(rs_, node_, routes_, flow, fp, ch, limits_).go());
    // Advance to the next unexplored combination, depth first.
    if (!advance(arity, forced, next)) break;
    if (out.size() >= limits_.max_outcomes) {
      out.back().assumptions.push_back(fmt::format(
          "only the first {} random-choice outcomes were explored", limits_.max_outcomes));
      break;
    }
  }
  return out;
}

FastVerdict Evaluator::verdict(const Flow& flow, const FlowPath& fp, EvalScratch& sc) const {
  FastVerdict out;
  sc.forced.clear();
  for (uint32_t n = 1;; ++n) {
    sc.arity.clear();
    Chooser ch(&sc.forced, &sc.arity, false);
    FastVerdict v = Run<false>(rs_, node_, routes_, flow, fp, ch, limits_).go_fast();
    if (n == 1) {
      out = v;
    } else {
      out.rules += v.rules;
      out.outcomes = n;
      if (v.verdict != out.verdict) out.verdict = Verdict::indeterminate;
    }
    if (!advance(sc.arity, sc.forced, sc.next) || n >= limits_.max_outcomes) break;
  }
  return out;
}

}  // namespace dpi::nft
