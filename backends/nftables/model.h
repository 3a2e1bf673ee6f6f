// The compiled ruleset: JSON is read once into this indexed form (resolved chain pointers,
// hashed and interval set lookups) so evaluating a flow never touches JSON.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "backends/nftables/datatype.h"
#include "backends/nftables/mark_bits.h"
#include "backends/nftables/value.h"
#include "core/report.h"

namespace dpi::nft {

// Values of at most 16 bytes (addresses, ports, marks, interface names, small concatenations) as
// one big-endian integer: the evaluator's fast paths compare and hash these instead of Bytes.
using U128 = unsigned __int128;
struct U128Hash {
  std::size_t operator()(U128 v) const {
    uint64_t x =
        static_cast<uint64_t>(v) ^ (static_cast<uint64_t>(v >> 64) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return static_cast<std::size_t>(x);
  }
};
inline U128 to_u128(const Bytes& b) {
  U128 v = 0;
  for (std::size_t i = 0; i < b.len && i < 16; ++i) v = (v << 8) | b.d[i];
  return v;
}

enum class Hook { prerouting, input, forward, output, postrouting, other };
std::string_view hook_name(Hook h);

// Every packet field the evaluator can read. Payload keys imply their protocol dependency
// (tcp dport only exists for TCP), which nft's JSON leaves implicit.
enum class Key {
  meta_mark,
  meta_l4proto,
  meta_nfproto,
  meta_protocol,
  meta_iifname,
  meta_oifname,
  meta_iif,
  meta_oif,
  meta_iiftype,
  meta_oiftype,
  meta_pkttype,
  meta_length,
  ct_state,
  ct_status,
  ct_mark,
  ct_direction,
  ct_l3proto,
  ct_protocol,
  ip_saddr,
  ip_daddr,
  ip_protocol,
  ip6_saddr,
  ip6_daddr,
  ip6_nexthdr,
  th_sport,
  th_dport,
  tcp_sport,
  tcp_dport,
  tcp_flags,
  udp_sport,
  udp_dport,
  sctp_sport,
  sctp_dport,
  icmp_type,
  icmp_code,
  icmpv6_type,
  icmpv6_code,
  fib_daddr_type,
  fib_saddr_type,
  fib_saddr_iif_oif,
  fib_saddr_mark_iif_oif,  // the same lookup with the packet's mark (ip rules may select on it)
  fib_daddr_oif,
  numgen,
  // A fresh random value per packet. Only a comparison with constants is understood, as a random
  // choice (RandomStmt); anywhere else reading it is indeterminate.
  meta_random,
};

struct Operand {
  Key key = Key::meta_mark;
  Type type = Type::integer;
  uint8_t width = 4;
  // Applied in order to the value read: '&', '|', '^' with a constant of the same width.
  std::vector<std::pair<char, Bytes>> binops;
  uint32_t numgen_mod = 0, numgen_offset = 0;
  // Filled by Ruleset::prepare(); read_width 0 = not prepared (the evaluator then uses Bytes).
  // read_width is what the evaluator reads for key; binops are folded into
  // value = (read & and_mask) ^ xor_mask over those bytes.
  uint8_t read_width = 0;
  U128 and_mask = ~U128{0}, xor_mask = 0;
};

// Left side of a match or key of a lookup: one operand, or a concatenation.
struct Selector {
  std::vector<Operand> parts;
  Type type() const { return parts.size() == 1 ? parts[0].type : Type::integer; }
};

struct Chain;
struct SetDef;

enum class VerdictKind { none, accept, drop, cont, ret, jump, go_to, queue };
std::string_view verdict_kind_name(VerdictKind k);

struct VerdictStmt {
  VerdictKind kind = VerdictKind::none;
  const Chain* target = nullptr;
};

struct SetElem {
  std::vector<Range> key;     // one range per concatenated component
  VerdictStmt verdict;        // verdict maps
  std::optional<Bytes> data;  // data maps
};

struct SetDef {
  std::string family, table, name;  // name empty for anonymous sets
  std::vector<Type> key_types;
  std::vector<uint8_t> key_widths;
  bool interval = false;
  bool is_map = false;
  bool verdict_map = false;
  std::optional<Type> data_type;
  std::vector<SetElem> elems;

  // Indexes built once after the elements are read.
  std::unordered_map<Bytes, std::size_t, BytesHash> exact;
  struct Span {
    Bytes lo, hi;
    std::size_t elem;
  };
  std::vector<Span> spans;  // sorted, single-component intervals
  bool linear = false;      // concatenated intervals or overlapping spans
  // Keys of at most 16 bytes in all (every Calico and kube-proxy set) are indexed as integers
  // instead of exact/spans: smaller, and no Bytes to build per lookup.
  uint8_t key_bytes = 0;  // sum of key_widths
  bool int_index = false;
  std::unordered_map<U128, uint32_t, U128Hash> exact_int;
  std::vector<U128> lo_int, hi_int;  // sorted, non-overlapping single-component intervals
  std::vector<uint32_t> span_elem;
  void build_index();
  const SetElem* find(const Bytes& key) const;
  // key holds key_bytes bytes; only when int_index.
  const SetElem* find_int(U128 key) const;
};

enum class Op { eq, ne, lt, gt, le, ge, flags_any };

struct MatchStmt {
  Selector lhs;
  Op op = Op::eq;
  bool invert = false;  // iptables' "!" on a whole match (decoded xt matches)
  enum class RhsKind { range, set, flags } rhs_kind = RhsKind::range;
  Range range;  // exact values are lo == hi
  const SetDef* set = nullptr;
  Bytes flags;
  // Filled by Ruleset::prepare(): fast != none when the left side reads as one integer of
  // lhs_width <= 16 bytes and the right side has that width, so the evaluator compares integers.
  enum class Fast : uint8_t { none, range, set, flags } fast = Fast::none;
  uint8_t lhs_width = 0;
  U128 lo_int = 0, hi_int = 0;  // range (or flags in lo_int)
};

struct CounterStmt {
  uint64_t packets = 0, bytes = 0;
};
struct LogStmt {
  std::string prefix;
  std::optional<int> group;
  std::optional<int> snaplen;
  std::string level;
};
struct RejectStmt {
  std::string with;
};

// meta mark set / ct mark set: target = operand(value).
struct MangleStmt {
  enum class Target { meta_mark, ct_mark, nftrace } target = Target::meta_mark;
  Operand value;                  // key to read plus binops
  std::optional<Bytes> constant;  // when set, the value is this constant
};

struct VmapStmt {
  Selector key;
  const SetDef* map = nullptr;
};

struct NatStmt {
  enum class Kind { dnat, snat, masquerade, redirect } kind = Kind::dnat;
  std::optional<Bytes> addr;  // constant address
  std::optional<uint16_t> port;
  std::optional<Selector> map_key;  // "to <key> map @m" (address or address . port)
  const SetDef* map = nullptr;
};

// Statements that change nothing the verdict depends on, but whose assumption is reported.
struct AssumeStmt {
  std::string assumption;
  bool matches = true;  // "limit rate over" assumed not exceeded does not match
};
struct NotrackStmt {};
// A comparison of `meta random` with constants (iptables-translate's form of "-m statistic --mode
// random"): a random choice. Which sides the kernel can take was worked out at load time
// (random_match.h); the evaluator explores each side that can happen.
struct RandomStmt {
  std::string expression;  // as nft lists it: "meta random & 0x7fffffff < 0x40000000"
  bool can_match = true;
  bool can_miss = true;
};
struct NoopStmt {};
// Not understood: reaching it makes the verdict indeterminate.
struct UnknownStmt {
  std::string expression;
  std::string why;
};

using Stmt =
    std::variant<MatchStmt, VerdictStmt, CounterStmt, LogStmt, RejectStmt, MangleStmt, VmapStmt,
                 NatStmt, AssumeStmt, NotrackStmt, NoopStmt, UnknownStmt, RandomStmt>;

struct Rule {
  uint64_t handle = 0;
  std::string text;
  std::string comment;
  std::vector<Stmt> stmts;
  RuleFacts facts;
  std::optional<uint64_t> packets, bytes;
};

struct Chain {
  // Filled by Ruleset::prepare(): this chain's rules in Ruleset::fast_rules (fast_count == 0 and
  // rules not empty: not prepared).
  uint32_t fast_first = 0, fast_count = 0;
  std::string family, table, name;
  bool base = false;
  Hook hook = Hook::other;
  int priority = 0;
  std::string type;  // filter, nat, route
  VerdictKind policy = VerdictKind::accept;
  std::vector<Rule> rules;
  std::string first_comment;
};

struct Table {
  std::string family, name;
  std::vector<Chain*> chains;
};

// The verdict-only evaluator's compact form of a rule: its statements as fixed-size operations
// in one contiguous array, so a flow walks memory linearly instead of chasing pointers.
struct FastOp {
  enum class Kind : uint8_t { skip, match, set, flags, mark_const, mark_op, verdict } kind;
  Key key = Key::meta_mark;
  Op op = Op::eq;
  bool invert = false;
  VerdictKind verdict = VerdictKind::none;
  const void* ptr = nullptr;          // SetDef* (set) or Chain* (verdict target)
  U128 a = 0, b = 0, lo = 0, hi = 0;  // and/xor masks of the read, then range / flags
};
struct FastRule {
  const Rule* rule = nullptr;
  uint32_t first = 0, count = 0;
  bool slow = true;  // run the Rule itself (statements without a compact form)
};

struct Ruleset {
  std::string origin;  // file name or "live netns X"
  std::string nft_version;
  std::deque<Table> tables;
  std::deque<Chain> chains;
  std::deque<SetDef> sets;
  // Base chains per hook for IPv4 (ip + inet) and IPv6 (ip6 + inet), in priority order.
  std::map<Hook, std::vector<const Chain*>> v4_hooks, v6_hooks;
  std::size_t rule_count = 0;
  MarkLayout marks;  // Calico's mark bits as the endpoint chains use them (mark_bits.h)
  std::vector<FastRule> fast_rules;
  std::vector<FastOp> fast_ops;

  const Chain* find_chain(const std::string& family, const std::string& table,
                          const std::string& name) const;
  bool has_family(const std::string& family) const;
  // Precomputes the evaluator's integer forms of operands and matches (idempotent). The loader
  // calls it; a hand-built ruleset works without it, only slower.
  void prepare();
};

// Bytes the evaluator reads for a key (0: the evaluator cannot read it).
std::size_t key_read_width(Key k);

}  // namespace dpi::nft
