#include "backends/nftables/rule_text.h"

#include <fmt/format.h>

namespace dpi::nft {

namespace {

std::string join(const nlohmann::json& arr, const char* sep) {
  std::string s;
  for (const auto& e : arr) {
    if (!s.empty()) s += sep;
    s += expr_text(e);
  }
  return s;
}

std::string hex_mark(const nlohmann::json& v) {
  if (v.is_number_unsigned() || v.is_number_integer())
    return fmt::format("0x{:08x}", v.get<uint64_t>());
  return expr_text(v);
}

std::string verdict_text(const std::string& k, const nlohmann::json& v) {
  if ((k == "jump" || k == "goto") && v.is_object()) return k + " " + v.value("target", "?");
  if (k == "continue" || k == "accept" || k == "drop" || k == "return") return k;
  return "";
}

}  // namespace

std::string expr_text(const nlohmann::json& e) {
  if (e.is_string()) {
    const auto& s = e.get_ref<const std::string&>();
    if (!s.empty() && s[0] == '@') return s;
    bool plain = s.find_first_of(" |*\"") == std::string::npos && !s.empty();
    return plain ? s : "\"" + s + "\"";
  }
  if (e.is_number() || e.is_boolean() || e.is_null()) return e.dump();
  if (e.is_array()) return join(e, ",");
  if (!e.is_object() || e.empty()) return e.dump();
  const auto& [k, v] = *e.items().begin();
  if (k == "meta") return "meta " + v.value("key", "?");
  if (k == "ct")
    return "ct " + (v.contains("dir") ? v["dir"].get<std::string>() + " " : "") +
           v.value("key", "?");
  if (k == "payload") {
    if (v.contains("protocol")) return v.value("protocol", "?") + " " + v.value("field", "?");
    return fmt::format("@{},{},{}", v.value("base", "?"), v.value("offset", 0), v.value("len", 0));
  }
  if (k == "fib") {
    std::string flags;
    for (const auto& f : v.value("flags", nlohmann::json::array())) {
      if (!flags.empty()) flags += " . ";
      flags += f.get<std::string>();
    }
    return "fib " + flags + " " + v.value("result", "?");
  }
  if (k == "numgen")
    return fmt::format("numgen {} mod {}{}", v.value("mode", "?"), v.value("mod", 0),
                       v.value("offset", 0) ? fmt::format(" offset {}", v.value("offset", 0)) : "");
  if (k == "&" || k == "|" || k == "^" || k == "<<" || k == ">>") {
    if (v.is_array() && v.size() == 2) {
      bool mark = v[0].is_object() && (v[0].contains("meta") || v[0].contains("ct"));
      return expr_text(v[0]) + " " + k + " " + (mark ? hex_mark(v[1]) : expr_text(v[1]));
    }
  }
  if (k == "concat") return join(v, " . ");
  if (k == "set") return "{ " + (v.is_array() ? join(v, ", ") : expr_text(v)) + " }";
  if (k == "prefix")
    return expr_text(v.value("addr", nlohmann::json())) + "/" + std::to_string(v.value("len", 0));
  if (k == "range" && v.is_array() && v.size() == 2) return expr_text(v[0]) + "-" + expr_text(v[1]);
  if (k == "elem") return expr_text(v.value("val", nlohmann::json()));
  if (k == "map")
    return expr_text(v.value("key", nlohmann::json())) + " map " +
           expr_text(v.value("data", nlohmann::json()));
  if (auto vt = verdict_text(k, v); !vt.empty()) return vt;
  return e.dump();
}

std::string stmt_text(const nlohmann::json& s) {
  if (!s.is_object() || s.empty()) return s.dump();
  const auto& [k, v] = *s.items().begin();
  if (k == "match") {
    std::string op = v.value("op", "==");
    bool mark = v["left"].is_object() && v["left"].contains("&");
    std::string rhs = mark ? hex_mark(v["right"]) : expr_text(v["right"]);
    if (op == "==" || op == "in")
      return expr_text(v["left"]) + (op == "==" && mark ? " == " : " ") + rhs;
    return expr_text(v["left"]) + " " + op + " " + rhs;
  }
  if (auto vt = verdict_text(k, v); !vt.empty()) return vt;
  if (k == "counter") {
    if (v.is_object())
      return fmt::format("counter packets {} bytes {}", v.value("packets", 0), v.value("bytes", 0));
    return "counter name " + expr_text(v);
  }
  if (k == "log") {
    std::string t = "log";
    if (v.is_object()) {
      if (v.contains("prefix")) t += " prefix \"" + v["prefix"].get<std::string>() + "\"";
      if (v.contains("level")) t += " level " + v["level"].get<std::string>();
      if (v.contains("group")) t += " group " + v["group"].dump();
      if (v.contains("snaplen")) t += " snaplen " + v["snaplen"].dump();
    }
    return t;
  }
  if (k == "mangle") {
    const auto& key = v["key"];
    bool mark = key.is_object() && (key.contains("meta") || key.contains("ct"));
    const auto& val = v["value"];
    return expr_text(key) + " set " + (mark && val.is_number() ? hex_mark(val) : expr_text(val));
  }
  if (k == "vmap") return expr_text(v["key"]) + " vmap " + expr_text(v["data"]);
  if (k == "reject") {
    if (v.is_object() && v.contains("type")) return "reject with " + v["type"].get<std::string>();
    return "reject";
  }
  if (k == "dnat" || k == "snat" || k == "redirect") {
    std::string t = k;
    if (v.is_object()) {
      if (v.contains("addr")) t += " to " + expr_text(v["addr"]);
      if (v.contains("port")) t += (v.contains("addr") ? ":" : " to :") + expr_text(v["port"]);
    }
    return t;
  }
  if (k == "masquerade") return "masquerade";
  if (k == "notrack") return "notrack";
  if (k == "limit" && v.is_object())
    return fmt::format("limit rate {}{}/{}", v.value("inv", false) ? "over " : "",
                       v.value("rate", 0), v.value("per", "second"));
  if (k == "xt" && v.is_object())
    return fmt::format("xt {} \"{}\"", v.value("type", "?"), v.value("name", "?"));
  return k + (v.is_null() ? "" : " " + v.dump());
}

std::string rule_text(const nlohmann::json& exprs) {
  std::string s;
  for (const auto& st : exprs) {
    if (!s.empty()) s += ' ';
    s += stmt_text(st);
  }
  return s;
}

}  // namespace dpi::nft
