#include "backends/ebpf/node_state.h"

#include <dirent.h>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "backends/ebpf/ifstate.h"
#include "backends/ebpf/live_maps.h"
#include "backends/ebpf/policy_abi.h"

namespace dpi::ebpf {

namespace {

constexpr std::size_t kEntryLimit = 1'100'000;
constexpr std::size_t kDebugJsonMax = std::size_t{64} << 20;
// Felix splits a large policy program into at most 24 sub-programs (reference §1.2).
constexpr uint32_t kMaxSubProgs = 24;

std::string hex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  s.reserve(b.size() * 2);
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

Result<std::vector<uint8_t>> unhex(const std::string& s) {
  if (s.size() % 2) return make_error(ErrorCode::bad_input, "odd-length hex string");
  std::vector<uint8_t> out(s.size() / 2);
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = val(s[2 * i]), lo = val(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return make_error(ErrorCode::bad_input, "bad hex digit");
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return out;
}

// The entries of the roles inspect needs, by the role names the snapshot uses.
struct RoleToRead {
  const char* name;
  MapRole role;
  int family;
};
// The v6 twins are optional: an IPv4-only node may not pin them.
constexpr RoleToRead kRoles[] = {
    {"ifstate", MapRole::ifstate, 0},      {"routes4", MapRole::routes, 4},
    {"ip_sets4", MapRole::ip_sets, 4},     {"conntrack4", MapRole::conntrack, 4},
    {"nat_fe4", MapRole::nat_fe, 4},       {"nat_be", MapRole::nat_be, 4},
    {"routes6", MapRole::routes, 6},       {"ip_sets6", MapRole::ip_sets, 6},
    {"conntrack6", MapRole::conntrack, 6}, {"nat_fe6", MapRole::nat_fe, 6},
    {"nat_be6", MapRole::nat_be, 6},       {"failsafes4", MapRole::failsafes, 4},
    {"failsafes6", MapRole::failsafes, 6},
};

Result<std::string> read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(ErrorCode::not_found, path + ": cannot open");
  std::ostringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  if (s.size() > kDebugJsonMax) return make_error(ErrorCode::bad_input, path + ": too large");
  return s;
}

}  // namespace

const JumpSlot* NodeState::slot(const std::string& map, uint32_t index) const {
  for (const auto& s : jump_slots)
    if (s.map == map && s.index == index) return &s;
  return nullptr;
}

const PinnedMapInfo* NodeState::map_info(std::string_view pin) const {
  for (const auto& m : maps)
    if (m.name == pin) return &m;
  return nullptr;
}

const MapSpec* NodeState::spec(MapRole role, int family) const {
  if (!release || !release->layout) return nullptr;
  return find_map(*release->layout, role, family);
}

void detect_layout(NodeState& n) {
  auto d = detect_release(n.maps);
  if (d) {
    n.release = *d;
    n.layout_error.clear();
  } else {
    n.release.reset();
    n.layout_error = d.error().message;
  }
}

Result<NodeState> read_live_node(const std::string& bpffs, const std::string& debug_dir) {
  NodeState n;
  n.source = "live " + bpffs;
  n.bpffs = bpffs;
  n.policy_debug_dir = debug_dir;
  auto maps = list_pinned_maps(bpffs);
  if (!maps) return maps.error();
  n.maps = std::move(*maps);
  detect_layout(n);
  if (!n.release) return n;  // an unknown layout: nothing can be decoded safely

  for (const RoleToRead& r : kRoles) {
    const MapSpec* s = n.spec(r.role, r.family);
    if (!s) continue;
    if (r.family == 6 && !n.map_info(s->pin_name)) continue;  // not pinned: no IPv6 on the node
    auto m = PinnedMap::open(bpffs, s->pin_name);
    if (!m) {
      n.warnings.push_back(
          fmt::format("{} ({}): {}", s->pin_name, map_role_name(r.role), m.error().message));
      continue;
    }
    auto& out = n.entries[r.name];
    auto st = m->for_each(kEntryLimit, [&](std::span<const uint8_t> k, std::span<const uint8_t> v) {
      out.emplace_back(std::vector<uint8_t>(k.begin(), k.end()),
                       std::vector<uint8_t>(v.begin(), v.end()));
    });
    if (!st) n.warnings.push_back(fmt::format("{}: {}", s->pin_name, st.error().message));
  }

  // The policy programs the interfaces point at, and their sub-programs.
  auto read_slots = [&](const MapSpec* s, uint32_t idx) {
    if (!s) return;
    auto m = PinnedMap::open(bpffs, s->pin_name);
    if (!m) {
      n.warnings.push_back(fmt::format("{}: {}", s->pin_name, m.error().message));
      return;
    }
    for (uint32_t k = 0; k < kMaxSubProgs; ++k) {
      uint32_t i = idx + k * policy_abi::kSubProgStride;
      if (n.slot(std::string(s->pin_name), i)) continue;
      JumpSlot js{std::string(s->pin_name), i, std::nullopt};
      auto id = prog_array_lookup(*m, i);
      if (!id) {
        n.warnings.push_back(fmt::format("{}[{}]: {}", s->pin_name, i, id.error().message));
        return;
      }
      if (*id) {
        auto info = prog_info_by_id(**id);
        if (!info) {
          n.warnings.push_back(
              fmt::format("{}[{}]: program {}: {}", s->pin_name, i, **id, info.error().message));
          return;
        }
        js.prog = std::move(*info);
      }
      bool empty = !js.prog;
      n.jump_slots.push_back(std::move(js));
      if (empty) return;  // sub-programs are contiguous: an empty slot ends the chain
    }
  };
  const MapSpec* jump_any = n.spec(MapRole::jump);
  const MapSpec* jump_ing = jump_any ? jump_any : n.spec(MapRole::jump_ing);
  const MapSpec* jump_egr = jump_any ? jump_any : n.spec(MapRole::jump_egr);
  for (const auto& [k, v] : n.entries["ifstate"]) {
    auto st = decode_ifstate_value(v);
    if (!st) continue;
    for (int family : {4, 6}) {
      if (family == 6 && !st->dual_stack_layout) continue;
      if (auto i = st->index_for(AttachHook::tc_ingress, family)) read_slots(jump_ing, *i);
      if (auto i = st->index_for(AttachHook::tc_egress, family)) read_slots(jump_egr, *i);
    }
  }

  // Debug JSON: every *_v4.json / *_v6.json of the directory.
  if (DIR* d = opendir(debug_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() < 5 || name.substr(name.size() - 5) != ".json") continue;
      std::string path = debug_dir;
      path += "/";
      path += name;
      auto text = read_text(path);
      if (text)
        n.debug_json[name] = std::move(*text);
      else
        n.debug_json_errors[name] = text.error().message;
    }
    closedir(d);
  } else {
    n.warnings.push_back(fmt::format("policy-debug directory {}: cannot read", debug_dir));
  }
  return n;
}

nlohmann::json node_state_to_json(const NodeState& n) {
  nlohmann::json j;
  j["bpffs"] = n.bpffs;
  j["policy_debug_dir"] = n.policy_debug_dir;
  j["release"] = n.release ? n.release->releases.str() : "";
  if (!n.layout_error.empty()) j["layout_error"] = n.layout_error;
  auto& maps = j["maps"] = nlohmann::json::array();
  for (const auto& m : n.maps)
    maps.push_back({{"name", m.name},
                    {"type", m.type},
                    {"key_size", m.key_size},
                    {"value_size", m.value_size},
                    {"max_entries", m.max_entries}});
  auto& ent = j["entries"] = nlohmann::json::object();
  for (const auto& [role, list] : n.entries) {
    auto& a = ent[role] = nlohmann::json::array();
    for (const auto& [k, v] : list) a.push_back({hex(k), hex(v)});
  }
  auto& slots = j["jump_slots"] = nlohmann::json::array();
  for (const auto& s : n.jump_slots) {
    nlohmann::json o = {{"map", s.map}, {"index", s.index}};
    if (s.prog)
      o["prog"] = {{"id", s.prog->id},           {"type", s.prog->type},
                   {"name", s.prog->name},       {"tag", tag_hex(s.prog->tag)},
                   {"map_ids", s.prog->map_ids}, {"xlated_len", s.prog->xlated_len}};
    slots.push_back(std::move(o));
  }
  j["debug_json"] = n.debug_json;
  if (!n.debug_json_errors.empty()) j["debug_json_errors"] = n.debug_json_errors;
  if (!n.warnings.empty()) j["warnings"] = n.warnings;
  return j;
}

Result<NodeState> node_state_from_json(const nlohmann::json& j, const std::string& source) {
  NodeState n;
  n.source = source;
  try {
    n.bpffs = j.value("bpffs", "");
    n.policy_debug_dir = j.value("policy_debug_dir", "");
    for (const auto& m : j.at("maps"))
      n.maps.push_back(PinnedMapInfo{m.at("name").get<std::string>(), m.at("type").get<uint32_t>(),
                                     m.at("key_size").get<uint32_t>(),
                                     m.at("value_size").get<uint32_t>(),
                                     m.at("max_entries").get<uint32_t>()});
    for (const auto& [role, list] : j.at("entries").items())
      for (const auto& e : list) {
        auto k = unhex(e.at(0).get<std::string>());
        auto v = unhex(e.at(1).get<std::string>());
        if (!k || !v)
          return make_error(ErrorCode::bad_input,
                            fmt::format("{}: ebpf.entries.{}: bad hex", source, role));
        n.entries[role].emplace_back(std::move(*k), std::move(*v));
      }
    for (const auto& s : j.at("jump_slots")) {
      JumpSlot js{s.at("map").get<std::string>(), s.at("index").get<uint32_t>(), std::nullopt};
      if (s.contains("prog")) {
        const auto& p = s.at("prog");
        ProgInfo pi;
        pi.id = p.at("id").get<uint32_t>();
        pi.type = p.value("type", 0u);
        pi.name = p.at("name").get<std::string>();
        auto tag = unhex(p.at("tag").get<std::string>());
        if (!tag || tag->size() != pi.tag.size())
          return make_error(ErrorCode::bad_input, fmt::format("{}: ebpf: bad program tag", source));
        std::copy(tag->begin(), tag->end(), pi.tag.begin());
        pi.map_ids = p.value("map_ids", std::vector<uint32_t>{});
        pi.xlated_len = p.value("xlated_len", 0u);
        js.prog = std::move(pi);
      }
      n.jump_slots.push_back(std::move(js));
    }
    n.debug_json = j.value("debug_json", std::map<std::string, std::string>{});
    n.debug_json_errors = j.value("debug_json_errors", std::map<std::string, std::string>{});
    n.warnings = j.value("warnings", std::vector<std::string>{});
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::bad_input, fmt::format("{}: ebpf section: {}", source, e.what()));
  }
  detect_layout(n);
  return n;
}

}  // namespace dpi::ebpf
