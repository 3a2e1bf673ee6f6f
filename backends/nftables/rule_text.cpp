#include "backends/nftables/rule_text.h"

#include <fmt/format.h>

#include "backends/nftables/json_util.h"
#include "core/ip.h"

namespace dpi::nft {

using nlohmann::json;

// The renderer accepts any JSON (the loader renders statements it does not understand, and
// files can hold anything): a field of an unexpected type or shape is shown as JSON rather than
// thrown over, and nothing is read that is not there.
namespace {

// Deeper nesting than nft ever prints is shown as "..." rather than recursed into.
constexpr int kMaxDepth = 32;

std::string expr_at(const json& e, int depth);

std::string dump(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

// v[key] when v is an object that has it, else null.
const json& field(const json& v, const char* key) {
  static const json kNull;
  if (!v.is_object()) return kNull;
  auto it = v.find(key);
  return it == v.end() ? kNull : *it;
}

// A field as text: strings as they are, other values as JSON, def when absent.
std::string text(const json& v, const char* key, const char* def) {
  const json& f = field(v, key);
  if (f.is_null()) return def;
  if (f.is_string()) return f.get<std::string>();
  return dump(f);
}

bool nonzero(const json& v) {
  return !v.is_null() && v != 0;
}

std::string join(const json& arr, const char* sep, int depth) {
  std::string s;
  for (const auto& e : arr) {
    if (!s.empty()) s += sep;
    s += expr_at(e, depth);
  }
  return s;
}

std::string hex_mark(const json& v, int depth) {
  if (v.is_number_unsigned() || v.is_number_integer())
    return fmt::format("0x{:08x}", v.get<uint64_t>());
  return expr_at(v, depth);
}

std::string verdict_text(const std::string& k, const json& v) {
  if ((k == "jump" || k == "goto") && v.is_object()) return k + " " + text(v, "target", "?");
  if (k == "continue" || k == "accept" || k == "drop" || k == "return") return k;
  return "";
}

std::string expr_at(const json& e, int depth) {
  if (++depth > kMaxDepth) return "...";
  if (e.is_string()) {
    const auto& s = e.get_ref<const std::string&>();
    if (!s.empty() && s[0] == '@') return s;
    bool plain = s.find_first_of(" |*\"") == std::string::npos && !s.empty();
    return plain ? s : "\"" + s + "\"";
  }
  if (e.is_number() || e.is_boolean() || e.is_null()) return dump(e);
  if (e.is_array()) return join(e, ",", depth);
  if (!e.is_object() || e.empty()) return dump(e);
  const auto [k, v] = only_member(e);
  if (k == "meta") return "meta " + text(v, "key", "?");
  if (k == "ct") {
    return "ct " + (field(v, "dir").is_null() ? "" : text(v, "dir", "") + " ") +
           text(v, "key", "?");
  }
  if (k == "payload") {
    if (!field(v, "protocol").is_null())
      return text(v, "protocol", "?") + " " + text(v, "field", "?");
    return fmt::format("@{},{},{}", text(v, "base", "?"), text(v, "offset", "0"),
                       text(v, "len", "0"));
  }
  if (k == "fib") {
    std::string flags;
    const json& fl = field(v, "flags");
    for (const auto& f : fl.is_array() ? fl : json::array()) {
      if (!flags.empty()) flags += " . ";
      flags += f.is_string() ? f.get<std::string>() : dump(f);
    }
    return "fib " + flags + " " + text(v, "result", "?");
  }
  if (k == "numgen")
    return fmt::format("numgen {} mod {}{}", text(v, "mode", "?"), text(v, "mod", "0"),
                       nonzero(field(v, "offset")) ? " offset " + text(v, "offset", "0") : "");
  if (k == "&" || k == "|" || k == "^" || k == "<<" || k == ">>") {
    if (v.is_array() && v.size() == 2) {
      bool mark = v[0].is_object() && (v[0].contains("meta") || v[0].contains("ct"));
      return expr_at(v[0], depth) + " " + k + " " +
             (mark ? hex_mark(v[1], depth) : expr_at(v[1], depth));
    }
  }
  if (k == "concat") return join(v, " . ", depth);
  if (k == "set") return "{ " + (v.is_array() ? join(v, ", ", depth) : expr_at(v, depth)) + " }";
  if (k == "prefix") return expr_at(field(v, "addr"), depth) + "/" + text(v, "len", "0");
  if (k == "range" && v.is_array() && v.size() == 2)
    return expr_at(v[0], depth) + "-" + expr_at(v[1], depth);
  if (k == "elem") return expr_at(field(v, "val"), depth);
  if (k == "map")
    return expr_at(field(v, "key"), depth) + " map " + expr_at(field(v, "data"), depth);
  if (auto vt = verdict_text(k, v); !vt.empty()) return vt;
  return dump(e);
}

}  // namespace

std::string expr_text(const json& e) {
  return expr_at(e, 0);
}

std::string stmt_text(const json& s) {
  if (!s.is_object() || s.empty()) return dump(s);
  const auto [k, v] = only_member(s);
  if (k == "match") {
    std::string op = text(v, "op", "==");
    const json& left = field(v, "left");
    const json& right = field(v, "right");
    bool mark = left.is_object() && left.contains("&");
    std::string rhs = mark ? hex_mark(right, 0) : expr_text(right);
    if (op == "==" || op == "in")
      return expr_text(left) + (op == "==" && mark ? " == " : " ") + rhs;
    return expr_text(left) + " " + op + " " + rhs;
  }
  if (auto vt = verdict_text(k, v); !vt.empty()) return vt;
  if (k == "counter") {
    if (v.is_object())
      return fmt::format("counter packets {} bytes {}", text(v, "packets", "0"),
                         text(v, "bytes", "0"));
    return "counter name " + expr_text(v);
  }
  if (k == "log") {
    std::string t = "log";
    if (v.is_object()) {
      if (v.contains("prefix")) t += " prefix \"" + text(v, "prefix", "") + "\"";
      if (v.contains("level")) t += " level " + text(v, "level", "");
      if (v.contains("group")) t += " group " + dump(v["group"]);
      if (v.contains("snaplen")) t += " snaplen " + dump(v["snaplen"]);
    }
    return t;
  }
  if (k == "mangle") {
    const json& key = field(v, "key");
    bool mark = key.is_object() && (key.contains("meta") || key.contains("ct"));
    const json& val = field(v, "value");
    return expr_text(key) + " set " + (mark && val.is_number() ? hex_mark(val, 0) : expr_text(val));
  }
  if (k == "vmap") return expr_text(field(v, "key")) + " vmap " + expr_text(field(v, "data"));
  if (k == "reject") {
    if (v.is_object() && v.contains("type")) return "reject with " + text(v, "type", "");
    return "reject";
  }
  if (k == "dnat" || k == "snat" || k == "redirect") {
    std::string t = k;
    if (v.is_object()) {
      const json& addr = field(v, "addr");
      const json& port = field(v, "port");
      // An IPv6 address with a port is bracketed, as nft lists it.
      auto ip = addr.is_string() ? IpAddr::parse(addr.get<std::string>()) : std::nullopt;
      if (ip && port.is_number_unsigned() && port.get<uint64_t>() <= 0xffff)
        return t + " to " + addr_port(*ip, port.get<uint16_t>());
      if (!addr.is_null()) t += " to " + expr_text(addr);
      if (!port.is_null()) t += (addr.is_null() ? " to :" : ":") + expr_text(port);
    }
    return t;
  }
  if (k == "masquerade") return "masquerade";
  if (k == "notrack") return "notrack";
  if (k == "limit" && v.is_object())
    return fmt::format("limit rate {}{}/{}", field(v, "inv") == true ? "over " : "",
                       text(v, "rate", "0"), text(v, "per", "second"));
  if (k == "xt" && v.is_object())
    return fmt::format("xt {} \"{}\"", text(v, "type", "?"), text(v, "name", "?"));
  return k + (v.is_null() ? "" : " " + dump(v));
}

std::string rule_text(const json& exprs) {
  if (!exprs.is_array()) return stmt_text(exprs);
  std::string s;
  for (const auto& st : exprs) {
    // iptables' comment match carries only the comment, which the report shows on its own.
    if (field(field(st, "xt"), "name") == "comment") continue;
    if (!s.empty()) s += ' ';
    s += stmt_text(st);
  }
  return s;
}

}  // namespace dpi::nft
