#include "backends/ebpf/state.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/addr_bytes.h"
#include "backends/ebpf/map_table.h"
#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

namespace {

// Fields in order: ip_src, ip_dst, pre_nat_ip_dst, post_nat_ip_dst, pol_rc, sport, dport,
// pre_nat_dport, post_nat_dport, ip_proto, rules_hit, rule_ids, flags.
constexpr StateLayout kLayouts[] = {
    {464, {Release::v3_27, Release::v3_27}, 0, 16, 32, 48, 84, 88, 90, 92, 94, 96, 100, 104, 408},
    {480, {Release::v3_28, Release::v3_29}, 0, 16, 32, 48, 84, 88, 90, 92, 94, 96, 100, 104, 360},
    {488,
     {Release::v3_30, Release::v3_31},
     8,
     24,
     40,
     56,
     92,
     96,
     98,
     100,
     102,
     104,
     108,
     112,
     368},
    {512,
     {Release::v3_32_0, Release::v3_32_1},
     8,
     24,
     40,
     56,
     92,
     96,
     98,
     100,
     102,
     104,
     108,
     112,
     368},
};

void put_addr(std::span<uint8_t> b, uint32_t off, const IpAddr& a) {
  if (!a.empty()) std::copy_n(a.bytes.begin(), a.size(), b.begin() + off);
}

}  // namespace

const StateLayout* state_layout(uint32_t value_size) {
  for (const StateLayout& l : kLayouts)
    if (l.size == value_size) return &l;
  return nullptr;
}

Result<const StateLayout*> state_layout_checked(uint32_t value_size) {
  if (const StateLayout* l = state_layout(value_size)) return l;
  return size_error(MapRole::state, 0, Part::value, value_size);
}

std::vector<uint64_t> PolicyState::recorded_ids() const {
  std::size_t n = std::min<std::size_t>(rules_hit, kMaxRuleIds);
  return {rule_ids.begin(), rule_ids.begin() + static_cast<std::ptrdiff_t>(n)};
}

std::vector<uint8_t> encode_state(const StateLayout& l, const PolicyState& s) {
  std::vector<uint8_t> out(l.size, 0);
  std::span<uint8_t> b(out);
  put_addr(b, l.ip_src, s.ip_src);
  put_addr(b, l.ip_dst, s.ip_dst);
  put_addr(b, l.pre_nat_ip_dst, s.pre_nat_ip_dst);
  put_addr(b, l.post_nat_ip_dst, s.post_nat_ip_dst);
  put_le32(b, l.pol_rc, static_cast<uint32_t>(s.pol_rc));
  put_le16(b, l.sport, s.sport);
  put_le16(b, l.dport, s.dport);
  put_le16(b, l.pre_nat_dport, s.pre_nat_dport);
  put_le16(b, l.post_nat_dport, s.post_nat_dport);
  b[l.ip_proto] = s.ip_proto;
  put_le32(b, l.rules_hit, s.rules_hit);
  for (std::size_t i = 0; i < kMaxRuleIds; ++i) put_le64(b, l.rule_ids + 8 * i, s.rule_ids[i]);
  put_le64(b, l.flags, s.flags);
  return out;
}

Result<PolicyState> decode_state(Bytes v, int family) {
  auto l = state_layout_checked(static_cast<uint32_t>(v.size()));
  if (!l) return l.error();
  const StateLayout& L = **l;
  PolicyState s;
  s.ip_src = addr_from(v, L.ip_src, family);
  s.ip_dst = addr_from(v, L.ip_dst, family);
  s.pre_nat_ip_dst = addr_from(v, L.pre_nat_ip_dst, family);
  s.post_nat_ip_dst = addr_from(v, L.post_nat_ip_dst, family);
  s.pol_rc = static_cast<int32_t>(le32(v, L.pol_rc));
  s.sport = le16(v, L.sport);
  s.dport = le16(v, L.dport);
  s.pre_nat_dport = le16(v, L.pre_nat_dport);
  s.post_nat_dport = le16(v, L.post_nat_dport);
  s.ip_proto = v[L.ip_proto];
  s.rules_hit = le32(v, L.rules_hit);
  for (std::size_t i = 0; i < kMaxRuleIds; ++i) s.rule_ids[i] = le64(v, L.rule_ids + 8 * i);
  s.flags = le64(v, L.flags);
  return s;
}

}  // namespace dpi::ebpf
