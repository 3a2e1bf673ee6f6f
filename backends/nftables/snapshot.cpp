#include "backends/nftables/snapshot.h"

#include <fmt/format.h>

#include "core/snapshot.h"

namespace dpi::nft {

using nlohmann::json;

namespace {

std::string hex(const std::vector<uint8_t>& b) {
  std::string s;
  for (uint8_t c : b) s += fmt::format("{:02x}", c);
  return s;
}

std::optional<std::vector<uint8_t>> unhex(const std::string& s) {
  if (s.size() % 2) return std::nullopt;
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i < s.size(); i += 2) {
    unsigned v = 0;
    if (std::sscanf(s.c_str() + i, "%2x", &v) != 1) return std::nullopt;
    out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

std::string bytes_hex(const Bytes& b) {
  return hex(std::vector<uint8_t>(b.d.begin(), b.d.begin() + b.len));
}

std::optional<Bytes> hex_bytes(const json& j) {
  if (!j.is_string()) return std::nullopt;
  auto v = unhex(j.get<std::string>());
  if (!v || v->size() > Bytes::kMax) return std::nullopt;
  Bytes b;
  b.len = static_cast<uint8_t>(v->size());
  std::copy(v->begin(), v->end(), b.d.begin());
  return b;
}

json xt_json(const XtPayloads& xt) {
  json out = json::array();
  for (const auto& [k, exprs] : xt) {
    json e = json::array();
    for (const auto& x : exprs)
      e.push_back({{"target", x.target}, {"name", x.name}, {"rev", x.rev}, {"info", hex(x.info)}});
    out.push_back({{"family", k.family},
                   {"table", k.table},
                   {"chain", k.chain},
                   {"handle", k.handle},
                   {"exprs", e}});
  }
  return out;
}

json ipsets_json(const IpsetCatalog& cat) {
  json out = json::array();
  for (const auto& s : cat.sets) {
    json types = json::array();
    for (Type t : s.key_types) types.push_back(std::string(type_name(t)));
    json members = json::array();
    for (const auto& m : s.members) {
      json key = json::array();
      for (const auto& r : m.key) key.push_back({bytes_hex(r.lo), bytes_hex(r.hi)});
      members.push_back({{"key", key}, {"nomatch", m.nomatch}});
    }
    out.push_back({{"name", s.name},
                   {"type", s.type},
                   {"family", s.family},
                   {"index", s.index},
                   {"netmask", s.netmask},
                   {"key_types", types},
                   {"members", members},
                   {"list_members", s.list_members}});
  }
  return out;
}

Error bad(const std::string& origin, const std::string& where, const std::string& what) {
  return make_error(ErrorCode::bad_input, fmt::format("{}: {}: {}", origin, where, what));
}

// Runs one item's reader; a member of the wrong JSON type (nlohmann's get<> throws) becomes an
// error that names the item.
template <class F>
Status shape_checked(const std::string& origin, const std::string& where, F&& read) {
  try {
    return read();
  } catch (const json::exception& e) {
    return bad(origin, where, fmt::format("wrong JSON shape: {}", e.what()));
  }
}

}  // namespace

json make_snapshot(const SnapshotParts& p) {
  return {{"ruleset", p.ruleset},
          {"xt", p.xt ? xt_json(*p.xt) : json::array()},
          {"ipsets", p.ipsets ? ipsets_json(*p.ipsets) : json::array()},
          {"node", p.node ? to_json(*p.node) : json(nullptr)}};
}

bool is_snapshot(const json& j) {
  return dpi::is_snapshot(j);
}

namespace {

Result<SnapshotData> read_snapshot_unchecked(const json& doc, const std::string& origin);

}  // namespace

Result<SnapshotData> read_snapshot(const json& j, const std::string& origin) {
  try {
    return read_snapshot_unchecked(j, origin);
  } catch (const json::exception& e) {
    // A member of the wrong JSON type where the reader asked for a string or number.
    return bad(origin, "snapshot", fmt::format("wrong JSON shape: {}", e.what()));
  }
}

namespace {

Result<SnapshotData> read_snapshot_unchecked(const json& doc, const std::string& origin) {
  auto section = snapshot_section(doc, kSnapshotSection, V1Section::top_level, origin);
  if (!section) return section.error();
  const json& j = **section;
  SnapshotData d;
  auto ruleset = j.find("ruleset");
  if (ruleset == j.end())
    return bad(origin, doc.contains(kSnapshotSection) ? "nftables" : "snapshot",
               "no \"ruleset\" member");
  d.ruleset = &*ruleset;
  const json& xt = j.contains("xt") ? j["xt"] : json::array();
  for (std::size_t i = 0; i < xt.size(); ++i) {
    const json& r = xt[i];
    std::string where = fmt::format("xt[{}]", i);
    if (!r.is_object() || !r.contains("exprs") || !r["exprs"].is_array())
      return bad(origin, where, "expected {family, table, chain, handle, exprs}");
    auto st = shape_checked(origin, where, [&]() -> Status {
      RuleKey k{r.value("family", ""), r.value("table", ""), r.value("chain", ""),
                r.value("handle", uint64_t{0})};
      for (const auto& x : r["exprs"]) {
        auto info = unhex(x.value("info", ""));
        if (!info) return bad(origin, where, "info is not hex");
        d.xt[k].push_back(
            XtExpr{x.value("target", false), x.value("name", ""), x.value("rev", 0u), *info});
      }
      return Ok{};
    });
    if (!st) return st.error();
  }
  const json& sets = j.contains("ipsets") ? j["ipsets"] : json::array();
  for (std::size_t i = 0; i < sets.size(); ++i) {
    const json& s = sets[i];
    std::string where = fmt::format("ipsets[{}]", i);
    Ipset set;
    auto st = shape_checked(origin, where, [&]() -> Status {
      set.name = s.value("name", "");
      set.type = s.value("type", "");
      set.family = s.value("family", 0);
      set.index = s.value("index", uint16_t{0});
      set.netmask = s.value("netmask", uint8_t{0});
      set.list_members = s.value("list_members", std::vector<std::string>{});
      for (const auto& t : s.value("key_types", json::array())) {
        auto type = type_from_name(t.is_string() ? t.get<std::string>() : "");
        if (!type) return bad(origin, where, fmt::format("unknown key type {}", t.dump()));
        set.key_types.push_back(*type);
      }
      for (const auto& m : s.value("members", json::array())) {
        IpsetMember mem;
        mem.nomatch = m.value("nomatch", false);
        for (const auto& r : m.value("key", json::array())) {
          auto lo = r.is_array() && r.size() == 2 ? hex_bytes(r[0]) : std::nullopt;
          auto hi = lo ? hex_bytes(r[1]) : std::nullopt;
          if (!hi) return bad(origin, where, "member key is not a [lo, hi] pair of hex strings");
          mem.key.push_back(Range{*lo, *hi});
        }
        if (mem.key.size() != set.key_types.size())
          return bad(origin, where, "member key does not match key_types");
        set.members.push_back(std::move(mem));
      }
      return Ok{};
    });
    if (!st) return st.error();
    d.ipsets.sets.push_back(std::move(set));
  }
  if (j.contains("node") && !j["node"].is_null()) {
    auto node = node_info_from_json(j["node"], origin + " (node)");
    if (!node) return node.error();
    d.node = std::move(*node);
  }
  return d;
}

}  // namespace

}  // namespace dpi::nft
