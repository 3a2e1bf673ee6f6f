#include "cli/flow_file.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace dpi::cli {

namespace {

using nlohmann::json;

Status read_line(const json& j, FlowSpec& out) {
  auto bad = [&](const std::string& msg) {
    return make_error(ErrorCode::bad_input, out.where + msg);
  };
  if (!j.is_object()) return bad("expected an object like {\"src\": ..., \"dst\": ...}");
  for (const auto& [k, v] : j.items()) {
    if (k == "src" || k == "dst" || k == "proto" || k == "ct") {
      if (!v.is_string()) return bad(fmt::format("\"{}\" must be a string", k));
      std::string s = v.get<std::string>();
      if (k == "src") out.src = s;
      if (k == "dst") out.dst = s;
      if (k == "proto") out.args.proto = s;
      if (k == "ct") out.args.ct = s;
    } else if (k == "sport" || k == "dport" || k == "icmp_type" || k == "icmp_code") {
      if (!v.is_number_integer()) return bad(fmt::format("\"{}\" must be an integer", k));
      auto n = v.get<int64_t>();
      if (k == "sport") out.args.sport = n;
      if (k == "dport") out.args.dport = n;
      if (k == "icmp_type") out.args.icmp_type = n;
      if (k == "icmp_code") out.args.icmp_code = n;
    } else {
      // dump() quotes and escapes the key as JSON, so the error stays one line.
      return bad(
          fmt::format("unknown key {} (src, dst, proto, sport, dport, icmp_type, "
                      "icmp_code, ct)",
                      json(k).dump()));
    }
  }
  if (out.src.empty() || out.dst.empty()) return bad("\"src\" and \"dst\" are required");
  return Ok{};
}

}  // namespace

Result<std::vector<FlowSpec>> read_flow_specs(std::string_view text, const std::string& origin) {
  std::vector<FlowSpec> out;
  std::size_t line = 0, pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view l = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    auto first = l.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || l[first] == '#') continue;
    FlowSpec f;
    f.where = fmt::format("{}:{}: ", origin, line);
    json j = json::parse(l.begin(), l.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return make_error(ErrorCode::bad_input, f.where + "not a JSON object");
    if (auto st = read_line(j, f); !st) return st.error();
    out.push_back(std::move(f));
  }
  if (out.empty())
    return make_error(ErrorCode::bad_input, origin + ": no flows (one JSON object a line)");
  return out;
}

}  // namespace dpi::cli
