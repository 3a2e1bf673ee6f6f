#include "backends/ebpf/debug_json.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/input_file.h"

namespace dpi::ebpf {

const char* policy_dir_name(PolicyDir d) {
  switch (d) {
    case PolicyDir::ingress: return "ingress";
    case PolicyDir::egress: return "egress";
    case PolicyDir::xdp: return "xdp";
  }
  return "?";
}

Result<DebugFileName> parse_debug_file_name(std::string_view name) {
  auto slash = name.rfind('/');
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  auto bad = [&] {
    return make_error(ErrorCode::bad_input,
                      fmt::format("{}: not a policy-debug file name "
                                  "(<iface>_<ingress|egress|xdp>_v<4|6>.json)",
                                  name));
  };
  constexpr std::string_view kExt = ".json";
  if (name.size() < kExt.size() + 4 || name.substr(name.size() - kExt.size()) != kExt) return bad();
  std::string_view stem = name.substr(0, name.size() - kExt.size());
  DebugFileName out;
  if (stem.ends_with("_v4")) {
    out.family = 4;
  } else if (stem.ends_with("_v6")) {
    out.family = 6;
  } else {
    return bad();
  }
  stem.remove_suffix(3);
  // Interface names may contain '_', so the direction is the last '_' field.
  auto us = stem.rfind('_');
  if (us == std::string_view::npos || us == 0) return bad();
  std::string_view dir = stem.substr(us + 1);
  if (dir == "ingress") {
    out.dir = PolicyDir::ingress;
  } else if (dir == "egress") {
    out.dir = PolicyDir::egress;
  } else if (dir == "xdp") {
    out.dir = PolicyDir::xdp;
  } else {
    return bad();
  }
  out.iface = std::string(stem.substr(0, us));
  return out;
}

std::string debug_file_name(const DebugFileName& n) {
  return fmt::format("{}_{}_v{}.json", n.iface, policy_dir_name(n.dir), n.family);
}

std::vector<RawInsn> DebugProgram::program(std::size_t sub) const {
  std::vector<RawInsn> out;
  if (sub >= subprograms.size()) return out;
  const SubProgram& s = subprograms[sub];
  out.reserve(s.count);
  for (std::size_t i = s.first; i < s.first + s.count; ++i) out.push_back(insns[i].insn);
  return out;
}

const SubProgram* DebugProgram::subprogram_of(std::size_t i) const {
  for (const SubProgram& s : subprograms)
    if (i >= s.first && i < s.first + s.count) return &s;
  return nullptr;
}

namespace {

using nlohmann::json;

Error bad(std::string_view file, std::string_view item, std::string_view what) {
  return make_error(ErrorCode::bad_input, fmt::format("{}: {}: {}", file, item, what));
}

// A string array that Go may have written as null.
Result<std::vector<std::string>> strings_at(const json& obj, const char* key, std::string_view file,
                                            const std::string& item) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return out;
  if (!it->is_array()) return bad(file, item + "." + key, "not an array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const json& s = (*it)[i];
    if (!s.is_string()) return bad(file, fmt::format("{}.{}[{}]", item, key, i), "not a string");
    out.push_back(s.get<std::string>());
  }
  return out;
}

Result<std::string> string_at(const json& obj, const char* key, std::string_view file,
                              bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return bad(file, key, "missing");
    return std::string();
  }
  if (!it->is_string()) return bad(file, key, "not a string");
  return it->get<std::string>();
}

bool starts_program(const DebugInsn& in, uint32_t* k) {
  for (const std::string& c : in.comments) {
    unsigned n = 0;
    int used = 0;
    if (std::sscanf(c.c_str(), "##### Start of program %u #####%n", &n, &used) == 1 &&
        used == static_cast<int>(c.size())) {
      *k = n;
      return true;
    }
  }
  return false;
}

}  // namespace

Result<DebugProgram> parse_debug_json(std::string_view text, std::string_view file) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::exception& e) {
    std::string msg = e.what();
    // nlohmann's messages are one line; keep them so, without the "[json.exception...]" tag.
    auto close = msg.find("] ");
    if (close != std::string::npos) msg = msg.substr(close + 2);
    return bad(file, "JSON", msg);
  }
  if (!doc.is_object()) return bad(file, "document", "not a JSON object");
  DebugProgram p;
  p.file = std::string(file);
  auto iface = string_at(doc, "ifacename", file, true);
  if (!iface) return iface.error();
  p.iface = *iface;
  auto hook = string_at(doc, "hook", file, true);
  if (!hook) return hook.error();
  p.hook = *hook;
  auto err = string_at(doc, "error", file, false);
  if (!err) return err.error();
  p.error = *err;

  auto info = doc.find("policyInfo");
  if (info == doc.end()) return bad(file, "policyInfo", "missing");
  if (!info->is_null() && !info->is_array()) return bad(file, "policyInfo", "not an array");
  if (info->is_array()) {
    p.insns.reserve(info->size());
    for (std::size_t i = 0; i < info->size(); ++i) {
      const json& e = (*info)[i];
      std::string item = fmt::format("policyInfo[{}]", i);
      if (!e.is_object()) return bad(file, item, "not an object");
      auto inst = e.find("inst");
      if (inst == e.end()) return bad(file, item + ".inst", "missing");
      if (!inst->is_array()) return bad(file, item + ".inst", "not an array");
      if (inst->size() != 8)
        return bad(file, item + ".inst", fmt::format("{} numbers (want 8)", inst->size()));
      DebugInsn d;
      for (std::size_t j = 0; j < 8; ++j) {
        const json& v = (*inst)[j];
        if (!v.is_number_unsigned() || v.get<uint64_t>() > 255)
          return bad(file, fmt::format("{}.inst[{}]", item, j), "not a byte (0-255)");
        d.insn.b[j] = static_cast<uint8_t>(v.get<uint64_t>());
      }
      auto labels = strings_at(e, "labels", file, item);
      if (!labels) return labels.error();
      d.labels = std::move(*labels);
      auto comments = strings_at(e, "comments", file, item);
      if (!comments) return comments.error();
      d.comments = std::move(*comments);
      auto ann = e.find("annotation");
      if (ann != e.end() && !ann->is_null()) {
        if (!ann->is_string()) return bad(file, item + ".annotation", "not a string");
        d.annotation = ann->get<std::string>();
      }
      p.insns.push_back(std::move(d));
    }
  }

  // Sub-programs: program 0 from the start, program k from its "Start of program k" comment.
  p.subprograms.push_back({0, 0, 0});
  for (std::size_t i = 0; i < p.insns.size(); ++i) {
    uint32_t k = 0;
    if (!starts_program(p.insns[i], &k)) continue;
    if (i == 0 || k != p.subprograms.size())
      return bad(file, fmt::format("policyInfo[{}]", i),
                 fmt::format("sub-program {} starts here, expected {}", k, p.subprograms.size()));
    p.subprograms.back().count = i - p.subprograms.back().first;
    p.subprograms.push_back({k, i, 0});
  }
  p.subprograms.back().count = p.insns.size() - p.subprograms.back().first;
  return p;
}

Result<DebugProgram> load_debug_json(const std::string& path) {
  // Felix's largest programs are tens of thousands of instructions with comments.
  auto text = read_input_file(path, std::size_t{256} << 20);
  if (!text) return text.error();
  return parse_debug_json(*text, path);
}

}  // namespace dpi::ebpf
