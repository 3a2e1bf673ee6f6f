#include "backends/ebpf/live_node.h"

#include <fmt/format.h>

#include "backends/ebpf/jump_index.h"

namespace dpi::ebpf {

Result<LiveNode> LiveNode::open(const std::string& dir) {
  auto pinned = list_pinned_maps(dir);
  if (!pinned) return pinned.error();
  auto det = detect_release(*pinned);
  if (!det) return make_error(det.error().code, fmt::format("{}: {}", dir, det.error().message));
  LiveNode n;
  n.dir_ = dir;
  n.detection_ = std::move(*det);
  n.pinned_ = std::move(*pinned);
  return n;
}

Result<PinnedMap> LiveNode::map(MapRole role, int family) const {
  const MapSpec* spec = find_map(layout(), role, family);
  if (!spec)
    return make_error(
        ErrorCode::not_found,
        fmt::format("Calico {} has no {} map", detection_.releases.str(), map_role_name(role)));
  auto m = PinnedMap::open(dir_, spec->pin_name);
  if (!m) return m.error();
  // Detection checked the sizes of what was pinned then; a map recreated since is refused.
  if (m->info().key_size != spec->key_size || m->info().value_size != spec->value_size)
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: key/value {}/{} bytes, Calico {} uses {}/{}", m->path(),
                                  m->info().key_size, m->info().value_size,
                                  detection_.releases.str(), spec->key_size, spec->value_size));
  return m;
}

Result<PinnedMap> LiveNode::policy_jump(AttachHook hook) const {
  const MapSpec* spec = policy_jump_map(layout(), hook);
  if (!spec)
    return make_error(ErrorCode::not_found,
                      fmt::format("Calico {} has no {} policy jump map", detection_.releases.str(),
                                  attach_hook_name(hook)));
  return map(spec->role);
}

Result<std::map<uint32_t, IfState>> read_ifstates(const PinnedMap& ifstate) {
  std::map<uint32_t, IfState> out;
  std::optional<Error> err;
  auto st = ifstate.for_each(1u << 20, [&](std::span<const uint8_t> k, std::span<const uint8_t> v) {
    if (err) return;
    auto key = decode_ifstate_key(k);
    auto val = decode_ifstate_value(v);
    if (!key) err = key.error();
    if (!val) err = val.error();
    if (key && val) out.emplace(*key, std::move(*val));
  });
  if (!st) return st.error();
  if (err) return make_error(err->code, fmt::format("{}: {}", ifstate.path(), err->message));
  return out;
}

Result<std::optional<RouteValue>> lookup_route(const PinnedMap& routes, const IpAddr& addr) {
  int family = addr.is_v4() ? 4 : 6;
  auto v = routes.lookup(encode_route_key(IpPrefix{addr, family == 4 ? 32 : 128}));
  if (!v) return v.error();
  if (!*v) return std::optional<RouteValue>{};
  auto r = decode_route_value(**v, family);
  if (!r) return r.error();
  return std::optional<RouteValue>{*r};
}

Result<std::vector<PolicySlot>> read_policy_programs(const PinnedMap& jump, uint32_t base,
                                                     uint32_t stride) {
  std::vector<PolicySlot> out;
  uint32_t count = stride == 0 ? 1 : kMaxSubPrograms;
  for (uint32_t k = 0; k < count; ++k) {
    uint32_t key = base + k * stride;
    if (stride != 0 && base >= stride) break;
    auto id = prog_array_lookup(jump, key);
    if (!id) return id.error();
    if (!*id) break;
    auto info = prog_info_by_id(**id);
    if (!info) return info.error();
    out.push_back({k, key, std::move(*info)});
  }
  return out;
}

}  // namespace dpi::ebpf
