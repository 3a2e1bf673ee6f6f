// Fuzz target: Calico's NFLOG prefix grammar (parse_nflog_prefix, "DPE|platform"), and with the
// same bytes the other Calico strings the attribution reads from a ruleset: chain names
// (classify_chain) and rule comments (split_comment, tier_from_comment); and what `watch` decodes
// from the kernel: a logged or dropped packet's tuple (decode_ip_packet) and an nfnetlink_log
// message (decode_nflog_message).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "backends/linux/nflog.h"
#include "core/calico/names.h"
#include "core/calico/nflog_prefix.h"
#include "core/packet.h"
#include "fuzz_check.h"
#include "fuzz_target.h"

DPI_FUZZ_ONE_INPUT(parse_nflog_prefix) {
  std::string_view s(reinterpret_cast<const char*>(data), size);
  if (auto p = dpi::calico::parse_nflog_prefix(s)) {
    FUZZ_CHECK(p->action == "allow" || p->action == "deny" || p->action == "pass", "action");
    FUZZ_CHECK(p->owner == "policy" || p->owner == "profile", "owner");
    FUZZ_CHECK(p->direction == "ingress" || p->direction == "egress", "direction");
    FUZZ_CHECK(!p->rule_index || *p->rule_index >= 0, "rule index");
    FUZZ_CHECK(!p->hashed || s.size() == 63, "only 63-character prefixes are hashed");
    FUZZ_CHECK(p->id.size() < s.size(), "id is part of the prefix");
    (void)p->end_of_tier();
    (void)p->no_profile_matched();
  }
  for (std::string_view table : {"calico", "filter", "raw", "mangle", "nat"}) {
    auto chain = dpi::calico::classify_chain(table, s);
    (void)dpi::calico::is_endpoint(chain.kind);
    (void)dpi::calico::policy_from_chain(chain, s);
  }
  auto parts = dpi::calico::split_comment(s);
  FUZZ_CHECK(parts.rule_id.size() <= s.size() && parts.text.size() <= s.size(), "comment parts");
  (void)dpi::calico::tier_from_comment(parts.text);
  (void)dpi::calico::tier_from_comment(s);
  if (auto f = dpi::decode_ip_packet(data, size)) {
    FUZZ_CHECK(f->src.family == f->dst.family && (f->src.is_v4() || f->src.is_v6()), "family");
    FUZZ_CHECK(!(f->sport && f->icmp_type), "ports or ICMP, not both");
  }
  if (auto p = dpi::os::decode_nflog_message(data, size))
    FUZZ_CHECK(p->event.flow || !p->event.undecoded.empty(), "a flow or why not");
  return 0;
}
