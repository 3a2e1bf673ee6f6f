#include "backends/nftables/evaluator.h"

#include <fmt/format.h>

namespace dpi::nft {

namespace {

// The packet as the ruleset sees it at one point of its path; NAT and marks change it.
struct Packet {
  IpAddr src, dst;
  uint8_t l4proto = 0;
  uint16_t sport = 0, dport = 0;
  bool has_ports = false;
  uint8_t icmp_type = 0, icmp_code = 0;
  std::string iif, oif;
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

Bytes ifname_bytes(const std::string& n) {
  Bytes b;
  b.len = 16;
  std::copy_n(n.begin(), std::min<std::size_t>(n.size(), 15), b.d.begin());
  return b;
}

Bytes addr_bytes(const IpAddr& a) {
  Bytes b;
  b.len = static_cast<uint8_t>(a.size());
  std::copy_n(a.bytes.begin(), b.len, b.d.begin());
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
  std::vector<uint32_t> forced;
  std::vector<uint32_t> arity;
  std::size_t next = 0;
  std::string described;

  uint32_t choose(uint32_t n, const std::string& what) {
    uint32_t v = next < forced.size() ? forced[next] : 0;
    if (next >= arity.size()) arity.push_back(n);
    ++next;
    if (!described.empty()) described += ", ";
    described += fmt::format("{} = {}", what, v);
    return v;
  }
};

class Run {
 public:
  Run(const Ruleset& rs, const NodeInfo* node, const Flow& flow, const FlowPath& fp,
      Chooser& chooser, const EvalLimits& limits)
      : rs_(rs), node_(node), flow_(flow), fp_(fp), chooser_(chooser), limits_(limits) {}

  RunResult go();

 private:
  enum class Outcome { accept, drop, stop };  // stop: indeterminate or error already recorded

  Outcome run_hook(Hook h);
  Outcome run_base_chain(const Chain& base);
  // Evaluates one rule; returns the verdict it issued (none when it did not match or fell
  // through), with the jump target for jump/goto.
  VerdictStmt run_rule(const Chain& chain, const Rule& rule, bool& matched, bool& stop);

  std::optional<Bytes> read(const Operand& o, std::string* why);
  std::optional<Bytes> read(const Selector& s, std::string* why);
  bool eval_match(const MatchStmt& m, bool& stop, const Rule& rule, const Chain& chain);
  void apply_nat(const NatStmt& n, const Rule& rule, const Chain& chain, bool& stop);
  std::optional<uint32_t> fib_type(const IpAddr& a, std::string* why);
  void indeterminate(const Chain& c, const Rule* r, const std::string& expr,
                     const std::string& why);
  RuleRef ref(const Chain& c, const Rule& r) const;
  bool route_after_prerouting();

  const Ruleset& rs_;
  const NodeInfo* node_;
  const Flow& flow_;
  const FlowPath& fp_;
  Chooser& chooser_;
  const EvalLimits& limits_;
  Packet p_;
  RunResult res_;
  std::size_t steps_ = 0;
  int next_invocation_ = 0;
  Hook policy_hook_ = Hook::forward;
  std::optional<std::size_t> last_accept_step_;
  std::optional<RuleRef> last_accept_policy_;
};

RuleRef Run::ref(const Chain& c, const Rule& r) const {
  return RuleRef{c.family, c.table, c.name, r.handle, r.text, r.comment, r.packets, r.bytes};
}

void Run::indeterminate(const Chain& c, const Rule* r, const std::string& expr,
                        const std::string& why) {
  IndeterminateReason ir;
  if (r)
    ir.rule = ref(c, *r);
  else
    ir.rule = RuleRef{c.family, c.table, c.name, std::nullopt, "", "", {}, {}};
  ir.expression = expr;
  ir.why = why;
  res_.indeterminate = ir;
  res_.verdict = Verdict::indeterminate;
}

std::optional<uint32_t> Run::fib_type(const IpAddr& a, std::string* why) {
  if (!node_) {
    *why =
        "fib lookups need the node's addresses and routes (use --netns, or --node FILE with a "
        "ruleset file)";
    return std::nullopt;
  }
  if (node_->is_local(a)) return 2;
  if (a.is_v4() && a.bytes[0] >= 224 && a.bytes[0] < 240) return 5;
  if (a.is_v6() && a.bytes[0] == 0xff) return 5;
  const Route* r = node_->lookup(a);
  if (!r) return 7;
  if (r->type == "broadcast") return 3;
  if (r->type == "blackhole") return 6;
  if (r->type == "unreachable") return 7;
  if (r->type == "prohibit") return 8;
  return 1;
}

std::optional<Bytes> Run::read(const Operand& o, std::string* why) {
  bool v4 = p_.src.is_v4();
  bool tcp = p_.l4proto == 6, udp = p_.l4proto == 17, sctp = p_.l4proto == 132;
  Bytes b;
  switch (o.key) {
    case Key::meta_mark: b = Bytes::from_uint(p_.mark, 4); break;
    case Key::meta_l4proto:
    case Key::ct_protocol: b = Bytes::from_uint(p_.l4proto, 1); break;
    case Key::meta_nfproto:
    case Key::ct_l3proto: b = Bytes::from_uint(v4 ? 2 : 10, 1); break;
    case Key::meta_iifname:
    case Key::meta_iif: b = ifname_bytes(p_.iif); break;
    case Key::meta_oifname:
    case Key::meta_oif: b = ifname_bytes(p_.oif); break;
    case Key::meta_pkttype: {
      bool mc = (v4 && p_.dst.bytes[0] >= 224 && p_.dst.bytes[0] < 240) ||
                (!v4 && p_.dst.bytes[0] == 0xff);
      b = Bytes::from_uint(mc ? 2 : 0, 1);
      break;
    }
    case Key::ct_state: b = Bytes::from_uint(p_.ct_state, 4); break;
    case Key::ct_status: b = Bytes::from_uint(p_.ct_status, 4); break;
    case Key::ct_mark: b = Bytes::from_uint(p_.ct_mark, 4); break;
    case Key::ct_direction: b = Bytes::from_uint(0, 1); break;
    case Key::ip_saddr:
      if (!v4) return std::nullopt;
      b = addr_bytes(p_.src);
      break;
    case Key::ip_daddr:
      if (!v4) return std::nullopt;
      b = addr_bytes(p_.dst);
      break;
    case Key::ip_protocol:
      if (!v4) return std::nullopt;
      b = Bytes::from_uint(p_.l4proto, 1);
      break;
    case Key::ip6_saddr:
      if (v4) return std::nullopt;
      b = addr_bytes(p_.src);
      break;
    case Key::ip6_daddr:
      if (v4) return std::nullopt;
      b = addr_bytes(p_.dst);
      break;
    case Key::ip6_nexthdr:
      if (v4) return std::nullopt;
      b = Bytes::from_uint(p_.l4proto, 1);
      break;
    case Key::th_sport:
      if (!p_.has_ports) return std::nullopt;
      b = Bytes::from_uint(p_.sport, 2);
      break;
    case Key::th_dport:
      if (!p_.has_ports) return std::nullopt;
      b = Bytes::from_uint(p_.dport, 2);
      break;
    case Key::tcp_sport:
      if (!tcp) return std::nullopt;
      b = Bytes::from_uint(p_.sport, 2);
      break;
    case Key::tcp_dport:
      if (!tcp) return std::nullopt;
      b = Bytes::from_uint(p_.dport, 2);
      break;
    case Key::udp_sport:
      if (!udp) return std::nullopt;
      b = Bytes::from_uint(p_.sport, 2);
      break;
    case Key::udp_dport:
      if (!udp) return std::nullopt;
      b = Bytes::from_uint(p_.dport, 2);
      break;
    case Key::sctp_sport:
      if (!sctp) return std::nullopt;
      b = Bytes::from_uint(p_.sport, 2);
      break;
    case Key::sctp_dport:
      if (!sctp) return std::nullopt;
      b = Bytes::from_uint(p_.dport, 2);
      break;
    case Key::tcp_flags:
      if (!tcp) return std::nullopt;
      // SYN for a new connection, ACK otherwise: the first packet the user would send.
      b = Bytes::from_uint(flow_.ct == CtState::new_ ? 0x02 : 0x10, 1);
      break;
    case Key::icmp_type:
      if (p_.l4proto != 1) return std::nullopt;
      b = Bytes::from_uint(p_.icmp_type, 1);
      break;
    case Key::icmp_code:
      if (p_.l4proto != 1) return std::nullopt;
      b = Bytes::from_uint(p_.icmp_code, 1);
      break;
    case Key::icmpv6_type:
      if (p_.l4proto != 58) return std::nullopt;
      b = Bytes::from_uint(p_.icmp_type, 1);
      break;
    case Key::icmpv6_code:
      if (p_.l4proto != 58) return std::nullopt;
      b = Bytes::from_uint(p_.icmp_code, 1);
      break;
    case Key::fib_daddr_type:
    case Key::fib_saddr_type: {
      auto t = fib_type(o.key == Key::fib_daddr_type ? p_.dst : p_.src, why);
      if (!t) return std::nullopt;
      b = Bytes::from_uint(*t, 4);
      break;
    }
    case Key::fib_saddr_iif_oif: {
      if (!node_) {
        *why =
            "the reverse-path (fib saddr . iif oif) lookup needs the node's routes (use --netns or "
            "--node)";
        return std::nullopt;
      }
      // Strict RPF: the route back to the source must leave through the interface it came in.
      const Route* r = node_->lookup(p_.src);
      bool ok = r && r->type == "unicast" && r->dev == p_.iif;
      b = ifname_bytes(ok ? p_.iif : "");
      break;
    }
    case Key::fib_daddr_oif: {
      if (!node_) {
        *why = "fib daddr oif needs the node's routes (use --netns or --node)";
        return std::nullopt;
      }
      const Route* r = node_->lookup(p_.dst);
      b = ifname_bytes(r && r->type == "unicast" ? r->dev : "");
      break;
    }
    case Key::numgen:
      b = Bytes::from_uint(
          chooser_.choose(o.numgen_mod, fmt::format("numgen mod {}", o.numgen_mod)) +
              o.numgen_offset,
          4);
      break;
    default: *why = "field not supported by the evaluator"; return std::nullopt;
  }
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

std::optional<Bytes> Run::read(const Selector& s, std::string* why) {
  if (s.parts.size() == 1) return read(s.parts[0], why);
  Bytes all;
  for (const auto& p : s.parts) {
    auto b = read(p, why);
    if (!b || !all.append(*b)) return std::nullopt;
  }
  return all;
}

bool Run::eval_match(const MatchStmt& m, bool& stop, const Rule& rule, const Chain& chain) {
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

void Run::apply_nat(const NatStmt& n, const Rule& rule, const Chain& chain, bool& stop) {
  NatStep ns;
  ns.hook = std::string(hook_name(p_.hook));
  ns.rule = ref(chain, rule);
  static const char* kNames[] = {"dnat", "snat", "masquerade", "redirect"};
  ns.kind = kNames[static_cast<int>(n.kind)];
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
        indeterminate(chain, &rule, rule.text, "NAT map has no element for this flow");
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
  } else if (n.kind == NatStmt::Kind::snat) {
    if (addr) p_.src = bytes_addr(*addr);
    if (port && p_.has_ports) p_.sport = *port;
    p_.ct_status |= 16;
  } else if (n.kind == NatStmt::Kind::masquerade) {
    p_.ct_status |= 16;
  } else {
    if (port && p_.has_ports) p_.dport = *port;
    p_.ct_status |= 32;
    res_.local_delivery = true;
  }
  ns.to = addr ? bytes_addr(*addr).str() : "";
  if (port) ns.to += fmt::format(":{}", *port);
  res_.nat.push_back(ns);
}

VerdictStmt Run::run_rule(const Chain& chain, const Rule& rule, bool& matched, bool& stop) {
  matched = false;
  for (const auto& st : rule.stmts) {
    if (auto* m = std::get_if<MatchStmt>(&st)) {
      bool hit = eval_match(*m, stop, rule, chain);
      if (stop || hit == m->invert) return {};
    } else if (auto* v = std::get_if<VerdictStmt>(&st)) {
      matched = true;
      return *v;
    } else if (auto* ms = std::get_if<MangleStmt>(&st)) {
      uint32_t val;
      if (ms->constant) {
        val = static_cast<uint32_t>(ms->constant->as_uint());
      } else {
        std::string why;
        auto b = read(ms->value, &why);
        if (!b) {
          indeterminate(chain, &rule, rule.text, why);
          stop = true;
          return {};
        }
        val = static_cast<uint32_t>(b->as_uint());
      }
      (ms->target == MangleStmt::Target::ct_mark ? p_.ct_mark : p_.mark) = val;
    } else if (auto* vm = std::get_if<VmapStmt>(&st)) {
      std::string why;
      auto key = read(vm->key, &why);
      if (!key) {
        if (!why.empty()) {
          indeterminate(chain, &rule, rule.text, why);
          stop = true;
        }
        return {};
      }
      const SetElem* e = vm->map->find(*key);
      if (!e) return {};  // a lookup miss ends the rule, as in the kernel
      matched = true;
      return e->verdict;
    } else if (std::holds_alternative<RejectStmt>(st)) {
      matched = true;
      return VerdictStmt{VerdictKind::drop, nullptr};
    } else if (auto* n = std::get_if<NatStmt>(&st)) {
      apply_nat(*n, rule, chain, stop);
      if (stop) return {};
      matched = true;
      // NAT statements are terminal: the kernel accepts the packet in this chain.
      return VerdictStmt{VerdictKind::accept, nullptr};
    } else if (std::holds_alternative<NotrackStmt>(st)) {
      p_.ct_state = 64;
    } else if (auto* a = std::get_if<AssumeStmt>(&st)) {
      res_.assumptions.push_back(a->assumption);
      if (!a->matches) return {};
    } else if (auto* u = std::get_if<UnknownStmt>(&st)) {
      indeterminate(chain, &rule, u->expression, u->why);
      stop = true;
      return {};
    }
  }
  matched = true;
  return {};
}

Run::Outcome Run::run_base_chain(const Chain& base) {
  struct Frame {
    const Chain* chain;
    std::size_t next;
    int invocation;
    int parent;
  };
  std::vector<Frame> stack{{&base, 0, next_invocation_++, -1}};
  const std::string hook(hook_name(p_.hook));
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next >= f.chain->rules.size()) {
      stack.pop_back();  // falling off a regular chain returns to its caller
      continue;
    }
    const Rule& rule = f.chain->rules[f.next++];
    if (++steps_ > limits_.max_steps) {
      indeterminate(*f.chain, &rule, "", "evaluation step limit reached");
      return Outcome::stop;
    }
    bool matched = false, stop = false;
    VerdictStmt v = run_rule(*f.chain, rule, matched, stop);
    if (stop) return Outcome::stop;
    if (!matched) continue;
    PathStep step{hook,       f.invocation,          f.parent, ref(*f.chain, rule),
                  rule.facts, f.chain->first_comment};
    step.facts.action =
        v.kind == VerdictKind::none ? "continue" : std::string(verdict_kind_name(v.kind));
    if (v.target) step.facts.target = v.target->name;
    res_.path.push_back(std::move(step));
    std::size_t idx = res_.path.size() - 1;
    switch (v.kind) {
      case VerdictKind::none:
      case VerdictKind::cont: break;
      case VerdictKind::accept:
        // NAT chains accept to say "translated"; the filter verdict is decided elsewhere.
        if (p_.hook == policy_hook_ && base.type != "nat") {
          last_accept_step_ = idx;
          last_accept_policy_.reset();
        }
        return Outcome::accept;
      case VerdictKind::drop: res_.deciding_step = idx; return Outcome::drop;
      case VerdictKind::queue:
        indeterminate(*f.chain, &rule, rule.text,
                      "the packet is queued to a userspace program, which decides");
        return Outcome::stop;
      case VerdictKind::ret: stack.pop_back(); break;
      case VerdictKind::jump: {
        if (stack.size() >= 16) {
          indeterminate(*f.chain, &rule, rule.text,
                        "jump stack deeper than the kernel's limit of 16");
          return Outcome::stop;
        }
        int parent = f.invocation;
        stack.push_back({v.target, 0, next_invocation_++, parent});
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
  RuleRef pol{base.family,
              base.table,
              base.name,
              std::nullopt,
              fmt::format("policy {}", verdict_kind_name(base.policy)),
              "",
              {},
              {}};
  if (base.policy == VerdictKind::drop) {
    res_.deciding_policy = pol;
    return Outcome::drop;
  }
  if (p_.hook == policy_hook_ && base.type != "nat") {
    last_accept_policy_ = pol;
    last_accept_step_.reset();
  }
  return Outcome::accept;
}

Run::Outcome Run::run_hook(Hook h) {
  p_.hook = h;
  const auto& hooks = p_.src.is_v4() ? rs_.v4_hooks : rs_.v6_hooks;
  auto it = hooks.find(h);
  if (it == hooks.end()) return Outcome::accept;
  for (const Chain* c : it->second) {
    // NAT chains only see the first packet of a connection.
    if (c->type == "nat" && p_.ct_state != 8) continue;
    Outcome o = run_base_chain(*c);
    if (o != Outcome::accept) return o;
  }
  return Outcome::accept;
}

bool Run::route_after_prerouting() {
  if (fp_.forced_local) {
    res_.local_delivery = res_.local_delivery || *fp_.forced_local;
    if (!res_.local_delivery) res_.oif = fp_.forced_oif.value_or("");
    return true;
  }
  if (fp_.forced_oif) {
    res_.oif = *fp_.forced_oif;
    return true;
  }
  if (res_.local_delivery) return true;
  if (!node_) return false;
  if (node_->is_local(p_.dst)) {
    res_.local_delivery = true;
    return true;
  }
  const Route* r = node_->lookup(p_.dst);
  if (!r || r->type != "unicast" || r->dev.empty()) {
    res_.no_route = r ? fmt::format("route type {} for {}", r->type, p_.dst.str())
                      : fmt::format("no route to {}", p_.dst.str());
    return true;
  }
  res_.oif = r->dev;
  return true;
}

RunResult Run::go() {
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

  auto finish = [&](Outcome o) {
    if (o == Outcome::drop) res_.verdict = Verdict::deny;
    if (o == Outcome::accept) {
      res_.verdict = Verdict::allow;
      res_.deciding_step = last_accept_step_;
      res_.deciding_policy = last_accept_policy_;
    }
    res_.policy_hook = std::string(hook_name(policy_hook_));
    res_.choice = chooser_.described;
    return res_;
  };

  if (fp_.from_host) {
    policy_hook_ = Hook::output;
    if (!route_after_prerouting()) {
      res_.no_route = "the node's routes are unknown: pass --oif or --netns/--node";
      return finish(Outcome::stop);
    }
    p_.oif = res_.local_delivery ? "lo" : res_.oif;
    Outcome o = run_hook(Hook::output);
    if (o != Outcome::accept) return finish(o);
    if (!res_.no_route.empty()) return finish(Outcome::drop);
    o = run_hook(Hook::postrouting);
    return finish(o);
  }
  p_.iif = fp_.iif;
  p_.oif.clear();
  Outcome o = run_hook(Hook::prerouting);
  if (o != Outcome::accept) {
    policy_hook_ = Hook::prerouting;
    return finish(o);
  }
  if (!route_after_prerouting()) {
    res_.no_route =
        "the node's routes are unknown: pass --oif (forwarded) or --to-host, or --netns/--node";
    return finish(Outcome::stop);
  }
  if (!res_.no_route.empty()) return finish(Outcome::drop);
  if (res_.local_delivery) {
    policy_hook_ = Hook::input;
    return finish(run_hook(Hook::input));
  }
  policy_hook_ = Hook::forward;
  p_.oif = res_.oif;
  o = run_hook(Hook::forward);
  if (o != Outcome::accept) return finish(o);
  Hook saved = policy_hook_;
  o = run_hook(Hook::postrouting);
  policy_hook_ = saved;
  return finish(o);
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
    const Route* r = node_->lookup(flow.src);
    if (!r || r->dev.empty())
      return make_error(ErrorCode::bad_input,
                        fmt::format("cannot tell which interface {} arrives on: the node has no "
                                    "route back to it; pass --iif",
                                    flow.src.str()));
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
  std::vector<uint32_t> forced;
  for (;;) {
    Chooser ch;
    ch.forced = forced;
    out.push_back(Run(rs_, node_, flow, fp, ch, limits_).go());
    // Advance to the next unexplored combination, depth first.
    std::vector<uint32_t> next(ch.arity.size(), 0);
    for (std::size_t i = 0; i < ch.arity.size(); ++i) next[i] = i < forced.size() ? forced[i] : 0;
    int i = static_cast<int>(next.size()) - 1;
    while (i >= 0 && next[i] + 1 >= ch.arity[i]) --i;
    if (i < 0) break;
    next[i]++;
    next.resize(i + 1);
    forced = next;
    if (out.size() >= limits_.max_outcomes) {
      out.back().assumptions.push_back(fmt::format(
          "only the first {} random-choice outcomes were explored", limits_.max_outcomes));
      break;
    }
  }
  return out;
}

}  // namespace dpi::nft
