// -m conntrack (rev 1-3) and -m state.
#include <cstddef>

// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/xt_conntrack.h>
#include <linux/netfilter/xt_state.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

namespace {

constexpr uint32_t kNftInvalid = 1, kNftEstablished = 2, kNftRelated = 4, kNftNew = 8,
                   kNftUntracked = 64;

// xt_conntrack/xt_state bits for established, related and new are the nft ones
// (XT_CONNTRACK_STATE_BIT(ctinfo) == NF_CT_STATE_BIT(ctinfo)).
static_assert(XT_CONNTRACK_STATE_BIT(IP_CT_ESTABLISHED) == kNftEstablished &&
              XT_CONNTRACK_STATE_BIT(IP_CT_RELATED) == kNftRelated &&
              XT_CONNTRACK_STATE_BIT(IP_CT_NEW) == kNftNew &&
              XT_CONNTRACK_STATE_INVALID == kNftInvalid);

// The packet has a conntrack entry: the kernel's conntrack match fails every option but the
// state one when it has none (invalid or untracked).
MatchStmt has_conntrack() {
  Selector s;
  s.parts.push_back(operand(Key::ct_state, Type::ct_state));
  return match_flags(s, Bytes::from_uint(kNftEstablished | kNftRelated | kNftNew, 4));
}

}  // namespace

std::optional<XtDecoded> decode_conntrack(const XtExpr& x, XtContext&, std::string* why) {
  // Revisions 1-3 share the layout up to the masks, which are u8 in revision 1.
  constexpr std::size_t kFlagsOff = offsetof(xt_conntrack_mtinfo2, match_flags);
  static_assert(offsetof(xt_conntrack_mtinfo1, match_flags) == kFlagsOff &&
                offsetof(xt_conntrack_mtinfo3, match_flags) == kFlagsOff);
  uint16_t mflags, invert_flags, state_mask, status_mask;
  if (x.rev == 1) {
    auto i = info_as<xt_conntrack_mtinfo1>(x, "xt_conntrack_mtinfo1", why);
    if (!i) return std::nullopt;
    mflags = i->match_flags;
    invert_flags = i->invert_flags;
    state_mask = i->state_mask;
    status_mask = i->status_mask;
  } else {
    auto i = info_as<xt_conntrack_mtinfo2>(
        x, x.rev == 2 ? "xt_conntrack_mtinfo2" : "xt_conntrack_mtinfo3", why,
        x.rev == 2 ? sizeof(xt_conntrack_mtinfo2) : sizeof(xt_conntrack_mtinfo3));
    if (!i) return std::nullopt;
    mflags = i->match_flags;
    invert_flags = i->invert_flags;
    state_mask = i->state_mask;
    status_mask = i->status_mask;
  }
  uint16_t proto;
  std::memcpy(&proto, x.info.data() + offsetof(xt_conntrack_mtinfo1, l4proto), sizeof proto);
  return conntrack_stmts(mflags, invert_flags, state_mask, status_mask, proto, why);
}

std::optional<XtDecoded> conntrack_stmts(uint16_t mflags, uint16_t invert_flags,
                                         uint16_t state_mask, uint16_t status_mask, uint16_t proto,
                                         std::string* why) {
  constexpr uint16_t kDecoded =
      XT_CONNTRACK_STATE | XT_CONNTRACK_STATE_ALIAS | XT_CONNTRACK_STATUS | XT_CONNTRACK_PROTO;
  if (mflags & ~kDecoded) {
    std::string opts;
    static const std::pair<uint16_t, const char*> kNames[] = {
        {XT_CONNTRACK_ORIGSRC, "--ctorigsrc"},
        {XT_CONNTRACK_ORIGDST, "--ctorigdst"},
        {XT_CONNTRACK_REPLSRC, "--ctreplsrc"},
        {XT_CONNTRACK_REPLDST, "--ctrepldst"},
        {XT_CONNTRACK_EXPIRES, "--ctexpire"},
        {XT_CONNTRACK_ORIGSRC_PORT, "--ctorigsrcport"},
        {XT_CONNTRACK_ORIGDST_PORT, "--ctorigdstport"},
        {XT_CONNTRACK_REPLSRC_PORT, "--ctreplsrcport"},
        {XT_CONNTRACK_REPLDST_PORT, "--ctrepldstport"},
        {XT_CONNTRACK_DIRECTION, "--ctdir"}};
    for (const auto& [bit, name] : kNames)
      if (mflags & bit) opts += std::string(opts.empty() ? "" : " ") + name;
    *why = fmt::format("option(s) {} (match flags 0x{:x}) are not decoded",
                       opts.empty() ? "?" : opts, mflags);
    return std::nullopt;
  }
  XtDecoded d;
  if (mflags & XT_CONNTRACK_STATE) {
    uint32_t state = state_mask & (kNftInvalid | kNftEstablished | kNftRelated | kNftNew);
    if (state_mask & XT_CONNTRACK_STATE_UNTRACKED) state |= kNftUntracked;
    uint32_t status = 0;  // the SNAT/DNAT pseudo-states are the conntrack's NAT status bits
    if (state_mask & XT_CONNTRACK_STATE_SNAT) status |= IPS_SRC_NAT;
    if (state_mask & XT_CONNTRACK_STATE_DNAT) status |= IPS_DST_NAT;
    constexpr uint16_t kKnown = XT_CONNTRACK_STATE_INVALID | kNftEstablished | kNftRelated |
                                kNftNew | XT_CONNTRACK_STATE_SNAT | XT_CONNTRACK_STATE_DNAT |
                                XT_CONNTRACK_STATE_UNTRACKED;
    if (state_mask & ~kKnown) {
      *why = fmt::format("state mask 0x{:x} has unknown bits", state_mask);
      return std::nullopt;
    }
    bool inv = invert_flags & XT_CONNTRACK_STATE;
    Selector s;
    s.parts.push_back(operand(Key::ct_state, Type::ct_state));
    Bytes flags = Bytes::from_uint(state, 4);
    if (status) {
      // Any bit of "ct state . ct status" in the concatenated mask: state OR NAT status.
      s.parts.push_back(operand(Key::ct_status, Type::ct_status));
      flags.append(Bytes::from_uint(status, 4));
    }
    d.stmts.push_back(match_flags(std::move(s), flags, inv));
  }
  if (mflags & (XT_CONNTRACK_STATUS | XT_CONNTRACK_PROTO)) d.stmts.push_back(has_conntrack());
  if (mflags & XT_CONNTRACK_PROTO) {
    d.stmts.push_back(match_range(operand(Key::ct_protocol, Type::inet_proto), proto, proto,
                                  invert_flags & XT_CONNTRACK_PROTO));
  }
  if (mflags & XT_CONNTRACK_STATUS) {
    Selector s;
    s.parts.push_back(operand(Key::ct_status, Type::ct_status));
    d.stmts.push_back(match_flags(std::move(s), Bytes::from_uint(status_mask, 4),
                                  invert_flags & XT_CONNTRACK_STATUS));
  }
  return d;
}

std::optional<XtDecoded> decode_state(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_state_info>(x, "xt_state_info", why);
  if (!i) return std::nullopt;
  constexpr unsigned kKnown =
      XT_STATE_INVALID | kNftEstablished | kNftRelated | kNftNew | XT_STATE_UNTRACKED;
  static_assert(XT_STATE_UNTRACKED == kNftUntracked);
  if (i->statemask & ~kKnown) {
    *why = fmt::format("state mask 0x{:x} has unknown bits", i->statemask);
    return std::nullopt;
  }
  Selector s;
  s.parts.push_back(operand(Key::ct_state, Type::ct_state));
  XtDecoded d;
  d.stmts.push_back(match_flags(std::move(s), Bytes::from_uint(i->statemask, 4)));
  return d;
}

}  // namespace dpi::nft::xt
