// Targets that change marks, log, reject or touch conntrack: MARK, CONNMARK, CT/NOTRACK,
// NFLOG, LOG, REJECT. A target that does not end the rule continues to the next one.
#include <cstddef>

// glibc before <linux/...>, so the kernel's in.h defers to it (unity builds mix files).
#include <netinet/in.h>

#include <linux/netfilter/xt_CT.h>
#include <linux/netfilter/xt_LOG.h>
#include <linux/netfilter/xt_NFLOG.h>
#include <linux/netfilter/xt_connmark.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter_ipv4/ipt_REJECT.h>
#include <linux/netfilter_ipv6/ip6t_REJECT.h>

#include "backends/nftables/xt/decoders.h"

namespace dpi::nft::xt {

namespace {

// value = (from & ~clear) ^ toggle, written the way nft does where it can: "or", "and".
Operand masked(Key from, uint32_t clear, uint32_t toggle) {
  Operand o = operand(from, Type::mark);
  if (clear == toggle && clear != 0) {
    o.binops.push_back({'|', Bytes::from_uint(toggle, 4)});
    return o;
  }
  if (clear) o.binops.push_back({'&', Bytes::from_uint(~clear, 4)});
  if (toggle) o.binops.push_back({(toggle & ~clear) == 0 ? '|' : '^', Bytes::from_uint(toggle, 4)});
  return o;
}

}  // namespace

std::optional<XtDecoded> decode_mark_target(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_mark_tginfo2>(x, "xt_mark_tginfo2", why);
  if (!i) return std::nullopt;
  XtDecoded d;
  d.stmts.push_back(mark_target(i->mark, i->mask));
  return d;
}

MangleStmt mark_target(uint32_t mark, uint32_t mask) {
  // new mark = (mark & ~mask) ^ value
  MangleStmt ms;
  ms.target = MangleStmt::Target::meta_mark;
  if (mask == 0xffffffffu)
    ms.constant = Bytes::from_uint(mark, 4);
  else
    ms.value = masked(Key::meta_mark, mask, mark);
  return ms;
}

std::optional<XtDecoded> decode_connmark_target(const XtExpr& x, XtContext&, std::string* why) {
  uint32_t ctmark, ctmask, nfmask;
  uint8_t mode;
  if (x.rev == 1) {
    auto i = info_as<xt_connmark_tginfo1>(x, "xt_connmark_tginfo1", why);
    if (!i) return std::nullopt;
    ctmark = i->ctmark, ctmask = i->ctmask, nfmask = i->nfmask, mode = i->mode;
  } else {
    auto i = info_as<xt_connmark_tginfo2>(x, "xt_connmark_tginfo2", why);
    if (!i) return std::nullopt;
    if (i->shift_bits) {
      *why = "shifted marks (--left-shift-mark/--right-shift-mark) are not modelled";
      return std::nullopt;
    }
    ctmark = i->ctmark, ctmask = i->ctmask, nfmask = i->nfmask, mode = i->mode;
  }
  return connmark_stmts(mode, ctmark, ctmask, nfmask, why);
}

std::optional<XtDecoded> connmark_stmts(uint8_t mode, uint32_t ctmark, uint32_t ctmask,
                                        uint32_t nfmask, std::string* why) {
  MangleStmt ms;
  switch (mode) {
    case XT_CONNMARK_SET:  // ct mark = (ct mark & ~ctmask) ^ ctmark
      ms.target = MangleStmt::Target::ct_mark;
      ms.value = masked(Key::ct_mark, ctmask, ctmark);
      break;
    case XT_CONNMARK_SAVE:  // ct mark = (ct mark & ~ctmask) ^ (mark & nfmask)
      ms.target = MangleStmt::Target::ct_mark;
      if (ctmask == 0xffffffffu) {
        ms.value = operand(Key::meta_mark, Type::mark);
        if (nfmask != 0xffffffffu) ms.value.binops.push_back({'&', Bytes::from_uint(nfmask, 4)});
      } else if (nfmask == 0) {
        ms.value = masked(Key::ct_mark, ctmask, 0);
      } else {
        *why = fmt::format("--save-mark with ctmask 0x{:x} and nfmask 0x{:x} mixes two marks",
                           ctmask, nfmask);
        return std::nullopt;
      }
      break;
    case XT_CONNMARK_RESTORE:  // mark = (mark & ~nfmask) ^ (ct mark & ctmask)
      ms.target = MangleStmt::Target::meta_mark;
      if (nfmask == 0xffffffffu) {
        ms.value = operand(Key::ct_mark, Type::mark);
        if (ctmask != 0xffffffffu) ms.value.binops.push_back({'&', Bytes::from_uint(ctmask, 4)});
      } else if (ctmask == 0) {
        ms.value = masked(Key::meta_mark, nfmask, 0);
      } else {
        *why = fmt::format("--restore-mark with ctmask 0x{:x} and nfmask 0x{:x} mixes two marks",
                           ctmask, nfmask);
        return std::nullopt;
      }
      break;
    default: *why = fmt::format("mode {} is not set, save or restore", mode); return std::nullopt;
  }
  XtDecoded d;
  d.stmts.push_back(std::move(ms));
  return d;
}

std::optional<XtDecoded> decode_ct_target(const XtExpr& x, XtContext&, std::string* why) {
  XtDecoded d;
  if (x.name == "NOTRACK") {
    d.stmts.push_back(NotrackStmt{});
    return d;
  }
  // Both layouts start with flags, zone, events and helper; the kernel-only pointer at the
  // end is not needed.
  static_assert(offsetof(xt_ct_target_info, helper) == offsetof(xt_ct_target_info_v1, helper));
  auto i = info_as<xt_ct_target_info>(x, "xt_ct_target_info", why,
                                      offsetof(xt_ct_target_info, helper) + 16);
  if (!i) return std::nullopt;
  if (i->flags & XT_CT_NOTRACK) {
    d.stmts.push_back(NotrackStmt{});
    return d;
  }
  std::string what;
  if (i->zone) what += fmt::format(" zone {}", i->zone);
  std::string helper = c_string(i->helper, sizeof i->helper);
  if (!helper.empty()) what += " helper " + helper;
  if (x.rev >= 1 && x.info.size() >= offsetof(xt_ct_target_info_v1, timeout) + 32) {
    std::string timeout = c_string(
        reinterpret_cast<const char*>(x.info.data()) + offsetof(xt_ct_target_info_v1, timeout), 32);
    if (!timeout.empty()) what += " timeout " + timeout;
  }
  if (i->ct_events || i->exp_events) what += " events";
  d.stmts.push_back(ct_target_assumption(what));
  return d;
}

AssumeStmt ct_target_assumption(const std::string& what) {
  return AssumeStmt{
      fmt::format("`-j CT{}` does not change the connection state the flow was given with", what),
      true};
}

std::string log_level_name(unsigned level) {
  static const char* kLevels[] = {"emerg", "alert",  "crit", "err",
                                  "warn",  "notice", "info", "debug"};
  return level < 8 ? kLevels[level] : fmt::format("{}", level);
}

std::optional<XtDecoded> decode_nflog(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_nflog_info>(x, "xt_nflog_info", why);
  if (!i) return std::nullopt;
  LogStmt l;
  l.prefix = c_string(i->prefix, sizeof i->prefix);
  l.group = i->group;
  if (i->flags & XT_NFLOG_F_COPY_LEN) l.snaplen = static_cast<int>(i->len);
  XtDecoded d;
  d.stmts.push_back(std::move(l));
  return d;
}

std::optional<XtDecoded> decode_log(const XtExpr& x, XtContext&, std::string* why) {
  auto i = info_as<xt_log_info>(x, "xt_log_info", why);
  if (!i) return std::nullopt;
  LogStmt l;
  l.prefix = c_string(i->prefix, sizeof i->prefix);
  l.level = log_level_name(i->level);
  XtDecoded d;
  d.stmts.push_back(std::move(l));
  return d;
}

std::optional<XtDecoded> decode_reject(const XtExpr& x, XtContext& ctx, std::string* why) {
  unsigned with;
  if (table_is_v6(ctx)) {
    auto i = info_as<ip6t_reject_info>(x, "ip6t_reject_info", why);
    if (!i) return std::nullopt;
    with = i->with;
  } else {
    if (!info_as<ipt_reject_info>(x, "ipt_reject_info", why)) return std::nullopt;
    // Read as an integer: the kernel's value may be outside the enum.
    uint32_t raw;
    static_assert(sizeof raw == sizeof(ipt_reject_info));
    std::memcpy(&raw, x.info.data(), sizeof raw);
    with = raw;
  }
  auto name = reject_with_name(table_is_v6(ctx), with, why);
  if (!name) return std::nullopt;
  XtDecoded d;
  d.stmts.push_back(RejectStmt{*name});
  return d;
}

std::optional<std::string> reject_with_name(bool v6, unsigned with, std::string* why) {
  static const char* kWith6[] = {"icmpv6 no-route",
                                 "icmpv6 admin-prohibited",
                                 "icmpv6 not-neighbour",
                                 "icmpv6 addr-unreachable",
                                 "icmpv6 port-unreachable",
                                 "icmpv6 echo-reply",
                                 "tcp reset",
                                 "icmpv6 policy-fail",
                                 "icmpv6 reject-route"};
  static const char* kWith4[] = {"icmp net-unreachable",  "icmp host-unreachable",
                                 "icmp prot-unreachable", "icmp port-unreachable",
                                 "icmp echo-reply",       "icmp net-prohibited",
                                 "icmp host-prohibited",  "tcp reset",
                                 "icmp admin-prohibited"};
  if (with >= (v6 ? std::size(kWith6) : std::size(kWith4))) {
    *why = fmt::format("reject type {} is not known", with);
    return std::nullopt;
  }
  return std::string(v6 ? kWith6[with] : kWith4[with]);
}

}  // namespace dpi::nft::xt
