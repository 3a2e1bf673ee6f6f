#include "core/node_info.h"

#include <algorithm>
#include <array>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dpi {

using nlohmann::json;

const Interface* NodeInfo::find_interface(const std::string& name) const {
  for (const auto& i : interfaces)
    if (i.name == name) return &i;
  return nullptr;
}

const Interface* NodeInfo::find_interface(int index) const {
  for (const auto& i : interfaces)
    if (i.index == index) return &i;
  return nullptr;
}

namespace {

constexpr uint32_t kTableDefault = 253;
constexpr uint32_t kTableMain = 254;
constexpr uint32_t kTableLocal = 255;

// The kernel's default policy rules consult local (pref 0), main (32766) and default (32767).
// Other tables are only reachable through extra rules that NodeInfo does not model, so they
// come last, in id order, as the least wrong guess.
uint64_t table_rank(uint32_t table) {
  switch (table) {
    case kTableLocal: return 0;
    case kTableMain: return 1;
    case kTableDefault: return 2;
    default: return 3 + uint64_t{table};
  }
}

// Better match within one table: longer prefix, then lower metric; ties keep dump order.
bool better(const Route& a, const Route& b) {
  if (a.dst.len != b.dst.len) return a.dst.len > b.dst.len;
  return a.priority < b.priority;
}

}  // namespace

const Route* NodeInfo::lookup(const IpAddr& dst) const {
  std::vector<uint32_t> tables;
  for (const auto& r : routes) tables.push_back(r.table);
  std::sort(tables.begin(), tables.end(),
            [](uint32_t a, uint32_t b) { return table_rank(a) < table_rank(b); });
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());

  for (uint32_t table : tables) {
    const Route* best = nullptr;
    for (const auto& r : routes) {
      if (r.table != table || !r.dst.contains(dst)) continue;
      if (!best || better(r, *best)) best = &r;
    }
    // A throw route ends the search in this table only; the next rule's table gets a go.
    if (best && best->type != "throw") return best;
  }
  return nullptr;
}

bool NodeInfo::is_local(const IpAddr& a) const {
  for (const auto& r : routes)
    if (r.table == kTableLocal && r.type == "local" && r.dst.contains(a)) return true;
  for (const auto& i : interfaces)
    for (const auto& p : i.addrs)
      if (p.addr == a) return true;
  return false;
}

json to_json(const NodeInfo& node) {
  json ifs = json::array();
  for (const auto& i : node.interfaces) {
    json addrs = json::array();
    for (const auto& p : i.addrs) addrs.push_back(p.str());
    ifs.push_back({{"index", i.index}, {"name", i.name}, {"up", i.up}, {"addrs", addrs}});
  }
  json routes = json::array();
  for (const auto& r : node.routes) {
    json jr = {{"dst", r.dst.str()}, {"type", r.type}, {"dev", r.dev}, {"oif", r.oif}};
    if (r.gateway) jr["gateway"] = r.gateway->str();
    jr["table"] = r.table;
    jr["priority"] = r.priority;
    routes.push_back(std::move(jr));
  }
  return {{"interfaces", std::move(ifs)}, {"routes", std::move(routes)}};
}

namespace {

constexpr std::array<std::string_view, 11> kRouteTypes = {
    "unspec",    "unicast",     "local",    "broadcast", "anycast", "multicast",
    "blackhole", "unreachable", "prohibit", "throw",     "nat"};

// Reads one document; the first problem found becomes the error, with the pointer to it so
// that a user editing a saved node file can find the spot.
class Reader {
 public:
  explicit Reader(const std::string& origin) : origin_(origin) {}

  const std::optional<Error>& error() const { return error_; }

  bool fail(const json::json_pointer& at, const std::string& expected, const json* got) {
    if (error_) return false;
    std::string where = at.empty() ? "/" : at.to_string();
    std::string msg = origin_ + ": " + where + ": expected " + expected;
    if (got) msg += ", got " + got->dump();
    error_ = make_error(ErrorCode::bad_input, std::move(msg));
    return false;
  }

  // Missing keys are fine (defaults apply) unless the caller says otherwise.
  const json* field(const json& obj, const json::json_pointer& at, const char* key, bool required) {
    auto it = obj.find(key);
    if (it != obj.end()) return &*it;
    if (required) fail(at / key, "a value (field is required)", nullptr);
    return nullptr;
  }

  bool get_string(const json& v, const json::json_pointer& at, std::string& out) {
    if (!v.is_string()) return fail(at, "a string", &v);
    out = v.get<std::string>();
    return true;
  }

  bool get_bool(const json& v, const json::json_pointer& at, bool& out) {
    if (!v.is_boolean()) return fail(at, "true or false", &v);
    out = v.get<bool>();
    return true;
  }

  bool get_uint(const json& v, const json::json_pointer& at, uint64_t max, uint64_t& out) {
    std::string want = "an integer from 0 to " + std::to_string(max);
    if (v.is_number_unsigned()) {
      out = v.get<uint64_t>();
    } else if (v.is_number_integer()) {
      int64_t s = v.get<int64_t>();
      if (s < 0) return fail(at, want, &v);
      out = static_cast<uint64_t>(s);
    } else {
      return fail(at, want, &v);
    }
    if (out > max) return fail(at, want, &v);
    return true;
  }

  bool get_prefix(const json& v, const json::json_pointer& at, IpPrefix& out) {
    const char* want = "an address or prefix like \"10.0.0.0/24\" or \"fd00::1/64\"";
    if (!v.is_string()) return fail(at, want, &v);
    auto p = IpPrefix::parse(v.get<std::string>());
    if (!p) return fail(at, want, &v);
    out = *p;
    return true;
  }

  bool get_addr(const json& v, const json::json_pointer& at, IpAddr& out) {
    const char* want = "an IPv4 or IPv6 address";
    if (!v.is_string()) return fail(at, want, &v);
    auto a = IpAddr::parse(v.get<std::string>());
    if (!a) return fail(at, want, &v);
    out = *a;
    return true;
  }

 private:
  std::string origin_;
  std::optional<Error> error_;
};

bool read_interface(Reader& rd, const json& j, const json::json_pointer& at, Interface& out) {
  if (!j.is_object()) return rd.fail(at, "an interface object", &j);
  uint64_t index = 0;
  const json* v = rd.field(j, at, "index", true);
  if (!v || !rd.get_uint(*v, at / "index", std::numeric_limits<int>::max(), index)) return false;
  if (index == 0) return rd.fail(at / "index", "an interface index above 0", v);
  out.index = static_cast<int>(index);
  v = rd.field(j, at, "name", true);
  if (!v || !rd.get_string(*v, at / "name", out.name)) return false;
  if (out.name.empty()) return rd.fail(at / "name", "a non-empty name", v);
  // Hand-written node files list the interfaces that exist; those are normally up.
  out.up = true;
  if ((v = rd.field(j, at, "up", false)) && !rd.get_bool(*v, at / "up", out.up)) return false;
  if ((v = rd.field(j, at, "addrs", false))) {
    if (!v->is_array()) return rd.fail(at / "addrs", "an array of prefixes", v);
    for (std::size_t k = 0; k < v->size(); ++k) {
      IpPrefix p;
      if (!rd.get_prefix((*v)[k], at / "addrs" / k, p)) return false;
      out.addrs.push_back(p);
    }
  }
  return true;
}

bool read_route(Reader& rd, const json& j, const json::json_pointer& at, Route& out) {
  if (!j.is_object()) return rd.fail(at, "a route object", &j);
  const json* v = rd.field(j, at, "dst", true);
  if (!v || !rd.get_prefix(*v, at / "dst", out.dst)) return false;
  if ((v = rd.field(j, at, "type", false))) {
    if (!rd.get_string(*v, at / "type", out.type)) return false;
    if (std::find(kRouteTypes.begin(), kRouteTypes.end(), out.type) == kRouteTypes.end())
      return rd.fail(at / "type",
                     "a route type (unicast, local, broadcast, anycast, multicast, blackhole, "
                     "unreachable, prohibit, throw, nat, unspec)",
                     v);
  }
  if ((v = rd.field(j, at, "dev", false)) && !rd.get_string(*v, at / "dev", out.dev)) return false;
  uint64_t n = 0;
  if ((v = rd.field(j, at, "oif", false))) {
    if (!rd.get_uint(*v, at / "oif", std::numeric_limits<int>::max(), n)) return false;
    out.oif = static_cast<int>(n);
  }
  if ((v = rd.field(j, at, "gateway", false)) && !v->is_null()) {
    IpAddr gw;
    if (!rd.get_addr(*v, at / "gateway", gw)) return false;
    out.gateway = gw;
  }
  if ((v = rd.field(j, at, "table", false))) {
    if (!rd.get_uint(*v, at / "table", std::numeric_limits<uint32_t>::max(), n)) return false;
    out.table = static_cast<uint32_t>(n);
  }
  if ((v = rd.field(j, at, "priority", false))) {
    if (!rd.get_uint(*v, at / "priority", std::numeric_limits<uint32_t>::max(), n)) return false;
    out.priority = static_cast<uint32_t>(n);
  }
  return true;
}

}  // namespace

Result<NodeInfo> node_info_from_json(const json& j, const std::string& origin) {
  Reader rd(origin);
  const json::json_pointer root;
  NodeInfo node;
  if (!j.is_object()) {
    rd.fail(root, "an object with \"interfaces\" and \"routes\"", &j);
    return *rd.error();
  }

  if (const json* ifs = rd.field(j, root, "interfaces", false)) {
    const auto at = root / "interfaces";
    if (!ifs->is_array()) {
      rd.fail(at, "an array of interfaces", ifs);
      return *rd.error();
    }
    std::set<int> indexes;
    std::set<std::string> names;
    for (std::size_t k = 0; k < ifs->size(); ++k) {
      Interface i;
      if (!read_interface(rd, (*ifs)[k], at / k, i)) return *rd.error();
      if (!indexes.insert(i.index).second) {
        rd.fail(at / k / "index", "an index not used by another interface", &(*ifs)[k]["index"]);
        return *rd.error();
      }
      if (!names.insert(i.name).second) {
        rd.fail(at / k / "name", "a name not used by another interface", &(*ifs)[k]["name"]);
        return *rd.error();
      }
      node.interfaces.push_back(std::move(i));
    }
  }

  if (const json* routes = rd.field(j, root, "routes", false)) {
    const auto at = root / "routes";
    if (!routes->is_array()) {
      rd.fail(at, "an array of routes", routes);
      return *rd.error();
    }
    for (std::size_t k = 0; k < routes->size(); ++k) {
      Route r;
      if (!read_route(rd, (*routes)[k], at / k, r)) return *rd.error();
      // Hand-written files may give only one of dev/oif; fill the other so that both kinds of
      // consumer (by name, by index) agree.
      if (r.dev.empty() && r.oif != 0) {
        if (const Interface* i = node.find_interface(r.oif)) r.dev = i->name;
      } else if (!r.dev.empty() && r.oif == 0) {
        if (const Interface* i = node.find_interface(r.dev)) r.oif = i->index;
      }
      node.routes.push_back(std::move(r));
    }
  }
  return node;
}

}  // namespace dpi
