// Internal: the per-extension decoders behind decode_xt, and what they share.
#pragma once

#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "backends/nftables/xt/decode.h"

namespace dpi::nft::xt {

// What a decoder returns: statements, or nullopt with *why (the caller prefixes the name).
using Decoder = std::optional<XtDecoded> (*)(const XtExpr&, XtContext&, std::string*);

// Copies the kernel struct out of the payload; nullopt + *why when it is too short.
// need: bytes that must be present (structs ending in a kernel-only pointer need less).
template <class T>
std::optional<T> info_as(const XtExpr& x, const char* struct_name, std::string* why,
                         std::size_t need = sizeof(T)) {
  if (x.info.size() < need) {
    *why = fmt::format("payload is {} bytes, struct {} needs {}", x.info.size(), struct_name, need);
    return std::nullopt;
  }
  T v{};
  std::memcpy(&v, x.info.data(), std::min(sizeof(T), x.info.size()));
  return v;
}

// A NUL-terminated string field of at most n bytes.
std::string c_string(const char* p, std::size_t n);

Operand operand(Key k, Type t);
MatchStmt match_range(Operand o, uint64_t lo, uint64_t hi, bool invert = false);
MatchStmt match_flags(Selector s, const Bytes& flags, bool invert = false);
// An anonymous interval set keyed by the selector's parts, added to ctx.rs.sets.
const SetDef* add_anon_set(XtContext& ctx, const Selector& key, std::vector<SetElem> elems);
MatchStmt match_set(Selector s, const SetDef* set, bool invert = false);
Bytes addr_bytes(const void* p, bool v6);
bool table_is_v6(const XtContext& ctx);

// The semantics of each extension from its parameters, shared by the kernel-payload decoders
// below and the iptables-save text parser (backends/nftables/iptables_save).
void add_port_range(XtDecoded& d, Key key, const uint16_t pts[2], bool invert);
MatchStmt tcp_flags_match(uint8_t mask, uint8_t cmp, bool invert);
std::optional<XtDecoded> conntrack_stmts(uint16_t mflags, uint16_t invert_flags,
                                         uint16_t state_mask, uint16_t status_mask,
                                         uint16_t l4proto, std::string* why);
struct SetOpts {
  uint16_t index = 0;
  uint8_t dim = 0, dir_flags = 0;  // dir_flags: IPSET_DIM_*_SRC bits (bit n+1: dimension n is src)
  bool invert = false, return_nomatch = false;
};
// A lookup in s (members of a list:set are found through ctx.ipsets).
std::optional<XtDecoded> set_lookup(XtContext& ctx, const Ipset& s, const SetOpts& o,
                                    std::string* why);
// flags: XT_MULTIPORT_SOURCE, _DESTINATION or _EITHER.
std::optional<XtDecoded> multiport_stmts(XtContext& ctx, uint8_t flags,
                                         const std::vector<Range>& ranges, bool invert,
                                         std::string* why);
// v4 type 0xff: any ICMP type.
MatchStmt icmp_match(XtContext& ctx, bool v6, uint8_t type, uint8_t code_lo, uint8_t code_hi,
                     bool invert);
// source/dest: XT_ADDRTYPE_* masks (0: not tested); flags: xt_addrtype_info_v1 flags.
std::optional<XtDecoded> addrtype_stmts(XtContext& ctx, uint16_t source, uint16_t dest,
                                        uint32_t flags, std::string* why);
// flags: XT_RPFILTER_* bits.
std::optional<XtDecoded> rpfilter_stmts(XtContext& ctx, uint8_t flags, std::string* why);
MatchStmt mark_match(uint32_t mark, uint32_t mask, bool invert);
// random: --mode random with probability p * 2^31; otherwise --mode nth.
XtDecoded statistic_stmts(bool random, uint32_t probability, bool invert);
// new mark = (mark & ~mask) ^ value
MangleStmt mark_target(uint32_t mark, uint32_t mask);
// mode: XT_CONNMARK_SET, _SAVE or _RESTORE.
std::optional<XtDecoded> connmark_stmts(uint8_t mode, uint32_t ctmark, uint32_t ctmask,
                                        uint32_t nfmask, std::string* why);
// -j CT without --notrack: what it does, e.g. " zone 1 helper ftp" (may be empty).
AssumeStmt ct_target_assumption(const std::string& what);
std::string log_level_name(unsigned level);
// ipt_reject_with / ip6t_reject_with value as nft names it ("icmp port-unreachable").
std::optional<std::string> reject_with_name(bool v6, unsigned with, std::string* why);
struct NatRange {
  unsigned flags = 0;  // NF_NAT_RANGE_* bits
  Bytes min_addr, max_addr;
  uint16_t min_port = 0, max_port = 0;
};
// name: DNAT, SNAT, MASQUERADE or REDIRECT.
std::optional<XtDecoded> nat_stmts(const std::string& name, const NatRange& r, std::string* why);

std::optional<XtDecoded> decode_comment(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_conntrack(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_state(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_set(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_multiport(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_tcp(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_udp(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_statistic(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_icmp(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_addrtype(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_rpfilter(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_mark_match(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_limit(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_connlimit(const XtExpr&, XtContext&, std::string*);

std::optional<XtDecoded> decode_mark_target(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_connmark_target(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_ct_target(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_nflog(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_log(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_reject(const XtExpr&, XtContext&, std::string*);
std::optional<XtDecoded> decode_nat(const XtExpr&, XtContext&, std::string*);

}  // namespace dpi::nft::xt
