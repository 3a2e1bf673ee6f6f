#include "backends/ebpf/detect_release.h"

#include <set>
#include <vector>

#include <fmt/format.h>

namespace dpi::ebpf {

namespace {

const PinnedMapInfo* find_pinned(std::span<const PinnedMapInfo> maps, std::string_view name) {
  for (const PinnedMapInfo& m : maps)
    if (m.name == name) return &m;
  return nullptr;
}

bool same_shape(const MapSpec& s, const PinnedMapInfo& m) {
  return m.type == static_cast<uint32_t>(s.type) && m.key_size == s.key_size &&
         m.value_size == s.value_size;
}

std::string shape(uint32_t type, uint32_t key, uint32_t value) {
  return fmt::format("{} {}/{}", map_type_name(static_cast<MapType>(type)), key, value);
}

// Every shape the known layouts give a pin name, "hash 4/40 (v3.27), ...".
std::string known_shapes(std::string_view name) {
  std::vector<std::pair<std::string, ReleaseRange>> groups;
  for (const Layout& l : layouts())
    for (const MapSpec& s : l.maps) {
      if (s.pin_name != name) continue;
      std::string sh = shape(static_cast<uint32_t>(s.type), s.key_size, s.value_size);
      if (!groups.empty() && groups.back().first == sh) {
        groups.back().second.last = l.releases.last;
      } else {
        groups.emplace_back(sh, l.releases);
      }
    }
  std::string out;
  for (const auto& [sh, range] : groups)
    out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", sh, range.str());
  return out;
}

}  // namespace

Result<Detection> detect_release(std::span<const PinnedMapInfo> maps) {
  // A known name with a shape no release uses: that map is the answer, whatever else matches.
  std::set<std::string_view> known;
  for (const Layout& l : layouts())
    for (const MapSpec& s : l.maps) known.insert(s.pin_name);
  bool any = false;
  for (const PinnedMapInfo& m : maps) {
    if (!known.count(m.name)) continue;
    any = true;
    bool fits = false;
    for (const Layout& l : layouts())
      for (const MapSpec& s : l.maps)
        if (s.pin_name == m.name && same_shape(s, m)) fits = true;
    if (!fits)
      return make_error(ErrorCode::bad_input,
                        fmt::format("unknown Calico map layout: {} is {}, known: {}", m.name,
                                    shape(m.type, m.key_size, m.value_size), known_shapes(m.name)));
  }
  if (!any)
    return make_error(ErrorCode::not_found,
                      "no Calico eBPF maps (cali_iface*, cali_state*, cali_jump*) pinned");

  // Newest first: Felix deletes the previous release's maps on upgrade, but if some linger the
  // running release is the newest complete set.
  std::string closest;
  std::size_t best_missing = SIZE_MAX;
  auto all = layouts();
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    const Layout& l = *it;
    std::vector<std::string> missing, absent_optional;
    for (const MapSpec& s : l.maps) {
      const PinnedMapInfo* p = find_pinned(maps, s.pin_name);
      if (p && same_shape(s, *p)) continue;
      if (p) {
        missing.push_back(fmt::format(
            "{} is {} (want {})", s.pin_name, shape(p->type, p->key_size, p->value_size),
            shape(static_cast<uint32_t>(s.type), s.key_size, s.value_size)));
      } else if (s.signature) {
        missing.push_back(fmt::format("{} missing", s.pin_name));
      } else {
        absent_optional.push_back(std::string(s.pin_name));
      }
    }
    if (missing.empty()) {
      Detection d{&l, l.releases, {}};
      if (!absent_optional.empty()) {
        std::string names;
        for (const auto& n : absent_optional) names += (names.empty() ? "" : ", ") + n;
        d.notes.push_back("not pinned: " + names);
      }
      return d;
    }
    if (missing.size() < best_missing) {
      best_missing = missing.size();
      std::string why;
      for (const auto& m : missing) why += (why.empty() ? "" : "; ") + m;
      closest = fmt::format("closest {}: {}", l.releases.str(), why);
    }
  }
  return make_error(ErrorCode::bad_input, "unknown Calico map layout: " + closest);
}

}  // namespace dpi::ebpf
