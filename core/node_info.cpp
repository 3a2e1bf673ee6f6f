#include "core/node_info.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/route_index.h"

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

}  // namespace

namespace {

// A rule's blackhole/unreachable/prohibit action ends the lookup like a route of that type.
const Route* action_route(const std::string& action) {
  static const Route blackhole = [] {
    Route r;
    r.type = "blackhole";
    return r;
  }();
  static const Route unreachable = [] {
    Route r;
    r.type = "unreachable";
    return r;
  }();
  static const Route prohibit = [] {
    Route r;
    r.type = "prohibit";
    return r;
  }();
  if (action == "blackhole") return &blackhole;
  if (action == "unreachable") return &unreachable;
  if (action == "prohibit") return &prohibit;
  return nullptr;
}

// Whether all of the rule's selectors match (before "not"); *unknown says why that cannot be
// told. A selector that is known not to match settles it even next to an unknown one.
bool selectors_match(const IpRule& r, const IpAddr& dst, const RouteKey& key,
                     std::string* unknown) {
  if (r.fwmask && ((key.mark ^ r.fwmark) & r.fwmask) != 0) return false;
  if (r.dst && !r.dst->contains(dst)) return false;
  if (r.src && !key.src.empty() && !r.src->contains(key.src)) return false;
  // Route lookups for forwarded and locally sent packets are not bound to an output device.
  if (!r.oif.empty()) return false;
  if (!r.iif.empty() && !key.iif.empty() && r.iif != key.iif) return false;
  // dpinspect's packets carry DSCP/TOS 0.
  if (r.tos != 0) return false;
  // As the kernel's flow key: protocol and ports are 0 where the lookup has none (fib lookups).
  if (r.ipproto && *r.ipproto != key.l4proto) return false;
  auto in = [](uint16_t v, const std::pair<uint16_t, uint16_t>& p) {
    return v >= p.first && v <= p.second;
  };
  if (r.sport && !in(key.has_ports ? key.sport : 0, *r.sport)) return false;
  if (r.dport && !in(key.has_ports ? key.dport : 0, *r.dport)) return false;
  // Forwarded packets are looked up as uid 0; a local socket's uid is not known.
  const bool forwarded = !key.iif.empty() && key.iif != "lo";
  if (r.uidrange && forwarded && r.uidrange->first > 0) return false;
  if (r.src && key.src.empty())
    *unknown = "it selects on the source address, which this lookup does not know";
  else if (!r.iif.empty() && key.iif.empty())
    *unknown = "it selects on the input interface, which this kind of lookup does not say";
  else if (r.uidrange && !forwarded)
    *unknown = "it selects on the sending socket's uid, which dpinspect does not know";
  else if (!r.unsupported.empty())
    *unknown = "dpinspect does not model its selector " + r.unsupported;
  return true;
}

}  // namespace

std::string ip_rule_text(const IpRule& r) {
  std::string s = std::to_string(r.priority) + ":";
  if (r.invert) s += " not";
  s += r.src ? " from " + r.src->str() : " from all";
  if (r.dst) s += " to " + r.dst->str();
  if (r.fwmask) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " fwmark 0x%x/0x%x", r.fwmark, r.fwmask);
    s += buf;
  }
  if (!r.iif.empty()) s += " iif " + r.iif;
  if (!r.oif.empty()) s += " oif " + r.oif;
  if (r.tos) s += " tos " + std::to_string(r.tos);
  if (r.ipproto) s += " ipproto " + std::to_string(*r.ipproto);
  auto range = [](const auto& p) {
    return p.first == p.second ? std::to_string(p.first)
                               : std::to_string(p.first) + "-" + std::to_string(p.second);
  };
  if (r.sport) s += " sport " + range(*r.sport);
  if (r.dport) s += " dport " + range(*r.dport);
  if (r.uidrange) s += " uidrange " + range(*r.uidrange);
  if (!r.unsupported.empty()) s += " " + r.unsupported;
  if (r.action == "lookup")
    s += " lookup " + std::to_string(r.table);
  else if (r.action == "goto")
    s += " goto " + std::to_string(r.goto_priority);
  else
    s += " " + r.action;
  return s;
}

bool is_default_ip_rule(const IpRule& r) {
  if (r.invert || r.src || r.dst || r.fwmask || !r.iif.empty() || !r.oif.empty() ||
      !r.unsupported.empty() || r.action != "lookup" || r.suppress_prefixlength >= 0 || r.tos ||
      r.ipproto || r.sport || r.dport || r.uidrange)
    return false;
  return (r.priority == 0 && r.table == 255) || (r.priority == 32766 && r.table == 254) ||
         (r.priority == 32767 && r.table == 253);
}

std::vector<const IpRule*> rules_in_order(const NodeInfo& node, int family) {
  std::vector<const IpRule*> rules;
  for (const auto& r : node.rules)
    if (r.family == family) rules.push_back(&r);
  std::stable_sort(rules.begin(), rules.end(),
                   [](const IpRule* a, const IpRule* b) { return a->priority < b->priority; });
  return rules;
}

RouteResult walk_ip_rules(const std::vector<const IpRule*>& rules, const IpAddr& dst,
                          const RouteKey& key,
                          const std::function<const Route*(uint32_t)>& lookup_table) {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const IpRule& r = *rules[i];
    std::string unknown;
    bool m = selectors_match(r, dst, key, &unknown);
    if (!unknown.empty()) return {nullptr, &r, "ip rule " + ip_rule_text(r) + ": " + unknown};
    if (m == r.invert) continue;
    if (r.action == "nop") continue;
    if (r.action == "goto") {
      // The kernel jumps forward to the first rule with that priority, or ignores the rule.
      for (std::size_t j = i + 1; j < rules.size(); ++j)
        if (rules[j]->priority == r.goto_priority) {
          i = j - 1;
          break;
        }
      continue;
    }
    if (const Route* a = action_route(r.action)) return {a, &r, {}};
    if (r.action != "lookup")
      return {nullptr, &r, "ip rule " + ip_rule_text(r) + ": action not modelled"};
    const Route* found = lookup_table(r.table);
    if (!found || found->type == "throw") continue;
    if (r.suppress_prefixlength >= 0 && found->dst.len <= r.suppress_prefixlength) continue;
    return {found, &r, {}};
  }
  return {};
}

RouteResult NodeInfo::route(const IpAddr& dst, const RouteKey& key) const {
  // One lookup for everyone: the index is built per call here; hot paths keep their own.
  return RouteIndex(*this).lookup(dst, key);
}

bool NodeInfo::is_local(const IpAddr& a) const {
  return RouteIndex(*this).is_local(a);
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
  json out = {{"interfaces", std::move(ifs)}, {"routes", std::move(routes)}};
  if (node.rules_read) {
    json rules = json::array();
    for (const auto& r : node.rules) {
      json jr = {{"priority", r.priority}, {"family", r.family}, {"action", r.action}};
      if (r.invert) jr["not"] = true;
      if (r.src) jr["from"] = r.src->str();
      if (r.dst) jr["to"] = r.dst->str();
      if (r.fwmask) {
        jr["fwmark"] = r.fwmark;
        jr["fwmask"] = r.fwmask;
      }
      if (!r.iif.empty()) jr["iif"] = r.iif;
      if (!r.oif.empty()) jr["oif"] = r.oif;
      if (r.action == "lookup") jr["table"] = r.table;
      if (r.action == "goto") jr["goto"] = r.goto_priority;
      if (r.suppress_prefixlength >= 0) jr["suppress_prefixlength"] = r.suppress_prefixlength;
      if (r.tos) jr["tos"] = r.tos;
      if (r.ipproto) jr["ipproto"] = *r.ipproto;
      if (r.sport) jr["sport"] = {r.sport->first, r.sport->second};
      if (r.dport) jr["dport"] = {r.dport->first, r.dport->second};
      if (r.uidrange) jr["uidrange"] = {r.uidrange->first, r.uidrange->second};
      if (!r.unsupported.empty()) jr["unsupported"] = r.unsupported;
      rules.push_back(std::move(jr));
    }
    out["rules"] = std::move(rules);
  }
  return out;
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

constexpr std::array<std::string_view, 6> kRuleActions = {"lookup",    "goto",        "nop",
                                                          "blackhole", "unreachable", "prohibit"};

bool read_rule(Reader& rd, const json& j, const json::json_pointer& at, IpRule& out) {
  if (!j.is_object()) return rd.fail(at, "an ip rule object", &j);
  uint64_t n = 0;
  const json* v = rd.field(j, at, "priority", true);
  if (!v || !rd.get_uint(*v, at / "priority", std::numeric_limits<uint32_t>::max(), n))
    return false;
  out.priority = static_cast<uint32_t>(n);
  if ((v = rd.field(j, at, "family", false))) {
    if (!v->is_number_integer() || (v->get<int64_t>() != 4 && v->get<int64_t>() != 6))
      return rd.fail(at / "family", "4 or 6", v);
    out.family = static_cast<int>(v->get<int64_t>());
  }
  if ((v = rd.field(j, at, "not", false)) && !rd.get_bool(*v, at / "not", out.invert)) return false;
  for (const char* key : {"from", "to"}) {
    if (!(v = rd.field(j, at, key, false))) continue;
    IpPrefix p;
    if (!rd.get_prefix(*v, at / key, p)) return false;
    if ((p.addr.is_v4() ? 4 : 6) != out.family)
      return rd.fail(at / key, "a prefix of the rule's family", v);
    (std::string(key) == "from" ? out.src : out.dst) = p;
  }
  if ((v = rd.field(j, at, "fwmark", false))) {
    if (!rd.get_uint(*v, at / "fwmark", std::numeric_limits<uint32_t>::max(), n)) return false;
    out.fwmark = static_cast<uint32_t>(n);
    out.fwmask = 0xffffffff;
  }
  if ((v = rd.field(j, at, "fwmask", false))) {
    if (!rd.get_uint(*v, at / "fwmask", std::numeric_limits<uint32_t>::max(), n)) return false;
    out.fwmask = static_cast<uint32_t>(n);
  }
  if ((v = rd.field(j, at, "iif", false)) && !rd.get_string(*v, at / "iif", out.iif)) return false;
  if ((v = rd.field(j, at, "oif", false)) && !rd.get_string(*v, at / "oif", out.oif)) return false;
  if ((v = rd.field(j, at, "action", false))) {
    if (!rd.get_string(*v, at / "action", out.action)) return false;
    if (std::find(kRuleActions.begin(), kRuleActions.end(), out.action) == kRuleActions.end())
      return rd.fail(at / "action",
                     "an ip rule action (lookup, goto, nop, blackhole, unreachable, prohibit)", v);
  }
  v = rd.field(j, at, "table", out.action == "lookup");
  if (out.action == "lookup" &&
      (!v || !rd.get_uint(*v, at / "table", std::numeric_limits<uint32_t>::max(), n)))
    return false;
  out.table = static_cast<uint32_t>(n);
  if (out.action == "goto") {
    v = rd.field(j, at, "goto", true);
    if (!v || !rd.get_uint(*v, at / "goto", std::numeric_limits<uint32_t>::max(), n)) return false;
    out.goto_priority = static_cast<uint32_t>(n);
  }
  if ((v = rd.field(j, at, "suppress_prefixlength", false))) {
    if (!rd.get_uint(*v, at / "suppress_prefixlength", 128, n)) return false;
    out.suppress_prefixlength = static_cast<int>(n);
  }
  if ((v = rd.field(j, at, "tos", false))) {
    if (!rd.get_uint(*v, at / "tos", 255, n)) return false;
    out.tos = static_cast<uint8_t>(n);
  }
  if ((v = rd.field(j, at, "ipproto", false))) {
    if (!rd.get_uint(*v, at / "ipproto", 255, n)) return false;
    out.ipproto = static_cast<uint8_t>(n);
  }
  for (const char* key : {"sport", "dport", "uidrange"}) {
    if (!(v = rd.field(j, at, key, false))) continue;
    const uint64_t max = std::string(key) == "uidrange" ? 0xffffffff : 0xffff;
    uint64_t lo = 0, hi = 0;
    if (!v->is_array() || v->size() != 2) return rd.fail(at / key, "a [first, last] pair", v);
    if (!rd.get_uint((*v)[0], at / key / 0, max, lo) ||
        !rd.get_uint((*v)[1], at / key / 1, max, hi))
      return false;
    if (lo > hi) return rd.fail(at / key, "first <= last", v);
    if (std::string(key) == "uidrange")
      out.uidrange =
          std::pair<uint32_t, uint32_t>(static_cast<uint32_t>(lo), static_cast<uint32_t>(hi));
    else
      (std::string(key) == "sport" ? out.sport : out.dport) =
          std::pair<uint16_t, uint16_t>(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
  }
  if ((v = rd.field(j, at, "unsupported", false)) &&
      !rd.get_string(*v, at / "unsupported", out.unsupported))
    return false;
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

  if (const json* rules = rd.field(j, root, "rules", false)) {
    const auto at = root / "rules";
    if (!rules->is_array()) {
      rd.fail(at, "an array of ip rules", rules);
      return *rd.error();
    }
    for (std::size_t k = 0; k < rules->size(); ++k) {
      IpRule r;
      if (!read_rule(rd, (*rules)[k], at / k, r)) return *rd.error();
      node.rules.push_back(std::move(r));
    }
    node.rules_read = true;
  }
  return node;
}

}  // namespace dpi
