// `ipset save` / `ipset restore` text into an IpsetCatalog.
#include <arpa/inet.h>
#include <charconv>
#include <map>
#include <netdb.h>

#include <fmt/format.h>

#include "backends/nftables/xt/ipset_internal.h"

namespace dpi::nft {

namespace {

std::vector<std::string> tokens(std::string_view line) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string t;
    if (line[i] == '"') {
      ++i;
      while (i < line.size() && line[i] != '"') t += line[i++];
      ++i;
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') t += line[i++];
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<uint64_t> number(std::string_view s) {
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

std::optional<Bytes> addr(std::string_view s, Type t) {
  std::string str(s);
  Bytes b;
  b.len = t == Type::ipv6 ? 16 : 4;
  if (inet_pton(t == Type::ipv6 ? AF_INET6 : AF_INET, str.c_str(), b.d.data()) != 1)
    return std::nullopt;
  return b;
}

std::optional<Range> addr_range(std::string_view s, Type t) {
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    auto a = addr(s.substr(0, slash), t);
    auto c = number(s.substr(slash + 1));
    if (!a || !c || *c > a->len * std::size_t{8}) return std::nullopt;
    return xt::prefix_range(*a, static_cast<int>(*c));
  }
  if (auto dash = s.find('-'); dash != std::string_view::npos) {
    auto a = addr(s.substr(0, dash), t), b = addr(s.substr(dash + 1), t);
    if (!a || !b || b->compare(*a) < 0) return std::nullopt;
    return Range{*a, *b};
  }
  auto a = addr(s, t);
  if (!a) return std::nullopt;
  return xt::exact_range(*a);
}

std::optional<uint16_t> port_number(std::string_view s, const std::string& proto) {
  if (auto n = number(s); n && *n <= 0xffff) return static_cast<uint16_t>(*n);
  std::string name(s);
  if (servent* se = getservbyname(name.c_str(), proto.c_str()))
    return ntohs(static_cast<uint16_t>(se->s_port));
  return std::nullopt;
}

std::optional<uint8_t> proto_number(std::string_view s) {
  if (auto n = number(s); n && *n <= 255) return static_cast<uint8_t>(*n);
  static const std::map<std::string, uint8_t, std::less<>> kNames = {
      {"tcp", 6},     {"udp", 17},       {"sctp", 132}, {"udplite", 136}, {"icmp", 1},
      {"icmpv6", 58}, {"ipv6-icmp", 58}, {"gre", 47},   {"esp", 50},      {"ah", 51}};
  if (auto it = kNames.find(s); it != kNames.end()) return it->second;
  std::string name(s);
  if (protoent* pe = getprotobyname(name.c_str())) return static_cast<uint8_t>(pe->p_proto);
  return std::nullopt;
}

// "[proto:]port[-port]" (icmp: "icmp:type/code"); pushes the proto and port components.
bool port_dim(std::string_view s, IpsetMember& m, std::string* why) {
  std::string proto = "tcp";
  if (auto colon = s.find(':'); colon != std::string_view::npos) {
    proto = std::string(s.substr(0, colon));
    s.remove_prefix(colon + 1);
  }
  auto p = proto_number(proto);
  if (!p) {
    *why = fmt::format("protocol '{}' is not known", proto);
    return false;
  }
  uint16_t lo, hi;
  if (*p == 1 || *p == 58) {
    auto slash = s.find('/');
    auto type = number(s.substr(0, slash));
    auto code =
        slash == std::string_view::npos ? std::optional<uint64_t>(0) : number(s.substr(slash + 1));
    if (!type || !code || *type > 255 || *code > 255) {
      *why = fmt::format("ICMP type/code '{}' must be numeric TYPE/CODE", s);
      return false;
    }
    lo = hi = static_cast<uint16_t>((*type << 8) | *code);
  } else {
    auto dash = s.find('-');
    auto a = port_number(s.substr(0, dash), proto);
    auto b = dash == std::string_view::npos ? a : port_number(s.substr(dash + 1), proto);
    if (!a || !b || *b < *a) {
      *why = fmt::format("port '{}' is not a port or port range", s);
      return false;
    }
    lo = *a;
    hi = *b;
  }
  m.key.push_back(xt::exact_range(Bytes::from_uint(*p, 1)));
  m.key.push_back(Range{Bytes::from_uint(lo, 2), Bytes::from_uint(hi, 2)});
  return true;
}

bool parse_member(const Ipset& s, std::string_view elem, IpsetMember& m, std::string* why) {
  std::vector<std::string_view> dims;
  while (true) {
    auto comma = elem.find(',');
    dims.push_back(elem.substr(0, comma));
    if (comma == std::string_view::npos) break;
    elem.remove_prefix(comma + 1);
  }
  std::size_t d = 0;
  for (std::size_t i = 0; i < s.key_types.size(); ++i, ++d) {
    if (d >= dims.size()) {
      *why = fmt::format("has {} parts, type {} needs more", dims.size(), s.type);
      return false;
    }
    Type t = s.key_types[i];
    std::string_view v = dims[d];
    if (t == Type::ipv4 || t == Type::ipv6) {
      auto r = addr_range(v, t);
      if (!r) {
        *why = fmt::format("'{}' is not an {} address, prefix or range", v,
                           t == Type::ipv6 ? "IPv6" : "IPv4");
        return false;
      }
      m.key.push_back(*r);
    } else if (t == Type::inet_proto) {
      if (!port_dim(v, m, why)) return false;
      ++i;                                 // the port component was pushed too
    } else if (t == Type::inet_service) {  // bitmap:port
      auto dash = v.find('-');
      auto a = port_number(v.substr(0, dash), "tcp");
      auto b = dash == std::string_view::npos ? a : port_number(v.substr(dash + 1), "tcp");
      if (!a || !b) {
        *why = fmt::format("'{}' is not a port", v);
        return false;
      }
      m.key.push_back(Range{Bytes::from_uint(*a, 2), Bytes::from_uint(*b, 2)});
    } else if (t == Type::mark) {
      auto n = number(v);
      if (!n || *n > 0xffffffffu) {
        *why = fmt::format("'{}' is not a mark", v);
        return false;
      }
      m.key.push_back(xt::exact_range(Bytes::from_uint(*n, 4)));
    } else if (t == Type::ether_addr) {
      Bytes b;
      b.len = 6;
      unsigned x[6];
      std::string str(v);
      if (std::sscanf(str.c_str(), "%x:%x:%x:%x:%x:%x", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5]) !=
          6) {
        *why = fmt::format("'{}' is not a MAC address", v);
        return false;
      }
      for (int k = 0; k < 6; ++k) b.d[k] = static_cast<uint8_t>(x[k]);
      m.key.push_back(xt::exact_range(b));
    } else if (t == Type::ifname) {
      std::string name(v);
      if (name.rfind("physdev:", 0) == 0) name = name.substr(8);
      Bytes lo;
      lo.len = 16;
      std::copy_n(name.begin(), std::min<std::size_t>(name.size(), 15), lo.d.begin());
      m.key.push_back(xt::exact_range(lo));
    }
  }
  if (d != dims.size()) {
    *why = fmt::format("has {} parts, type {} has {}", dims.size(), s.type, d);
    return false;
  }
  return true;
}

}  // namespace

Result<IpsetCatalog> parse_ipset_save(std::string_view text, const std::string& origin) {
  IpsetCatalog cat;
  std::size_t lineno = 0;
  auto err = [&](const std::string& what) {
    return make_error(ErrorCode::bad_input, fmt::format("{}:{}: {}", origin, lineno, what));
  };
  while (!text.empty()) {
    ++lineno;
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto t = tokens(line);
    if (t.empty() || t[0][0] == '#') continue;
    if (t[0] == "COMMIT" || t[0] == "-exist") continue;
    if (t[0] == "create" || t[0] == "-N" || t[0] == "n") {
      if (t.size() < 3) return err("create needs a name and a type");
      if (cat.by_name(t[1])) return err(fmt::format("set {} is created twice", t[1]));
      Ipset s;
      s.name = t[1];
      s.type = t[2];
      s.index = static_cast<uint16_t>(cat.sets.size());
      s.family = s.type == "list:set" || s.type == "bitmap:port" ? 0 : 2;
      for (std::size_t i = 3; i + 1 < t.size(); ++i) {
        if (t[i] == "family") {
          if (t[i + 1] == "inet6")
            s.family = 10;
          else if (t[i + 1] != "inet")
            return err(fmt::format("family '{}' is not inet or inet6", t[i + 1]));
        } else if (t[i] == "netmask") {
          auto n = number(t[i + 1]);
          if (!n) return err(fmt::format("netmask '{}' is not a number", t[i + 1]));
          s.netmask = static_cast<uint8_t>(*n);
        }
      }
      if (s.netmask >= (s.family == 10 ? 128 : 32)) s.netmask = 0;
      std::string why;
      s.key_types = ipset_key_types(s.type, s.family, &why);
      if (!why.empty()) return err(why);
      cat.sets.push_back(std::move(s));
    } else if (t[0] == "add" || t[0] == "-A" || t[0] == "a") {
      if (t.size() < 3) return err("add needs a set name and an element");
      auto it = std::find_if(cat.sets.begin(), cat.sets.end(),
                             [&](const Ipset& s) { return s.name == t[1]; });
      if (it == cat.sets.end())
        return err(fmt::format("set {} is not created before this add", t[1]));
      if (it->type == "list:set") {
        it->list_members.push_back(t[2]);
        continue;
      }
      IpsetMember m;
      std::string why;
      if (!parse_member(*it, t[2], m, &why))
        return err(fmt::format("element '{}' of {}: {}", t[2], it->name, why));
      for (std::size_t i = 3; i < t.size(); ++i)
        if (t[i] == "nomatch") m.nomatch = true;
      it->members.push_back(std::move(m));
    } else if (t[0] == "flush" || t[0] == "destroy" || t[0] == "swap" || t[0] == "rename" ||
               t[0] == "del" || t[0] == "-F" || t[0] == "-X" || t[0] == "-W" || t[0] == "-E" ||
               t[0] == "-D") {
      return err(fmt::format(
          "'{}' is not supported: give `ipset save` output, which only creates and adds", t[0]));
    } else {
      return err(fmt::format("'{}' is not an ipset save command", t[0]));
    }
  }
  for (auto& s : cat.sets) xt::apply_netmask(s);
  return cat;
}

}  // namespace dpi::nft
