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
