#include "backends/ebpf/ifstate.h"

#include <algorithm>

#include <fmt/format.h>

#include "backends/ebpf/size_error.h"

namespace dpi::ebpf {

std::vector<std::string> ifstate_flag_names(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {ifstate_flag::wep, "WEP"},
      {ifstate_flag::v4_ready, "IPv4Ready"},
      {ifstate_flag::v6_ready, "IPv6Ready"},
      {ifstate_flag::hep, "HEP"},
      {ifstate_flag::bond, "Bond"},
      {ifstate_flag::bond_slave, "BondSlave"},
      {ifstate_flag::vxlan, "VXLAN"},
      {ifstate_flag::ipip, "IPIP"},
      {ifstate_flag::wireguard, "Wireguard"},
      {ifstate_flag::l3, "L3"},
      {ifstate_flag::not_managed, "NotManaged"},
  };
  std::vector<std::string> out;
  uint32_t known = 0;
  for (auto [bit, name] : kNames) {
    known |= bit;
    if (flags & bit) out.emplace_back(name);
  }
  if (flags & ~known) out.push_back(fmt::format("{:#x}", flags & ~known));
  return out;
}

namespace {

Result<PolicyIndex> index_at(Bytes v, std::size_t off, const char* field) {
  auto raw = static_cast<int32_t>(le32(v, off));
  if (raw == -1) return PolicyIndex{};
  if (raw < 0)
    return make_error(ErrorCode::bad_input,
                      fmt::format("ifstate value: {} is {} (only -1 means none)", field, raw));
  return PolicyIndex{static_cast<uint32_t>(raw)};
}

}  // namespace

PolicyIndex IfState::index_for(AttachHook hook, int family) const {
  bool v6 = family == 6 && dual_stack_layout;
  switch (hook) {
    case AttachHook::tc_ingress: return v6 ? ingress_v6 : ingress_v4;
    case AttachHook::tc_egress: return v6 ? egress_v6 : egress_v4;
    case AttachHook::xdp: return v6 ? xdp_v6 : xdp_v4;
  }
  return std::nullopt;
}

Result<uint32_t> decode_ifstate_key(Bytes key) {
  if (key.size() != 4) return size_error(MapRole::ifstate, 0, Part::key, key.size());
  return le32(key, 0);
}

Result<IfState> decode_ifstate_value(Bytes v) {
  if (v.size() != 52 && v.size() != 40)
    return size_error(MapRole::ifstate, 0, Part::value, v.size());
  IfState s;
  s.flags = le32(v, 0);
  auto name = v.subspan(4, 16);
  auto end = std::find(name.begin(), name.end(), uint8_t{0});
  s.name.assign(name.begin(), end);
  struct Field {
    PolicyIndex* dst;
    std::size_t off;
    const char* name;
  };
  std::vector<Field> fields;
  if (v.size() == 52) {
    fields = {{&s.xdp_v4, 20, "xdp_policy_v4"},
              {&s.ingress_v4, 24, "ingress_policy_v4"},
              {&s.egress_v4, 28, "egress_policy_v4"},
              {&s.xdp_v6, 32, "xdp_policy_v6"},
              {&s.ingress_v6, 36, "ingress_policy_v6"},
              {&s.egress_v6, 40, "egress_policy_v6"},
              {&s.filter_ingress, 44, "tc_filter_ingress"},
              {&s.filter_egress, 48, "tc_filter_egress"}};
  } else {
    s.dual_stack_layout = false;
    fields = {{&s.xdp_v4, 20, "xdp_policy"},
              {&s.ingress_v4, 24, "ingress_policy"},
              {&s.egress_v4, 28, "egress_policy"},
              {&s.filter_ingress, 32, "tc_filter_ingress"},
              {&s.filter_egress, 36, "tc_filter_egress"}};
  }
  for (const Field& f : fields) {
    auto idx = index_at(v, f.off, f.name);
    if (!idx) return idx.error();
    *f.dst = *idx;
  }
  return s;
}

}  // namespace dpi::ebpf
